/**
 * Writing the realPath cache entry (see real-runtime.ts): a symlink in
 * the wrapper's cache directory (CACHE_DIR) whose target is the JSON entry, replaced atomically by
 * rename. Off the hot path: only `create` and a cache miss come here.
 */
import { mkdirSync, readlinkSync, renameSync, statSync, symlinkSync, unlinkSync } from 'node:fs';
import { cacheEntryPath, CACHE_DIR, type CacheEntry } from './real-runtime.ts';
import { policyPathOf } from '../policy/cache.ts';

/** Record the policy's realPath for later hot-path calls. Best effort: an unwritable cache only costs speed. */
export function rememberPolicyRealPath(policyPath: string, realPath: string | undefined, dir = CACHE_DIR): void {
  const file = cacheEntryPath(policyPath, dir);
  const tmp = `${file}.${process.pid}.tmp`;
  try {
    const st = statSync(policyPath);
    const entry: CacheEntry = { policy: policyPath, size: st.size, mtimeMs: Math.floor(st.mtimeMs), realPath: realPath ?? null };
    const target = JSON.stringify(entry);
    try {
      if (readlinkSync(file) === target) return;
    } catch {
      /* absent */
    }
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    symlinkSync(target, tmp);
    renameSync(tmp, file);
  } catch {
    try {
      unlinkSync(tmp);
    } catch {
      /* never made */
    }
  }
}

/** Parse the policy (once per change of the file) for its realPath; a broken policy gives undefined. */
export async function refreshPolicyRealPath(env: NodeJS.ProcessEnv, dir = CACHE_DIR): Promise<string | undefined> {
  let realPath: string | undefined;
  try {
    const { loadPolicy } = await import('../policy/load.ts');
    realPath = loadPolicy(env).policy.runtime.realPath;
  } catch {
    realPath = undefined;
  }
  rememberPolicyRealPath(policyPathOf(env), realPath, dir);
  return realPath;
}
