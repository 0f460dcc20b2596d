/**
 * The native front's routing decision against the TypeScript one
 * (src/front/routes.ts), over the same argv: the docker corpus (every line,
 * and each with global options before it), the runc argv captured from
 * dockerd and containerd, the compose command lines of the tests, and
 * fuzzed argv drawn from every grammar's flags and words. The compiled front
 * answers through `gpuguard-front route FACE` (the decision alone, no exec).
 * Also: the vocabulary the build probes covers the installed docker CLIs.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { composeRoute, dockerRoute, runtimeRoute, type Route } from '../../src/front/routes.ts';
import { shellWords } from '../../src/docker-shim/quote.ts';
import { GLOBAL_FLAG_SPECS } from '../../src/docker-shim/globals.ts';
import { VALUE_OPTIONS, CREATING_COMMANDS } from '../../src/compose/argv.ts';
import { GLOBAL_VALUE } from '../../src/oci-hook/args.ts';
import { vocabulary } from '../../build/front.ts';
import { FIXTURES, FRONT, IN_CI, missing, ROOT } from '../harness/tools.ts';

type Face = 'docker' | 'docker-compose' | 'runtime';

const ts: Record<Face, (args: string[]) => Route> = {
  docker: (a) => dockerRoute(a),
  'docker-compose': (a) => composeRoute(a, 'v1'),
  runtime: (a) => runtimeRoute(a),
};

/** The front's answers for many argv at once (records: "<n>\n" then "<len>\n<bytes>" per word). */
function frontRoutes(face: Face, argvs: string[][]): Route[] {
  const parts: Buffer[] = [];
  for (const argv of argvs) {
    parts.push(Buffer.from(`${argv.length}\n`));
    for (const w of argv) {
      const b = Buffer.from(w, 'utf8');
      parts.push(Buffer.from(`${b.length}\n`), b);
    }
  }
  const r = spawnSync(join(ROOT, 'dist/gpuguard-front'), ['route', face], { input: Buffer.concat(parts), encoding: 'utf8', maxBuffer: 64 << 20, argv0: 'gpuguard-front' });
  assert.equal(r.status, 0, r.stderr);
  const out = r.stdout.split('\n').filter(Boolean) as Route[];
  assert.equal(out.length, argvs.length, 'one answer per argv');
  return out;
}

function agree(face: Face, argvs: string[][], mix = false): void {
  const front = frontRoutes(face, argvs);
  // A fuzz that hits one answer only tests nothing: both must be common.
  if (mix) for (const r of ['gpuguard', 'pass'] as const) assert.ok(front.filter((x) => x === r).length > argvs.length / 10, `${face}: fewer than 10% ${r}`);
  const wrong = argvs.map((a, i) => ({ a, front: front[i], ts: ts[face](a) })).filter((x) => x.front !== x.ts);
  assert.deepEqual(
    wrong.slice(0, 20).map((x) => `${face} ${JSON.stringify(x.a)}: front ${x.front}, TypeScript ${x.ts}`),
    [],
    `${wrong.length} of ${argvs.length} argv decided differently`,
  );
}

/** A small seeded generator (mulberry32): the same fuzz on every run, and a failure names its argv. */
function rng(seed: number) {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return { pick: <T>(xs: readonly T[]) => xs[Math.floor(next() * xs.length)]!, int: (n: number) => Math.floor(next() * n) };
}

function fuzz(tokens: readonly string[], count: number, seed: number, maxLen = 8): string[][] {
  const r = rng(seed);
  return Array.from({ length: count }, () => Array.from({ length: r.int(maxLen + 1) }, () => r.pick(tokens)));
}

/** Every spelling of every docker global option: --f, --f=v, -x, -xv, -x=v, clusters. */
function dockerGlobalTokens(): string[] {
  const out: string[] = [];
  for (const [name, s] of Object.entries(GLOBAL_FLAG_SPECS)) {
    out.push(`--${name}`, `--${name}=unix:///x.sock`, `--${name}=`);
    if (s.short) out.push(`-${s.short}`, `-${s.short}x`, `-${s.short}=v`, `-${s.short}=`, `-D${s.short}`, `-${s.short}D`);
  }
  return [...out, '--', '-', '', '--unknown', '--unknown=x', '-x', '-Dx', '-é', '--é=1', 'é', 'unix:///x.sock', 'tcp://h:2375', 'debug', '/etc/docker'];
}

const corpus = readFileSync(join(FIXTURES, 'docker-run/corpus.txt'), 'utf8')
  .split('\n')
  .filter((l) => l.trim() && !l.startsWith('#'))
  .map((l) => shellWords(l).slice(1));

test('docker: the corpus, as written and behind global options, decides the same', (t) => {
  if (missing(t, { files: [FRONT] })) return;
  assert.ok(corpus.length >= 80);
  const globals = [[], ['-H', 'unix:///x.sock'], ['--context=default'], ['-D', '-l', 'debug'], ['--config', '/tmp/c'], ['-Dl', 'info'], ['--tls'], ['-H'], ['--'], ['-x']];
  const argvs = globals.flatMap((g) => corpus.map((line) => [...g, ...line]));
  // The same lines as `docker container run|create`, and turned into every other command word.
  const words = vocabulary();
  for (const line of corpus) {
    argvs.push(['container', ...line]);
    for (const w of words) argvs.push([w, ...line.slice(1)]);
  }
  agree('docker', argvs);
  assert.ok(frontRoutes('docker', [corpus[0]!])[0] === 'gpuguard', 'a run line goes to gpuguard');
});

test('docker: every command word, alone and as a group\'s second word, with flags after it', (t) => {
  if (missing(t, { files: [FRONT] })) return;
  const words = [...vocabulary(), 'gpuguard-unknown', 'RUN', 'Run', 'run '];
  const tails = [[], ['--help'], ['-a'], ['x'], ['-o', 'type=none,o=bind,device=/etc'], ['--', 'x']];
  const argvs: string[][] = [];
  for (const w of words) for (const tail of tails) {
    argvs.push([w, ...tail]);
    for (const s of words) argvs.push([w, s, ...tail]);
  }
  agree('docker', argvs);
});

test('docker: 30000 fuzzed argv (global options, command words, compose options) decide the same', (t) => {
  if (missing(t, { files: [FRONT] })) return;
  const compose = [...VALUE_OPTIONS.v2, ...VALUE_OPTIONS.v2].flatMap((o) => [o, `${o}=x`, `${o}x`]);
  const tokens = [...dockerGlobalTokens(), ...vocabulary(), 'compose', 'compose', 'container', 'system', ...compose, ...CREATING_COMMANDS, 'ps', 'logs', '-it', '--rm', 'bb'];
  agree('docker', fuzz(tokens, 30000, 14), true);
  agree('docker', fuzz(tokens, 5000, 15, 3), true);
});

test('docker-compose (v1) and docker compose (v2): options and subcommands decide the same', (t) => {
  if (missing(t, { files: [FRONT] })) return;
  const lines = [
    ['up', '-d'], ['-f', 'a.yml', 'up'], ['--file=a.yml', '-p', 'x', 'run', 'web'], ['-fa.yml', 'create'], ['-f'], ['-p'], ['--project-name'], ['ps'], ['logs', '-f'], ['--', 'up'], ['-', 'up'], [],
    ['--env-file', '.env', 'scale', 'web=2'], ['-H', 'unix:///x', 'up'], ['--verbose', 'up'], ['--no-ansi', 'down'], ['-c', 'ctx', 'up'], ['--project-directory'],
  ];
  agree('docker-compose', lines);
  agree('docker', lines.map((l) => ['compose', ...l]));
  for (const [face, dialect, seed] of [['docker-compose', 'v1', 21], ['docker', 'v2', 22]] as const) {
    const opts = [...VALUE_OPTIONS[dialect]].flatMap((o) => [o, o, `${o}=x`, `${o}x`, `${o}=`]);
    const tokens = [...opts, ...CREATING_COMMANDS, 'ps', 'logs', 'down', '--verbose', '-d', '--', '-', '', 'x', '-x', '--x=1', 'é'];
    const argvs = fuzz(tokens, 20000, seed);
    agree(face, face === 'docker' ? argvs.map((a) => ['compose', ...a]) : argvs, true);
  }
});

test('runtime: the argv captured from dockerd 20.10 and containerd 1.6, and 30000 fuzzed argv, decide the same', (t) => {
  if (missing(t, { files: [FRONT] })) return;
  const captured = readFileSync(join(FIXTURES, 'config-json/runc-argv.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as string[]);
  assert.ok(captured.some((a) => runtimeRoute(a) === 'gpuguard') && captured.some((a) => runtimeRoute(a) === 'pass'));
  agree('runtime', captured);
  const globals = [...GLOBAL_VALUE].flatMap((g) => [`--${g}`, `-${g}`, `--${g}=x`, `-${g}=`, `--${g}`]);
  const tokens = [...globals, '--debug', '--debug=false', '--systemd-cgroup', '-v', '--version', '--help', 'create', 'run', 'create', 'run', 'start', 'state', 'delete', 'exec', 'kill', 'features', '--bundle', '-b', '/b', 'json', 'x', '--', '-', '', 'é', '-é'];
  agree('runtime', fuzz(tokens, 30000, 31), true);
});

test('the vocabulary build/front.ts probes holds every command word of the installed docker CLIs', async (t) => {
  const clis = ['/usr/bin/docker', '/usr/local/bin/docker'].filter((p) => spawnSync(p, ['--version']).status === 0);
  if (!clis.length) {
    if (IN_CI) assert.fail('no docker CLI to read commands from: run bash test/setup.sh');
    t.skip('no docker CLI');
    return;
  }
  const have = new Set(vocabulary());
  const help = (cli: string, words: string[]) =>
    new Promise<string>((resolve) => execFile(cli, [...words, '--help'], { encoding: 'utf8' }, (_err, stdout) => resolve(stdout)));
  const commandsOf = async (cli: string, words: string[]) => {
    const text = await help(cli, words);
    const list: string[] = [];
    let inCommands = false;
    for (const line of text.split('\n')) {
      if (/Commands:$/.test(line)) inCommands = true;
      else if (!line.trim()) inCommands = false;
      else if (inCommands && /^  [a-z]/.test(line)) list.push(line.trim().split(/\s+/)[0]!.replace(/\*$/, ''));
    }
    const aliases = /^Aliases:\n((?:  .*\n)+)/m.exec(text)?.[1] ?? '';
    return { list, aliases: aliases.split(/[\s,]+/).filter((w) => /^[a-z][a-z-]*$/.test(w) && w !== 'docker') };
  };
  const words = new Set<string>();
  for (const cli of clis) {
    const tops = (await commandsOf(cli, [])).list;
    await Promise.all(
      tops.map(async (top) => {
        const group = await commandsOf(cli, [top]);
        for (const w of [top, ...group.aliases]) words.add(w);
        const subs = await Promise.all(group.list.map((sub) => commandsOf(cli, [top, sub])));
        group.list.forEach((sub, i) => [sub, ...subs[i]!.aliases].forEach((w) => words.add(w)));
      }),
    );
  }
  assert.ok(words.size > 50, `read ${words.size} words from ${clis.join(', ')}`);
  assert.deepEqual([...words].filter((w) => !have.has(w)), [], 'add these words to build/docker-words.txt');
});
