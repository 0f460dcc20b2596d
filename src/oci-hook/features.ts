/**
 * Does recursive read-only (`rro`) work here? It needs the runtime to know
 * the option (runc ≥ 1.1) and the kernel to have mount_setattr(2) with
 * AT_RECURSIVE (Linux ≥ 5.12); runc 1.1 asks the kernel only when mounting,
 * so a container with `rro` on an older kernel fails to start.
 *
 * Runtime side: `runc features` (experimental since 1.1; this host's 1.1.5
 * has it) lists the mount options the runtime understands; `rro` among them
 * means supported. A runc without `features` (≤ 1.0) does not know `rro`
 * either, so "no features output" soundly means "no rro". Its output does
 * not depend on the kernel, so the kernel is checked from uname. The answer
 * is cached per runtime binary (path, inode, size, mtime) in CACHE_DIR,
 * so only the first create after a runc upgrade pays the ~10 ms of `features`.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { release } from 'node:os';
import { join } from 'node:path';
import { CACHE_DIR } from './real-runtime.ts';
import { fnv1a } from '../policy/cache.ts';

export function kernelSupportsRro(kernelRelease: string = release()): boolean {
  const m = /^(\d+)\.(\d+)/.exec(kernelRelease);
  if (!m) return false;
  const [major, minor] = [Number(m[1]), Number(m[2])];
  return major > 5 || (major === 5 && minor >= 12);
}

/** `features` output names `rro` among its mount options. */
export function featuresListRro(output: string): boolean {
  try {
    const parsed = JSON.parse(output) as { mountOptions?: unknown };
    return Array.isArray(parsed.mountOptions) && parsed.mountOptions.includes('rro');
  } catch {
    return false;
  }
}

interface FeaturesCache {
  runtime: string;
  ino: number;
  size: number;
  mtimeMs: number;
  rro: boolean;
}

export function runtimeSupportsRro(runtime: string, dir = CACHE_DIR): boolean {
  let st;
  try {
    st = statSync(runtime);
  } catch {
    return false;
  }
  const file = join(dir, `features-${fnv1a(runtime)}.json`);
  try {
    const c = JSON.parse(readFileSync(file, 'utf8')) as FeaturesCache;
    if (c.runtime === runtime && c.ino === st.ino && c.size === st.size && c.mtimeMs === st.mtimeMs) return c.rro;
  } catch {
    /* miss */
  }
  const r = spawnSync(runtime, ['features'], { encoding: 'utf8', timeout: 5000, stdio: ['ignore', 'pipe', 'ignore'] });
  const rro = r.status === 0 && featuresListRro(r.stdout);
  try {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const entry: FeaturesCache = { runtime, ino: st.ino, size: st.size, mtimeMs: st.mtimeMs, rro };
    writeFileSync(`${file}.${process.pid}.tmp`, JSON.stringify(entry));
    renameSync(`${file}.${process.pid}.tmp`, file);
  } catch {
    /* uncached: asked again next time */
  }
  return rro;
}

export function rroAvailable(runtime: string): boolean {
  return kernelSupportsRro() && runtimeSupportsRro(runtime);
}
