/**
 * Becoming the real runtime: execve, argv[1..] exactly as given, the extra
 * descriptors kept open, env untouched. Imported statically: on the
 * pass-through path every dynamic import is one more trip through Bun's
 * module loader (~0.3–1 ms each, measured).
 */
import { execve } from '../sys/exec.ts';
import { descriptorsToKeep, type RuncCall } from './args.ts';

export function handOver(real: string, args: string[], call: RuncCall, env: NodeJS.ProcessEnv): never {
  return execve(real, [real, ...args], env, descriptorsToKeep(call, env));
}
