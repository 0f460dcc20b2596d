/**
 * Finding the real docker CLI, never ourselves. Kept apart from the rest of
 * the gateway (which loads zod) because the shim's pass-through path needs
 * only this and must load nothing else.
 */
import { accessSync, constants, realpathSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import { RealBinaryError } from '../errors.ts';

/**
 * The real docker CLI: GPUGUARD_REAL_DOCKER, else the policy's
 * docker.realPath, else the first `docker` on PATH that is not this binary.
 * Resolved paths are compared, so a symlink back to us is a loop, reported.
 */
export function findRealDocker(env: NodeJS.ProcessEnv, policyRealPath?: string, self: string = process.execPath): string {
  if (env.GPUGUARD_REAL_DOCKER) return checkCandidate(env.GPUGUARD_REAL_DOCKER, 'GPUGUARD_REAL_DOCKER', self);
  if (policyRealPath) return checkCandidate(policyRealPath, 'the policy key docker.realPath', self);
  const found = searchPath(env, self);
  if (found) return found;
  throw new RealBinaryError('no real docker CLI found on PATH after gpuguard; set GPUGUARD_REAL_DOCKER or docker.realPath in the policy');
}

/**
 * The pass-through path's lookup, which must not parse the policy on every
 * call: GPUGUARD_REAL_DOCKER, else the next docker on PATH. Undefined when
 * PATH has no other docker (a dpkg-diverted install): the caller then loads
 * the policy and asks {@link findRealDocker} with docker.realPath.
 */
export function findRealDockerFast(env: NodeJS.ProcessEnv, self: string = process.execPath): string | undefined {
  if (env.GPUGUARD_REAL_DOCKER) return checkCandidate(env.GPUGUARD_REAL_DOCKER, 'GPUGUARD_REAL_DOCKER', self);
  return searchPath(env, self);
}

function checkCandidate(candidate: string, source: string, self: string): string {
  const real = safeRealpath(candidate);
  if (!real) throw new RealBinaryError(`the real docker CLI ${candidate} (from ${source}) does not exist; fix ${source} or install docker.io`);
  if (real === safeRealpath(self)) throw new RealBinaryError(`the real docker CLI ${candidate} (from ${source}) is gpuguard itself, which would loop; point ${source} at the real docker binary`);
  return candidate;
}

function searchPath(env: NodeJS.ProcessEnv, self: string): string | undefined {
  const selfReal = safeRealpath(self);
  for (const dir of (env.PATH ?? '').split(delimiter)) {
    if (!dir) continue;
    const candidate = join(dir, 'docker');
    try {
      accessSync(candidate, constants.X_OK);
    } catch {
      continue;
    }
    if (safeRealpath(candidate) !== selfReal) return candidate;
  }
  return undefined;
}

function safeRealpath(p: string): string | undefined {
  try {
    return realpathSync(p);
  } catch {
    return undefined;
  }
}
