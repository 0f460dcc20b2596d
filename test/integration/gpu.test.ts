/**
 * GPU allocation end to end: the compiled binary as `docker` (the shim) run
 * by real unix users against a private dockerd with the stand-in NVIDIA hook,
 * a fake nvidia-smi printing real A100 MIG fixtures, and the reservation
 * directory in a temp dir (GPUGUARD_RUN_DIR). What Docker holds is read back
 * with the real CLI (`HostConfig.DeviceRequests`), never from our labels.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { spawn } from 'node:child_process';
import { BINARY, IS_ROOT, ensureTestUsers, fakeNvidiaSmi, missing, run, runAs, startDockerd, type PrivateDockerd, installFace } from '../harness/index.ts';

const USERS = ['ggu1', 'ggu2', 'ggu3', 'ggu4', 'ggu5', 'ggu6', 'ggu7', 'ggu8'];
let d: PrivateDockerd | undefined;
let dir: string;
let shim: string;
let smi: Record<string, string>;
let runDir: string;

before(async () => {
  if (!IS_ROOT) return;
  ensureTestUsers(Object.fromEntries(USERS.map((u) => [u, ['gg-students', 'gg-docker']])));
  d = await startDockerd({ socketGroup: 'gg-docker', runtimes: { nvidia: { path: '/usr/sbin/runc' } } });
  dir = mkdtempSync('/tmp/gg-gpu-');
  chmodSync(dir, 0o755);
  shim = installFace(dir, 'docker');
  runDir = join(dir, 'run');
  mkdirSync(runDir);
  chmodSync(runDir, 0o1777);
  smi = {};
  for (const f of ['a100-7x1g', 'a100-3g-1g', 'a100-mig-mixed']) {
    mkdirSync(join(dir, f));
    smi[f] = fakeNvidiaSmi(join(dir, f), f);
  }
  writeFileSync(join(dir, 'events.jsonl'), '');
  chmodSync(join(dir, 'events.jsonl'), 0o666);
});

after(async () => {
  await d?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** A policy file: the students group (every test user) with the given GPU quota and gpu settings. */
function policy(name: string, gpus: string, gpu = '{holdAfterStop: 0s}', extra = ''): string {
  const path = join(dir, `${name}.yaml`);
  writeFileSync(
    path,
    `version: 1\nlabelPrefix: ds01\nadmins: ["@ds01-admin"]\ndefaults: {group: students}\ngroups:\n  students:\n    members: ["@gg-students"]\n    gpus: ${gpus}\n  researchers:\n    members: ["@gg-researchers"]\n    gpus: {max: 2, fullGpu: true, priority: 50}\ngpu: ${gpu}\nevents: {log: ${dir}/events.jsonl}\n${extra}`,
  );
  chmodSync(path, 0o644);
  return path;
}

function envFor(policyPath: string, fixture: string): Record<string, string> {
  return {
    ...d!.clientEnv,
    GPUGUARD_REAL_DOCKER: d!.realDocker,
    GPUGUARD_POLICY: policyPath,
    GPUGUARD_NVIDIA_SMI: smi[fixture]!,
    GPUGUARD_RUN_DIR: runDir,
    HOME: dir,
  };
}

const asUser = (user: string, env: Record<string, string>, args: string[]) => runAs(user, shim, args, { env });

/** Device ids Docker holds for a container, from its HostConfig. */
async function deviceIds(ref: string): Promise<string[]> {
  const r = await d!.docker(['inspect', '--format', '{{json .HostConfig.DeviceRequests}}', ref]);
  assert.equal(r.code, 0, r.stderr);
  const reqs = JSON.parse(r.stdout) as { DeviceIDs: string[] | null }[] | null;
  return (reqs ?? []).flatMap((x) => x.DeviceIDs ?? []);
}

async function labels(ref: string): Promise<Record<string, string>> {
  const r = await d!.docker(['inspect', '--format', '{{json .Config.Labels}}', ref]);
  return JSON.parse(r.stdout);
}

async function rmAll(): Promise<void> {
  const ids = (await d!.docker(['ps', '-aq'])).stdout.split('\n').filter(Boolean);
  if (ids.length) await d!.docker(['rm', '-f', ...ids]);
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

test('8 users × docker run -d --gpus 1 on 7 free slices: 7 distinct UUIDs, 1 refusal (exit 125), 20 rounds', async (t) => {
  if (missing(t, { root: true, commands: ['dockerd', 'runuser'] })) return;
  const env = envFor(policy('par', '{max: 1, maxEquivalents: 1.0, perContainer: 1, fullGpu: false}'), 'a100-7x1g');
  for (let round = 1; round <= 20; round++) {
    const results = await Promise.all(USERS.map((u) => asUser(u, env, ['run', '-d', '--name', `par-${round}-${u}`, '--gpus', '1', 'bb', 'sleep', '600'])));
    const ok = results.filter((r) => r.code === 0);
    const refused = results.filter((r) => r.code !== 0);
    assert.equal(ok.length, 7, `round ${round}: ${results.map((r) => `${r.code} ${r.stderr.trim()}`).join(' | ')}`);
    assert.equal(refused.length, 1);
    assert.equal(refused[0]!.code, 125, refused[0]!.stderr);
    assert.match(refused[0]!.stderr, /^gpuguard: no free GPU device for 1 GPU: 0 of the 7 you may use are free/);
    const uuids = (await Promise.all(ok.map((r) => deviceIds(r.stdout.trim())))).flat();
    assert.equal(uuids.length, 7);
    assert.equal(new Set(uuids).size, 7, `round ${round}: duplicate device ${uuids.join(' ')}`);
    for (const u of uuids) assert.match(u, /^MIG-/);
    await rmAll();
  }
});

test('quota: refused at max, served again after rm; stop keeps the device for holdAfterStop', async (t) => {
  if (missing(t, { root: true, commands: ['dockerd', 'runuser'] })) return;
  const env = envFor(policy('hold', '{max: 1, fullGpu: false}', '{holdAfterStop: 3s}'), 'a100-7x1g');
  const first = await asUser('ggu1', env, ['run', '-d', '--name', 'q1', '--gpus', '1', 'bb', 'sleep', '600']);
  assert.equal(first.code, 0, first.stderr);
  const l = await labels('q1');
  const [uuid] = await deviceIds('q1');
  assert.equal(l['ds01.gpu.uuid'], uuid);
  assert.equal(l['ds01.gpu.allocated'], '0.0');
  assert.match(l['ds01.gpu.allocated_at']!, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
  assert.equal(l['ds01.gpu.priority'], '0');
  const second = await asUser('ggu1', env, ['run', '-d', '--gpus', '1', 'bb', 'sleep', '600']);
  assert.equal(second.code, 125);
  assert.match(second.stderr, /^gpuguard: GPU quota gpus\.max \(1\) reached: you hold 1 \(1\/7 GPU\): 0\.0 \(1g\.10gb\) in q1; 1 GPU asked for/);
  assert.equal((await d!.docker(['rm', '-f', 'q1'])).code, 0);
  const third = await asUser('ggu1', env, ['run', '-d', '--name', 'q3', '--gpus', '1', 'bb', 'sleep', '600']);
  assert.equal(third.code, 0, third.stderr);
  assert.equal((await d!.docker(['stop', '-t', '0', 'q3'])).code, 0);
  const held = await asUser('ggu1', env, ['create', '--gpus', '1', 'bb']);
  assert.equal(held.code, 125, 'a stopped container keeps its device for holdAfterStop');
  await sleep(3500);
  const free = await asUser('ggu1', env, ['create', '--name', 'q4', '--gpus', '1', 'bb']);
  assert.equal(free.code, 0, free.stderr);
  await rmAll();
});

test('maxEquivalents 0.5 on 1g/3g slices: three 1g or one 3g, not 3g + 1g; perContainer refuses --gpus 2', async (t) => {
  if (missing(t, { root: true, commands: ['dockerd', 'runuser'] })) return;
  const env = envFor(policy('eq', '{max: 10, maxEquivalents: 0.5, perContainer: 1, fullGpu: false}'), 'a100-3g-1g');
  for (let i = 0; i < 3; i++) {
    const r = await asUser('ggu2', env, ['create', '--gpus', '1', 'bb']);
    assert.equal(r.code, 0, r.stderr);
  }
  const fourth = await asUser('ggu2', env, ['create', '--gpus', '1', 'bb']);
  assert.equal(fourth.code, 125);
  assert.match(fourth.stderr, /gpus\.maxEquivalents \(1\/2 GPU\) reached: you hold 3 \(3\/7 GPU\)/);
  await rmAll();
  const big = await asUser('ggu2', env, ['create', '--name', 'big', '--gpus', 'device=1.0', 'bb']);
  assert.equal(big.code, 0, big.stderr);
  const plus1g = await asUser('ggu2', env, ['create', '--gpus', '1', 'bb']);
  assert.equal(plus1g.code, 125);
  assert.match(plus1g.stderr, /gpus\.maxEquivalents/);
  const two = await asUser('ggu3', env, ['create', '--gpus', '2', 'bb']);
  assert.equal(two.code, 125);
  assert.match(two.stderr, /^gpuguard: 2 GPUs asked for; gpus\.perContainer allows 1 in one container/);
  await rmAll();
});

test('gpu.wait: a request waits for a device freed within the wait, and fails clearly after it', async (t) => {
  if (missing(t, { root: true, commands: ['dockerd', 'runuser'] })) return;
  const env = envFor(policy('wait', '{max: 1, fullGpu: false}', '{holdAfterStop: 0s, wait: 10s}'), 'a100-7x1g');
  // raw docker containers holding every slice, named the NVIDIA way (gpu:mig), as the daemon passes them on
  for (let i = 0; i < 7; i++) {
    const r = await d!.docker(['create', '--name', `busy${i}`, '--gpus', `device=0:${i}`, 'bb']);
    assert.equal(r.code, 0, r.stderr);
  }
  const started = Date.now();
  const waiting = asUser('ggu4', env, ['create', '--name', 'waited', '--gpus', '1', 'bb']);
  await sleep(1500);
  assert.equal((await d!.docker(['rm', '-f', 'busy3'])).code, 0);
  const r = await waiting;
  assert.equal(r.code, 0, r.stderr);
  assert.ok(Date.now() - started >= 1500);
  const envShort = envFor(policy('wait2', '{max: 1, fullGpu: false}', '{holdAfterStop: 0s, wait: 2s}'), 'a100-7x1g');
  const t0 = Date.now();
  const late = await asUser('ggu5', envShort, ['create', '--gpus', '1', 'bb']);
  assert.equal(late.code, 125);
  assert.match(late.stderr, /no free GPU device for 1 GPU: .*\(waited 2s, gpu\.wait\)$/m);
  assert.ok(Date.now() - t0 >= 2000);
  assert.doesNotMatch(late.stderr, /waiting for/, 'no status line without a terminal');
  // on a terminal: one status line, rewritten in place, cleared before the verdict
  const tty = await run('script', ['-qec', `runuser -u ggu5 -- ${shim} create --gpus 1 bb`, '/dev/null'], { env: { ...process.env, ...envShort } });
  assert.match(tty.stdout, /\r\x1b\[Kgpuguard: waiting for 1 GPU; [12]s left \(gpu\.wait\)/);
  assert.match(tty.stdout, /\r\x1b\[Kgpuguard: no free GPU device for 1 GPU/);
  await rmAll();
});

test('gpu.wait serves waiters by priority, then arrival', async (t) => {
  if (missing(t, { root: true, commands: ['dockerd', 'runuser'] })) return;
  const env = envFor(policy('prio', '{max: 1, fullGpu: false, priority: 10}', '{holdAfterStop: 0s, wait: 20s}'), 'a100-7x1g');
  for (let i = 0; i < 7; i++) assert.equal((await d!.docker(['create', '--name', `full${i}`, '--gpus', `device=0:${i}`, 'bb'])).code, 0);
  let lowDone = false;
  let highDone = false;
  const low = asUser('ggu6', env, ['create', '--name', 'low', '--gpus', '1', 'bb']).then((r) => ((lowDone = true), r));
  await sleep(800);
  const high = runAs('carol', shim, ['create', '--name', 'high', '--gpus', '1', 'bb'], { env }).then((r) => ((highDone = true), r));
  await sleep(800);
  assert.equal((await d!.docker(['rm', '-f', 'full0'])).code, 0);
  const h = await high;
  assert.equal(h.code, 0, h.stderr);
  assert.equal(lowDone, false, 'the earlier, lower-priority request still waits');
  assert.equal((await labels('high'))['ds01.gpu.priority'], '50');
  assert.equal((await d!.docker(['rm', '-f', 'full1'])).code, 0);
  const l = await low;
  assert.equal(l.code, 0, l.stderr);
  assert.ok(highDone);
  await rmAll();
});

test('--gpus all with max 2 gets 2 devices; another user\'s device is refused naming the container; env and --runtime forms', async (t) => {
  if (missing(t, { root: true, commands: ['dockerd', 'runuser'] })) return;
  const env = envFor(policy('forms', '{max: 1, fullGpu: false}'), 'a100-mig-mixed');
  const all = await runAs('carol', shim, ['create', '--name', 'c-all', '--gpus', 'all', 'bb'], { env });
  assert.equal(all.code, 0, all.stderr);
  const ids = await deviceIds('c-all');
  assert.equal(ids.length, 2);
  assert.deepEqual((await labels('c-all'))['ds01.gpu.allocated'], '2,3', 'researchers (fullGpu) get whole GPUs first');
  const students = await asUser('ggu1', env, ['create', '--gpus', `device=${ids[0]}`, 'bb']);
  assert.equal(students.code, 125);
  assert.match(students.stderr, /^gpuguard: GPU 2 is a whole GPU and your group \(gpus\.fullGpu: false\) may use MIG slices only/);
  const two = await asUser('ggu2', env, ['create', '--name', 'u2-one', '--gpus', '1', 'bb']);
  assert.equal(two.code, 0, two.stderr);
  const theirs = await asUser('ggu1', env, ['create', '--gpus', `device=${(await deviceIds('u2-one'))[0]}`, 'bb']);
  assert.equal(theirs.code, 125);
  assert.match(theirs.stderr, /^gpuguard: GPU 0\.0 \(MIG-\S+\) is held by container "u2-one"; ask for --gpus 1 to get a free one\n$/);
  assert.equal((await d!.docker(['rm', '-f', 'u2-one'])).code, 0);
  // env form: -e NVIDIA_VISIBLE_DEVICES=<slot> becomes an explicit device request
  const envForm = await asUser('ggu1', env, ['create', '--name', 'u1-env', '-e', 'NVIDIA_VISIBLE_DEVICES=1:2', 'bb']);
  assert.equal(envForm.code, 0, envForm.stderr);
  const envIds = await deviceIds('u1-env');
  assert.deepEqual(envIds, ['MIG-aebfc0d1-e2f3-5405-a6b7-9cadbecfd0ea']);
  const e = await d!.docker(['inspect', '--format', '{{json .Config.Env}}', 'u1-env']);
  assert.ok(JSON.parse(e.stdout).includes('NVIDIA_VISIBLE_DEVICES=MIG-aebfc0d1-e2f3-5405-a6b7-9cadbecfd0ea'));
  // --runtime nvidia with the env: the same, runtime replaced by the explicit --gpus
  const rt = await asUser('ggu2', env, ['create', '--name', 'u2-rt', '--runtime', 'nvidia', '-e', 'NVIDIA_VISIBLE_DEVICES=0', 'bb']);
  assert.equal(rt.code, 125, 'GPU 0 is split into slices');
  assert.match(rt.stderr, /GPU 0 is split into MIG slices/);
  const rt2 = await asUser('ggu2', env, ['create', '--name', 'u2-rt', '--runtime', 'nvidia', '-e', 'NVIDIA_VISIBLE_DEVICES=all', 'bb']);
  assert.equal(rt2.code, 0, rt2.stderr);
  assert.equal((await deviceIds('u2-rt')).length, 1, 'all = up to the quota of 1');
  const runtime = await d!.docker(['inspect', '--format', '{{.HostConfig.Runtime}}', 'u2-rt']);
  assert.equal(runtime.stdout.trim(), 'runc');
  // quoted device list and capabilities are kept
  const caps = await runAs('carol', shim, ['create', '--name', 'c-caps', '--gpus', '"capabilities=compute,utility"', 'bb'], { env });
  assert.equal(caps.code, 125, 'carol holds 2 of 2');
  await rmAll();
  const caps2 = await runAs('carol', shim, ['create', '--name', 'c-caps', '--gpus', '"capabilities=compute,utility"', 'bb'], { env });
  assert.equal(caps2.code, 0, caps2.stderr);
  const r = await d!.docker(['inspect', '--format', '{{json .HostConfig.DeviceRequests}}', 'c-caps']);
  assert.deepEqual(JSON.parse(r.stdout)[0].Capabilities, [['compute', 'utility', 'gpu']]);
  const bad = await asUser('ggu1', env, ['create', '--gpus', 'device=0,1', 'bb']);
  assert.equal(bad.code, 125);
  assert.match(bad.stderr, /quote the list: --gpus '"device=0,1"'/);
  await rmAll();
});

test('a raw docker container is counted, and gpuguard gpus shows it with owner unknown', async (t) => {
  if (missing(t, { root: true, commands: ['dockerd', 'runuser'] })) return;
  const env = envFor(policy('raw', '{max: 1, fullGpu: false}'), 'a100-3g-1g');
  const raw = await d!.docker(['run', '-d', '--name', 'rawgpu', '--gpus', 'device=MIG-fc0d1e2f-3041-5526-c8c9-becfd0e1f20c', 'bb', 'sleep', '600']);
  assert.equal(raw.code, 0, raw.stderr);
  const mine = await asUser('ggu1', env, ['create', '--name', 'u1', '--gpus', 'device=0.1', 'bb']);
  assert.equal(mine.code, 125);
  assert.match(mine.stderr, /held by container "rawgpu"/);
  const ok = await asUser('ggu1', env, ['create', '--name', 'u1', '--gpus', '1', 'bb']);
  assert.equal(ok.code, 0, ok.stderr);
  assert.deepEqual(await deviceIds('u1'), ['MIG-0d1e2f30-4152-5637-d9da-cfd0e1f2031d']);
  const g = await run(BINARY, ['gpus'], { env });
  assert.equal(g.code, 0, g.stderr);
  const lines = g.stdout.split('\n');
  assert.match(lines[0]!, /^SLOT +UUID +PROFILE +USER +CONTAINER +STATE +HELD SINCE$/);
  assert.match(lines[1]!, /^0\.0 +MIG-ebfc0d1e-2f30-5415-b7b8-adbecfd0e1fb +3g\.40gb +- +- +free +-$/);
  assert.match(lines[2]!, /^0\.1 +MIG-fc0d1e2f-3041-5526-c8c9-becfd0e1f20c +1g\.10gb +unknown +rawgpu +running +\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ \(\d+s\)$/);
  assert.match(lines[3]!, /^0\.2 +MIG-0d1e2f30-4152-5637-d9da-cfd0e1f2031d +1g\.10gb +ggu1 +u1 +created +\d{4}-/);
  assert.equal(lines.length, 1 + 7 + 4);
  assert.equal(lines[9], '5 of 7 devices free (1 4/7 GPU)');
  assert.equal(lines[10], '0 GPU process(es)');
  const json = JSON.parse((await run(BINARY, ['gpus', '--json'], { env })).stdout);
  assert.equal(json.devices.length, 7);
  assert.deepEqual(json.devices[1].user, 'unknown');
  await rmAll();
});

test('docker start: refused when the device vanished or was taken meanwhile', async (t) => {
  if (missing(t, { root: true, commands: ['dockerd', 'runuser'] })) return;
  const env = envFor(policy('start', '{max: 1, fullGpu: false}', '{holdAfterStop: 1s}'), 'a100-3g-1g');
  const a = await asUser('ggu1', env, ['create', '--name', 's1', '--gpus', 'device=0.1', 'bb', 'true']);
  assert.equal(a.code, 0, a.stderr);
  const start = await asUser('ggu1', env, ['start', 's1']);
  assert.equal(start.code, 0, start.stderr);
  await d!.docker(['wait', 's1']);
  await sleep(1200);
  const b = await asUser('ggu2', env, ['create', '--name', 's2', '--gpus', '1', 'bb']);
  assert.equal(b.code, 0, b.stderr);
  assert.deepEqual(await deviceIds('s2'), await deviceIds('s1'), 'the stopped container\'s hold ran out, so the slice went to ggu2');
  const again = await asUser('ggu1', env, ['start', 's1']);
  assert.equal(again.code, 125);
  assert.match(again.stderr, /^gpuguard: GPU 0\.1 \(MIG-\S+\) of container "s1" has been taken by container "s2"/);
  // MIG re-created: the inventory no longer has the UUID
  const other = envFor(policy('start', '{max: 1, fullGpu: false}', '{holdAfterStop: 1s}'), 'a100-7x1g');
  await d!.docker(['rm', '-f', 's2']);
  const gone = await asUser('ggu1', other, ['start', 's1']);
  assert.equal(gone.code, 125);
  assert.match(gone.stderr, /^gpuguard: container "s1" was given GPU device MIG-fc0d1e2f-3041-5526-c8c9-becfd0e1f20c \(slot 0\.1 when it was created\), which no longer exists on this host/);
  // a broken policy does not block docker start: the check is skipped with a warning
  writeFileSync(join(dir, 'broken.yaml'), 'version: 1\ngroups: [\n', { mode: 0o644 });
  const broken = await asUser('ggu1', { ...other, GPUGUARD_POLICY: join(dir, 'broken.yaml') }, ['start', 's1']);
  assert.equal(broken.code, 0, broken.stderr);
  // (the ownership guard, which runs first, warns the same way on its own line)
  assert.match(broken.stderr, /^gpuguard: warning: GPU check before start skipped: .*broken\.yaml:\d+:\d+: invalid YAML/m);
  await rmAll();
});

test('a reservation lives as long as its docker command, and not a moment longer', async (t) => {
  if (missing(t, { root: true, commands: ['dockerd', 'runuser'] })) return;
  // A one-slice host, and a "real docker" that hangs like a long image pull.
  const one = join(dir, 'one-slice.txt');
  writeFileSync(one, 'GPU 0: NVIDIA A100-SXM4-80GB (UUID: GPU-11111111-2222-4333-8444-555555555555)\n  MIG 1g.10gb     Device  0: (UUID: MIG-11111111-2222-5333-8444-555555555555)\n');
  chmodSync(one, 0o644);
  const slow = join(dir, 'slow-docker');
  writeFileSync(slow, '#!/bin/sh\nexec sleep 60\n', { mode: 0o755 });
  const env = { ...envFor(policy('res', '{max: 1, fullGpu: false}'), 'a100-7x1g'), GPUGUARD_NVIDIA_SMI: one };
  const child = spawn('runuser', ['-u', 'ggu1', '--', shim, 'create', '--gpus', '1', 'bb'], { env: { ...process.env, ...env, GPUGUARD_REAL_DOCKER: slow }, stdio: ['ignore', 'ignore', 'pipe'], detached: true });
  let childErr = '';
  child.stderr!.on('data', (c) => (childErr += c));
  let blocked = '';
  for (let i = 0; i < 50; i++) {
    await sleep(100);
    const r = await asUser('ggu2', env, ['create', '--gpus', '1', 'bb']);
    if (r.code === 125) {
      blocked = r.stderr;
      break;
    }
    await rmAll();
  }
  assert.match(blocked, /no free GPU device/, `while the first docker command runs, its slice is reserved (it said: ${childErr})`);
  const g = await run(BINARY, ['gpus'], { env });
  assert.match(g.stdout, /ggu1 +\(being created, pid \d+\) +reserved/);
  // Kill the process the reservation names (the shim, by now the "docker" it exec'd; runuser puts it in its own session).
  const pids = readdirSync(runDir)
    .filter((f) => f.startsWith('gpu-res.'))
    .map((f) => JSON.parse(readFileSync(join(runDir, f), 'utf8')).pid as number)
    .filter((pid) => existsSync(`/proc/${pid}`)); // other users' void records stay until their owners clean them
  assert.equal(pids.length, 1);
  process.kill(pids[0]!, 'SIGKILL');
  // Until it is gone or a zombie; it may vanish between any two reads of /proc.
  const running = (pid: number) => {
    try {
      return !readFileSync(`/proc/${pid}/stat`, 'utf8').includes(') Z ');
    } catch {
      return false;
    }
  };
  while (running(pids[0]!)) await sleep(20);
  await new Promise((r) => (child.exitCode !== null ? r(undefined) : child.once('exit', r)));
  const after = await asUser('ggu2', env, ['create', '--gpus', '1', 'bb']);
  assert.equal(after.code, 0, `killed: the slice is free at once (${after.stderr})`);
  await rmAll();
});
