/**
 * The guarded commands' grammar: which words are containers. The value-flag
 * table is checked against `docker <cmd> --help` of both CLIs in use
 * (captured in test/fixtures/ownership/help-*, and live where installed).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { GUARDED, PS, TOP_INSPECT, classify, cpContainer, psIdFilters, rewritePs, scan, targetsOf, type CommandSpec } from '../../src/ownership/commands.ts';
import { FIXTURES } from '../harness/tools.ts';

const HELP = join(FIXTURES, 'ownership');
const VERSIONS = { '20.10': '/usr/bin/docker', '28': '/usr/local/bin/docker' } as const;

/** Value flags of a cobra help text: an option line with a type word after its names. */
function helpValueFlags(text: string): { values: Set<string>; all: Set<string> } {
  const values = new Set<string>();
  const all = new Set<string>();
  const options = text.split(/^Options:$/m)[1] ?? '';
  for (const line of options.split('\n')) {
    const m = /^\s{2}(?:(-\w), )?\s*(--[\w-]+)(?: (\S+))?\s{2,}/.exec(line) ?? /^\s{2}(?:(-\w), )?\s*(--[\w-]+)(?: (\S+))?$/.exec(line);
    if (!m) continue;
    const names = [m[1], m[2]].filter((n): n is string => !!n);
    names.forEach((n) => all.add(n));
    if (m[3]) names.forEach((n) => values.add(n));
  }
  return { values, all };
}

/** Hidden or deprecated flags that `--help` does not show (probed below against the real CLIs). */
const HIDDEN: Record<string, string[]> = {
  stop: ['--time'], // 28: deprecated alias of --timeout
  restart: ['--time'],
  update: ['--kernel-memory'], // 28: deprecated, hidden
  start: ['--checkpoint', '--checkpoint-dir'], // 20.10: experimental, hidden
};

const specFor = (cmd: string): CommandSpec => (cmd === 'top-inspect' ? TOP_INSPECT : cmd === 'ps' ? PS : GUARDED[cmd]!);

for (const version of Object.keys(VERSIONS) as (keyof typeof VERSIONS)[]) {
  test(`value-flag table covers every value flag of docker ${version} (captured --help)`, () => {
    for (const file of readdirSync(join(HELP, `help-${version}`))) {
      const cmd = file.replace(/\.txt$/, '');
      const { values } = helpValueFlags(readFileSync(join(HELP, `help-${version}`, file), 'utf8'));
      const table = new Set(specFor(cmd).values);
      for (const v of values) assert.ok(table.has(v), `docker ${version} ${cmd}: value flag ${v} missing from the table`);
    }
  });
}

test('the help reader finds value and boolean flags', () => {
  const { values, all } = helpValueFlags(readFileSync(join(HELP, 'help-20.10', 'exec.txt'), 'utf8'));
  assert.deepEqual([...values].sort(), ['--detach-keys', '--env', '--env-file', '--user', '--workdir', '-e', '-u', '-w']);
  assert.ok(all.has('-d') && all.has('--privileged') && all.has('-t'));
  assert.equal(helpValueFlags(readFileSync(join(HELP, 'help-28', 'update.txt'), 'utf8')).values.size, 16);
});

test('every value flag in the table exists in some CLI, as a value flag', () => {
  for (const cmd of [...Object.keys(GUARDED), 'top-inspect', 'ps']) {
    const known = new Set<string>(HIDDEN[cmd] ?? []);
    const booleans = new Set<string>();
    for (const version of Object.keys(VERSIONS)) {
      const file = join(HELP, `help-${version}`, `${cmd}.txt`);
      const { values, all } = helpValueFlags(readFileSync(file, 'utf8'));
      values.forEach((v) => known.add(v));
      [...all].filter((f) => !values.has(f)).forEach((f) => booleans.add(f));
    }
    for (const v of specFor(cmd).values) {
      assert.ok(known.has(v), `${cmd}: table flag ${v} is in no --help and not listed as hidden`);
      assert.ok(!booleans.has(v), `${cmd}: table flag ${v} is a boolean in some CLI`);
    }
  }
});

for (const [version, bin] of Object.entries(VERSIONS)) {
  test(`the captured help matches the installed docker ${version}, and hidden flags are accepted`, (t) => {
    if (!existsSync(bin)) return t.skip(`${bin} not installed`);
    const real = execFileSync(bin, ['--version'], { encoding: 'utf8' });
    if (!real.includes(` ${version}`)) return t.skip(`${bin} is ${real.trim()}, not ${version}`);
    for (const cmd of Object.keys(GUARDED)) {
      const live = execFileSync(bin, ['container', cmd, '--help'], { encoding: 'utf8', env: { ...process.env, COLUMNS: '200' } });
      const captured = readFileSync(join(HELP, `help-${version}`, `${cmd}.txt`), 'utf8');
      assert.deepEqual([...helpValueFlags(live).values].sort(), [...helpValueFlags(captured).values].sort(), `${version} ${cmd}`);
      for (const hidden of HIDDEN[cmd] ?? []) {
        let stderr = '';
        try {
          execFileSync(bin, ['container', cmd, hidden, '1', 'ctr'], { encoding: 'utf8', stdio: 'pipe', env: { ...process.env, DOCKER_HOST: 'unix:///nonexistent/docker.sock' } });
        } catch (err) {
          stderr = String((err as { stderr?: string }).stderr);
        }
        if (/unknown (shorthand )?flag/.test(stderr)) continue; // absent in this version: harmless in the table
        assert.doesNotMatch(stderr, /flag needs an argument/, `${version} ${cmd} ${hidden}`);
      }
    }
  });
}

test('classify: top-level, `container …` forms and aliases', () => {
  const cases: [string[], string][] = [
    [['stop'], 'containers:stop'],
    [['container', 'stop'], 'containers:stop'],
    [['container', 'remove'], 'containers:rm'],
    [['rm'], 'containers:rm'],
    [['inspect'], 'containers:inspect'],
    [['container', 'inspect'], 'containers:inspect'],
    [['ps'], 'ps'],
    [['container', 'ls'], 'ps'],
    [['container', 'list'], 'ps'],
    [['container', 'ps'], 'ps'],
    [['run'], 'other'],
    [['images'], 'other'],
    [['container', 'prune'], 'prune'],
    [['container'], 'other'],
    [[], 'other'],
  ];
  for (const [cmd, want] of cases) {
    const c = classify(cmd);
    assert.equal(c.kind === 'containers' ? `containers:${c.name}` : c.kind, want, cmd.join(' '));
  }
  assert.equal((classify(['inspect']) as { spec: CommandSpec }).spec, TOP_INSPECT);
  assert.equal((classify(['container', 'inspect']) as { spec: CommandSpec }).spec, GUARDED.inspect);
});

const T = (cmd: string, line: string) => targetsOf(specFor(cmd), line ? line.split(' ') : []);

test('targets: the container words of each command', () => {
  const cases: [string, string, string[]][] = [
    ['stop', 'a1', ['a1']],
    ['stop', '-t 0 a1 b2', ['a1', 'b2']],
    ['stop', '--time=0 a1', ['a1']],
    ['stop', 'a1 -t 5 b2', ['a1', 'b2']], // interspersed
    ['stop', '-t5 a1', ['a1']],
    ['stop', '-t=5 a1', ['a1']],
    ['stop', '-s SIGTERM a1', ['a1']],
    ['stop', '--timeout 3 a1', ['a1']],
    ['kill', '-s KILL a1', ['a1']],
    ['kill', '--signal=HUP a1 a1', ['a1']],
    ['rm', '-fv a1 b2 c3', ['a1', 'b2', 'c3']],
    ['rm', '-f -- a1', ['a1']],
    ['exec', '-it -u root -w /tmp -e A=1 --env-file f a1 sh -c "stop b2"', ['a1']],
    ['exec', '-e X a1 -u b2', ['a1']], // flags end at the container
    ['exec', '-itu0 a1 ls', ['a1']],
    ['exec', '--detach-keys ctrl-x a1 true', ['a1']],
    ['logs', '-f --since 10m -n 100 --until 1m a1', ['a1']],
    ['logs', '--tail=5 a1', ['a1']],
    ['attach', '--detach-keys ctrl-q --no-stdin a1', ['a1']],
    ['restart', '-t 1 a1 b2', ['a1', 'b2']],
    ['update', '--cpus 2 -m 1g --memory-swap -1 --restart always a1 b2', ['a1', 'b2']],
    ['commit', '-a me -c CMD=x -m msg a1 repo:tag', ['a1']],
    ['commit', '--change=ENV=1 a1', ['a1']],
    ['rename', 'a1 new-name', ['a1']],
    ['pause', 'a1 b2', ['a1', 'b2']],
    ['unpause', 'a1', ['a1']],
    ['start', '-ai a1', ['a1']],
    ['start', '--checkpoint cp1 --detach-keys x a1 b2', ['a1', 'b2']],
    ['wait', 'a1 b2', ['a1', 'b2']],
    ['port', 'a1 80/tcp', ['a1']],
    ['top', 'a1 -o pid,user', ['a1']],
    ['stats', '--no-stream --format {{.Name}} a1 b2', ['a1', 'b2']],
    ['stats', '--no-stream', []],
    ['export', '-o out.tar a1', ['a1']],
    ['export', '--output=out.tar a1', ['a1']],
    ['diff', 'a1', ['a1']],
    ['inspect', '-f {{.Id}} a1 b2', ['a1', 'b2']],
    ['top-inspect', '--type container a1', ['a1']],
    ['top-inspect', '--type=image bb', []],
    ['top-inspect', '--type network a1', []],
    ['top-inspect', '-s -f {{.Id}} a1', ['a1']],
    ['stop', '--help', []],
    ['stop', '-h a1', []],
    ['exec', 'a1 ls -h', ['a1']],
    ['stop', '', []],
    ['stop', '--unknown-flag a1', ['a1']], // unknown flags are booleans: the next word is checked
  ];
  for (const [cmd, line, want] of cases) assert.deepEqual(T(cmd, line), want, `docker ${cmd} ${line}`);
});

test('cp: CONTAINER:PATH on either side, local paths never', () => {
  const cases: [string, string | undefined][] = [
    ['a1:/etc/passwd', 'a1'],
    ['a1:rel/path', 'a1'],
    ['/abs/file:name', undefined],
    ['./file:name', undefined],
    ['../file:name', undefined],
    ['file', undefined],
    ['-', undefined],
    ['a1:', 'a1'],
  ];
  for (const [arg, want] of cases) assert.equal(cpContainer(arg), want, arg);
  assert.deepEqual(T('cp', 'a1:/etc/hosts ./hosts'), ['a1']);
  assert.deepEqual(T('cp', '-a ./dir b2:/tmp'), ['b2']);
  assert.deepEqual(T('cp', '- a1:/tmp'), ['a1']);
  assert.deepEqual(T('cp', '-L a1:/x b2:/y'), ['a1', 'b2']);
});

test('scan keeps the position of every flag', () => {
  const s = scan(PS, ['-aqf', 'id=abc', '--format', '{{.ID}}', '--filter=status=running']);
  assert.deepEqual(
    s.flags.map((f) => [f.name, f.value, f.start, f.end, f.clusterPrefix ?? null]),
    [['-a', undefined, 0, 1, ''], ['-q', undefined, 0, 1, 'a'], ['-f', 'id=abc', 0, 2, 'aq'], ['--format', '{{.ID}}', 2, 4, null], ['--filter', 'status=running', 4, 5, null]],
  );
});

test('docker ps rewrite: own ids added, the user\'s own id filters replaced, everything else kept', () => {
  const ids = ['aaa', 'bbb'];
  const own = ['--filter', 'id=aaa', '--filter', 'id=bbb'];
  const cases: [string[], string[]][] = [
    [[], own],
    [['-a'], [...own, '-a']],
    [['-q', '--format', '{{.Names}}', '-f', 'status=running'], [...own, '-q', '--format', '{{.Names}}', '-f', 'status=running']],
    [['--filter', 'id=aaa', '-a'], [...own, '-a']],
    [['--filter=id=aaa'], own],
    [['-f', 'id=aaa', '-f', 'name=x'], [...own, '-f', 'name=x']],
    [['-aqfid=aaa'], [...own, '-aq']],
    [['-aqf', 'id=aaa', '-n', '3'], [...own, '-aq', '-n', '3']],
    [['--format', 'id=aaa'], [...own, '--format', 'id=aaa']],
  ];
  for (const [args, want] of cases) assert.deepEqual(rewritePs(args, ids), want, args.join(' '));
  assert.deepEqual(rewritePs(['-a'], []), ['--filter', 'id=gpuguard-none', '-a']);
  assert.deepEqual(psIdFilters(['-f', 'id=abc', '--filter=id=def', '-f', 'name=id=x', '--format', 'id=zzz']), ['abc', 'def']);
});

test('localSocket: which daemon the CLI would talk to, in the CLI\'s order', async () => {
  const { localSocket, DEFAULT_SOCKET } = await import('../../src/docker/api.ts');
  const noConfig = '/nonexistent-gg-config';
  const cases: [NodeJS.ProcessEnv, Parameters<typeof localSocket>[1], string | undefined][] = [
    [{}, { config: noConfig }, DEFAULT_SOCKET],
    [{ DOCKER_HOST: 'unix:///tmp/d.sock' }, {}, '/tmp/d.sock'],
    [{ DOCKER_HOST: 'tcp://10.0.0.1:2376' }, {}, undefined],
    [{ DOCKER_HOST: 'ssh://host' }, { hosts: ['unix:///tmp/h.sock'] }, '/tmp/h.sock'],
    [{}, { hosts: ['tcp://x:1'] }, undefined],
    [{}, { hosts: ['unix:///a', 'unix:///b'] }, undefined],
    [{}, { context: 'remote' }, undefined],
    [{}, { context: 'default' }, DEFAULT_SOCKET],
    [{ DOCKER_HOST: 'unix:///tmp/d.sock', DOCKER_CONTEXT: 'remote' }, {}, '/tmp/d.sock'],
    [{ DOCKER_CONTEXT: 'remote' }, {}, undefined],
    [{ DOCKER_CONTEXT: 'default' }, {}, DEFAULT_SOCKET],
  ];
  for (const [env, ep, want] of cases) assert.equal(localSocket(env, ep), want, JSON.stringify([env, ep]));
});

test('isGuarded / commandWords: the subcommand after the global options', async () => {
  const { isGuarded, commandWords } = await import('../../src/ownership/commands.ts');
  const g = (commandIndex: number, command?: string, error?: string) => ({ command, commandIndex, hosts: [], ...(error ? { error } : {}) });
  assert.deepEqual(commandWords(['-H', 'unix:///x', 'container', 'stop', 'a1'], g(2, 'container')), { words: ['container', 'stop'], rest: 4 });
  assert.deepEqual(commandWords(['--debug', 'stop', 'a1'], g(1, 'stop')), { words: ['stop'], rest: 2 });
  assert.equal(isGuarded(['stop', 'a1'], g(0, 'stop')), true);
  assert.equal(isGuarded(['ps'], g(0, 'ps')), true);
  assert.equal(isGuarded(['images'], g(0, 'images')), false);
  assert.equal(isGuarded(['container', 'prune'], g(0, 'container')), true, 'prune removes other users\' stopped containers');
  assert.equal(isGuarded(['container', 'stats'], g(0, 'container')), true);
  assert.equal(isGuarded(['image', 'prune'], g(0, 'image')), false);
  assert.equal(isGuarded([], g(0)), false);
  assert.equal(isGuarded(['--bogus', 'stop'], g(0, 'stop', 'unknown flag')), false, 'docker rejects the line itself');
});

test('prune commands are guarded: container prune (and its container form) and system prune', () => {
  assert.deepEqual(classify(['container', 'prune']), { kind: 'prune', scope: 'container' });
  assert.deepEqual(classify(['system', 'prune']), { kind: 'prune', scope: 'system' });
  assert.deepEqual(classify(['image', 'prune']), { kind: 'other' });
  assert.deepEqual(classify(['system', 'df']), { kind: 'other' });
});

test('commandWords: `system prune` is two words, like `container stop`', async () => {
  const { commandWords, isGuarded } = await import('../../src/ownership/commands.ts');
  const g = { command: 'system', commandIndex: 2, hosts: [] };
  assert.deepEqual(commandWords(['-l', 'error', 'system', 'prune', '-f'], g), { words: ['system', 'prune'], rest: 4 });
  assert.equal(isGuarded(['-l', 'error', 'system', 'prune', '-f'], g), true);
  assert.equal(isGuarded(['system', 'df'], { command: 'system', commandIndex: 0, hosts: [] }), false);
});
