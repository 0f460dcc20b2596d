import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, realpathSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { descriptorsToKeep, EDITED_COMMANDS, parseRuncArgs } from '../../src/oci-hook/args.ts';
import { findRealRuntime, policyRealPathForPassThrough } from '../../src/oci-hook/real-runtime.ts';
import { rememberPolicyRealPath } from '../../src/oci-hook/real-runtime-cache.ts';
import { runcLogLine } from '../../src/oci-hook/runc-log.ts';
import { FIXTURES } from '../harness/tools.ts';
import { createRequire } from 'node:module';
const require = createRequire(import.meta.url);

const B = '/run/containerd/io.containerd.runtime.v2.task/concourse/t1';

// One line of input, one expected description (STYLE.md #8).
type Want = Partial<Omit<ReturnType<typeof parseRuncArgs>, "globals">> & { globals?: Record<string, unknown> };
const table: [string[], Want][] = [
  [['--root', '/run/containerd/runc/concourse', '--log', `${B}/log.json`, '--log-format', 'json', 'create', '--bundle', B, '--pid-file', `${B}/init.pid`, 't1'],
    { command: 'create', bundle: B, id: 't1', pidFile: `${B}/init.pid`, globals: { root: '/run/containerd/runc/concourse', log: `${B}/log.json`, logFormat: 'json', systemdCgroup: false, debug: false } }],
  [['create', '-b', 'rel/b', 'c1'], { command: 'create', bundle: '/cwd/rel/b', id: 'c1' }],
  [['create', 'c2'], { command: 'create', bundle: '/cwd', id: 'c2' }],
  [['--systemd-cgroup', '--debug', 'run', '--bundle=/b', '--console-socket', '/s.sock', '--preserve-fds', '2', '--no-pivot', '--no-new-keyring', '-d', 'c3'],
    { command: 'run', bundle: '/b', id: 'c3', consoleSocket: '/s.sock', preserveFds: 2, globals: { systemdCgroup: true, debug: true } }],
  [['-root', '/r', '--rootless=auto', '--criu', '/usr/sbin/criu', 'start', 't1'], { command: 'start', id: 't1', bundle: undefined, globals: { root: '/r', rootless: 'auto', criu: '/usr/sbin/criu' } }],
  [['delete', '--force', 't1'], { command: 'delete', id: 't1' }],
  [['exec', '--process', '/tmp/runc-process123', '--detach', '--pid-file', '/p', '--preserve-fds=1', 'ID'], { command: 'exec', id: 'ID', pidFile: '/p', preserveFds: 1 }],
  [['kill', 'ID', '9'], { command: 'kill', id: 'ID' }],
  [['state', 'ID'], { command: 'state', id: 'ID' }],
  [['features'], { command: 'features', id: undefined }],
  [['--version'], { command: undefined }],
  [['-v'], { command: undefined }],
  [[], { command: undefined }],
];

for (const [argv, want] of table) {
  test(`runc argv: ${argv.join(' ') || '(none)'}`, () => {
    const got = parseRuncArgs(argv, '/cwd');
    const { globals, ...rest } = want;
    for (const [k, v] of Object.entries(rest)) assert.deepEqual(got[k as keyof typeof got], v, k);
    for (const [k, v] of Object.entries(globals ?? {})) assert.deepEqual(got.globals[k as keyof typeof got.globals], v, `globals.${k}`);
  });
}

test('runc argv: every call captured from dockerd 20.10 and containerd 1.6 (ctr) parses; only create has a bundle', () => {
  const lines = readFileSync(join(FIXTURES, 'config-json/runc-argv.jsonl'), 'utf8').trim().split('\n');
  assert.ok(lines.length >= 10);
  for (const line of lines) {
    const argv = JSON.parse(line) as string[];
    const call = parseRuncArgs(argv, '/cwd');
    if (argv[0] === '--version') {
      assert.equal(call.command, undefined);
      continue;
    }
    assert.ok(call.globals.root && call.globals.log && call.globals.logFormat === 'json', line);
    assert.equal(call.id, argv.at(call.command === 'kill' ? -2 : -1), line);
    if (call.command === 'create') assert.equal(call.bundle, argv[argv.indexOf('--bundle') + 1]);
    else assert.equal(call.bundle, undefined);
    assert.equal(EDITED_COMMANDS.has(call.command!), call.command === 'create');
  }
});

test('descriptors: --preserve-fds N and LISTEN_FDS N keep 3 … 2+N', () => {
  assert.deepEqual(descriptorsToKeep(parseRuncArgs(['create', '--preserve-fds', '2', 'x'], '/'), {}), [3, 4]);
  assert.deepEqual(descriptorsToKeep(parseRuncArgs(['start', 'x'], '/'), { LISTEN_FDS: '3' }), [3, 4, 5]);
  assert.deepEqual(descriptorsToKeep(parseRuncArgs(['start', 'x'], '/'), { LISTEN_FDS: 'junk' }), []);
});

test('runc log line: logrus JSON, and text for other formats', () => {
  const now = new Date('2026-01-02T03:04:05.678Z');
  assert.equal(runcLogLine('json', 'gpuguard: x', now), '{"level":"error","msg":"gpuguard: x","time":"2026-01-02T03:04:05Z"}\n');
  assert.equal(runcLogLine(undefined, 'gpuguard: "x"', now), 'time="2026-01-02T03:04:05Z" level=error msg="gpuguard: \\"x\\""\n');
});

test('real runtime: env, then policy, then PATH skipping ourselves (seed 001 runc → runc.real layout)', () => {
  const dir = realpathSync(mkdtempSync(join(tmpdir(), 'gg-rr-')));
  try {
    const self = join(dir, 'gpuguard');
    const realRunc = join(dir, 'runc.real');
    for (const f of [self, realRunc]) {
      writeFileSync(f, '#!/bin/sh\n');
      chmodSync(f, 0o755);
    }
    const a = join(dir, 'a');
    const b = join(dir, 'b');
    for (const d of [a, b]) {
      rmSync(d, { recursive: true, force: true });
      mkdirSync(d);
    }
    symlinkSync(self, join(a, 'runc')); // Concourse's runc → the wrapper
    symlinkSync(realRunc, join(b, 'runc'));
    const PATH = `${a}:${b}`;
    assert.equal(findRealRuntime({ env: { PATH }, self }), join(b, 'runc'));
    assert.equal(findRealRuntime({ env: { PATH }, policyRealPath: realRunc, self }), realRunc);
    assert.equal(findRealRuntime({ env: { PATH, GPUGUARD_REAL_RUNTIME: join(b, 'runc') }, policyRealPath: '/nope', self }), join(b, 'runc'));
    assert.throws(() => findRealRuntime({ env: { PATH }, policyRealPath: join(a, 'runc'), self }), /is this wrapper itself/);
    assert.throws(() => findRealRuntime({ env: { PATH: a }, self }), /every runc on PATH is this wrapper/);
    assert.throws(() => findRealRuntime({ env: { PATH: dir }, self }), /no runc on PATH/);
    assert.throws(() => findRealRuntime({ env: { GPUGUARD_REAL_RUNTIME: '/nope/runc' }, self }), /does not exist/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('real runtime: the pass-through reads the policy realPath from a cache keyed by the policy file; broken policy → none', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'gg-rc-'));
  try {
    const policy = join(dir, 'policy.yaml');
    const cache = join(dir, 'cache');
    writeFileSync(policy, 'version: 1\nruntime: {realPath: /opt/concourse/bin/runc.real}\n');
    const env = { GPUGUARD_POLICY: policy };
    assert.equal(await policyRealPathForPassThrough(env, cache), '/opt/concourse/bin/runc.real');
    rememberPolicyRealPath(policy, '/from/cache', cache);
    const asRoot = process.getuid?.() === 0;
    assert.equal(await policyRealPathForPassThrough(env, cache), asRoot ? '/from/cache' : '/opt/concourse/bin/runc.real', 'a fresh cache (root\'s) is used without parsing');
    if (asRoot) {
      const entry = join(cache, require('node:fs').readdirSync(cache)[0]);
      require('node:fs').lchownSync(entry, 65534, 65534);
      assert.equal(await policyRealPathForPassThrough(env, cache), '/opt/concourse/bin/runc.real', 'an entry root does not own is not trusted');
      require('node:fs').lchownSync(entry, 0, 0);
    }
    writeFileSync(policy, 'version: [\n');
    assert.equal(await policyRealPathForPassThrough(env, cache), undefined, 'broken policy: PATH search');
    assert.equal(await policyRealPathForPassThrough({ GPUGUARD_POLICY: join(dir, 'none.yaml') }, cache), undefined);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('create’s policy cache: validated JSON reused while the file is unchanged; a change or a writable entry means a fresh parse', async (t) => {
  if (process.getuid?.() !== 0) return t.skip('the cache is root’s only');
  const { loadPolicyCached: loadRuntimePolicy } = await import('../../src/policy/cache.ts');
  const dir = mkdtempSync(join(tmpdir(), 'gg-pc-'));
  try {
    const policy = join(dir, 'policy.yaml');
    const cache = join(dir, 'cache');
    writeFileSync(policy, 'version: 1\nruntime: {gpuEnv: keep}\n');
    const env = { GPUGUARD_POLICY: policy };
    assert.equal((await loadRuntimePolicy(env, cache)).policy.runtime.gpuEnv, 'keep');
    const [entry] = require('node:fs').readdirSync(cache) as string[];
    const file = join(cache, entry!);
    const doctored = JSON.parse(readFileSync(file, 'utf8'));
    doctored.policy.runtime.gpuEnv = 'sanitize';
    writeFileSync(file, JSON.stringify(doctored));
    assert.equal((await loadRuntimePolicy(env, cache)).policy.runtime.gpuEnv, 'sanitize', 'the entry is what is read while fresh');
    chmodSync(file, 0o666);
    assert.equal((await loadRuntimePolicy(env, cache)).policy.runtime.gpuEnv, 'keep', 'a world-writable entry is not trusted');
    writeFileSync(policy, 'version: 1\nruntime: {gpuEnv: sanitize, onPolicyError: closed}\n');
    assert.equal((await loadRuntimePolicy(env, cache)).policy.runtime.onPolicyError, 'closed', 'a changed file is parsed again');
    writeFileSync(policy, 'version: 1\nbogus: 1\n');
    await assert.rejects(loadRuntimePolicy(env, cache), /unknown key "bogus"/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
