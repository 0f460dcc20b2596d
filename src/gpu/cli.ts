import { GpuguardError } from '../errors.ts';

export async function run(_args: string[]): Promise<number> {
  throw new GpuguardError('gpu/cli: not built yet', 3);
}
