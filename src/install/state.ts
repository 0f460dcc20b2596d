/**
 * The install record (<state-dir>/state.json): every change the installer
 * made, in order, so `--uninstall` can undo them in reverse and `doctor`
 * knows the layout.
 */
import { lstatSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { GpuguardError } from '../errors.ts';
import { STATE_FILE, type Loc } from './layout.ts';
import type { ApiState } from './api.ts';

export type Change =
  /** A file, symlink or directory that did not exist. */
  | { kind: 'created'; path: string; type: 'file' | 'symlink' | 'dir'; /** for a file an admin may edit (the policy): what we wrote */ sha256?: string }
  /** A file rewritten in place; the original is hard-linked at `backup`. `sha256` is what we wrote last. */
  | { kind: 'replaced'; path: string; backup: string; sha256: string; what: 'daemon.json' | 'policy'; unmerge?: boolean }
  /** An unpackaged file renamed aside, our symlink put in its place. */
  | { kind: 'moved'; path: string; to: string }
  /** A packaged file diverted with dpkg-divert --rename, our symlink put in its place. */
  | { kind: 'diverted'; path: string; view: string; to: string; toView: string; package: string }
  /** A systemd unit started (`systemctl start`): stopped on uninstall, before its files go. */
  | { kind: 'started'; unit: string };

export interface InstallState {
  version: 1;
  root: string;
  lib: Loc;
  binDirs: Loc[];
  policy: Loc;
  daemonJson: Loc;
  eventsLog: Loc;
  concourse?: Loc;
  dockerdPid?: string;
  /** The real docker CLI (view path), also written to the policy's docker.realPath. */
  realDocker?: string;
  realCompose?: string;
  /** Runtime name → real runtime (view path), as remembered by the `.real` links. */
  runtimes: Record<string, string>;
  /** daemon.json before: its default runtime and whether it had a runtimes key. */
  previousDefaultRuntime?: string;
  hadRuntimes?: boolean;
  /** Paths given explicitly (used as they are, not under root): their view is their host path. */
  explicit?: string[];
  /** API mode (install.sh --api): where the face and dockerd listen, and how dockerd was moved. */
  api?: ApiState;
  /** Directories created to hold state.json itself, removed last. */
  stateDirsCreated: string[];
  changes: Change[];
}

/** A view path (as written in files) as this process sees it. */
export function hostPath(state: Pick<InstallState, 'root' | 'explicit'>, view: string): string {
  if (state.root === '/') return view;
  for (const e of state.explicit ?? []) if (view === e || view.startsWith(`${e}/`)) return view;
  // Read out of an explicitly named file (a private daemon's daemon.json): already a path here.
  if (view.startsWith(`${state.root.replace(/\/$/, '')}/`)) return view;
  return join(state.root, view);
}

export function statePath(stateDir: Loc): string {
  return join(stateDir.host, STATE_FILE);
}

export function readState(stateDir: Loc): InstallState | undefined {
  let text: string;
  try {
    text = readFileSync(statePath(stateDir), 'utf8');
  } catch {
    return undefined;
  }
  try {
    return JSON.parse(text) as InstallState;
  } catch (err) {
    throw new GpuguardError(`${statePath(stateDir)}: not valid JSON; it records what install.sh changed: restore it from a backup, or remove it to start over`, 1, { cause: err });
  }
}

/** Whether anything (a dangling symlink too) is at `p`. */
export function lexists(p: string): boolean {
  try {
    lstatSync(p);
    return true;
  } catch {
    return false;
  }
}
