/**
 * Which program is the real runtime: GPUGUARD_REAL_RUNTIME, else the
 * policy's `runtime.realPath`, else the first `runc` on PATH that is not
 * this binary. Paths are compared after resolving symlinks, so seed 001's
 * layout (`/opt/concourse/bin/runc` → wrapper, `runc.real` beside it) cannot
 * loop: a configured path that resolves to ourselves is an error, and the
 * PATH search skips every `runc` that is us.
 *
 * The non-create hot path must not parse the policy, yet must reach the same
 * runtime as `create` did. `create` (which parses the policy anyway) records
 * the policy's realPath in a cache entry keyed by the policy file's size and
 * mtime; later calls read the policy's stamp and the entry (one readlink: the
 * entry is a symlink whose target is the JSON). A miss parses the policy once
 * (real-runtime-cache.ts, lazily imported) and refreshes the entry; a broken
 * policy means "no realPath" here, so `state`, `kill`, `--version` keep
 * working whatever is in the policy file. This module imports no node:fs
 * (see fastfs.ts).
 */
import { RealBinaryError } from '../errors.ts';
import { fileStamp, isExecutable, readLink, realpathOf } from '../sys/fastfs.ts';
import { fnv1a, policyPathOf } from '../policy/cache.ts';
import { isUs, ourPaths } from '../front/identity.ts';

export interface RealRuntimeSources {
  env: NodeJS.ProcessEnv;
  /** `runtime.realPath` from the policy, when there is one. */
  policyRealPath?: string | undefined;
  /** This binary, resolved (defaults to /proc/self/exe). */
  self?: string;
  /** The path it was started as (defaults to process.argv0). */
  argv0?: string;
}

export function selfPath(): string {
  return realpathOf('/proc/self/exe') ?? realpathOf(process.execPath) ?? process.execPath;
}

/** The search path when the runtime's environment has no PATH. */
export const DEFAULT_RUNTIME_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

export function findRealRuntime(src: RealRuntimeSources): string {
  const self = src.self ?? selfPath();
  const ours = ourPaths(self);
  // install.sh: one wrapper per dockerd runtime (…/runtimes/<name>/gpuguard-runc), Concourse's runc,
  // each with its real runtime beside it as `<argv0>.real`.
  const argv0 = src.argv0 ?? process.argv0;
  const beside = argv0.includes('/') && realpathOf(`${argv0}.real`) ? `${argv0}.real` : undefined;
  const configured: [string, string | undefined][] = [
    ['GPUGUARD_REAL_RUNTIME', src.env.GPUGUARD_REAL_RUNTIME || undefined],
    [`${argv0}.real`, beside],
    ['runtime.realPath in the policy', src.policyRealPath],
  ];
  for (const [from, path] of configured) {
    if (!path) continue;
    const real = realpathOf(path);
    if (!real || !isExecutable(real)) {
      throw new RealBinaryError(`real runtime ${path} (from ${from}) does not exist or is not executable; install runc there or fix ${from}`);
    }
    if (isUs(real, ours)) {
      throw new RealBinaryError(`real runtime ${path} (from ${from}) is this wrapper itself (${self}); point ${from} at the real runc, e.g. runc.real`);
    }
    return path;
  }
  // Absolute entries only: the runtime runs as root in the bundle directory.
  const dirs = (src.env.PATH ?? DEFAULT_RUNTIME_PATH).split(':').filter((d) => d.startsWith('/'));
  let sawSelf = false;
  for (const dir of dirs) {
    const candidate = `${dir.replace(/\/+$/, '')}/runc`;
    const real = realpathOf(candidate);
    if (!real || !isExecutable(real)) continue;
    if (isUs(real, ours)) {
      sawSelf = true;
      continue;
    }
    return candidate;
  }
  throw new RealBinaryError(
    sawSelf
      ? 'every runc on PATH is this wrapper; set runtime.realPath in the policy (or GPUGUARD_REAL_RUNTIME) to the real runc'
      : 'no runc on PATH; install runc or set runtime.realPath in the policy (or GPUGUARD_REAL_RUNTIME)',
  );
}

// --- the realPath cache for the hot path ---------------------------------

/**
 * The wrapper's caches: its own directory directly in /run, which only root
 * can create, made 0700 by the wrapper (root). Not /run/gpuguard, which other
 * faces running as ordinary users may need to write (GPU reservations): an
 * entry here names the program root executes, so nobody else may write here.
 */
export const CACHE_DIR = '/run/gpuguard-runc';

export interface CacheEntry {
  policy: string;
  size: number;
  mtimeMs: number;
  realPath: string | null;
}


export function cacheEntryPath(policyPath: string, dir: string): string {
  return `${dir}/realpath-${fnv1a(policyPath)}`;
}


/**
 * Only root can make the directory in /run, but an entry names a program
 * root executes: trusted only when root owns it and its directory and
 * nobody else may write there (the native front checks the same).
 */
function rootsAlone(entry: string): boolean {
  try {
    // Reached only when the native front handed the call over (a miss): node:fs is fine here.
    const { lstatSync } = process.getBuiltinModule('node:fs');
    const dir = lstatSync(entry.slice(0, entry.lastIndexOf('/')));
    return lstatSync(entry).uid === 0 && dir.isDirectory() && dir.uid === 0 && (dir.mode & 0o022) === 0;
  } catch {
    return false;
  }
}

/**
 * The policy's `runtime.realPath` for a pass-through call, without parsing
 * the policy when the cache is fresh. Never throws: a missing or broken
 * policy gives undefined (PATH search).
 */
export async function policyRealPathForPassThrough(env: NodeJS.ProcessEnv, dir = CACHE_DIR): Promise<string | undefined> {
  const policyPath = policyPathOf(env);
  const stamp = fileStamp(policyPath);
  if (!stamp) return undefined;
  const entry = cacheEntryPath(policyPath, dir);
  const cached = rootsAlone(entry) ? readLink(entry) : undefined;
  if (cached) {
    try {
      const entry = JSON.parse(cached) as CacheEntry;
      if (entry.policy === policyPath && entry.size === stamp.size && entry.mtimeMs === stamp.mtimeMs) return entry.realPath ?? undefined;
    } catch {
      /* miss */
    }
  }
  return (await import('./real-runtime-cache.ts')).refreshPolicyRealPath(env, dir);
}
