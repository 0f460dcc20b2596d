/**
 * The docker CLI's global options (before the subcommand) and the
 * subcommand itself. Dependency-free and cheap: every docker call the shim
 * sees goes through this before it is passed on.
 *
 * Other faces plug in here: the ownership guards for `docker stop/exec/…`
 * read `command`/`args` from {@link scanGlobals}.
 */
import { makeTable, scanFlags, type FlagOccurrence } from './pflag.ts';

/** docker/cli cli/flags/options.go: these take values; -D, --tls, --tlsverify, -v, -h do not. */
export const GLOBAL_FLAG_SPECS: Readonly<Record<string, { short?: string; takesValue: boolean }>> = {
  config: { takesValue: true },
  context: { short: 'c', takesValue: true },
  host: { short: 'H', takesValue: true },
  'log-level': { short: 'l', takesValue: true },
  tlscacert: { takesValue: true },
  tlscert: { takesValue: true },
  tlskey: { takesValue: true },
  debug: { short: 'D', takesValue: false },
  tls: { takesValue: false },
  tlsverify: { takesValue: false },
  version: { short: 'v', takesValue: false },
  help: { short: 'h', takesValue: false },
};
export const GLOBAL_FLAGS = makeTable(GLOBAL_FLAG_SPECS);

export interface GlobalScan {
  /** Global options as written, with positions. */
  options: FlagOccurrence[];
  /** The subcommand word (`run`, `container`, `ps`, `compose`, …), if any. */
  command?: string;
  /** Its index in argv (argv.length when none). */
  commandIndex: number;
  /** `-H/--host` values, in order. */
  hosts: string[];
  /** `-c/--context`, the last one. */
  context?: string;
  /** `--config`, the last one. */
  config?: string;
  /** Set when docker would reject the global options itself. */
  error?: string;
}

export function scanGlobals(argv: readonly string[]): GlobalScan {
  const s = scanFlags(argv, 0, GLOBAL_FLAGS);
  const last = (name: string) => s.flags.filter((f) => f.name === name).at(-1)?.value;
  return {
    options: s.flags,
    command: argv[s.positional],
    commandIndex: s.positional,
    hosts: s.flags.filter((f) => f.name === 'host' && f.value !== undefined).map((f) => f.value!),
    context: last('context'),
    config: last('config'),
    ...(s.error ? { error: s.error } : {}),
  };
}

export type CreateKind = 'run' | 'create';

/** What the shim decides before anything is created: a container (run/create), or a volume (its driver options can bind host paths). */
export type ShimCreate = { kind: CreateKind; flagsFrom: number } | { kind: 'volume-create'; flagsFrom: number };

/**
 * `run`/`create`, `container run`/`container create`, or `volume create`:
 * which, and the index where its own flags begin. Undefined for every other
 * command.
 */
export function createCommand(argv: readonly string[], g: GlobalScan): ShimCreate | undefined {
  if (g.error || g.command === undefined) return undefined;
  if (g.command === 'run' || g.command === 'create') return { kind: g.command, flagsFrom: g.commandIndex + 1 };
  if (g.command === 'container') {
    const sub = argv[g.commandIndex + 1];
    if (sub === 'run' || sub === 'create') return { kind: sub, flagsFrom: g.commandIndex + 2 };
  }
  if (g.command === 'volume' && argv[g.commandIndex + 1] === 'create') return { kind: 'volume-create', flagsFrom: g.commandIndex + 2 };
  return undefined;
}

/** docker's management commands whose second word is the verb: `container stop`, `image rm`, … */
export const MANAGEMENT: ReadonlySet<string> = new Set(['builder', 'checkpoint', 'config', 'container', 'context', 'image', 'manifest', 'network', 'node', 'plugin', 'secret', 'service', 'stack', 'swarm', 'system', 'trust', 'volume']);

/**
 * The command as a verb, management prefix folded: `docker container stop x`
 * and `docker stop x` are both {group: 'container', verb: 'stop'}; `argsFrom`
 * is where the verb's own flags and arguments begin. The ownership guards
 * (src/ownership) plug in on this: `verb` in stop/kill/rm/exec/… with the
 * container names after `argsFrom`.
 */
export function resolveCommand(argv: readonly string[], g: GlobalScan): { group?: string; verb: string; argsFrom: number } | undefined {
  if (g.error || g.command === undefined) return undefined;
  if (MANAGEMENT.has(g.command)) {
    const verb = argv[g.commandIndex + 1];
    if (verb === undefined || verb.startsWith('-')) return { group: g.command, verb: '', argsFrom: g.commandIndex + 1 };
    return { group: g.command, verb, argsFrom: g.commandIndex + 2 };
  }
  return { verb: g.command, argsFrom: g.commandIndex + 1 };
}

/**
 * Whether a command goes to a daemon on this host, following the docker
 * CLI's own order (cli/command/cli.go resolveContextName): --context, else
 * -H (the default context), else DOCKER_HOST, else DOCKER_CONTEXT, else the
 * config file's currentContext. Local means a unix socket (or no host at
 * all: the default socket). `readCurrentContext` is only called when the
 * config file decides.
 */
export interface LocalTarget {
  local: boolean;
  why: string;
  /** The unix socket the command goes to, when it is one (for asking the Engine API directly). */
  socket?: string;
}

export const DEFAULT_SOCKET = '/var/run/docker.sock';

export function targetsLocalDaemon(g: GlobalScan, env: NodeJS.ProcessEnv, readCurrentContext: () => string | undefined): LocalTarget {
  const unix = (h: string) => (h.startsWith('unix://') ? h.slice('unix://'.length) : h);
  if (g.context !== undefined) return g.context === 'default' ? defaultTarget('context default', env) : { local: false, why: `--context ${g.context}` };
  if (g.hosts.length) {
    const remote = g.hosts.find((h) => !isUnixHost(h));
    return remote ? { local: false, why: `-H ${remote}` } : { local: true, why: `-H ${g.hosts.join(',')}`, socket: unix(g.hosts.at(-1)!) };
  }
  if (env.DOCKER_HOST) return isUnixHost(env.DOCKER_HOST) ? { local: true, why: `DOCKER_HOST=${env.DOCKER_HOST}`, socket: unix(env.DOCKER_HOST) } : { local: false, why: `DOCKER_HOST=${env.DOCKER_HOST}` };
  if (env.DOCKER_CONTEXT) return env.DOCKER_CONTEXT === 'default' ? { local: true, why: 'DOCKER_CONTEXT=default', socket: DEFAULT_SOCKET } : { local: false, why: `DOCKER_CONTEXT=${env.DOCKER_CONTEXT}` };
  const current = readCurrentContext();
  if (current && current !== 'default') return { local: false, why: `current context ${current} (docker context use)` };
  return { local: true, why: 'the default socket', socket: DEFAULT_SOCKET };
}

/** The default context: DOCKER_HOST if set, else the default socket. */
function defaultTarget(why: string, env: NodeJS.ProcessEnv): LocalTarget {
  if (env.DOCKER_HOST && !isUnixHost(env.DOCKER_HOST)) return { local: false, why: `${why}, DOCKER_HOST=${env.DOCKER_HOST}` };
  const socket = env.DOCKER_HOST ? env.DOCKER_HOST.replace(/^unix:\/\//, '') : DEFAULT_SOCKET;
  return { local: true, why, socket };
}

export function isUnixHost(host: string): boolean {
  return host.startsWith('unix://') || host.startsWith('/');
}
