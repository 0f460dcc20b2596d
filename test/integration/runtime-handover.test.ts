/**
 * The hand-over to the real runtime, against the compiled binary: the exact
 * argv, extra descriptors (fd 3 for --preserve-fds 1, LISTEN_FDS) and the
 * environment reach it, for `create` (edited) and `start` (passed through);
 * `--version` and `features` are the real runc's bytes; a broken policy does
 * not touch the pass-through; a real runtime that is missing or ourselves is
 * one clear line in the --log file, never a hang.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { closeSync, copyFileSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BINARY, FIXTURES, missing, which, installFace } from '../harness/index.ts';
import { forgetCacheEntries } from './runtime-cache-cleanup.ts';

let dir: string;
let wrapper: string;
let standIn: string;
let policy: string;

before(() => {
  dir = mkdtempSync(join(tmpdir(), 'gg-ho-'));
  wrapper = installFace(dir, 'gpuguard-runc');
  // The stand-in real runtime: reports its argv, descriptors and env into $REPORT.
  standIn = join(dir, 'report-runtime');
  writeFileSync(
    standIn,
    `#!/bin/sh
{ echo "ARGV $*"; for f in /proc/self/fd/*; do echo "FD $(basename $f) $(readlink $f)"; done; env | sed 's/^/ENV /'; } > "$REPORT"
`,
    { mode: 0o755 },
  );
  policy = join(dir, 'policy.yaml');
  writeFileSync(policy, `version: 1\nevents: {log: ${join(dir, 'events.jsonl')}}\nruntime: {rules: []}\n`);
});
after(() => {
  for (const p of [policy, join(dir, 'bad.yaml')]) forgetCacheEntries(p);
  rmSync(dir, { recursive: true, force: true });
});

function runWrapper(args: string[], env: Record<string, string>, extraFd?: number, cwd?: string) {
  const stdio: (string | number)[] = ['ignore', 'pipe', 'pipe'];
  if (extraFd !== undefined) stdio.push(extraFd);
  return spawnSync(wrapper, args, { env: { PATH: process.env.PATH!, ...env }, stdio: stdio as never, encoding: 'utf8', timeout: 20_000, cwd });
}

function report(file: string) {
  const lines = readFileSync(file, 'utf8').split('\n');
  const fds = new Map(lines.filter((l) => l.startsWith('FD ')).map((l) => l.slice(3).split(' ') as [string, string]));
  const env = new Map(lines.filter((l) => l.startsWith('ENV ')).map((l) => [l.slice(4, l.indexOf('=')), l.slice(l.indexOf('=') + 1)] as [string, string]));
  return { argv: lines[0]!.slice(5), fds, env };
}

for (const command of ['create', 'start'] as const) {
  test(`hand-over (${command}): argv exact, fd 3 (--preserve-fds 1) and NOTIFY_SOCKET/XDG_RUNTIME_DIR/LISTEN_FDS reach the real runtime`, (t) => {
    if (missing(t, { files: [BINARY] })) return;
    const bundle = join(dir, `bundle-${command}`);
    mkdirSync(bundle);
    copyFileSync(join(FIXTURES, 'config-json/dockerd-20.10-plain.json'), join(bundle, 'config.json'));
    const passed = join(dir, `fd3-${command}`);
    writeFileSync(passed, 'x');
    const fd = openSync(passed, 'r');
    const out = join(dir, `report-${command}`);
    const args =
      command === 'create'
        ? ['--root', join(dir, 'root'), '--log', join(bundle, 'log.json'), '--log-format', 'json', 'create', '--bundle', bundle, '--pid-file', join(bundle, 'init.pid'), '--preserve-fds', '1', 'c1']
        : ['--root', join(dir, 'root'), '--log', join(bundle, 'log.json'), '--log-format', 'json', 'start', 'c1'];
    const env = {
      GPUGUARD_REAL_RUNTIME: standIn,
      GPUGUARD_POLICY: policy,
      REPORT: out,
      NOTIFY_SOCKET: '/run/notify.sock',
      XDG_RUNTIME_DIR: '/run/user/0',
      LISTEN_FDS: '1',
      LISTEN_PID: '1',
    };
    const r = runWrapper(args, env, fd);
    closeSync(fd);
    assert.equal(r.status, 0, r.stderr);
    const rep = report(out);
    assert.equal(rep.argv, args.join(' '));
    assert.equal(rep.fds.get('3'), passed, `fd 3 kept open across the hand-over: ${[...rep.fds].join(', ')}`);
    for (const k of ['NOTIFY_SOCKET', 'XDG_RUNTIME_DIR', 'LISTEN_FDS', 'LISTEN_PID', 'GPUGUARD_POLICY']) assert.equal(rep.env.get(k), env[k as keyof typeof env], k);
    if (command === 'create') {
      const config = JSON.parse(readFileSync(join(bundle, 'config.json'), 'utf8'));
      assert.ok(config.process.env.includes('NVIDIA_VISIBLE_DEVICES=void'), 'create was edited before the hand-over');
    }
  });
}

test('a missing or malformed config.json is handed to the real runtime untouched (it reports its own error)', (t) => {
  if (missing(t, { files: [BINARY] })) return;
  for (const content of [undefined, '{"ociVersion": "1.0.2", "process": ']) {
    const bundle = mkdtempSync(join(dir, 'bad-bundle-'));
    if (content !== undefined) writeFileSync(join(bundle, 'config.json'), content);
    const out = join(bundle, 'report');
    const r = runWrapper(['create', '--bundle', bundle, 'c2'], { GPUGUARD_REAL_RUNTIME: standIn, GPUGUARD_POLICY: policy, REPORT: out });
    assert.equal(r.status, 0, r.stderr);
    assert.equal(report(out).argv, `create --bundle ${bundle} c2`);
    if (content !== undefined) assert.equal(readFileSync(join(bundle, 'config.json'), 'utf8'), content);
  }
});

test('--version and features are the real runc’s bytes; a broken policy does not touch state or --version', (t) => {
  const runc = which('runc');
  if (missing(t, { files: [BINARY], commands: ['runc'] }) || !runc) return;
  const bad = join(dir, 'bad.yaml');
  writeFileSync(bad, 'version: [\n');
  for (const env of [{}, { GPUGUARD_POLICY: bad }] as Record<string, string>[]) {
    for (const args of [['--version'], ['features']]) {
      const mine = runWrapper(args, env);
      const direct = spawnSync(runc, args, { encoding: "utf8" }) as { stdout: string; stderr: string };
      assert.equal(mine.status, 0, mine.stderr);
      assert.equal(mine.stdout, direct.stdout, args.join(" "));
      assert.equal(mine.stderr, direct.stderr);
    }
    const state = runWrapper(['--root', join(dir, 'runc-root'), 'state', 'nope'], env);
    const real = spawnSync(runc, ["--root", join(dir, "runc-root"), "state", "nope"], { encoding: "utf8" }) as { status: number | null; stderr: string };
    assert.equal(state.status, real.status);
    assert.equal(state.stderr.replace(/time="[^"]+"/, ''), real.stderr.replace(/time="[^"]+"/, ''));
  }
});

test('a real runtime that is this wrapper, or missing: one line in the --log (runc JSON) and stderr, non-zero, no hang', (t) => {
  if (missing(t, { files: [BINARY] })) return;
  for (const [real, want] of [
    [wrapper, /is this wrapper itself/],
    ['/nonexistent/runc', /does not exist or is not executable/],
  ] as const) {
    for (const cmd of [['create', '--bundle', dir, 'c9'], ['state', 'c9']]) {
      const log = join(dir, 'err.json');
      rmSync(log, { force: true });
      const r = runWrapper(['--log', log, '--log-format', 'json', ...cmd], { GPUGUARD_REAL_RUNTIME: real, GPUGUARD_POLICY: policy });
      assert.equal(r.error, undefined, 'no hang');
      assert.notEqual(r.status, 0);
      assert.match(r.stderr, want);
      assert.equal(r.stderr.trim().split('\n').length, 1);
      const lines = readFileSync(log, 'utf8').trim().split('\n');
      assert.equal(lines.length, 1);
      const entry = JSON.parse(lines[0]!);
      assert.equal(entry.level, 'error');
      assert.match(entry.msg, /^gpuguard: /);
      assert.match(entry.time, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
    }
  }
});
