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
 * the policy's realPath in a small cache keyed by the policy file's identity
 * (path, inode, size, mtime); later calls stat the policy and read the cache.
 * A miss parses the policy once (lazily imported) and refreshes the cache; a
 * broken policy means "no realPath" here, so `state`, `kill`, `--version`
 * keep working whatever is in the policy file.
 */
import { accessSync, constants, mkdirSync, readFileSync, realpathSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import { RealBinaryError } from '../errors.ts';

export interface RealRuntimeSources {
  env: NodeJS.ProcessEnv;
  /** `runtime.realPath` from the policy, when there is one. */
  policyRealPath?: string | undefined;
  /** This binary, resolved (defaults to /proc/self/exe). */
  self?: string;
}

function resolved(path: string): string | undefined {
  try {
    return realpathSync(path);
  } catch {
    return undefined;
  }
}

function executable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return statSync(path).isFile();
  } catch {
    return false;
  }
}

export function selfPath(): string {
  return resolved('/proc/self/exe') ?? resolved(process.execPath) ?? process.execPath;
}

export function findRealRuntime(src: RealRuntimeSources): string {
  const self = src.self ?? selfPath();
  const configured: [string, string | undefined][] = [
    ['GPUGUARD_REAL_RUNTIME', src.env.GPUGUARD_REAL_RUNTIME || undefined],
    ['runtime.realPath in the policy', src.policyRealPath],
  ];
  for (const [from, path] of configured) {
    if (!path) continue;
    const real = resolved(path);
    if (!real || !executable(real)) {
      throw new RealBinaryError(`real runtime ${path} (from ${from}) does not exist or is not executable; install runc there or fix ${from}`);
    }
    if (real === self) {
      throw new RealBinaryError(`real runtime ${path} (from ${from}) is this wrapper itself (${self}); point ${from} at the real runc, e.g. runc.real`);
    }
    return path;
  }
  const dirs = (src.env.PATH ?? '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin').split(delimiter).filter(Boolean);
  let sawSelf = false;
  for (const dir of dirs) {
    const candidate = join(dir, 'runc');
    const real = resolved(candidate);
    if (!real || !executable(real)) continue;
    if (real === self) {
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

export const CACHE_DIR = '/run/gpuguard';

interface CacheEntry {
  policy: string;
  ino: number;
  size: number;
  mtimeMs: number;
  realPath: string | null;
}

export function fnv1a(s: string): string {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h.toString(16).padStart(8, '0');
}

function cacheFile(policyPath: string, dir: string): string {
  return join(dir, `realpath-${fnv1a(policyPath)}.json`);
}

/** Record the policy's realPath for later hot-path calls. Best effort: an unwritable cache only costs speed. */
export function rememberPolicyRealPath(policyPath: string, realPath: string | undefined, dir = CACHE_DIR): void {
  try {
    const st = statSync(policyPath);
    const entry: CacheEntry = { policy: policyPath, ino: st.ino, size: st.size, mtimeMs: st.mtimeMs, realPath: realPath ?? null };
    mkdirSync(dir, { recursive: true, mode: 0o755 });
    const file = cacheFile(policyPath, dir);
    const tmp = `${file}.${process.pid}.tmp`;
    writeFileSync(tmp, JSON.stringify(entry), { mode: 0o644 });
    renameSync(tmp, file);
  } catch {
    /* no cache: the next call parses the policy again */
  }
}

/**
 * The policy's `runtime.realPath` for a pass-through call, without parsing
 * the policy when the cache is fresh. Never throws: a missing or broken
 * policy gives undefined (PATH search).
 */
export async function policyRealPathForPassThrough(env: NodeJS.ProcessEnv, dir = CACHE_DIR): Promise<string | undefined> {
  const policyPath = env.GPUGUARD_POLICY || '/etc/gpuguard/policy.yaml';
  let st;
  try {
    st = statSync(policyPath);
  } catch {
    return undefined;
  }
  try {
    const entry = JSON.parse(readFileSync(cacheFile(policyPath, dir), 'utf8')) as CacheEntry;
    if (entry.policy === policyPath && entry.ino === st.ino && entry.size === st.size && entry.mtimeMs === st.mtimeMs) {
      return entry.realPath ?? undefined;
    }
  } catch {
    /* miss */
  }
  let realPath: string | undefined;
  try {
    const { loadPolicy } = await import('../policy/load.ts');
    realPath = loadPolicy(env).policy.runtime.realPath;
  } catch {
    realPath = undefined;
  }
  rememberPolicyRealPath(policyPath, realPath, dir);
  return realPath;
}
