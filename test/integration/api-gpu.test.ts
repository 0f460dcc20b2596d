/**
 * GPU allocation in the API face: one process serialises grants (no lock
 * files), Docker's DeviceRequests are the state. Real users race through
 * the face with the docker CLI against a private dockerd with the stand-in
 * NVIDIA hook and a fake nvidia-smi printing a real A100 MIG fixture; what
 * each container got is read back from Docker, never from our labels. The
 * face is killed with SIGKILL under load and started again.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { IS_ROOT, ensureTestUsers, fakeNvidiaSmi, missing, rawExchange, rawRequest, responses, runAs, startDockerd, startFace, type PrivateDockerd, type RunningFace } from '../harness/index.ts';
import { forgetCacheEntries } from './runtime-cache-cleanup.ts';

const USERS = ['ggu1', 'ggu2', 'ggu3', 'ggu4', 'ggu5', 'ggu6', 'ggu7', 'ggu8'];
const CLI = '/usr/bin/docker';
let d: PrivateDockerd | undefined;
let face: RunningFace | undefined;
let dir: string;
let policy: string;

before(async () => {
  if (!IS_ROOT) return;
  ensureTestUsers(Object.fromEntries(USERS.map((u) => [u, ['gg-students', 'gg-docker']])));
  d = await startDockerd({ runtimes: { nvidia: { path: '/usr/sbin/runc' } } });
  dir = mkdtempSync('/tmp/gg-apigpu-');
  chmodSync(dir, 0o755);
  mkdirSync(join(dir, 'smi'));
  const smi = fakeNvidiaSmi(join(dir, 'smi'), 'a100-7x1g');
  policy = join(dir, 'policy.yaml');
  writeFileSync(
    policy,
    `version: 1\nlabelPrefix: ds01\nadmins: ["@ds01-admin"]\ndefaults: {group: students}\ngroups:\n  students:\n    members: ["@gg-students"]\n    gpus: {max: 1, maxEquivalents: 1.0, perContainer: 1, fullGpu: false}\ngpu: {holdAfterStop: 0s}\nevents: {log: ${dir}/events.jsonl}\n`,
  );
  chmodSync(policy, 0o644);
  face = await startFace(d, { policy, socketGroup: 'gg-docker', env: { GPUGUARD_NVIDIA_SMI: smi, GPUGUARD_RUN_DIR: join(dir, 'run') } });
});

after(async () => {
  await face?.stop();
  await d?.stop();
  if (dir) {
    forgetCacheEntries(policy);
    rmSync(dir, { recursive: true, force: true });
  }
});

const as = (user: string, args: string[], host = face!.host) => runAs(user, CLI, args, { env: { DOCKER_HOST: host, HOME: '/tmp' } });

/** Device ids Docker holds for each container (HostConfig.DeviceRequests), by name. */
async function held(): Promise<Map<string, string[]>> {
  const names = (await d!.docker(['ps', '-aq'])).stdout.split('\n').filter(Boolean);
  const out = new Map<string, string[]>();
  if (!names.length) return out;
  const r = await d!.docker(['inspect', '--format', '{{.Name}} {{json .HostConfig.DeviceRequests}}', ...names]);
  for (const line of r.stdout.trim().split('\n')) {
    const [name, json] = [line.slice(0, line.indexOf(' ')), line.slice(line.indexOf(' ') + 1)];
    const ids = ((JSON.parse(json) ?? []) as { DeviceIDs: string[] | null }[]).flatMap((x) => x.DeviceIDs ?? []);
    if (ids.length) out.set(name.replace(/^\//, ''), ids);
  }
  return out;
}

async function rmAll(): Promise<void> {
  const ids = (await d!.docker(['ps', '-aq'])).stdout.split('\n').filter(Boolean);
  if (ids.length) await d!.docker(['rm', '-f', ...ids]);
}

test('8 users race for 7 MIG slices with docker run -d --gpus 1 through the face: 7 distinct devices, 1 clear refusal, 5 rounds', async (t) => {
  if (missing(t, { root: true, commands: ['dockerd', 'runuser'] }) || !face) return;
  for (let round = 1; round <= 5; round++) {
    const results = await Promise.all(USERS.map((u) => as(u, ['run', '-d', '--name', `race-${round}-${u}`, '--gpus', '1', 'bb', 'sleep', '600'])));
    const refused = results.filter((r) => r.code !== 0);
    assert.equal(refused.length, 1, `round ${round}: ${results.map((r) => `${r.code} ${r.stderr.trim()}`).join(' | ')}`);
    assert.equal(refused[0]!.code, 125);
    assert.match(refused[0]!.stderr, /gpuguard: no free GPU device for 1 GPU: 0 of the 7 you may use are free/);
    const h = await held();
    const devices = [...h.values()].flat();
    assert.equal(h.size, 7, `round ${round}: ${JSON.stringify([...h])}`);
    assert.equal(new Set(devices).size, 7, `round ${round}: distinct devices: ${devices.join(' ')}`);
    assert.ok(devices.every((x) => x.startsWith('MIG-')), 'explicit UUIDs, not a count');
    await rmAll();
  }
  assert.deepEqual(readdirSync(dir).filter((f) => f === 'run'), [], 'no reservation directory: the face needs no lock files');
});

test('every form of GPU request in a create body is allocated, and the quota holds across forms', async (t) => {
  if (missing(t, { root: true, commands: ['dockerd', 'runuser', 'python3'] }) || !face) return;
  const forms: [string, unknown][] = [
    ['--gpus all (Count -1)', { DeviceRequests: [{ Driver: '', Count: -1, Capabilities: [['gpu']] }] }],
    ['device by index', { DeviceRequests: [{ Driver: 'nvidia', DeviceIDs: ['0:3'], Capabilities: [['gpu']] }] }],
    ['CDI', { DeviceRequests: [{ Driver: 'cdi', DeviceIDs: ['nvidia.com/gpu=all'] }] }],
    ['runtime nvidia alone', { Runtime: 'nvidia' }],
  ];
  for (const [i, [what, hc]] of forms.entries()) {
    const user = USERS[i]!;
    const [r] = responses(await rawExchange(user, face.socket, rawRequest('POST', `/v1.41/containers/create?name=form-${i}`, { body: { Image: 'bb', Cmd: ['true'], HostConfig: hc } })));
    assert.equal(r!.status, 201, `${what}: ${r!.body}`);
    const h = await held();
    assert.equal(h.get(`form-${i}`)?.length, 1, `${what}: one explicit device (quota max 1): ${JSON.stringify(h.get(`form-${i}`))}`);
    const runtime = (await d!.docker(['inspect', '--format', '{{.HostConfig.Runtime}}', `form-${i}`])).stdout.trim();
    assert.notEqual(runtime, 'nvidia', `${what}: the nvidia runtime is replaced by the device request`);
  }
  // ggu1 holds one already: a second, in any form, is over gpus.max
  const [over] = responses(await rawExchange('ggu1', face.socket, rawRequest('POST', '/v1.41/containers/create', { body: { Image: 'bb', Env: ['NVIDIA_VISIBLE_DEVICES=all'], HostConfig: { Runtime: 'nvidia' } } })));
  assert.equal(over!.status, 403);
  assert.match(JSON.parse(over!.body).message, /GPU quota gpus\.max \(1\) reached/);
  await rmAll();
});

test('docker start re-checks the GPU quota: a stopped container cannot come back when its owner holds their quota elsewhere', async (t) => {
  if (missing(t, { root: true, commands: ['dockerd', 'runuser'] }) || !face) return;
  const ok = async (user: string, args: string[]) => {
    const r = await as(user, args);
    assert.equal(r.code, 0, `${user}: docker ${args.join(' ')}: ${r.stderr}`);
  };
  await ok('ggu1', ['run', '-d', '--name', 'first', '--gpus', '1', 'bb', 'sleep', '600']);
  const firstDevice = (await held()).get('first')![0];
  await ok('ggu1', ['stop', '-t', '0', 'first']);
  // holdAfterStop 0s: its slice is free; ggu2 takes it, so ggu1's next container gets another slice
  await ok('ggu2', ['run', '-d', '--name', 'interim', '--gpus', `device=${firstDevice}`, 'bb', 'sleep', '600']);
  await ok('ggu1', ['run', '-d', '--name', 'second', '--gpus', '1', 'bb', 'sleep', '600']);
  const taken = await as('ggu1', ['start', 'first']);
  assert.notEqual(taken.code, 0);
  assert.match(taken.stderr, /gpuguard: GPU 0\.0 \(MIG-[0-9a-f-]+\) of container "first" has been taken by container "interim"/);
  await ok('ggu2', ['rm', '-f', 'interim']);
  // the slice is free again, but ggu1 holds her one device in "second": starting "first" would be two
  const over = await as('ggu1', ['start', 'first']);
  assert.notEqual(over.code, 0);
  assert.match(over.stderr, /gpuguard: starting "first" would give ggu1 2 GPU devices and gpus\.max is 1/);
  assert.equal((await d!.docker(['inspect', '--format', '{{.State.Running}}', 'first'])).stdout.trim(), 'false');
  await ok('ggu1', ['rm', '-f', 'second']);
  await ok('ggu1', ['start', 'first']);
  await rmAll();
});

test('SIGKILL under load, then a new face: requests after the restart all succeed; no allocation lost or doubled', async (t) => {
  if (missing(t, { root: true, commands: ['dockerd', 'runuser'] }) || !face) return;
  const host = face.host;
  // four hold a slice before the crash
  for (const u of USERS.slice(0, 4)) assert.equal((await as(u, ['run', '-d', '--name', `pre-${u}`, '--gpus', '1', 'bb', 'sleep', '600'])).code, 0);
  // load: listing and GPU creates in flight when the face dies
  const load = Promise.all([
    ...USERS.slice(4, 7).map((u) => as(u, ['run', '-d', '--name', `mid-${u}`, '--gpus', '1', 'bb', 'sleep', '600'], host)),
    ...USERS.map((u) => as(u, ['ps', '-a'], host)),
  ]);
  await new Promise((r) => setTimeout(r, 150));
  await face.kill();
  await load; // some failed (the face died under them); none may have doubled a device
  const during = await held();
  assert.equal(new Set([...during.values()].flat()).size, [...during.values()].flat().length, `no device twice: ${JSON.stringify([...during])}`);
  face = await face.restart();
  assert.equal(face.host, host, 'the same socket path');
  // every request after the restart succeeds; GPU requests get what is still free, never a held one
  const ps = await Promise.all(USERS.map((u) => as(u, ['ps', '-a'])));
  assert.ok(ps.every((r) => r.code === 0), ps.map((r) => r.stderr).join(' | '));
  const free = 7 - [...during.values()].flat().length;
  const wanting = USERS.slice(4).filter((u) => !during.has(`mid-${u}`));
  const after = await Promise.all(wanting.slice(0, free).map((u) => as(u, ['run', '-d', '--name', `post-${u}`, '--gpus', '1', 'bb', 'sleep', '600'])));
  assert.ok(after.every((r) => r.code === 0), after.map((r) => r.stderr).join(' | '));
  const end = await held();
  const all = [...end.values()].flat();
  assert.equal(new Set(all).size, all.length, `no device twice: ${JSON.stringify([...end])}`);
  for (const [name, devs] of during) assert.deepEqual(end.get(name), devs, `${name} kept its device`);
  await rmAll();
});
