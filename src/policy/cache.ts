/**
 * The policy without parsing YAML or running zod on every container.
 * Measured in the compiled binary (Bun 1.4.5, this 2-core VM): importing the
 * schema module and the first zod parse cost 15–100 ms (zod builds its
 * validators on first use), against well under 1 ms for JSON.parse of the
 * validated result. So whenever root loads a policy file that changed (the
 * runtime wrapper on `create`, the shim or admin CLI run as root), it stores
 * the validated policy as JSON in POLICY_CACHE_DIR (tmpfs), keyed by the
 * file's path, inode, size and mtime; every face then reads that, the docker
 * shim too, as whichever user it runs. The policy file is world-readable
 * (the shim reads it as the user), so the entry hides nothing; it is trusted
 * only where root owns it and its directory and nobody else can write
 * either, so no user can hand another face a policy of their own.
 */
import { closeSync, fsyncSync, lstatSync, mkdirSync, openSync, readFileSync, renameSync, statSync, unlinkSync, writeSync, constants } from 'node:fs';
import { dirname } from 'node:path';
import type { LoadedPolicy } from './load.ts';
import type { Policy } from './schema.ts';

/** Root's alone to write, everyone's to read. */
export const POLICY_CACHE_DIR = '/run/gpuguard-policy';

export function policyPathOf(env: NodeJS.ProcessEnv): string {
  return env.GPUGUARD_POLICY || '/etc/gpuguard/policy.yaml';
}

/** A short stable name for a path (FNV-1a). */
export function fnv1a(s: string): string {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h.toString(16).padStart(8, '0');
}

interface Stamp {
  present: boolean;
  ino: number;
  size: number;
  mtimeMs: number;
}

interface PolicyCacheEntry extends Stamp {
  path: string;
  /** Whether the file was named by GPUGUARD_POLICY (a missing one is then an error, not the built-in policy). */
  explicit: boolean;
  policy: Policy;
}

function stampOf(path: string): Stamp {
  try {
    const st = statSync(path);
    return { present: true, ino: st.ino, size: st.size, mtimeMs: st.mtimeMs };
  } catch {
    return { present: false, ino: 0, size: 0, mtimeMs: 0 };
  }
}

function entryFile(path: string, dir: string): string {
  return `${dir}/policy-${fnv1a(path)}.json`;
}

function rootOnlyWritable(path: string, kind: 'file' | 'dir'): boolean {
  try {
    const st = lstatSync(path);
    return (kind === 'file' ? st.isFile() : st.isDirectory()) && st.uid === 0 && (st.mode & 0o022) === 0;
  } catch {
    return false;
  }
}

function trusted(file: string): boolean {
  return rootOnlyWritable(file, 'file') && rootOnlyWritable(dirname(file), 'dir');
}

function readEntry(file: string, path: string, explicit: boolean, stamp: Stamp): Policy | undefined {
  if (!trusted(file)) return undefined;
  try {
    const e = JSON.parse(readFileSync(file, 'utf8')) as PolicyCacheEntry;
    const fresh =
      e.path === path && e.explicit === explicit && e.present === stamp.present && e.ino === stamp.ino && e.size === stamp.size && e.mtimeMs === stamp.mtimeMs;
    return fresh ? e.policy : undefined;
  } catch {
    return undefined;
  }
}

function writeEntry(file: string, entry: PolicyCacheEntry, dir: string): void {
  if (process.getuid?.() !== 0) return;
  const tmp = `${file}.${process.pid}.tmp`;
  let fd: number | undefined;
  try {
    mkdirSync(dir, { recursive: true, mode: 0o755 });
    fd = openSync(tmp, constants.O_WRONLY | constants.O_CREAT | constants.O_TRUNC, 0o644);
    writeSync(fd, JSON.stringify(entry));
    fsyncSync(fd);
    closeSync(fd);
    fd = undefined;
    renameSync(tmp, file);
  } catch {
    if (fd !== undefined) closeSync(fd);
    try {
      unlinkSync(tmp);
    } catch {
      /* never made */
    }
  }
}

/** Like loadPolicy(env) (same errors on a miss), from the cache when the file has not changed. */
export async function loadPolicyCached(env: NodeJS.ProcessEnv, dir = POLICY_CACHE_DIR): Promise<LoadedPolicy> {
  const path = policyPathOf(env);
  const explicit = !!env.GPUGUARD_POLICY;
  const before = stampOf(path);
  const file = entryFile(path, dir);
  const cached = readEntry(file, path, explicit, before);
  if (cached) return { policy: cached, path: before.present ? path : undefined };
  const { loadPolicy } = await import('./load.ts');
  const loaded = loadPolicy(env);
  // Cache only what we know matches the file: unchanged while we read it.
  const after = stampOf(path);
  if (JSON.stringify(before) === JSON.stringify(after)) writeEntry(file, { ...after, path, explicit, policy: loaded.policy }, dir);
  return loaded;
}
