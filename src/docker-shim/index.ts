import { GpuguardError } from '../errors.ts';

export async function main(_args: string[]): Promise<number> {
  throw new GpuguardError('the docker shim is not built yet', 3);
}
