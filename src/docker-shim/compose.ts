import { GpuguardError } from '../errors.ts';

export async function composeMain(_args: string[]): Promise<number> {
  throw new GpuguardError('the docker-compose face is not built yet', 3);
}
