/**
 * The decider (src/decider) against a private dockerd, asked by the native
 * front as real users. Two faces: `full/docker` is the front with gpuguard
 * beside it and no decider (GPUGUARD_DECIDER empty: the shim decides, as
 * before); `alone/docker` is a copy of the front with no gpuguard beside it,
 * so that a call the decider declines fails with "cannot start gpuguard
 * beside its front" (exit 127) — every answer that reaches docker through
 * `alone` is the decider's. The same lines through both must come out the
 * same: exit code, stderr, stdout, and what the created container is.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { BINARY, FRONT, IS_ROOT, ensureTestUsers, installFace, missing, run, runAs, startDockerd, type PrivateDockerd } from '../harness/index.ts';

let d: PrivateDockerd | undefined;
let dir: string;
let socket: string;
let decider: ChildProcess | undefined;
let env: Record<string, string>;
let full: string;
let alone: string;
let events: string;
let bobs: string;
const home = '/home/alice';
const work = join(home, 'gg-decider');

const POLICY = (log: string) => `version: 1
labelPrefix: ds01
admins: ["@ds01-admin"]
defaults: {group: students}
groups:
  students:
    members: ["@gg-students"]
    limits: {cpus: 1, memory: 256m, pids: 512, containers: 4}
cgroup: {parent: "/ds01/{group}/{user}"}
security:
  privileged: false
  capAdd: [SYS_PTRACE]
  binds: ["{home}"]
events: {log: ${log}}
`;

function startDecider(policy: string): Promise<ChildProcess> {
  const p = spawn(BINARY, ['decider', '--listen', socket, '--docker-socket', d!.socket], { env: { PATH: process.env.PATH ?? '/usr/bin:/bin', GPUGUARD_POLICY: policy }, stdio: ['ignore', 'ignore', 'pipe'] });
  return new Promise((resolve, reject) => {
    let err = '';
    p.stderr!.on('data', (c: Buffer) => {
      err += c.toString();
      if (err.includes('listening on')) resolve(p);
    });
    p.once('exit', (code) => reject(new Error(`decider exited ${code}: ${err}`)));
  });
}

before(async () => {
  if (!IS_ROOT) return;
  ensureTestUsers();
  d = await startDockerd({ socketGroup: 'gg-docker' });
  dir = mkdtempSync('/tmp/gg-decider-');
  chmodSync(dir, 0o755);
  mkdirSync(join(dir, 'full'));
  mkdirSync(join(dir, 'alone'));
  mkdirSync(join(dir, 'run'), { mode: 0o755 });
  full = installFace(join(dir, 'full'), 'docker');
  alone = join(dir, 'alone/docker');
  copyFileSync(FRONT, alone);
  chmodSync(alone, 0o755);
  socket = join(dir, 'run/decider.sock');
  events = join(dir, 'events.jsonl');
  writeFileSync(events, '');
  chmodSync(events, 0o666);
  writeFileSync(join(dir, 'policy.yaml'), POLICY(events));
  writeFileSync(join(dir, 'other.yaml'), 'version: 1\n');
  rmSync(work, { recursive: true, force: true });
  mkdirSync(join(work, 'data'), { recursive: true });
  symlinkSync('/etc', join(work, 'etc-link'));
  writeFileSync(join(work, 'labels.txt'), 'x=1\n');
  await run('chown', ['-R', 'alice:', work]);
  decider = await startDecider(join(dir, 'policy.yaml'));
  env = { ...d.clientEnv, GPUGUARD_REAL_DOCKER: d.realDocker, HOME: home, PATH: '/usr/sbin:/usr/bin:/sbin:/bin', GPUGUARD_POLICY: join(dir, 'policy.yaml') };
  const b = await d.docker(['create', '--name', 'gg-bobs', '--label', 'ds01.user=bob', 'bb', 'sleep', '60']);
  assert.equal(b.code, 0, b.stderr);
  bobs = b.stdout.trim();
});

after(async () => {
  decider?.kill('SIGTERM');
  await d?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
  rmSync(work, { recursive: true, force: true });
});

const skip = (t: Parameters<typeof missing>[0]) => missing(t, { root: true, commands: ['dockerd', 'runuser'] });
const viaShim = (args: string[], extra: Record<string, string> = {}, user = 'alice', cwd = work) => runAs(user, full, args, { env: { ...env, GPUGUARD_DECIDER: '', ...extra }, extendEnv: false, cwd });
const viaDecider = (args: string[], extra: Record<string, string> = {}, user = 'alice', cwd = work) => runAs(user, alone, args, { env: { ...env, GPUGUARD_DECIDER: socket, ...extra }, extendEnv: false, cwd });
const DECLINED = /cannot start gpuguard beside its front/;

async function removeAlices() {
  const ids = (await d!.docker(['ps', '-aq', '--filter', 'label=ds01.user=alice'])).stdout.split('\n').filter(Boolean);
  if (ids.length) await d!.docker(['rm', '-f', ...ids]);
}

/** What a created container is, as far as gpuguard decides it (the creation time label aside). */
async function shapeOf(id: string) {
  const r = await d!.docker(['inspect', id]);
  assert.equal(r.code, 0, r.stderr);
  const [c] = JSON.parse(r.stdout) as [{ Config: { Labels: Record<string, string> }; HostConfig: Record<string, unknown> }];
  const { ['ds01.created_at']: _, ...labels } = c.Config.Labels;
  const h = c.HostConfig;
  return { labels, host: [h.CgroupParent, h.NanoCpus, h.Memory, h.PidsLimit, h.Privileged, h.Binds, h.CapAdd] };
}

const normal = (s: string) => s.replace(/[0-9a-f]{64}/g, 'ID').replace(/\/tmp\/gg-decider-\w+/g, 'DIR');

test('the decider answers every line as the shim does: exit code, stderr, stdout and the container made', async (t) => {
  if (skip(t)) return;
  const lines: string[][] = [
    ['create', 'bb', 'true'],
    ['create', '--cpus', '0.5', '--memory', '64m', 'bb', 'true'],
    ['create', '-v', `${work}/data:/data`, '--cap-add', 'SYS_PTRACE', 'bb', 'true'],
    ['create', '--privileged', 'bb', 'true'],
    ['create', '-v', '/etc:/x', 'bb', 'true'],
    ['create', '--mount', `type=bind,source=${work}/etc-link,target=/x`, 'bb', 'true'],
    ['create', '--label', 'ds01.user=bob', 'bb', 'true'],
    ['create', '--cap-add', 'SYS_ADMIN', 'bb', 'true'],
    ['container', 'create', '--name', 'gg-dec-a', 'bb', 'true'],
    ['run', '--rm', 'bb', 'echo', 'hello'],
    ['create', '--bogus-flag', 'bb', 'true'],
    ['logs', 'gg-bobs'],
    ['stop', 'gg-bobs'],
    ['rm', bobs.slice(0, 12)],
    ['inspect', '--format', '{{.Name}}', 'gg-bobs'],
    ['--help'],
  ];
  for (const line of lines) {
    await removeAlices();
    const shim = await viaShim(line);
    assert.ok(shim.code >= 0 && !DECLINED.test(shim.stderr), `${line.join(' ')}: the shim did not run: ${shim.stderr}`);
    const shimMade = shim.code === 0 && /^[0-9a-f]{64}\n$/.test(shim.stdout) ? await shapeOf(shim.stdout.trim()) : undefined;
    await removeAlices();
    const dec = await viaDecider(line);
    assert.doesNotMatch(dec.stderr, DECLINED, `the decider declined: ${line.join(' ')}`);
    assert.equal(dec.code, shim.code, `${line.join(' ')}: exit code\nshim: ${shim.stderr}\ndecider: ${dec.stderr}`);
    assert.equal(normal(dec.stderr), normal(shim.stderr), `${line.join(' ')}: stderr`);
    if (shimMade) assert.deepEqual(await shapeOf(dec.stdout.trim()), shimMade, `${line.join(' ')}: the container`);
    else assert.equal(normal(dec.stdout), normal(shim.stdout), `${line.join(' ')}: stdout`);
  }
  // The refusals were refusals, through both (a line that did not reach the shim would have passed in both).
  for (const line of [lines[3]!, lines[4]!, lines[5]!, lines[6]!, lines[7]!]) assert.equal((await viaDecider(line)).code, 125, line.join(' '));
  assert.equal((await viaDecider(['stop', 'gg-bobs'])).code, 1);
  // The decider's event names the front's process and the user from the kernel.
  await removeAlices();
  const made = await viaDecider(['create', 'bb', 'true']);
  const last = JSON.parse(readFileSync(events, 'utf8').trim().split('\n').at(-1)!) as { user: string; decision: string; argv: string[] };
  assert.equal(made.code, 0, made.stderr);
  assert.deepEqual([last.user, last.decision, last.argv], ['alice', 'rewrite', ['docker', 'create', 'bb', 'true']]);
});

test('the container quota and docker ps: the same through the decider, and ps shows what was just made, renamed or removed', async (t) => {
  if (skip(t)) return;
  await removeAlices();
  for (let i = 0; i < 4; i++) assert.equal((await viaDecider(['create', '--name', `gg-q${i}`, 'bb', 'true'])).code, 0);
  const fifth = await viaDecider(['create', 'bb', 'true']);
  const fifthShim = await viaShim(['create', 'bb', 'true']);
  assert.equal(fifth.code, 125, fifth.stderr);
  assert.equal(fifth.stderr, fifthShim.stderr);
  assert.match(fifth.stderr, /limits\.containers|4 containers/);
  // (No CREATED/STATUS columns: "1 second ago" turns into "2 seconds ago" between the two.)
  for (const line of [['ps', '-a', '--format', 'table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.Names}}'], ['ps', '-aq'], ['ps', '-a', '--format', '{{.Names}}'], ['ps'], ['ps', '-a', '--filter', `id=${bobs}`]]) {
    const a = await viaDecider(line);
    const b = await viaShim(line);
    assert.equal(a.code, 0, a.stderr);
    assert.equal(normal(a.stdout), normal(b.stdout), line.join(' '));
  }
  assert.doesNotMatch((await viaDecider(['ps', '-a', '--format', '{{.Names}}'])).stdout, /gg-bobs/);
  await removeAlices();
  // Made, renamed and removed between two listings, each through the decider's copy of the list
  // (and one made by root directly, not through any face).
  for (let i = 0; i < 4; i++) {
    const id = (await viaDecider(['create', 'bb', 'true'])).stdout.trim();
    assert.match((await viaDecider(['ps', '-aq', '--no-trunc'])).stdout, new RegExp(id), `round ${i}: made`);
    assert.equal((await viaDecider(['rename', id, `gg-renamed${i}`])).code, 0);
    assert.match((await viaDecider(['ps', '-a', '--format', '{{.Names}}'])).stdout, new RegExp(`gg-renamed${i}`), `round ${i}: renamed`);
    assert.equal((await viaDecider(['rm', id])).code, 0);
    assert.doesNotMatch((await viaDecider(['ps', '-aq', '--no-trunc'])).stdout, new RegExp(id), `round ${i}: removed`);
  }
  const byRoot = (await d!.docker(['create', '--label', 'ds01.user=alice', 'bb', 'true'])).stdout.trim();
  assert.match((await viaDecider(['ps', '-aq', '--no-trunc'])).stdout, new RegExp(byRoot));
  await removeAlices();
});

test('24 docker ps at once through the front with gpuguard beside it: every answer right (the decider\'s, or gpuguard\'s where the decider is busy)', async (t) => {
  if (skip(t)) return;
  await removeAlices();
  for (let i = 0; i < 3; i++) assert.equal((await viaDecider(['create', '--name', `gg-par${i}`, 'bb', 'true'])).code, 0);
  const want = (await viaShim(['ps', '-aq'])).stdout.split('\n').filter(Boolean).sort();
  assert.equal(want.length, 3);
  // Through the front with gpuguard beside it: a call the decider turns away (busy) is decided by gpuguard instead.
  const all = await Promise.all(Array.from({ length: 24 }, () => runAs('alice', full, ['ps', '-aq'], { env: { ...env, GPUGUARD_DECIDER: socket }, extendEnv: false, cwd: work })));
  for (const r of all) {
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(r.stdout.split('\n').filter(Boolean).sort(), want);
  }
  await removeAlices();
});

test('dockerd restarts under the decider (its event subscription breaks): docker ps stays right at once and a second and a half later', async (t) => {
  if (skip(t)) return;
  await removeAlices();
  const before = (await viaDecider(['create', 'bb', 'true'])).stdout.trim();
  assert.match((await viaDecider(['ps', '-aq', '--no-trunc'])).stdout, new RegExp(before));
  await d!.restart();
  // At once (the subscription is down: the decider lists) and after it is back.
  for (const wait of [0, 1500]) {
    await new Promise((r) => setTimeout(r, wait));
    const id = (await viaDecider(['create', 'bb', 'true'])).stdout.trim();
    assert.match(id, /^[0-9a-f]{64}$/);
    const listed = (await viaDecider(['ps', '-aq', '--no-trunc'])).stdout;
    assert.match(listed, new RegExp(id), `after ${wait} ms`);
    assert.match(listed, new RegExp(before));
    assert.equal((await viaDecider(['rm', id])).code, 0);
    assert.doesNotMatch((await viaDecider(['ps', '-aq', '--no-trunc'])).stdout, new RegExp(id));
  }
  await removeAlices();
});

test('identity and place come from the kernel: GPUGUARD_USER, SUDO_USER and a claimed cwd change nothing', async (t) => {
  if (skip(t)) return;
  await removeAlices();
  const r = await viaDecider(['create', 'bb', 'true'], { GPUGUARD_USER: 'bob', SUDO_USER: 'bob', SUDO_UID: '1002', PWD: '/home/alice' });
  assert.equal(r.code, 0, r.stderr);
  assert.equal((await shapeOf(r.stdout.trim())).labels['ds01.user'], 'alice');
  // A relative bind is judged where the process is (/proc/PID/cwd), not where $PWD says.
  const rel = await viaDecider(['create', '--mount', 'type=bind,source=./etc,target=/x', 'bb', 'true'], { PWD: work }, 'alice', '/');
  assert.equal(rel.code, 125, rel.stderr);
  assert.match(rel.stderr, /\/etc/);
  const relShim = await viaShim(['create', '--mount', 'type=bind,source=./etc,target=/x', 'bb', 'true'], { PWD: work }, 'alice', '/');
  assert.equal(rel.stderr, relShim.stderr);
  await removeAlices();
});

test('what the decider does not serve goes to gpuguard as the user: GPU asks, files, compose, start, other daemons and policies, root', async (t) => {
  if (skip(t)) return;
  const declined: [string[], Record<string, string>?, string?][] = [
    [['create', '--gpus', '1', 'bb', 'true']],
    [['create', '--device', '/dev/nvidia0', 'bb', 'true']],
    [['create', '-e', 'NVIDIA_VISIBLE_DEVICES=0', 'bb', 'true']],
    [['create', '-e', 'NVIDIA_VISIBLE_DEVICES', 'bb', 'true'], { NVIDIA_VISIBLE_DEVICES: 'all' }],
    [['create', '--runtime', 'nvidia', 'bb', 'true']],
    [['create', '--device', 'nvidia.com/gpu=0', 'bb', 'true']],
    [['create', '--gpus', 'bogus=1', 'bb', 'true']],
    [['create', '--label-file', `${work}/labels.txt`, 'bb', 'true']],
    [['create', '--env-file', '/etc/shadow', 'bb', 'true']],
    [['compose', 'up']],
    [['start', 'gg-bobs']],
    [['exec', '--privileged', 'gg-bobs', 'true']],
    [['volume', 'create', 'v']],
    [['create', 'bb', 'true'], { GPUGUARD_POLICY: join(dir, 'other.yaml') }],
    [['create', 'bb', 'true'], { DOCKER_HOST: 'unix:///var/run/docker.sock' }],
    [['-H', 'unix:///tmp/elsewhere.sock', 'create', 'bb', 'true']],
    [['create', 'bb', 'true'], {}, 'root'],
  ];
  for (const [line, extra, user] of declined) {
    const r = await viaDecider(line, extra ?? {}, user ?? 'alice');
    assert.equal(r.code, 127, `${line.join(' ')} ${JSON.stringify(extra ?? {})}: ${r.stderr}`);
    assert.match(r.stderr, DECLINED);
  }
  // A caller in another mount namespace (a user namespace needs no privilege): its paths are not ours.
  const inNs = await runAs('alice', 'unshare', ['--user', '--mount', alone, 'create', 'bb', 'true'], { env: { ...env, GPUGUARD_DECIDER: socket }, extendEnv: false, cwd: work });
  assert.equal(inNs.code, 127, inNs.stderr);
  assert.match(inNs.stderr, DECLINED);
  // The controls: the same face answers lines that ask for no GPU, with NVIDIA_* only in the environment
  // (docker forwards no variable it is not told to), or another runtime (which the policy refuses).
  for (const [line, extra, code] of [[['create', 'bb', 'true'], {}, 0], [['create', 'bb', 'true'], { NVIDIA_VISIBLE_DEVICES: 'all' }, 0], [['create', '--runtime', 'runc', 'bb', 'true'], {}, 125]] as [string[], Record<string, string>, number][]) {
    await removeAlices();
    const r = await viaDecider(line, extra);
    assert.equal(r.code, code, `${line.join(' ')}: ${r.stderr}`);
    assert.doesNotMatch(r.stderr, DECLINED);
  }
  await removeAlices();
});

test('the socket answers nobody but a front: another program, or root, hears "self"', async (t) => {
  if (skip(t)) return;
  const ask = `import socket,sys\ns=socket.socket(socket.AF_UNIX)\ns.connect(sys.argv[1])\nb=b''\nwhile True:\n  c=s.recv(4096)\n  if not c: break\n  b+=c\nsys.stdout.write(b.decode().replace('\\0', '|'))\n`;
  const asAlice = await runAs('alice', 'python3', ['-c', ask, socket], { env: { PATH: '/usr/sbin:/usr/bin:/sbin:/bin' }, extendEnv: false });
  assert.equal(asAlice.stdout, 'self|not a docker call|');
  const asRoot = await run('python3', ['-c', ask, socket]);
  assert.match(asRoot.stdout, /^self\|root's identity/);
});

test('the decider refuses to start where it cannot be trusted, in one line', async (t) => {
  if (skip(t)) return;
  const asAlice = await runAs('alice', BINARY, ['decider', '--listen', join(dir, 'x.sock')], { env: { PATH: '/usr/sbin:/usr/bin:/sbin:/bin' }, extendEnv: false });
  assert.equal(asAlice.code, 1, asAlice.stderr);
  assert.match(asAlice.stderr, /^gpuguard: gpuguard decider runs as root/);
  const open = join(dir, 'open');
  mkdirSync(open, { mode: 0o777 });
  chmodSync(open, 0o777);
  const openDir = await run(BINARY, ['decider', '--listen', join(open, 'd.sock')], { timeout: 20_000 });
  assert.notEqual(openDir.code, 0, openDir.stderr);
  assert.match(openDir.stderr, /must be a directory owned by root and writable by root alone/);
  assert.equal(openDir.stderr.trim().split('\n').length, 1);
  const busy = await run(BINARY, ['decider', '--listen', socket], { timeout: 20_000 });
  assert.notEqual(busy.code, 0, busy.stderr);
  assert.match(busy.stderr, /is in use/);
  assert.ok(existsSync(socket), 'the running decider keeps its socket');
  const usage = await run(BINARY, ['decider', '--listen', 'relative.sock'], { timeout: 20_000 });
  assert.equal(usage.code, 2, usage.stderr);
});

test("doctor's decider check: ok while one answers at the installed path, a warning with the fix when none does", async (t) => {
  if (skip(t)) return;
  const root = join(dir, 'root');
  mkdirSync(join(root, 'run/gpuguard-decider'), { recursive: true, mode: 0o755 });
  const env: NodeJS.ProcessEnv = { PATH: process.env.PATH ?? '/usr/bin:/bin' };
  const check = async () => (JSON.parse((await run(BINARY, ['doctor', '--root', root, '--json'], { env, extendEnv: false })).stdout).checks as { check: string; status: string; fix?: string }[]).find((c) => c.check === 'decider')!;
  const none = await check();
  assert.equal(none.status, 'warn');
  assert.match(none.fix!, /systemctl enable --now gpuguard-decider\.service/);
  const p = spawn(BINARY, ['decider', '--listen', join(root, 'run/gpuguard-decider/decider.sock'), '--docker-socket', d!.socket], { stdio: 'ignore' });
  try {
    for (let i = 0; i < 100 && !existsSync(join(root, 'run/gpuguard-decider/decider.sock')); i++) await new Promise((r) => setTimeout(r, 50));
    assert.equal((await check()).status, 'ok');
  } finally {
    p.kill('SIGTERM');
  }
});
