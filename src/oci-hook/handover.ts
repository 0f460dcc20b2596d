/** Becoming the real runtime: execve, argv[1..] exactly as given, the extra descriptors kept open, env untouched. */
import { descriptorsToKeep, type RuncCall } from './args.ts';

export async function handOver(real: string, args: string[], call: RuncCall, env: NodeJS.ProcessEnv): Promise<never> {
  const { execve } = await import('../sys/exec.ts');
  return execve(real, [real, ...args], env, descriptorsToKeep(call, env));
}
