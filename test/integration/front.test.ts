/**
 * The native front on its own (a copy with no gpuguard beside it, so any
 * call it hands over fails loudly): the pass-through reaches the real tool
 * with argv, environment and descriptors untouched (LISTEN_FDS,
 * NOTIFY_SOCKET, --preserve-fds); the runtime's realPath comes from root's
 * cache when fresh and root-owned, and only then; loops through itself or a
 * copy of a front end in one line or in the real tool, never in a hang;
 * relative PATH entries are never searched; routed calls go to gpuguard.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { closeSync, copyFileSync, lchownSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FRONT, BINARY, installFace, IS_ROOT, missing, which } from '../harness/index.ts';
import { rememberPolicyRealPath } from '../../src/oci-hook/real-runtime-cache.ts';
import { cacheEntryPath, CACHE_DIR } from '../../src/oci-hook/real-runtime.ts';
import { forgetCacheEntries } from './runtime-cache-cleanup.ts';

let dir: string;
/** A front with no gpuguard beside it: every face name points at it. */
let alone: string;
let report: string;
const policies: string[] = [];

before(() => {
  dir = mkdtempSync(join(tmpdir(), 'gg-front-'));
  alone = join(dir, 'alone');
  mkdirSync(alone);
  try {
    copyFileSync(FRONT, join(alone, 'gpuguard-front'));
    spawnSync('chmod', ['755', join(alone, 'gpuguard-front')]);
    for (const face of ['docker', 'docker-compose', 'runc', 'gpuguard-runc']) symlinkSync('gpuguard-front', join(alone, face));
  } catch {
    /* FRONT missing: each test says so */
  }
  // The stand-in real tool: reports $0, argv, descriptors and environment into $REPORT.
  report = join(dir, 'report-tool');
  writeFileSync(report, `#!/bin/sh\n{ echo "ARGV0 $0"; echo "ARGV $*"; for f in /proc/self/fd/*; do echo "FD $(basename $f) $(readlink $f)"; done; env | sed 's/^/ENV /'; } > "$REPORT"\n`, { mode: 0o755 });
});
after(() => {
  for (const p of policies) forgetCacheEntries(p);
  rmSync(dir, { recursive: true, force: true });
});

type Run = SpawnSyncReturns<string>;
function run(cmd: string, args: string[], env: Record<string, string>, opts: { fds?: number[]; cwd?: string; argv0?: string } = {}): Run {
  const stdio = ['ignore', 'pipe', 'pipe', ...(opts.fds ?? [])];
  return spawnSync(cmd, args, { env, stdio: stdio as never, encoding: 'utf8', timeout: 20_000, cwd: opts.cwd ?? dir, ...(opts.argv0 ? { argv0: opts.argv0 } : {}) });
}

function readReport(file: string) {
  const lines = readFileSync(file, 'utf8').split('\n');
  const get = (p: string) => lines.filter((l) => l.startsWith(p)).map((l) => l.slice(p.length));
  return {
    argv0: get('ARGV0 ')[0],
    argv: get('ARGV ')[0],
    fds: new Map(get('FD ').map((l) => l.split(' ') as [string, string])),
    env: new Map(get('ENV ').map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)] as [string, string])),
  };
}

/** Two extra descriptors (3 and 4) for the child. */
function twoFds(): { fds: number[]; files: string[]; close: () => void } {
  const files = [join(dir, `fd-a-${Date.now()}`), join(dir, `fd-b-${Date.now()}`)];
  for (const f of files) writeFileSync(f, 'x');
  const fds = files.map((f) => openSync(f, 'r'));
  return { fds, files, close: () => fds.forEach((fd) => closeSync(fd)) };
}

test('pass-through by the front alone: real docker, runc and docker-compose answer, byte for byte', (t) => {
  if (missing(t, { files: [FRONT, '/usr/bin/docker'], commands: ['runc'] })) return;
  const env = { PATH: `${alone}:/usr/sbin:/usr/bin:/sbin:/bin` };
  for (const [face, args, real] of [
    ['docker', ['--version'], '/usr/bin/docker'],
    ['docker', ['version', '--format', '{{.Client.Version}}'], '/usr/bin/docker'],
    ['runc', ['--version'], which('runc')!],
    ['gpuguard-runc', ['features'], which('runc')!],
  ] as const) {
    const via = run(join(alone, face), [...args], env);
    const direct = run(real, [...args], env);
    assert.equal(via.status, direct.status, `${face} ${args.join(' ')}: ${via.stderr}`);
    assert.equal(via.stdout, direct.stdout, `${face} ${args.join(' ')}`);
    assert.doesNotMatch(via.stderr, /gpuguard/);
  }
  if (which('docker-compose')) {
    const v = run(join(alone, 'docker-compose'), ['version', '--short'], env);
    assert.equal(v.stdout, run(which('docker-compose')!, ['version', '--short'], env).stdout, v.stderr);
  }
});

test('docker pass-through: argv (argv[0] too), every environment variable and descriptors 3, 4 reach the real CLI', (t) => {
  if (missing(t, { files: [FRONT] })) return;
  const out = join(dir, 'report-docker');
  const extra = twoFds();
  const env = { PATH: '/usr/bin:/bin', GPUGUARD_REAL_DOCKER: report, REPORT: out, LISTEN_FDS: '2', LISTEN_PID: '1', NOTIFY_SOCKET: '/run/notify.sock', ODD: 'a b\tc=d', EMPTY: '' };
  const args = ['--log-level', 'debug', 'image', 'ls', '--format', '{{.ID}} {{.Repository}}', '', 'é'];
  const r = run(join(alone, 'docker'), args, env, { fds: extra.fds, argv0: 'docker' });
  extra.close();
  assert.equal(r.status, 0, r.stderr);
  const rep = readReport(out);
  assert.equal(rep.argv, args.join(' '));
  assert.equal(rep.fds.get('3'), extra.files[0]);
  assert.equal(rep.fds.get('4'), extra.files[1]);
  for (const [k, v] of Object.entries(env)) assert.equal(rep.env.get(k), v, k);
  const extraVars = [...rep.env.keys()].filter((k) => !(k in env) && !['PWD', 'SHLVL', '_'].includes(k));
  assert.deepEqual(extraVars, [], 'nothing added to the environment');
  // argv[0] as given: busybox picks its applet by it (a script cannot tell, the kernel names it).
  if (missing(t, { files: ['/bin/busybox'] })) return;
  for (const argv0 of ['docker', join(alone, 'docker')]) {
    const b = run(join(alone, 'docker'), ['--version'], { PATH: '/usr/bin:/bin', GPUGUARD_REAL_DOCKER: '/bin/busybox' }, { argv0 });
    assert.equal(b.stderr, `${argv0.split('/').pop()}: applet not found\n`, argv0);
  }
});

test('runtime pass-through: argv exact, --preserve-fds and LISTEN_FDS descriptors, NOTIFY_SOCKET reach the real runtime', (t) => {
  if (missing(t, { files: [FRONT] })) return;
  const out = join(dir, 'report-runtime');
  for (const args of [
    ['--root', join(dir, 'root'), '--log', join(dir, 'log.json'), '--log-format', 'json', 'exec', '--process', '/p.json', '--detach', '--preserve-fds', '2', 'c1'],
    ['--root', join(dir, 'root'), 'start', 'c1'],
    ['--systemd-cgroup', 'delete', '--force', 'c1'],
  ]) {
    const extra = twoFds();
    const env = { PATH: '/usr/bin:/bin', GPUGUARD_REAL_RUNTIME: report, REPORT: out, LISTEN_FDS: '2', LISTEN_PID: '1', NOTIFY_SOCKET: '/run/notify.sock', XDG_RUNTIME_DIR: '/run/user/0' };
    const r = run(join(alone, 'gpuguard-runc'), args, env, { fds: extra.fds });
    extra.close();
    assert.equal(r.status, 0, r.stderr);
    const rep = readReport(out);
    assert.equal(rep.argv, args.join(' '));
    assert.equal(rep.fds.get('3'), extra.files[0], args.join(' '));
    assert.equal(rep.fds.get('4'), extra.files[1], args.join(' '));
    for (const [k, v] of Object.entries(env)) assert.equal(rep.env.get(k), v, k);
  }
});

test('routed calls go to gpuguard: with none beside the front, one line and exit 127 (runc: also a JSON line in --log), no hang', (t) => {
  if (missing(t, { files: [FRONT] })) return;
  const env = { PATH: '/usr/sbin:/usr/bin:/bin' };
  for (const [face, args] of [
    ['docker', ['run', '--rm', 'bb', 'true']],
    ['docker', ['-H', 'unix:///x.sock', 'container', 'stop', 'c1']],
    ['docker', ['compose', 'up', '-d']],
    ['docker-compose', ['-f', 'x.yml', 'up']],
    ['runc', ['create', '--bundle', dir, 'c1']],
  ] as const) {
    const r = run(join(alone, face), [...args], env);
    assert.equal(r.error, undefined, 'no hang');
    assert.equal(r.status, 127, `${face} ${args.join(' ')}`);
    assert.equal(r.stderr, `gpuguard: cannot start gpuguard beside its front: No such file or directory\n`);
  }
  const log = join(dir, 'front-log.json');
  run(join(alone, 'runc'), ['--log', log, '--log-format', 'json', 'run', '-d', 'c2'], env);
  const entry = JSON.parse(readFileSync(log, 'utf8').trim());
  assert.equal(entry.level, 'error');
  assert.match(entry.msg, /^gpuguard: cannot start gpuguard beside its front/);
  // Installed beside gpuguard, the same calls reach it (it answers usage errors in its own words).
  const faces = join(dir, 'faces');
  mkdirSync(faces, { recursive: true });
  const docker = installFace(faces, 'docker-compose');
  const r = run(docker, ['-f'], env);
  assert.match(r.stderr, /^gpuguard: compose option -f needs a value/);
});

test('loops: the real tool set to the front itself, or PATH holding only fronts and copies of fronts, never hang', (t) => {
  if (missing(t, { files: [FRONT, BINARY, '/usr/bin/docker'] })) return;
  const faces = join(dir, 'loop-faces');
  mkdirSync(faces, { recursive: true });
  const docker = installFace(faces, 'docker');
  const runc = installFace(faces, 'runc');
  for (const [cmd, env, want] of [
    [docker, { PATH: '/usr/bin:/bin', GPUGUARD_REAL_DOCKER: docker, GPUGUARD_POLICY: '/nonexistent.yaml' }, /is gpuguard itself, which would loop/],
    [docker, { PATH: '/usr/bin:/bin', GPUGUARD_REAL_DOCKER: join(alone, 'docker'), GPUGUARD_POLICY: '/nonexistent.yaml' }, /is gpuguard itself, which would loop/],
    [runc, { PATH: '/usr/bin:/bin', GPUGUARD_REAL_RUNTIME: runc }, /is this wrapper itself/],
    [join(alone, 'docker'), { PATH: alone }, /cannot start gpuguard beside its front/],
  ] as const) {
    const r = run(cmd, ['--version'], env);
    assert.equal(r.error, undefined, 'no hang');
    assert.notEqual(r.status, 0);
    assert.match(r.stderr, want);
    assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
  }
  // Two copies of the front, each first on the other's PATH: both skip fronts and find the real CLI.
  const copy = join(dir, 'copy');
  mkdirSync(copy);
  copyFileSync(join(alone, 'gpuguard-front'), join(copy, 'docker'));
  spawnSync('chmod', ['755', join(copy, 'docker')]);
  const r = run(join(alone, 'docker'), ['--version'], { PATH: `${copy}:${alone}:/usr/bin:/bin` });
  assert.equal(r.error, undefined, 'no hang');
  assert.equal(r.stdout, run('/usr/bin/docker', ['--version'], {}).stdout, r.stderr);
});

test('PATH: relative entries are never searched (the runtime runs as root in the bundle directory)', (t) => {
  if (missing(t, { files: [FRONT] })) return;
  const cwd = join(dir, 'cwd');
  mkdirSync(cwd, { recursive: true });
  const planted = join(dir, 'planted-report');
  for (const name of ['runc', 'docker']) writeFileSync(join(cwd, name), `#!/bin/sh\necho planted > ${planted}\n`, { mode: 0o755 });
  for (const [face, args] of [['runc', ['state', 'x']], ['docker', ['--version']]] as const) {
    rmSync(planted, { force: true });
    const r = run(join(alone, face), [...args], { PATH: `.:bin:/usr/sbin:/usr/bin:/bin`, GPUGUARD_POLICY: '/nonexistent.yaml' }, { cwd });
    assert.equal(r.error, undefined);
    assert.equal(readFileOr(planted), undefined, `${face}: ./${face} was run`);
  }
});

function readFileOr(p: string): string | undefined {
  try {
    return readFileSync(p, 'utf8');
  } catch {
    return undefined;
  }
}

test("runtime: the policy's realPath from root's cache entry when fresh and root-owned; otherwise gpuguard decides", (t) => {
  if (missing(t, { root: true, files: [FRONT] })) return;
  const policy = join(dir, 'runtime-policy.yaml');
  policies.push(policy);
  writeFileSync(policy, `version: 1\nruntime: {realPath: ${report}}\n`);
  const out = join(dir, 'report-cached');
  const env = { PATH: '/usr/sbin:/usr/bin:/bin', GPUGUARD_POLICY: policy, REPORT: out };
  const state = () => {
    rmSync(out, { force: true });
    return run(join(alone, 'runc'), ['state', 'c1'], env);
  };
  rememberPolicyRealPath(policy, report);
  const hit = state();
  assert.equal(hit.status, 0, hit.stderr);
  assert.equal(readReport(out).argv, 'state c1', 'the cached realPath ran');
  // The policy changed since the entry: the front does not trust it, gpuguard (absent here) would refresh it.
  utimesSync(policy, new Date(), new Date(Date.now() + 5000));
  const stale = state();
  assert.equal(stale.status, 127);
  assert.match(stale.stderr, /cannot start gpuguard beside its front/);
  // A fresh entry that root does not own: not trusted either.
  rememberPolicyRealPath(policy, report);
  assert.equal(state().status, 0);
  lchownSync(cacheEntryPath(policy, CACHE_DIR), 65534, 65534);
  assert.equal(state().status, 127, 'an entry owned by nobody is ignored');
  // No policy file at all: runc from PATH, no cache needed.
  const none = run(join(alone, 'runc'), ['--version'], { PATH: '/usr/sbin:/usr/bin:/bin', GPUGUARD_POLICY: join(dir, 'absent.yaml') });
  assert.equal(none.status, 0, none.stderr);
  assert.match(none.stdout, /^runc version/);
});
