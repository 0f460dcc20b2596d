/**
 * Where the installer reads and writes. Every location has two faces: `host`,
 * the path this process touches, and `view`, the path written into files
 * (symlink targets, daemon.json, the policy), as the installed system will
 * see it. With `--root DIR` the defaults live under DIR and are written
 * without it (a packager's tree, or a test's fixture tree); a path given
 * explicitly on the command line is used as it is for both.
 */
import { join } from 'node:path';
import { UsageError } from '../errors.ts';

export interface Loc {
  host: string;
  view: string;
}

export interface InstallOptions {
  root: string;
  dryRun: boolean;
  uninstall: boolean;
  lib: Loc;
  /** Directories whose `docker`/`docker-compose` are taken over, in PATH order. */
  binDirs: Loc[];
  stateDir: Loc;
  policy: Loc;
  daemonJson: Loc;
  /** The event log named in a policy the installer writes. */
  eventsLog: Loc;
  /** Concourse's bin dir, when `--concourse` was given. */
  concourse?: Loc;
  /** A pidfile of dockerd to SIGHUP instead of asking systemd or /var/run/docker.pid. */
  dockerdPid?: string;
  /** The real OCI runtime for the `gpuguard` runtime when daemon.json names no default (else runc on PATH). */
  realRuntime?: Loc;
  /** The binary to install (default: this one). */
  binary: string;
  reload: boolean;
  compose: boolean;
  /** `--restrict-host-gpu GROUP`: /dev/nvidia* for root and this group only (modprobe.d). */
  restrictHostGpu?: string;
  /** API mode: dockerd behind `gpuguard serve` (src/install/api.ts). */
  api: boolean;
}

export const DEFAULTS = {
  lib: '/usr/local/lib/gpuguard',
  binDirs: ['/usr/local/sbin', '/usr/local/bin', '/usr/sbin', '/usr/bin', '/sbin', '/bin'],
  stateDir: '/var/lib/gpuguard',
  policy: '/etc/gpuguard/policy.yaml',
  daemonJson: '/etc/docker/daemon.json',
  eventsLog: '/var/log/gpuguard/events.jsonl',
  concourse: '/opt/concourse/bin',
  dockerdPid: '/var/run/docker.pid',
};

/** The name the wrapper is registered under in daemon.json. */
export const RUNTIME_NAME = 'gpuguard';
export const STATE_FILE = 'state.json';

export function underRoot(root: string, view: string): Loc {
  return { host: root === '/' ? view : join(root, view), view };
}

export function explicitLoc(path: string): Loc {
  if (!path.startsWith('/')) throw new UsageError(`expected an absolute path, got "${path}"`);
  return { host: path, view: path };
}

export const INSTALL_USAGE = `usage: install.sh [--dry-run] [--uninstall] [--api] [--concourse [DIR]] [--root DIR]
       [--lib-dir DIR] [--bin-dir DIR]… [--state-dir DIR] [--policy FILE]
       [--daemon-json FILE] [--dockerd-pid FILE] [--events-log FILE]
       [--real-runtime PATH] [--binary PATH] [--no-reload] [--no-compose]
       [--restrict-host-gpu GROUP]`;

export function parseInstallArgs(args: string[], self: string = process.execPath): InstallOptions {
  let root = '/';
  const explicit: Record<string, string> = {};
  const binDirs: string[] = [];
  let dryRun = false;
  let uninstall = false;
  let concourse: string | undefined;
  let reload = true;
  let compose = true;
  let api = false;
  const valueFlags = new Set(['--root', '--prefix', '--lib-dir', '--bin-dir', '--state-dir', '--policy', '--daemon-json', '--dockerd-pid', '--events-log', '--real-runtime', '--binary', '--restrict-host-gpu']);
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    const eq = arg.indexOf('=');
    const [flag, inline] = arg.startsWith('--') && eq > 0 ? [arg.slice(0, eq), arg.slice(eq + 1)] : [arg, undefined];
    if (valueFlags.has(flag)) {
      const value = inline ?? args[++i];
      if (value === undefined || value === '') throw new UsageError(`${flag} needs a value\n${INSTALL_USAGE}`);
      if (flag === '--root' || flag === '--prefix') root = value;
      else if (flag === '--bin-dir') binDirs.push(value);
      else explicit[flag] = value;
      continue;
    }
    switch (flag) {
      case '--dry-run':
      case '-n':
        dryRun = true;
        break;
      case '--uninstall':
        uninstall = true;
        break;
      case '--no-reload':
        reload = false;
        break;
      case '--no-compose':
        compose = false;
        break;
      case '--api':
        api = true;
        break;
      case '--concourse': {
        const next = inline ?? (args[i + 1] !== undefined && !args[i + 1]!.startsWith('-') ? args[++i] : undefined);
        concourse = next ?? DEFAULTS.concourse;
        break;
      }
      case '--help':
      case '-h':
        throw new UsageError(INSTALL_USAGE, 0);
      default:
        throw new UsageError(`unknown option "${arg}"\n${INSTALL_USAGE}`);
    }
  }
  if (!root.startsWith('/')) throw new UsageError(`--root needs an absolute path, got "${root}"`);
  const pick = (flag: string, def: string) => (explicit[flag] ? explicitLoc(explicit[flag]!) : underRoot(root, def));
  return {
    root,
    dryRun,
    uninstall,
    lib: pick('--lib-dir', DEFAULTS.lib),
    binDirs: binDirs.length ? binDirs.map(explicitLoc) : DEFAULTS.binDirs.map((d) => underRoot(root, d)),
    stateDir: pick('--state-dir', DEFAULTS.stateDir),
    policy: pick('--policy', DEFAULTS.policy),
    daemonJson: pick('--daemon-json', DEFAULTS.daemonJson),
    eventsLog: pick('--events-log', DEFAULTS.eventsLog),
    concourse: concourse === undefined ? undefined : underRoot(root, concourse.startsWith('/') ? concourse : `/${concourse}`),
    dockerdPid: explicit['--dockerd-pid'] ?? (root === '/' ? DEFAULTS.dockerdPid : undefined),
    realRuntime: explicit['--real-runtime'] ? explicitLoc(explicit['--real-runtime']) : undefined,
    binary: explicit['--binary'] ?? self,
    reload,
    compose,
    ...(explicit['--restrict-host-gpu'] ? { restrictHostGpu: explicit['--restrict-host-gpu'] } : {}),
    api,
  };
}
