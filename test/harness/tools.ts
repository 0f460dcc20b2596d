/**
 * Finding the real components the tests run against, and the rule for a
 * missing one: outside CI the test skips, loudly; in CI (CI=true) it fails
 * and says what is missing.
 */
import { accessSync, constants, existsSync, symlinkSync } from 'node:fs';
import { delimiter, join, resolve } from 'node:path';
import type { TestContext } from 'node:test';

export const ROOT = resolve(import.meta.dirname, '../..');
export const BINARY = join(ROOT, 'dist/gpuguard');
/** The native front (src/front/front.c), built beside BINARY: what is installed under the face names. */
export const FRONT = join(ROOT, 'dist/gpuguard-front');
export const FIXTURES = join(ROOT, 'test/fixtures');
export const IN_CI = process.env.CI === 'true' || process.env.CI === '1';
export const IS_ROOT = process.getuid?.() === 0;

export function which(cmd: string, path = process.env.PATH ?? ''): string | undefined {
  for (const dir of path.split(delimiter)) {
    const p = join(dir, cmd);
    try {
      accessSync(p, constants.X_OK);
      return p;
    } catch {
      /* next */
    }
  }
  return undefined;
}

/** Debian's docker CLI (20.10), the one the harness's dockerd matches; else any docker. */
export function realDockerCli(): string | undefined {
  return existsSync('/usr/bin/docker') ? '/usr/bin/docker' : which('docker');
}

/**
 * Returns a reason when the test cannot run here, after skipping (outside CI)
 * or failing (CI). Use: `if (missing(t, ...)) return;`
 */
export function missing(t: TestContext, needs: { root?: boolean; commands?: string[]; files?: string[] }): boolean {
  const lacking: string[] = [];
  if (needs.root && !IS_ROOT) lacking.push('root (run the suite with sudo)');
  for (const c of needs.commands ?? []) if (!which(c)) lacking.push(`command ${c}`);
  for (const f of needs.files ?? []) if (!existsSync(f)) lacking.push(`file ${f}`);
  if (!lacking.length) return false;
  const message = `MISSING ${lacking.join(', ')}: run bash test/setup.sh as root`;
  if (IN_CI) throw new Error(`${message} (CI does not skip)`);
  console.error(`\n*** SKIPPED ${t.name}: ${message} ***\n`);
  t.skip(message);
  return true;
}

/**
 * Put a gpuguard face into `dir` under `name` (docker, docker-compose,
 * gpuguard-runc, runc) and return its path. Every test that runs a face
 * places it through here, so what is installed under those names on a host
 * is what the tests run: the native front, which starts BINARY (beside it)
 * for the calls that need a decision and execs the real tool for the rest.
 */
export function installFace(dir: string, name: 'docker' | 'docker-compose' | 'gpuguard-runc' | 'runc'): string {
  const path = join(dir, name);
  if (!existsSync(FRONT)) throw new Error(`${FRONT} is missing: run npm run build (it builds the native front with cc)`);
  symlinkSync(FRONT, path);
  return path;
}
