/**
 * The docker commands that act on existing containers, and which of their
 * words name containers. Pure: argv in, container refs out.
 *
 * Each command's value flags come from docker/cli's
 * cli/command/container/*.go, as the union over the CLIs in use (20.10 and
 * 28); test/unit/owner-commands.test.ts checks the table against captured
 * `docker <cmd> --help` (test/fixtures/ownership/help-*) and against the
 * installed CLIs. Only value flags matter: a word after a boolean flag is a
 * positional. An unknown flag is read as boolean, so its next word is checked
 * as a container too: a gap in the table can refuse too much, never let a
 * container through unchecked.
 */
import type { GlobalScan } from '../docker-shim/globals.ts';

export type TargetRule =
  /** every positional is a container */
  | 'all'
  /** the first positional is a container (the rest: a command, a new name, a repo…) */
  | 'first'
  /** `docker cp`: CONTAINER:PATH in the source or the destination */
  | 'cp'
  /** top-level `docker inspect`: containers unless --type says another kind */
  | 'inspect';

export interface CommandSpec {
  /** Flags that take a value: "-t", "--time", … */
  values: readonly string[];
  targets: TargetRule;
  /** false: flags end at the first positional (exec, top: the rest is the command). */
  interspersed: boolean;
}

const spec = (targets: TargetRule, values: readonly string[] = [], interspersed = true): CommandSpec => ({ values, targets, interspersed });

const STOP = ['-s', '--signal', '-t', '--time', '--timeout'];
const UPDATE = [
  '--blkio-weight', '--cpu-period', '--cpu-quota', '--cpu-rt-period', '--cpu-rt-runtime', '-c', '--cpu-shares', '--cpus',
  '--cpuset-cpus', '--cpuset-mems', '--kernel-memory', '-m', '--memory', '--memory-reservation', '--memory-swap', '--pids-limit', '--restart',
];

/** Canonical command name (as under `docker container …`) → its grammar. */
export const GUARDED: Readonly<Record<string, CommandSpec>> = {
  stop: spec('all', STOP),
  kill: spec('all', ['-s', '--signal']),
  rm: spec('all'),
  exec: spec('first', ['--detach-keys', '-e', '--env', '--env-file', '-u', '--user', '-w', '--workdir'], false),
  attach: spec('first', ['--detach-keys']),
  logs: spec('first', ['--since', '-n', '--tail', '--until']),
  restart: spec('all', STOP),
  update: spec('all', UPDATE),
  commit: spec('first', ['-a', '--author', '-c', '--change', '-m', '--message']),
  cp: spec('cp'),
  rename: spec('first'),
  pause: spec('all'),
  unpause: spec('all'),
  start: spec('all', ['--checkpoint', '--checkpoint-dir', '--detach-keys']),
  wait: spec('all'),
  port: spec('first'),
  top: spec('first', [], false),
  stats: spec('all', ['--format']),
  export: spec('first', ['-o', '--output']),
  diff: spec('first'),
  inspect: spec('all', ['-f', '--format']),
};

/** Top-level `docker inspect` (any object type). */
export const TOP_INSPECT: CommandSpec = spec('inspect', ['-f', '--format', '--type']);
/** `docker ps` and `docker container ls|list|ps`. */
export const PS: CommandSpec = spec('all', ['-f', '--filter', '--format', '-n', '--last']);

export const CONTAINER_ALIASES: Readonly<Record<string, string>> = { remove: 'rm', ls: 'ps', list: 'ps' };

/** `prune`: `container prune` and `system prune` remove every user's stopped containers. */
export type Classified = { kind: 'containers'; name: string; spec: CommandSpec } | { kind: 'ps' } | { kind: 'prune'; scope: 'container' | 'system' } | { kind: 'other' };

/**
 * What a command is, from its subcommand words: `["stop"]`,
 * `["container", "stop"]`, `["inspect"]`, `["ps"]`, `["container", "ls"]`.
 */
export function classify(command: readonly string[]): Classified {
  const [first, second] = command;
  if (first === 'container') {
    const name = second === undefined ? undefined : (CONTAINER_ALIASES[second] ?? second);
    if (name === 'ps') return { kind: 'ps' };
    if (name === 'prune') return { kind: 'prune', scope: 'container' };
    if (name !== undefined && GUARDED[name]) return { kind: 'containers', name, spec: GUARDED[name]! };
    return { kind: 'other' };
  }
  if (first === 'system' && second === 'prune') return { kind: 'prune', scope: 'system' };
  if (first === 'ps') return { kind: 'ps' };
  if (first === 'inspect') return { kind: 'containers', name: 'inspect', spec: TOP_INSPECT };
  if (first !== undefined && first !== 'inspect' && GUARDED[first]) return { kind: 'containers', name: first, spec: GUARDED[first]! };
  return { kind: 'other' };
}

export interface ParsedFlag {
  name: string;
  value: string | undefined;
  /** Index of the first and one past the last argv word it used. */
  start: number;
  end: number;
  /** For a short-flag cluster (`-qf id=x`): the boolean letters before this flag in the same word. */
  clusterPrefix?: string;
}

export interface Scanned {
  positionals: string[];
  flags: ParsedFlag[];
  help: boolean;
}

/** pflag's grammar: `--f=v`, `--f v`, `-fv`, `-f=v`, `-f v`, clusters `-qf v`, `--` ends flags. */
export function scan(s: CommandSpec, args: readonly string[]): Scanned {
  const takesValue = new Set(s.values);
  const out: Scanned = { positionals: [], flags: [], help: false };
  let flagsDone = false;
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (flagsDone || a === '-' || !a.startsWith('-')) {
      out.positionals.push(a);
      if (!s.interspersed) flagsDone = true;
      continue;
    }
    if (a === '--') {
      flagsDone = true;
      continue;
    }
    if (a.startsWith('--')) {
      const eq = a.indexOf('=');
      const name = eq < 0 ? a : a.slice(0, eq);
      if (name === '--help') out.help = true;
      if (eq >= 0) out.flags.push({ name, value: a.slice(eq + 1), start: i, end: i + 1 });
      else if (takesValue.has(name)) {
        out.flags.push({ name, value: args[i + 1], start: i, end: Math.min(i + 2, args.length) });
        i++;
      } else out.flags.push({ name, value: undefined, start: i, end: i + 1 });
      continue;
    }
    // A short flag or a cluster of them.
    for (let j = 1; j < a.length; j++) {
      const name = `-${a[j]}`;
      if (name === '-h') out.help = true;
      if (!takesValue.has(name)) {
        out.flags.push({ name, value: undefined, start: i, end: i + 1, clusterPrefix: a.slice(1, j) });
        continue;
      }
      let rest = a.slice(j + 1);
      if (rest.startsWith('=')) rest = rest.slice(1);
      if (rest !== '' || a[j + 1] === '=') out.flags.push({ name, value: rest, start: i, end: i + 1, clusterPrefix: a.slice(1, j) });
      else {
        out.flags.push({ name, value: args[i + 1], start: i, end: Math.min(i + 2, args.length), clusterPrefix: a.slice(1, j) });
        i++;
      }
      break;
    }
  }
  return out;
}

/** The container refs a guarded command acts on, as typed (names, full or short ids). */
export function targetsOf(s: CommandSpec, args: readonly string[]): string[] {
  const scanned = scan(s, args);
  if (scanned.help) return [];
  const pos = scanned.positionals;
  switch (s.targets) {
    case 'all':
      return unique(pos);
    case 'first':
      return pos.length ? [pos[0]!] : [];
    case 'cp':
      return unique(pos.slice(0, 2).map(cpContainer).filter((c): c is string => c !== undefined));
    case 'inspect': {
      const type = scanned.flags.filter((f) => f.name === '--type').at(-1)?.value;
      return type && type !== 'container' ? [] : unique(pos);
    }
  }
}

/**
 * docker cp's rule (cp.go splitCpArg): an absolute path is local; otherwise
 * the part before the first ":" is a container, unless it starts with "."
 * (an explicit relative path such as ./file:name).
 */
export function cpContainer(arg: string): string | undefined {
  if (arg.startsWith('/')) return undefined;
  const colon = arg.indexOf(':');
  if (colon < 0) return undefined;
  const ctr = arg.slice(0, colon);
  return ctr.startsWith('.') ? undefined : ctr;
}

function unique(xs: string[]): string[] {
  return [...new Set(xs)];
}

/** `docker ps` filter values (`-f key=value`) with their position in argv. */
export function psFilters(args: readonly string[]): ParsedFlag[] {
  return scan(PS, args).flags.filter((f) => f.name === '-f' || f.name === '--filter');
}

/**
 * `docker ps` for someone who may see only their own containers: the user's
 * own `id` filters are replaced by the ids they own (among those the user's
 * id filters matched, when there were any); every other option stays. Filters
 * on different keys are ANDed by dockerd and values of one key ORed, so the
 * user's remaining filters (status, name, label …) can only narrow the list,
 * and --format, -q, -n, -a keep working.
 */
export function rewritePs(args: readonly string[], allowedIds: readonly string[]): string[] {
  const drop = psFilters(args).filter((f) => filterKey(f.value) === 'id');
  const out: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const f = drop.find((d) => d.start === i);
    if (!f) {
      out.push(args[i]!);
      continue;
    }
    if (f.clusterPrefix) out.push(`-${f.clusterPrefix}`);
    i = f.end - 1;
  }
  // No container of theirs: a filter that matches nothing (no id contains a "-").
  const ids = allowedIds.length ? allowedIds : ['gpuguard-none'];
  const added = ids.flatMap((id) => ['--filter', `id=${id}`]);
  // Put ours before a `--` or at the end; ps has no positionals, so the end is fine.
  return [...added, ...out];
}

export function filterKey(value: string | undefined): string | undefined {
  if (value === undefined) return undefined;
  const eq = value.indexOf('=');
  return eq < 0 ? value : value.slice(0, eq);
}

/** The values of the user's `id=` filters, if any. */
export function psIdFilters(args: readonly string[]): string[] {
  return psFilters(args)
    .filter((f) => filterKey(f.value) === 'id')
    .map((f) => f.value!.slice(3));
}

/** The shim's scan of the global options, as far as the guard needs it. */
export type ShimGlobals = Pick<GlobalScan, 'command' | 'commandIndex' | 'hosts' | 'context' | 'config' | 'error'>;

/** The subcommand words of a docker argv: ["stop"] or ["container", "stop"]; undefined when there is none. */
export function commandWords(args: readonly string[], g: ShimGlobals): { words: string[]; rest: number } | undefined {
  if (g.error || g.command === undefined) return undefined;
  // Command groups whose second word is the verb: `container stop`, `system prune`.
  if (g.command === 'container' || g.command === 'system') return { words: args.slice(g.commandIndex, g.commandIndex + 2), rest: g.commandIndex + 2 };
  return { words: [g.command], rest: g.commandIndex + 1 };
}

/**
 * For the shim, on every docker call: does this command need an ownership
 * check? Pure and cheap (this file imports nothing); only a yes loads the guard.
 */
export function isGuarded(args: readonly string[], g: ShimGlobals): boolean {
  const cw = commandWords(args, g);
  return cw !== undefined && classify(cw.words).kind !== 'other';
}
