import { GpuguardError } from '../errors.ts';

export async function runPs(_args: string[]): Promise<number> {
  throw new GpuguardError('gpuguard ps: not built yet', 3);
}
export async function runWho(_args: string[]): Promise<number> {
  throw new GpuguardError('gpuguard who: not built yet', 3);
}
