/**
 * dpkg, read from its database files (what `dpkg -S` and
 * `dpkg-divert --list` read), so it works the same on the host and in a
 * `--root` tree; changes go through `dpkg-divert --root`.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { GpuguardError } from '../errors.ts';

const DIVERT_PACKAGE = 'gpuguard';

/** The package that ships `view` (a path inside root), or undefined when none does. */
export function owningPackage(root: string, view: string): string | undefined {
  const info = join(root, 'var/lib/dpkg/info');
  let files: string[];
  try {
    files = readdirSync(info).filter((f) => f.endsWith('.list'));
  } catch {
    return undefined;
  }
  for (const f of files) {
    const lines = readFileSync(join(info, f), 'utf8').split('\n');
    if (lines.includes(view)) return f.slice(0, -'.list'.length).replace(/:[a-z0-9]+$/, '');
  }
  return undefined;
}

export interface Diversion {
  from: string;
  to: string;
  package: string;
}

export function listDiversions(root: string): Diversion[] {
  const file = join(root, 'var/lib/dpkg/diversions');
  if (!existsSync(file)) return [];
  const lines = readFileSync(file, 'utf8').split('\n');
  const out: Diversion[] = [];
  for (let i = 0; i + 2 < lines.length && lines[i]; i += 3) out.push({ from: lines[i]!, to: lines[i + 1]!, package: lines[i + 2]! });
  return out;
}

export function divert(root: string, from: string, to: string): void {
  dpkgDivert(root, ['--package', DIVERT_PACKAGE, '--rename', '--divert', to, '--add', from]);
}

export function undivert(root: string, from: string, to: string): void {
  dpkgDivert(root, ['--package', DIVERT_PACKAGE, '--rename', '--divert', to, '--remove', from]);
}

function dpkgDivert(root: string, args: string[]): void {
  const argv = root === '/' ? args : ['--root', root, ...args];
  try {
    execFileSync('dpkg-divert', argv, { stdio: ['ignore', 'pipe', 'pipe'], encoding: 'utf8' });
  } catch (err) {
    const e = err as { stderr?: string; code?: string };
    if (e.code === 'ENOENT') throw new GpuguardError('dpkg-divert not found: this host has dpkg files but no dpkg tools; install dpkg', 1, { cause: err });
    throw new GpuguardError(`dpkg-divert ${argv.join(' ')} failed: ${(e.stderr ?? String(err)).trim().split('\n')[0]}`, 1, { cause: err });
  }
}
