import { GpuguardError } from '../errors.ts';

export async function run(_args: string[]): Promise<number> {
  throw new GpuguardError('docker-shim/explain: not built yet', 3);
}
