/**
 * `gpuguard reap` and `gpuguard gpus`' GPU processes, end to end: the
 * compiled binary against a private dockerd, containers made by real unix
 * users through the shim (and one around it), a fake nvidia-smi whose
 * compute-apps query lists the host pids of real processes, windows of
 * seconds. What happened is read back from Docker and the event log.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  BINARY, IS_ROOT, countingProxy, ensureTestUsers, fakeNvidiaSmi, installFace, missing, run, runAs, setComputeApps, startDockerd, type PrivateDockerd,
} from '../harness/index.ts';

let d: PrivateDockerd | undefined;
let dir: string;
let shim: string;
let runDir: string;
let eventsLog: string;
const children: ChildProcess[] = [];

before(async () => {
  if (!IS_ROOT) return;
  ensureTestUsers();
  d = await startDockerd({ socketGroup: 'gg-docker', runtimes: { nvidia: { path: '/usr/sbin/runc' } } });
  dir = mkdtempSync('/tmp/gg-reap-');
  chmodSync(dir, 0o755);
  shim = installFace(dir, 'docker');
  runDir = join(dir, 'run');
  mkdirSync(runDir);
  chmodSync(runDir, 0o1777);
  eventsLog = join(dir, 'events.jsonl');
  writeFileSync(eventsLog, '');
  chmodSync(eventsLog, 0o666);
  writeFileSync(join(dir, 'notify'), `#!/bin/sh\nprintf '%s|%s\\n' "$1" "$2" >> ${dir}/notified\n`, { mode: 0o755 });
});

after(async () => {
  for (const c of children) c.kill('SIGKILL');
  await d?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A fake nvidia-smi in its own directory (so each test sets its own GPU processes). */
function smiFor(name: string, fixture: string): { smi: string; dir: string } {
  const sub = join(dir, `smi-${name}`);
  mkdirSync(sub);
  chmodSync(sub, 0o755);
  return { smi: fakeNvidiaSmi(sub, fixture), dir: sub };
}

const GROUPS = 'groups:\n  students:\n    members: ["@gg-students"]\n  researchers:\n    members: ["@gg-researchers"]\n';

function policy(name: string, body: string, groups = GROUPS): string {
  const path = join(dir, `${name}.yaml`);
  writeFileSync(path, `version: 1\nlabelPrefix: ds01\nadmins: ["@ds01-admin"]\ndefaults: {group: students}\n${groups}events: {log: ${eventsLog}}\n${body}`, { mode: 0o644 });
  chmodSync(path, 0o644);
  return path;
}

function envFor(policyPath: string, smi: string): Record<string, string> {
  return { ...d!.clientEnv, GPUGUARD_REAL_DOCKER: d!.realDocker, GPUGUARD_POLICY: policyPath, GPUGUARD_NVIDIA_SMI: smi, GPUGUARD_RUN_DIR: runDir, HOME: dir };
}

const reap = (env: Record<string, string>, state: string, extra: string[] = []) => run(BINARY, ['reap', '--state', state, ...extra], { env });

interface Event {
  time: string;
  face: string;
  decision: string;
  user: string;
  container?: string;
  rule?: string;
  reasons: string[];
  gpuReleased?: string[];
  [k: string]: unknown;
}
const events = (): Event[] => readFileSync(eventsLog, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as Event).filter((e) => e.face === 'reap');
const eventsFor = (name: string) => events().filter((e) => e.container === name);

async function state(ref: string): Promise<string> {
  const r = await d!.docker(['inspect', '-f', '{{.State.Status}}', ref]);
  return r.code === 0 ? r.stdout.trim() : 'gone';
}

async function startedAt(ref: string): Promise<number> {
  return Date.parse((await d!.docker(['inspect', '-f', '{{.State.StartedAt}}', ref])).stdout.trim());
}

async function rmAll(): Promise<void> {
  const ids = (await d!.docker(['ps', '-aq'])).stdout.split('\n').filter(Boolean);
  if (ids.length) await d!.docker(['rm', '-f', ...ids]);
}

test('windows of seconds: idle warned then stopped, busy until maxRuntime, stopped ones removed (volumes kept), exempt untouched; each in the event log', async (t) => {
  if (missing(t, { root: true, commands: ['dockerd', 'runuser'] })) return;
  const { smi } = smiFor('life', 'a100-7x1g');
  const env = envFor(policy('life', `lifecycle: {idleAfter: 5s, maxRuntime: 24s, removeStoppedAfter: 4s, warnBefore: 2s, stopTimeout: 1s, notify: [${dir}/notify]}\n`), smi);
  const stateFile = join(dir, 'life-state', 'reap.json');
  const as = (user: string, args: string[]) => runAs(user, shim, args, { env });
  for (const [user, args] of [
    ['alice', ['run', '-d', '--name', 'nb', 'bb', 'sleep', '600']],
    ['bob', ['run', '-d', '--name', 'crunch', 'bb', 'sh', '-c', 'while :; do :; done']],
    ['dsadmin', ['run', '-d', '--name', 'keep', '--label', 'ds01.lifecycle=exempt', 'bb', 'sleep', '600']],
    ['bob', ['run', '--name', 'done', '-v', 'bobdata:/data', 'bb', 'true']],
  ] as const) {
    const r = await as(user, [...args]);
    assert.equal(r.code, 0, `${args.join(' ')}: ${r.stderr}`);
  }
  // An image that says it is exempt proves nothing: the label must be set at create.
  const built = await d!.docker(['build', '-q', '-t', 'bb-exempt', '-'], { input: 'FROM bb\nLABEL ds01.lifecycle=exempt\n' });
  assert.equal(built.code, 0, built.stderr);
  assert.equal((await as('carol', ['run', '-d', '--name', 'sneaky', 'bb-exempt', 'sleep', '600'])).code, 0);
  const crunchStart = await startedAt('crunch');

  const deadline = Date.now() + 90_000;
  let summary = '';
  while (Date.now() < deadline) {
    const r = await reap(env, stateFile);
    assert.equal(r.code, 0, r.stderr + r.stdout);
    summary = r.stdout;
    if ((await state('crunch')) === 'exited' && (await state('nb')) === 'gone' && (await state('sneaky')) !== 'running') break;
    await sleep(700);
  }
  assert.equal(await state('crunch'), 'exited', summary);
  assert.equal(await state('keep'), 'running', 'exempt: untouched');
  assert.deepEqual(eventsFor('keep'), []);

  // nb: idle → warned (and alice notified) → stopped after idleAfter → removed after removeStoppedAfter.
  // (on a slow machine nb may live long enough to be warned of maxRuntime too: not what is tested here)
  const nb = eventsFor('nb').filter((e) => !(e.decision === 'warn' && e.rule === 'lifecycle.maxRuntime'));
  assert.deepEqual(nb.map((e) => `${e.decision}:${e.rule}`), ['warn:lifecycle.idleAfter', 'stop:lifecycle.idleAfter', 'warn:lifecycle.removeStoppedAfter', 'remove:lifecycle.removeStoppedAfter']);
  assert.ok(nb.every((e) => e.user === 'alice' && e.uid !== undefined && e.containerId));
  assert.match(nb[1]!.reasons[0]!, /^idle since \S+ \((\d+)s; idleAfter 5s\): CPU \d+\.\d% of a core over \d+s; warned at /);
  const idleFor = Number(/\((\d+)s; idleAfter/.exec(nb[1]!.reasons[0]!)![1]);
  assert.ok(idleFor >= 5, `stopped after ${idleFor}s idle`);
  assert.ok(Date.parse(nb[1]!.time) - Date.parse(nb[0]!.time) >= 2000, 'the notice (warnBefore 2s) was given in full');
  const notified = readFileSync(join(dir, 'notified'), 'utf8');
  assert.match(notified, /^alice\|your container nb will be stopped at \S+ \(in \d+s\): idle since /m);
  assert.match(notified, /^alice\|your stopped container nb will be removed at /m);

  // crunch: never idle, stopped by maxRuntime, not before it.
  const crunch = eventsFor('crunch');
  assert.deepEqual(crunch.filter((e) => e.decision === 'stop').map((e) => e.rule), ['lifecycle.maxRuntime']);
  assert.ok(!crunch.some((e) => e.rule === 'lifecycle.idleAfter'), 'a CPU-busy container is never idle');
  const stop = crunch.find((e) => e.decision === 'stop')!;
  assert.ok(Date.parse(stop.time) - crunchStart >= 24_000, `stopped ${Date.parse(stop.time) - crunchStart} ms after its start`);
  assert.match(stop.reasons[0]!, /^running since \S+ \(\d+s; maxRuntime 24s\); warned at /);

  // done: stopped from the start; removed, its named volume kept.
  assert.equal(await state('done'), 'gone');
  assert.deepEqual(eventsFor('done').map((e) => e.decision), ['warn', 'remove']);
  assert.equal((await d!.docker(['volume', 'inspect', 'bobdata'])).code, 0, 'named volume kept');
  assert.ok(eventsFor('sneaky').some((e) => e.decision === 'stop'), 'an image label is not an exemption');

  // The state file is root's, 0600; the summary counted the API calls to read.
  const st = statSync(stateFile);
  assert.deepEqual([st.uid, st.mode & 0o777], [0, 0o600]);
  assert.match(summary, /; 3 Docker API calls to read$/m);
  await rmAll();
});

test('Docker API calls to decide do not grow with the containers on the host (counted by a proxy): no inspect, owners from the list', async (t) => {
  if (missing(t, { root: true, commands: ['dockerd', 'runuser'] })) return;
  const { smi } = smiFor('count', 'a100-7x1g');
  const proxy = await countingProxy(d!.socket, join(dir, 'count.sock'));
  try {
    const env = { ...envFor(policy('count', 'lifecycle: {removeStoppedAfter: 1d, idleAfter: 1d}\n'), smi), DOCKER_HOST: `unix://${proxy.socket}` };
    const stateFile = join(dir, 'count-state', 'reap.json');
    assert.equal((await runAs('alice', shim, ['run', '-d', '--name', 'c0', 'bb', 'sleep', '600'], { env: { ...env, DOCKER_HOST: d!.host } })).code, 0);
    for (let i = 1; i < 3; i++) assert.equal((await d!.docker(['create', '--name', `c${i}`, 'bb'])).code, 0);
    const counted = async (n: number) => {
      proxy.calls.length = 0;
      const r = await reap(env, stateFile, ['--json']);
      assert.equal(r.code, 0, r.stderr);
      const j = JSON.parse(r.stdout);
      assert.equal(j.containers.length, n);
      assert.equal(j.recordsFromApi, 0, 'every record from dockerd\'s files');
      assert.equal(j.containers.find((c: { name: string }) => c.name === 'c0').owner, 'alice');
      return proxy.calls.map((c) => `${c.method} ${c.path}`).sort();
    };
    const few = await counted(3);
    for (let i = 3; i < 23; i++) assert.equal((await d!.docker(['create', '--name', `c${i}`, 'bb'])).code, 0);
    const many = await counted(23);
    assert.deepEqual(many, few);
    assert.deepEqual(few, ['GET /containers/json?all=1', 'GET /images/json?all=1', 'GET /info']);
  } finally {
    await proxy.close();
    await rmAll();
  }
});

test('--dry-run changes nothing and says what it would do; reap is root\'s; bad arguments are refused', async (t) => {
  if (missing(t, { root: true, commands: ['dockerd', 'runuser'] })) return;
  const { smi } = smiFor('dry', 'a100-7x1g');
  const env = envFor(policy('dry', 'lifecycle: {maxRuntime: 1s, removeStoppedAfter: 1s}\n'), smi);
  assert.equal((await d!.docker(['run', '-d', '--name', 'old', 'bb', 'sleep', '600'])).code, 0);
  assert.equal((await d!.docker(['run', '--name', 'stale', 'bb', 'true'])).code, 0);
  await sleep(1500);
  const stateFile = join(dir, 'dry-state', 'reap.json');
  const before = readFileSync(eventsLog, 'utf8');
  const r = await reap(env, stateFile, ['--dry-run']);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^reap: would stop old \(\w{12}, owner unknown\): running since \S+ \(\ds; maxRuntime 1s\)$/m);
  assert.match(r.stdout, /^reap: would remove stale \(\w{12}, owner unknown\): stopped since /m);
  assert.match(r.stdout, /\(dry run: nothing changed\)/);
  assert.deepEqual([await state('old'), await state('stale')], ['running', 'exited']);
  assert.equal(readFileSync(eventsLog, 'utf8'), before, 'no event');
  assert.equal(existsSync(stateFile), false, 'no state written');
  const j = JSON.parse((await reap(env, stateFile, ['--dry-run', '--json'])).stdout);
  assert.equal(j.dryRun, true);
  assert.deepEqual(j.containers.map((c: { name: string; action: string; applied: boolean }) => `${c.name}:${c.action}:${c.applied}`).sort(), ['old:stop:false', 'stale:remove:false']);

  // mode audit: the events say what would be done, once; nothing is done.
  const auditEnv = envFor(policy('audit', 'mode: audit\nlifecycle: {maxRuntime: 1s, removeStoppedAfter: 1s}\n'), smi);
  const auditState = join(dir, 'audit-state', 'reap.json');
  for (let i = 0; i < 3; i++) {
    const a = await reap(auditEnv, auditState);
    assert.equal(a.code, 0, a.stderr);
    if (i === 0) assert.match(a.stdout, /^reap: audit: would stop old /m);
  }
  const audited = events().filter((e) => e.audit === true);
  assert.deepEqual(audited.map((e) => `${e.container}:${e.decision}`).sort(), ['old:stop', 'stale:remove']);
  assert.deepEqual([await state('old'), await state('stale')], ['running', 'exited']);

  // API mode: without DOCKER_HOST the reaper asks dockerd's own socket (api.upstream), not the face on /var/run/docker.sock.
  const upstreamEnv: Record<string, string> = { ...envFor(policy('upstream', `lifecycle: {maxRuntime: 1s}\napi: {upstream: ${d!.socket}}\n`), smi) };
  delete upstreamEnv.DOCKER_HOST;
  const viaUpstream = await run(BINARY, ['reap', '--dry-run', '--state', stateFile], { env: upstreamEnv, extendEnv: false });
  assert.equal(viaUpstream.code, 0, viaUpstream.stderr);
  assert.match(viaUpstream.stdout, /^reap: would stop old /m);

  const asAlice = await runAs('alice', BINARY, ['reap', '--dry-run'], { env });
  assert.equal(asAlice.code, 1);
  assert.match(asAlice.stderr, /^gpuguard: gpuguard reap stops other users' containers .*: run it as root/);
  const bad = await reap(env, stateFile, ['--now']);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /^gpuguard: reap: unknown argument "--now"/);
  const badPolicy = await reap({ ...env, GPUGUARD_POLICY: policy('bad', 'lifecycle: {maxRuntime: 7}\n') }, stateFile);
  assert.equal(badPolicy.code, 2);
  assert.match(badPolicy.stderr, /bad\.yaml:\d+:\d+: lifecycle\.maxRuntime: expected a whole number above 0 with a unit/);
  await rmAll();
});

test('a GPU container with a process on its device stays; with none for idleAfter it is stopped, and its device is free for another user after holdAfterStop', async (t) => {
  if (missing(t, { root: true, commands: ['dockerd', 'runuser'] })) return;
  const { smi, dir: smiDir } = smiFor('gpu', 'a100-1x7g');
  const env = envFor(policy('gpu', 'gpu: {holdAfterStop: 4s}\nlifecycle: {idleAfter: 3s, stopTimeout: 1s}\n', 'groups:\n  students:\n    members: ["@gg-students"]\n    gpus: {max: 1, fullGpu: false}\n'), smi);
  const slice = 'MIG-f3041526-3748-5950-bb1c-2d3e4f5a6b7c';
  const a = await runAs('alice', shim, ['run', '-d', '--name', 'jup', '--gpus', '1', 'bb', 'sleep', '600'], { env });
  assert.equal(a.code, 0, a.stderr);
  const refused = await runAs('bob', shim, ['create', '--gpus', '1', 'bb'], { env });
  assert.equal(refused.code, 125, 'the only slice is alice\'s');
  const pid = Number((await d!.docker(['inspect', '-f', '{{.State.Pid}}', 'jup'])).stdout.trim());
  // nvidia-smi (on MIG, naming the physical GPU) lists her container's process: busy, however idle its CPU.
  setComputeApps(smiDir, [[pid, 'GPU-e2f30415-2637-4849-aa0b-1c2d3e4f5a6b', '[N/A]']]);
  const stateFile = join(dir, 'gpu-state', 'reap.json');
  for (let i = 0; i < 8; i++) {
    const r = await reap(env, stateFile, ['--json']);
    assert.equal(r.code, 0, r.stderr);
    const c = JSON.parse(r.stdout).containers.find((x: { name: string }) => x.name === 'jup');
    if (i > 0) assert.deepEqual([c.activity.state, c.activity.gpuProcesses, c.action], ['busy', 1, 'none'], JSON.stringify(c));
    await sleep(600);
  }
  assert.equal(await state('jup'), 'running');
  // The process ends: no process on its device for idleAfter → stopped.
  setComputeApps(smiDir, []);
  let stoppedAt = 0;
  for (let i = 0; i < 40 && !stoppedAt; i++) {
    const r = await reap(env, stateFile);
    assert.equal(r.code, 0, r.stderr);
    if ((await state('jup')) === 'exited') stoppedAt = Date.now();
    else await sleep(500);
  }
  assert.ok(stoppedAt, 'stopped');
  const ev = eventsFor('jup').find((e) => e.decision === 'stop')!;
  assert.match(ev.reasons[0]!, /^idle since \S+ \(\d+s; idleAfter 3s\): no GPU process, CPU /);
  assert.deepEqual(ev.gpuReleased, [slice]);
  assert.ok(typeof ev.gpuFreeAt === 'string');
  // Held for holdAfterStop (a docker start would find it), then bob's.
  const held = await runAs('bob', shim, ['create', '--gpus', '1', 'bb'], { env });
  assert.equal(held.code, 125, held.stderr);
  await sleep(Math.max(0, Date.parse(ev.gpuFreeAt as string) - Date.now()) + 500);
  const b = await runAs('bob', shim, ['run', '-d', '--name', 'bobs', '--gpus', '1', 'bb', 'sleep', '600'], { env });
  assert.equal(b.code, 0, b.stderr);
  const ids = JSON.parse((await d!.docker(['inspect', '-f', '{{json .HostConfig.DeviceRequests}}', 'bobs'])).stdout)[0].DeviceIDs;
  assert.deepEqual(ids, [slice]);
  await rmAll();
});

/** Start a long-lived process as `user` on the host (setpriv execs, so the pid is the process's own). */
function hostProcessOf(user: string): number {
  const c = spawn('setpriv', [`--reuid=${user}`, `--regid=${user}`, '--init-groups', 'sleep', '300'], { stdio: 'ignore', detached: true });
  children.push(c);
  return c.pid!;
}

test('gpus --json names every GPU process: alice\'s in her container, bob\'s on the host (a conflict), an exited one apart', async (t) => {
  if (missing(t, { root: true, commands: ['dockerd', 'runuser', 'setpriv'] })) return;
  const { smi, dir: smiDir } = smiFor('attr', 'a100-nomig');
  const env = envFor(policy('attr', '', 'groups:\n  students:\n    members: ["@gg-students"]\n    gpus: {max: 1, fullGpu: true}\n'), smi);
  const a = await runAs('alice', shim, ['run', '-d', '--name', 'train', '--gpus', '1', 'bb', 'sh', '-c', 'sleep 600 & wait'], { env });
  assert.equal(a.code, 0, a.stderr);
  const gpu0 = 'GPU-1e2f3041-5263-4748-9aeb-d0e1f203142e';
  assert.deepEqual(JSON.parse((await d!.docker(['inspect', '-f', '{{json .HostConfig.DeviceRequests}}', 'train'])).stdout)[0].DeviceIDs, [gpu0]);
  const id = (await d!.docker(['inspect', '-f', '{{.Id}}', 'train'])).stdout.trim();
  // The host pid of the `sleep` inside alice's container (a child of its init), found through the container's cgroup.
  const top = await d!.docker(['top', 'train', '-eo', 'pid,comm']);
  const inner = Number(top.stdout.split('\n').find((l) => / sleep$/.test(l))!.trim().split(/\s+/)[0]);
  const bobs = hostProcessOf('bob');
  const gone = spawn('true');
  await new Promise((r) => gone.on('exit', r));
  await sleep(200);
  setComputeApps(smiDir, [[inner, gpu0, 18432], [bobs, gpu0, 1024], [gone.pid!, 'GPU-2f304152-6374-4859-abfc-e1f20314253f', '[N/A]']]);
  const r = await runAs('alice', BINARY, ['gpus', '--json'], { env });
  assert.equal(r.code, 0, r.stderr);
  const j = JSON.parse(r.stdout);
  assert.deepEqual(j.processes, [
    { pid: inner, gpu: gpu0, slot: '0', usedMiB: 18432, startTime: j.processes[0].startTime, user: 'alice', uid: Number((await run('id', ['-u', 'alice'])).stdout), where: 'container', id, name: 'train', conflict: false, conflictWith: [] },
    { pid: bobs, gpu: gpu0, slot: '0', usedMiB: 1024, startTime: j.processes[1].startTime, user: 'bob', uid: Number((await run('id', ['-u', 'bob'])).stdout), where: 'host', id: null, name: null, conflict: true, conflictWith: ['train'] },
  ]);
  assert.deepEqual(j.exited, [gone.pid]);
  const text = await run(BINARY, ['gpus'], { env });
  const lines = text.stdout.split('\n');
  const row = lines.findIndex((l) => new RegExp(`^0 +${gpu0} `).test(l));
  assert.match(lines[row]!, /alice +train +running/);
  assert.equal(lines[row + 1], `  └ pid ${inner}  alice  container train  18432 MiB`);
  assert.equal(lines[row + 2], `  └ pid ${bobs}  bob  host process  1024 MiB  CONFLICT: the GPU is allocated to train`);
  assert.match(text.stdout, /^2 GPU process\(es\), 1 host process\(es\) on a GPU a container holds; 1 exited before they could be named$/m);
  await rmAll();
});

test('gpu.hostProcesses: kill ends a host GPU process (not an allowed user\'s, not a container\'s); warn tells the user once', async (t) => {
  if (missing(t, { root: true, commands: ['dockerd', 'setpriv'] })) return;
  const { smi, dir: smiDir } = smiFor('host', 'a100-nomig');
  const gpu1 = 'GPU-2f304152-6374-4859-abfc-e1f20314253f';
  const bobs = hostProcessOf('bob');
  const carols = hostProcessOf('carol');
  const c = await d!.docker(['run', '-d', '--name', 'ctr', 'bb', 'sleep', '600']);
  assert.equal(c.code, 0, c.stderr);
  const inCtr = Number((await d!.docker(['inspect', '-f', '{{.State.Pid}}', 'ctr'])).stdout.trim());
  await sleep(200);
  setComputeApps(smiDir, [[bobs, gpu1, 100], [carols, gpu1, 100], [inCtr, gpu1, 100]]);
  const stateFile = join(dir, 'host-state', 'reap.json');

  const warnEnv = envFor(policy('hostwarn', `gpu: {hostProcesses: warn, hostProcessUsers: [carol]}\nlifecycle: {notify: ${dir}/notify}\n`), smi);
  for (let i = 0; i < 2; i++) assert.equal((await reap(warnEnv, stateFile)).code, 0);
  const warned = events().filter((e) => e.rule === 'gpu.hostProcesses');
  assert.deepEqual(warned.map((e) => [e.decision, e.user, e.pid]), [['warn', 'bob', bobs]], 'once, and only bob');
  assert.match(readFileSync(join(dir, 'notified'), 'utf8'), new RegExp(`^bob\\|your process ${bobs} uses GPU 1 outside a container`, 'm'));

  const killEnv = envFor(policy('hostkill', 'gpu: {hostProcesses: kill, hostProcessUsers: [carol]}\n'), smi);
  const r = await reap(killEnv, stateFile);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, new RegExp(`^reap: killed host process ${bobs} on ${gpu1} \\(bob\\): GPU process of bob outside any container \\(gpu\\.hostProcesses kill\\)$`, 'm'));
  await sleep(300);
  assert.equal(existsSync(`/proc/${bobs}/stat`) && !/\) Z /.test(readFileSync(`/proc/${bobs}/stat`, 'utf8')), false, 'bob\'s process is gone');
  assert.ok(existsSync(`/proc/${carols}`), 'carol is in hostProcessUsers');
  assert.equal(await state('ctr'), 'running', 'a container\'s process is not a host process');
  assert.deepEqual(events().filter((e) => e.decision === 'kill').map((e) => [e.user, e.pid]), [['bob', bobs]]);
  await rmAll();
});
