/**
 * Finding the real docker CLI, never ourselves. Kept apart from the rest of
 * the gateway (which loads zod) because the shim's pass-through path needs
 * only this and must load nothing else; its file-system questions go
 * through sys/fastfs.ts, which does not start node:fs's thread pool.
 */
import { RealBinaryError } from '../errors.ts';
import { isUs, ourPaths } from '../front/identity.ts';
import { isExecutable, realpathOf } from '../sys/fastfs.ts';

/**
 * The real docker CLI: GPUGUARD_REAL_DOCKER, else the policy's
 * docker.realPath, else the first `docker` on PATH that is not this binary
 * (or, where `docker` is this binary, the `docker.real` beside it: the
 * layout install.sh leaves).
 * Resolved paths are compared, so a symlink back to us (this binary or its
 * native front: front/identity.ts) is a loop, reported. The native front
 * (front.c) makes the same search before it execs the real CLI itself.
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
 * PATH has no other docker and no `docker.real` beside the shim: the caller
 * then loads the policy and asks {@link findRealDocker} with docker.realPath.
 */
export function findRealDockerFast(env: NodeJS.ProcessEnv, self: string = process.execPath): string | undefined {
  if (env.GPUGUARD_REAL_DOCKER) return checkCandidate(env.GPUGUARD_REAL_DOCKER, 'GPUGUARD_REAL_DOCKER', self);
  return searchPath(env, self);
}

/**
 * The real docker-compose (v1): GPUGUARD_REAL_COMPOSE, else the first
 * `docker-compose` on PATH that is not this binary (or the
 * `docker-compose.real` beside the shim).
 */
export function findRealCompose(env: NodeJS.ProcessEnv, self: string = process.execPath): string {
  if (env.GPUGUARD_REAL_COMPOSE) return checkCandidate(env.GPUGUARD_REAL_COMPOSE, 'GPUGUARD_REAL_COMPOSE', self, 'docker-compose');
  const found = searchPath(env, self, 'docker-compose');
  if (found) return found;
  throw new RealBinaryError('no real docker-compose found on PATH after gpuguard; set GPUGUARD_REAL_COMPOSE or install docker-compose');
}

function checkCandidate(candidate: string, source: string, self: string, name = 'docker'): string {
  const what = name === 'docker' ? 'docker CLI' : name;
  const real = realpathOf(candidate);
  if (!real) throw new RealBinaryError(`the real ${what} ${candidate} (from ${source}) does not exist; fix ${source} or install ${name === 'docker' ? 'docker.io' : name}`);
  if (isUs(real, ourPaths(self))) throw new RealBinaryError(`the real ${what} ${candidate} (from ${source}) is gpuguard itself, which would loop; point ${source} at the real ${name} binary`);
  return candidate;
}

/**
 * The first `name` on PATH that is not us, or the `<name>.real` beside one
 * that is. Only absolute PATH entries count: a relative one would resolve
 * against whatever directory the caller stands in.
 */
function searchPath(env: NodeJS.ProcessEnv, self: string, name = 'docker'): string | undefined {
  const ours = ourPaths(self);
  for (const dir of (env.PATH ?? '').split(':')) {
    if (!dir.startsWith('/')) continue;
    const candidate = `${dir.replace(/\/+$/, '')}/${name}`;
    if (!isExecutable(candidate)) continue;
    const real = realpathOf(candidate);
    if (real !== undefined && !isUs(real, ours)) return candidate;
    // install.sh's layout: the shim in the real binary's place, the real one beside it as `<name>.real`.
    const beside = `${candidate}.real`;
    const besideReal = realpathOf(beside);
    if (isExecutable(beside) && besideReal !== undefined && !isUs(besideReal, ours)) return beside;
  }
  return undefined;
}
