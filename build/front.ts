/**
 * The native front (src/front/front.c): generate its tables from the
 * TypeScript definitions the faces use, then compile it with the system's C
 * compiler into dist/gpuguard-front, beside dist/gpuguard. Run by
 * `npm run build`.
 *
 * The docker table is found by asking src/front/routes.ts `dockerRoute`
 * itself, word by word, over the docker CLI's whole vocabulary
 * (build/docker-words.txt) and the words of the shim's own tables: which
 * first words route to gpuguard, which look at a second word (`container
 * stop`, `system prune`), and what an unknown word does. The build then
 * checks that this word table answers exactly as dockerRoute for every
 * probed command with a set of flags and words after it, and stops when it
 * does not (the route must not depend on a command's own flags: see
 * routes.ts).
 *
 *   tsx build/front.ts [--out DIR]     (CC picks the compiler; default cc)
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { VALUE_OPTIONS, CREATING_COMMANDS } from '../src/compose/argv.ts';
import { GLOBAL_FLAG_SPECS, MANAGEMENT } from '../src/docker-shim/globals.ts';
import { FRONT_MARKER, FRONT_MAX_BYTES, FRONT_NAME, GPUGUARD_NAME } from '../src/front/identity.ts';
import { COMPOSE_COMMAND, dockerRoute, type Route } from '../src/front/routes.ts';
import { EDITED_COMMANDS, GLOBAL_VALUE } from '../src/oci-hook/args.ts';
import { CACHE_DIR, DEFAULT_RUNTIME_PATH } from '../src/oci-hook/real-runtime.ts';
import { CONTAINER_ALIASES, GUARDED } from '../src/ownership/commands.ts';
import { DEFAULT_POLICY_PATH } from '../src/policy/load.ts';
import { DEFAULT_DECIDER_SOCKET, FRONT_CONNECT_SECONDS, FRONT_WAIT_SECONDS } from '../src/decider/protocol.ts';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');

/** A word no docker CLI knows: what the shim does with an unknown command. */
const UNKNOWN = 'gpuguard-front-unknown-word';

export function vocabulary(): string[] {
  const listed = readFileSync(join(root, 'build/docker-words.txt'), 'utf8')
    .split('\n')
    .filter((l) => !l.startsWith('#'))
    .join(' ')
    .split(/\s+/)
    .filter(Boolean);
  const fromTables = [
    ...Object.keys(GUARDED),
    ...Object.keys(CONTAINER_ALIASES),
    ...Object.values(CONTAINER_ALIASES),
    ...MANAGEMENT,
    ...CREATING_COMMANDS,
    ...EDITED_COMMANDS,
    COMPOSE_COMMAND,
  ];
  return [...new Set([...listed, ...fromTables])].sort();
}

export interface FirstWord {
  /** The route for the word alone (or, without a second-word table, whatever follows). */
  route: Route;
  /** Command groups: the route by the second word, and for any other second word. */
  second?: { otherwise: Route; words: Map<string, Route> };
}

export interface DockerTable {
  /** Any first word not in `first`. */
  otherwise: Route;
  first: Map<string, FirstWord>;
}

/** Second words that are not words: flags, `--`, nothing. */
const ODD_SECOND = ['-a', '--all', '-h', '--help', '--', '-', ''];

export function dockerTable(words: readonly string[]): DockerTable {
  const otherwise = dockerRoute([UNKNOWN]);
  const first = new Map<string, FirstWord>();
  for (const w of words) {
    if (w === COMPOSE_COMMAND) continue; // compose's own grammar (COMPOSE_V2_VALUES)
    const alone = dockerRoute([w]);
    const unknownSecond = dockerRoute([w, UNKNOWN]);
    const exceptions = new Map<string, Route>();
    for (const s of [...words, ...ODD_SECOND]) {
      const r = dockerRoute([w, s]);
      if (r !== unknownSecond) exceptions.set(s, r);
    }
    if (!exceptions.size && unknownSecond === alone) {
      if (alone !== otherwise) first.set(w, { route: alone });
    } else first.set(w, { route: alone, second: { otherwise: unknownSecond, words: exceptions } });
  }
  return { otherwise, first };
}

/** What the front answers for a command (argv from the command word on), by the table. */
export function tableRoute(t: DockerTable, words: readonly string[]): Route {
  const f = t.first.get(words[0]!);
  if (!f) return t.otherwise;
  if (!f.second || words.length < 2) return f.route;
  return f.second.words.get(words[1]!) ?? f.second.otherwise;
}

/** Flags and words after a command: the route must not change with them. */
const TAILS: string[][] = [
  [], ['--help'], ['-h'], ['-a'], ['x'], ['--', 'x'], ['-d', 'x'], ['-o', 'type=none'], ['--opt', 'o=bind'], ['-f', 'x'],
  ['--filter', 'id=x'], ['--format', '{{.ID}}'], ['-it', 'bb', 'sh'], ['--rm', 'bb'], ['--gpus', 'all', 'bb'], [UNKNOWN], ['-'], [''],
];

/** Every probed command that the table answers differently from dockerRoute. */
export function disagreements(t: DockerTable, words: readonly string[]): string[] {
  const out: string[] = [];
  const commands: string[][] = [[UNKNOWN]];
  for (const w of words) {
    if (w === COMPOSE_COMMAND) continue;
    commands.push([w]);
    for (const s of [...words, UNKNOWN]) commands.push([w, s]);
  }
  for (const cmd of commands) {
    for (const tail of TAILS) {
      const argv = [...cmd, ...tail];
      const want = dockerRoute(argv);
      if (tableRoute(t, argv) !== want) out.push(`docker ${argv.join(' ')}: dockerRoute says ${want}`);
    }
  }
  return out;
}

const c = (s: string) => JSON.stringify(s); // a C string literal (JSON's escapes are C's for these)
const route = (r: Route) => (r === 'gpuguard' ? 'GPUGUARD' : 'PASS');
const strings = (name: string, items: Iterable<string>) => `static const char *const ${name}[] = {${[...items].map(c).join(', ')}};`;

export function header(t: DockerTable): string {
  const longs = Object.entries(GLOBAL_FLAG_SPECS).map(([name, s]) => `{${c(name)}, ${s.takesValue ? 1 : 0}}`);
  const shorts = Object.values(GLOBAL_FLAG_SPECS)
    .filter((s) => s.short)
    .map((s) => `{'${s.short}', ${s.takesValue ? 1 : 0}}`);
  const seconds: string[] = [];
  const firsts: string[] = [];
  for (const [w, f] of [...t.first].sort(([a], [b]) => a.localeCompare(b))) {
    if (!f.second) {
      firsts.push(`  {${c(w)}, ${route(f.route)}, NULL, 0, PASS},`);
      continue;
    }
    const name = `SECOND_${w.toUpperCase().replace(/[^A-Z0-9]/g, '_')}`;
    const entries = [...f.second.words].sort(([a], [b]) => a.localeCompare(b)).map(([s, r]) => `{${c(s)}, ${route(r)}}`);
    seconds.push(`static const struct second_word ${name}[] = {${entries.join(', ') || '{"", PASS}'}};`);
    firsts.push(`  {${c(w)}, ${route(f.route)}, ${name}, ${entries.length}, ${route(f.second.otherwise)}},`);
  }
  return `/* Generated by build/front.ts from src/front/routes.ts and the faces' tables. Do not edit. */
#define FRONT_MARKER ${c(FRONT_MARKER)}
#define FRONT_MAX_BYTES ${FRONT_MAX_BYTES}
#define FRONT_NAME ${c(FRONT_NAME)}
#define GPUGUARD_NAME ${c(GPUGUARD_NAME)}
#define DEFAULT_POLICY_PATH ${c(DEFAULT_POLICY_PATH)}
#define RUNTIME_CACHE_DIR ${c(CACHE_DIR)}
#define DEFAULT_RUNTIME_PATH ${c(DEFAULT_RUNTIME_PATH)}
#define COMPOSE_COMMAND ${c(COMPOSE_COMMAND)}
#define DECIDER_SOCKET ${c(DEFAULT_DECIDER_SOCKET)}
#define DECIDER_WAIT_SECONDS ${FRONT_WAIT_SECONDS}
#define DECIDER_CONNECT_SECONDS ${FRONT_CONNECT_SECONDS}

enum route { PASS = 0, GPUGUARD = 1 };

/* docker's global options (src/docker-shim/globals.ts GLOBAL_FLAG_SPECS) */
struct long_flag { const char *name; int takes_value; };
struct short_flag { char letter; int takes_value; };
static const struct long_flag DOCKER_GLOBAL_LONG[] = {${longs.join(', ')}};
static const struct short_flag DOCKER_GLOBAL_SHORT[] = {${shorts.join(', ')}};

/* The docker commands by their words (src/front/routes.ts dockerRoute, probed) */
struct second_word { const char *word; unsigned char route; };
struct first_word { const char *word; unsigned char route; const struct second_word *second; size_t nsecond; unsigned char second_default; };
${seconds.join('\n')}
static const struct first_word DOCKER_FIRST[] = {
${firsts.join('\n')}
};
#define DOCKER_DEFAULT ${route(t.otherwise)}

/* compose (src/compose/argv.ts) */
${strings('COMPOSE_V1_VALUES', VALUE_OPTIONS.v1)}
${strings('COMPOSE_V2_VALUES', VALUE_OPTIONS.v2)}
${strings('COMPOSE_CREATING', CREATING_COMMANDS)}

/* runc (src/oci-hook/args.ts) */
${strings('RUNC_GLOBAL_VALUES', GLOBAL_VALUE)}
${strings('RUNC_EDITED', EDITED_COMMANDS)}
`;
}

class BuildError extends Error {}

function compile(out: string, headerDir: string): void {
  const cc = process.env.CC || 'cc';
  const source = join(root, 'src/front/front.c');
  const tmp = `${out}.tmp`;
  // Static: no dynamic loader on a path every docker and runc call takes (~0.3 ms).
  const args = ['-std=c11', '-O2', '-Wall', '-Wextra', '-static', '-s', '-I', headerDir, '-o', tmp, source];
  const r = spawnSync(cc, args, { encoding: 'utf8' });
  if (r.error && (r.error as NodeJS.ErrnoException).code === 'ENOENT') {
    throw new BuildError(`no C compiler: ${cc} is not installed; the native front needs one: apt-get install gcc libc6-dev (Debian), or set CC`);
  }
  if (r.status !== 0) {
    const text = `${r.stderr}${r.stdout}`.trim().split('\n').slice(0, 30).join('\n');
    const hint = /cannot find -lc|crt1\.o|stdio\.h/.test(text) ? ' (the C library for static linking is missing: apt-get install libc6-dev)' : '';
    throw new BuildError(`compiling the native front failed${hint}: ${cc} ${args.join(' ')}\n${text}`);
  }
  if (r.stderr.trim()) process.stderr.write(r.stderr);
  renameSync(tmp, out);
}

function main(argv: string[]): void {
  const i = argv.indexOf('--out');
  const outDir = resolve(i >= 0 && argv[i + 1] ? argv[i + 1]! : join(root, 'dist'));
  const words = vocabulary();
  const table = dockerTable(words);
  const wrong = disagreements(table, words);
  if (wrong.length) {
    throw new BuildError(
      `the docker route depends on more than the command words, so the native front cannot decide it from a table (src/front/routes.ts):\n  ${wrong.slice(0, 10).join('\n  ')}${wrong.length > 10 ? `\n  … ${wrong.length - 10} more` : ''}`,
    );
  }
  const headerDir = join(outDir, 'front');
  mkdirSync(headerDir, { recursive: true });
  writeFileSync(join(headerDir, 'routes.h'), header(table));
  compile(join(outDir, FRONT_NAME), headerDir);
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  try {
    main(process.argv.slice(2));
  } catch (err) {
    process.stderr.write(`build: ${err instanceof BuildError ? err.message : String((err as Error).stack ?? err)}\n`);
    process.exit(1);
  }
}
