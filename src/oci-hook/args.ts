/**
 * runc's command line, as containerd's shim (and dockerd, ctr, Concourse)
 * sends it: global options, then a subcommand with its own options, then
 * the container id. Pure: argv (and the working directory, which is the
 * default bundle) in, a description out. Nothing here decides anything.
 *
 * runc uses urfave/cli v1 over Go's flag package, so every option may be
 * written `--name`, `-name`, `--name=value` or `--name value`, and option
 * parsing stops at the first positional word or at `--`.
 *
 *   runc --root /run/containerd/runc/concourse --log B/log.json --log-format json \
 *        create --bundle B --pid-file B/init.pid t1
 */
import { isAbsolute, resolve } from 'node:path';

export interface RuncGlobals {
  root?: string;
  log?: string;
  logFormat?: string;
  systemdCgroup: boolean;
  debug: boolean;
  rootless?: string;
  criu?: string;
}

export interface RuncCall {
  globals: RuncGlobals;
  /** The subcommand (`create`, `start`, …), or undefined for `--version`, `--help` or nothing. */
  command: string | undefined;
  /** `create` and `run`: the absolute bundle directory (`--bundle`/`-b`, default the working directory). */
  bundle?: string;
  /** The container id (first positional word after the subcommand's options). */
  id?: string;
  /** `--preserve-fds N` (create, run, exec): descriptors 3 … 2+N are handed to the container. */
  preserveFds: number;
  pidFile?: string;
  consoleSocket?: string;
}

/** Global options that take a value (runc main.go); `--debug`, `--systemd-cgroup`, `--version`, `--help` take none. */
export const GLOBAL_VALUE: ReadonlySet<string> = new Set(['root', 'log', 'log-format', 'rootless', 'criu']);

/** Value options of the subcommands we read (create, run, exec); every other option is boolean for our purpose. */
const COMMAND_VALUE: Record<string, ReadonlySet<string>> = {
  create: new Set(['bundle', 'b', 'console-socket', 'pid-file', 'preserve-fds']),
  run: new Set(['bundle', 'b', 'console-socket', 'pid-file', 'preserve-fds']),
  exec: new Set([
    'console-socket', 'cwd', 'env', 'e', 'user', 'u', 'additional-gids', 'g', 'process', 'p', 'process-label',
    'apparmor', 'pid-file', 'cap', 'c', 'preserve-fds', 'cgroup',
  ]),
};

/** Subcommands whose config.json the wrapper edits. */
export const EDITED_COMMANDS: ReadonlySet<string> = new Set(['create', 'run']);

/** Whether the wrapper edits this call's bundle (every other call is handed over at once). */
export function isEdited(call: Pick<RuncCall, 'command'>): boolean {
  return call.command !== undefined && EDITED_COMMANDS.has(call.command);
}

interface Flag {
  name: string;
  inline: string | undefined;
}

function asFlag(word: string): Flag | undefined {
  if (word.length < 2 || word[0] !== '-' || word === '--') return undefined;
  const body = word.startsWith('--') ? word.slice(2) : word.slice(1);
  const eq = body.indexOf('=');
  return eq < 0 ? { name: body, inline: undefined } : { name: body.slice(0, eq), inline: body.slice(eq + 1) };
}

export function parseRuncArgs(args: readonly string[], cwd: string): RuncCall {
  const globals: RuncGlobals = { systemdCgroup: false, debug: false };
  let i = 0;
  for (; i < args.length; i++) {
    const word = args[i]!;
    if (word === '--') {
      i++;
      break;
    }
    const flag = asFlag(word);
    if (!flag) break;
    let value: string | undefined;
    // An option not in either set (a newer runc's) is taken as boolean: we only need to find the subcommand.
    if (GLOBAL_VALUE.has(flag.name)) value = flag.inline ?? args[++i];
    switch (flag.name) {
      case 'root':
        globals.root = value;
        break;
      case 'log':
        globals.log = value;
        break;
      case 'log-format':
        globals.logFormat = value;
        break;
      case 'rootless':
        globals.rootless = value;
        break;
      case 'criu':
        globals.criu = value;
        break;
      case 'systemd-cgroup':
        globals.systemdCgroup = flag.inline === undefined || flag.inline === 'true';
        break;
      case 'debug':
        globals.debug = flag.inline === undefined || flag.inline === 'true';
        break;
    }
  }
  const command = args[i];
  const call: RuncCall = { globals, command, preserveFds: 0 };
  if (command === undefined) return call;
  const valueFlags = COMMAND_VALUE[command];
  let bundle: string | undefined;
  for (i++; i < args.length; i++) {
    const word = args[i]!;
    if (word === '--') {
      i++;
      break;
    }
    const flag = asFlag(word);
    if (!flag) break;
    if (!valueFlags?.has(flag.name)) continue;
    const value = flag.inline ?? args[++i];
    switch (flag.name) {
      case 'bundle':
      case 'b':
        bundle = value;
        break;
      case 'pid-file':
        call.pidFile = value;
        break;
      case 'console-socket':
        call.consoleSocket = value;
        break;
      case 'preserve-fds': {
        const n = Number(value);
        call.preserveFds = Number.isInteger(n) && n > 0 ? n : 0;
        break;
      }
    }
  }
  call.id = args[i];
  if (EDITED_COMMANDS.has(command)) call.bundle = bundle === undefined || bundle === '' ? cwd : isAbsolute(bundle) ? bundle : resolve(cwd, bundle);
  return call;
}

/**
 * Descriptors above stdio that the real runtime must receive: `--preserve-fds N`
 * and systemd socket activation's `LISTEN_FDS N` both mean 3 … 2+N.
 */
export function descriptorsToKeep(call: RuncCall, env: NodeJS.ProcessEnv): number[] {
  const listen = Number(env.LISTEN_FDS ?? 0);
  const n = Math.max(call.preserveFds, Number.isInteger(listen) && listen > 0 ? listen : 0);
  return Array.from({ length: Math.min(n, 4096) }, (_, k) => 3 + k);
}
