/** The pure GPU decision: quotas, preference order, explicit devices, holders; and Docker state → holdings. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { allocate, candidates, decideStart, type Holding, type Requester } from '../../src/gpu/allocate.ts';
import { parseInventory } from '../../src/gpu/inventory.ts';
import { normaliseGpuRequest, type GpuFlags } from '../../src/gpu/request.ts';
import { gpuIdsOf, holdingsFromContainers, containerGpus } from '../../src/gpu/state.ts';
import { gpusFlagValue, gpuLabels, isAhead } from '../../src/gpu/index.ts';
import { gpuRows, formatGpuTable } from '../../src/gpu/cli.ts';
import type { ContainerDetails } from '../../src/docker/gateway.ts';
import type { GpuQuota } from '../../src/policy/effective.ts';
import { FIXTURES } from '../harness/tools.ts';

const inv = (name: string) => parseInventory(readFileSync(join(FIXTURES, 'nvidia-smi', `${name}.txt`), 'utf8'), name);
const mixed = inv('a100-mig-mixed');
const small = inv('a100-3g-1g');
const seven = inv('a100-7x1g');

const quota = (q: Partial<GpuQuota> = {}): GpuQuota => ({ max: Infinity, maxEquivalents: Infinity, perContainer: Infinity, fullGpu: false, priority: 0, ...q });
const alice = (q: Partial<GpuQuota> = {}): Requester => ({ user: 'alice', uid: 1001, quota: quota(q) });
const req = (f: GpuFlags) => normaliseGpuRequest(f);
const hold = (inventory: typeof mixed, slot: string, user: string | undefined, uid: number | undefined, name = `c-${slot}`): Holding => ({
  uuid: inventory.devices.find((d) => d.slot === slot)!.uuid,
  holder: { kind: 'container', id: `id-${name}`, name, state: 'running', ...(user ? { user } : {}), ...(uid !== undefined ? { uid } : {}) },
});
const slots = (a: ReturnType<typeof allocate>) => (a.ok ? a.devices.map((d) => d.slot) : `${a.rule}: ${a.message}`);

test('count: MIG slices first, smallest first, skipping held ones', () => {
  assert.deepEqual(slots(allocate(req({ gpus: ['1'] }), mixed, [], alice())), ['0.0']);
  assert.deepEqual(slots(allocate(req({ gpus: ['2'] }), mixed, [hold(mixed, '0.0', 'bob', 1002)], alice())), ['0.1', '0.2']);
  // 3g/1g host: the 1g slices before the 3g ones
  assert.deepEqual(slots(allocate(req({ gpus: ['1'] }), small, [], alice())), ['0.1']);
});

test('fullGpu: false never gives a whole GPU; true prefers whole GPUs', () => {
  const allSlicesHeld = mixed.devices.filter((d) => d.kind === 'mig').map((d) => hold(mixed, d.slot, 'bob', 1002));
  const a = allocate(req({ gpus: ['1'] }), mixed, allSlicesHeld, alice({ fullGpu: false }));
  assert.equal(a.ok, false);
  assert.equal(!a.ok && a.rule, 'busy');
  assert.deepEqual(slots(allocate(req({ gpus: ['1'] }), mixed, [], alice({ fullGpu: true }))), ['2']);
  const d = allocate(req({ gpus: ['device=2'] }), mixed, [], alice({ fullGpu: false }));
  assert.equal(!d.ok && d.rule, 'fullGpu');
  assert.deepEqual(candidates(mixed, [], { fullGpu: true }).map((x) => x.slot).slice(0, 4), ['2', '3', '0.0', '0.1']);
});

test('max counts devices over all my containers; the refusal says what I hold', () => {
  const mine = [hold(mixed, '0.3', 'alice', 1001, 'train')];
  const a = allocate(req({ gpus: ['1'] }), mixed, mine, alice({ max: 1 }));
  assert.equal(!a.ok && a.rule, 'max');
  assert.match(!a.ok ? a.message : '', /^GPU quota gpus\.max \(1\) reached: you hold 1 \(1\/7 GPU\): 0\.3 \(1g\.10gb\) in train; 1 GPU asked for/);
  assert.equal(!a.ok && a.retryable, false);
  // another user's holding does not count against me
  assert.deepEqual(slots(allocate(req({ gpus: ['1'] }), mixed, [hold(mixed, '0.3', 'bob', 1002)], alice({ max: 1 }))), ['0.0']);
});

test('maxEquivalents 0.5 on 1g/3g: three 1g or one 3g, not 3g + 1g', () => {
  const q = { maxEquivalents: 0.5 };
  // one 3g by explicit device, then a 1g is refused
  const three = allocate(req({ gpus: ['device=1.0'] }), small, [], alice(q));
  assert.deepEqual(slots(three), ['1.0']);
  const after3g = allocate(req({ gpus: ['1'] }), small, [hold(small, '1.0', 'alice', 1001)], alice(q));
  assert.equal(!after3g.ok && after3g.rule, 'maxEquivalents');
  assert.match(!after3g.ok ? after3g.message : '', /gpus\.maxEquivalents \(1\/2 GPU\) reached: you hold 1 \(3\/7 GPU\)/);
  // three 1g one by one
  let held: Holding[] = [];
  for (let i = 0; i < 3; i++) {
    const a = allocate(req({ gpus: ['1'] }), small, held, alice(q));
    assert.ok(a.ok, slots(a) as string);
    held = [...held, ...a.devices.map((d) => hold(small, d.slot, 'alice', 1001))];
  }
  const fourth = allocate(req({ gpus: ['1'] }), small, held, alice(q));
  assert.equal(!fourth.ok && fourth.rule, 'maxEquivalents');
  // a 3g on top of a 1g: refused
  const big = allocate(req({ gpus: ['device=1.1'] }), small, [hold(small, '0.1', 'alice', 1001)], alice(q));
  assert.equal(!big.ok && big.rule, 'maxEquivalents');
});

test('perContainer refuses --gpus 2 and caps --gpus all', () => {
  const a = allocate(req({ gpus: ['2'] }), mixed, [], alice({ perContainer: 1 }));
  assert.equal(!a.ok && a.rule, 'perContainer');
  assert.deepEqual(slots(allocate(req({ gpus: ['all'] }), mixed, [], alice({ perContainer: 1, max: 5 }))), ['0.0']);
});

test('--gpus all means up to my quota', () => {
  assert.deepEqual(slots(allocate(req({ gpus: ['all'] }), mixed, [], alice({ max: 2 }))), ['0.0', '0.1']);
  assert.deepEqual(slots(allocate(req({ gpus: ['all'] }), mixed, [hold(mixed, '0.0', 'alice', 1001)], alice({ max: 2 }))), ['0.1']);
  const none = allocate(req({ gpus: ['all'] }), mixed, [hold(mixed, '0.0', 'alice', 1001), hold(mixed, '0.1', 'alice', 1001)], alice({ max: 2 }));
  assert.equal(!none.ok && none.rule, 'max');
  // all free devices when there is no quota (no policy)
  assert.equal((allocate(req({ gpus: ['all'] }), seven, [], alice()) as { devices: unknown[] }).devices.length, 7);
});

test('explicit devices: by slot, gpu:mig, UUID, CDI, env; held by another → names the container only', () => {
  const uuid = mixed.devices.find((d) => d.slot === '1.2')!.uuid;
  for (const f of [{ gpus: ['device=1.2'] }, { gpus: [`device=${uuid}`] }, { env: ['NVIDIA_VISIBLE_DEVICES=1:2'] }, { devices: ['nvidia.com/gpu=1:2'] }] as GpuFlags[]) {
    assert.deepEqual(slots(allocate(req(f), mixed, [], alice())), ['1.2'], JSON.stringify(f));
  }
  const taken = allocate(req({ gpus: ['device=1.2'] }), mixed, [hold(mixed, '1.2', 'bob', 1002, 'bobs-job')], alice());
  assert.equal(!taken.ok && taken.rule, 'held');
  assert.equal(!taken.ok && taken.message, `GPU 1.2 (${uuid}) is held by container "bobs-job"; ask for --gpus 1 to get a free one`);
  assert.doesNotMatch(!taken.ok ? taken.message : '', /bob[^s]/);
  // my own device in another of my containers: allowed, no extra quota
  assert.deepEqual(slots(allocate(req({ gpus: ['device=1.2'] }), mixed, [hold(mixed, '1.2', 'alice', 1001)], alice({ max: 1 }))), ['1.2']);
  const unknown = allocate(req({ gpus: ['device=9'] }), mixed, [], alice());
  assert.equal(!unknown.ok && unknown.rule, 'unknown-device');
  const split = allocate(req({ gpus: ['device=0'] }), mixed, [], alice());
  assert.match(!split.ok ? split.message : '', /GPU 0 is split into MIG slices/);
});

test('busy: 7 slices held, the 8th request refused and retryable; queued demand set aside', () => {
  const held = seven.devices.map((d, i) => hold(seven, d.slot, `u${i}`, 2000 + i));
  const a = allocate(req({ gpus: ['1'] }), seven, held, alice({ max: 1 }));
  assert.equal(!a.ok && a.rule, 'busy');
  assert.equal(!a.ok && a.retryable, true);
  assert.match(!a.ok ? a.message : '', /^no free GPU device for 1 GPU: 0 of the 7 you may use are free/);
  const queued = allocate(req({ gpus: ['1'] }), seven, held.slice(1), alice({ max: 1 }), { aheadDemand: 1 });
  assert.equal(!queued.ok && queued.rule, 'busy');
  assert.ok(allocate(req({ gpus: ['1'] }), seven, held.slice(2), alice({ max: 1 }), { aheadDemand: 1 }).ok);
});

test('no GPUs on the host: a clear refusal', () => {
  const a = allocate(req({ gpus: ['1'] }), { devices: [], gpus: [], source: 'nvidia-smi -L', unavailable: 'nvidia-smi not found' }, [], alice());
  assert.equal(!a.ok && a.rule, 'no-gpus');
  assert.match(!a.ok ? a.message : '', /no GPU device to give \(nvidia-smi not found\)/);
});

test('waiting order: priority, then arrival', () => {
  assert.equal(isAhead({ priority: 50, arrival: 10 }, { priority: 10, arrival: 5 }), true);
  assert.equal(isAhead({ priority: 10, arrival: 4 }, { priority: 10, arrival: 5 }), true);
  assert.equal(isAhead({ priority: 10, arrival: 6 }, { priority: 10, arrival: 5 }), false);
});

test('rewrite value and labels', () => {
  const [a, b] = mixed.devices;
  assert.equal(gpusFlagValue([a!]), `device=${a!.uuid}`);
  assert.equal(gpusFlagValue([a!, b!], ['compute', 'utility']), `"device=${a!.uuid},${b!.uuid}","capabilities=compute,utility"`);
  // docker's parser reads our value back to the same devices
  assert.deepEqual(normaliseGpuRequest({ gpus: [gpusFlagValue([a!, b!], ['compute'])] }).devices, [a!.uuid, b!.uuid]);
  assert.deepEqual(gpuLabels('ds01', [a!, b!], new Date('2026-11-23T18:00:00.123Z'), 10), [
    ['ds01.gpu.allocated', '0.0,0.1'],
    ['ds01.gpu.uuid', `${a!.uuid},${b!.uuid}`],
    ['ds01.gpu.allocated_at', '2026-11-23T18:00:00Z'],
    ['ds01.gpu.priority', '10'],
  ]);
});

// ---- Docker state

const details = (over: { state?: string; finishedAt?: string; req?: object[]; runtime?: string; env?: string[]; labels?: Record<string, string>; name?: string }): ContainerDetails => ({
  Id: `id${over.name ?? 'x'}`,
  Name: `/${over.name ?? 'x'}`,
  Created: '2026-11-23T17:00:00.5Z',
  Image: 'sha256:1',
  State: { Status: over.state ?? 'running', Running: (over.state ?? 'running') === 'running', FinishedAt: over.finishedAt ?? '0001-01-01T00:00:00Z' },
  Config: { Env: over.env ?? [], Labels: over.labels ?? {} },
  HostConfig: { Runtime: over.runtime ?? 'runc', DeviceRequests: (over.req ?? null) as never },
});

test('device requests → ids, as dockerd hands them to the hook', () => {
  const gpu = [['gpu']];
  assert.deepEqual(gpuIdsOf(details({ req: [{ Driver: '', Count: 0, DeviceIDs: ['MIG-a', 'MIG-b'], Capabilities: gpu }] })), ['MIG-a', 'MIG-b']);
  assert.deepEqual(gpuIdsOf(details({ req: [{ Driver: '', Count: 2, DeviceIDs: null, Capabilities: gpu }] })), ['0', '1']);
  assert.deepEqual(gpuIdsOf(details({ req: [{ Driver: '', Count: -1, DeviceIDs: null, Capabilities: gpu }] })), ['all']);
  assert.deepEqual(gpuIdsOf(details({ req: [{ Driver: 'other', Count: 1, Capabilities: [['fpga']] }] })), []);
  // env counts on an NVIDIA runtime only (a CUDA image's ENV NVIDIA_VISIBLE_DEVICES=all on runc exposes nothing)
  assert.deepEqual(gpuIdsOf(details({ runtime: 'nvidia', env: ['PATH=/bin', 'NVIDIA_VISIBLE_DEVICES=1:2'] })), ['1:2']);
  assert.deepEqual(gpuIdsOf(details({ runtime: 'runc', env: ['NVIDIA_VISIBLE_DEVICES=all'] })), []);
  assert.deepEqual(gpuIdsOf(details({ runtime: 'nvidia', env: ['NVIDIA_VISIBLE_DEVICES=void'] })), []);
});

test('holdings: running/created hold, exited hold for holdAfterStop, labels describe', () => {
  const now = new Date('2026-11-23T18:00:00Z');
  const uuid = (slot: string) => mixed.devices.find((d) => d.slot === slot)!.uuid;
  const cs = [
    details({ name: 'run', req: [{ DeviceIDs: [uuid('0.0')], Capabilities: [['gpu']] }], labels: { 'ds01.user': 'alice', 'ds01.uid': '1001', 'ds01.gpu.allocated_at': '2026-11-23T17:10:00Z' } }),
    details({ name: 'created', state: 'created', req: [{ DeviceIDs: ['0.1'], Capabilities: [['gpu']] }] }),
    details({ name: 'recent', state: 'exited', finishedAt: '2026-11-23T17:59:50Z', req: [{ DeviceIDs: [uuid('0.2')], Capabilities: [['gpu']] }] }),
    details({ name: 'old', state: 'exited', finishedAt: '2026-11-23T17:00:00Z', req: [{ DeviceIDs: [uuid('0.3')], Capabilities: [['gpu']] }] }),
    details({ name: 'raw-all', state: 'exited', finishedAt: '2026-11-23T17:00:00Z', req: [{ Count: -1, Capabilities: [['gpu']] }] }),
    details({ name: 'idx', req: [{ Count: 1, Capabilities: [['gpu']] }] }),
  ].map(containerGpus);
  const h = holdingsFromContainers(cs, mixed, { labelPrefix: 'ds01', holdAfterStopMs: 30_000, now });
  const bySlot = (slot: string) => h.filter((x) => x.uuid === uuid(slot)).map((x) => x.holder.name);
  assert.deepEqual(bySlot('0.0'), ['run', 'idx']); // index 0 = all of GPU 0's slices
  assert.deepEqual(bySlot('0.1'), ['created', 'idx']);
  assert.deepEqual(bySlot('0.2'), ['recent', 'idx']);
  assert.deepEqual(bySlot('0.3'), ['idx']);
  assert.deepEqual(bySlot('2'), []);
  const run = h.find((x) => x.holder.name === 'run')!.holder;
  assert.deepEqual([run.user, run.uid, run.since], ['alice', 1001, '2026-11-23T17:10:00Z']);
  assert.equal(h.find((x) => x.holder.name === 'recent')!.holder.until, '2026-11-23T18:00:20.000Z');
  assert.equal(h.find((x) => x.holder.name === 'created')!.holder.user, undefined);
});

test('gpus table: free rows, holder unknown without label', () => {
  const now = new Date('2026-11-23T18:00:00Z');
  const uuid = small.devices[1]!.uuid;
  const rows = gpuRows(small, new Map([[uuid, [{ kind: 'container' as const, id: 'abcdef1234567890', name: 'raw', state: 'running', since: '2026-11-23T17:58:00.123456Z' }]]]));
  assert.equal(rows.length, 7);
  assert.deepEqual([rows[1]!.user, rows[1]!.container, rows[1]!.state], ['unknown', 'raw', 'running']);
  assert.equal(rows[0]!.state, 'free');
  const table = formatGpuTable(rows, now).split('\n');
  assert.match(table[0]!, /^SLOT +UUID +PROFILE +USER +CONTAINER +STATE +HELD SINCE$/);
  assert.match(table[2]!, new RegExp(`^0\\.1 +${uuid} +1g\\.10gb +unknown +raw +running +2026-11-23T17:58:00Z \\(2m\\)$`));
  assert.match(table[1]!, /^0\.0 +MIG-\S+ +3g\.40gb +- +- +free +-$/);
});

test('start of a stopped GPU container (shim and API face alike): vanished, taken, and the owner\'s quota', () => {
  const d0 = seven.devices[0]!;
  const d1 = seven.devices[1]!;
  const c = (ids: string[]) => ({ name: 'job', ids, labels: { 'ds01.user': 'alice', 'ds01.uid': '1001', 'ds01.gpu.allocated': '0.0', 'ds01.gpu.uuid': ids.join(',') } });
  const start = (ids: string[], holdings: Holding[], owner: Requester | undefined) => decideStart(c(ids), seven, holdings, owner, 'ds01', '30m');
  const ok = start([d0.uuid], [], alice({ max: 1 }));
  assert.deepEqual(ok.ok && ok.devices.map((d) => d.slot), [d0.slot]);
  const gone = start(['MIG-00000000-dead-beef-0000-000000000000'], [], alice());
  assert.equal(gone.ok || gone.rule, 'vanished');
  const taken = start([d0.uuid], [hold(seven, d0.slot, 'bob', 1002)], alice());
  assert.equal(taken.ok || taken.rule, 'taken');
  assert.equal(start([d0.uuid], [hold(seven, d0.slot, 'alice', 1001, 'other-of-hers')], alice({ max: 2 })).ok, true, 'her own other container sharing it');
  // she made another GPU container while this one was stopped: starting it would be two, and her quota is one
  const over = start([d0.uuid], [hold(seven, d1.slot, 'alice', 1001, 'newer')], alice({ max: 1 }));
  assert.equal(over.ok || over.rule, 'max');
  assert.match(over.ok ? '' : over.message, /starting "job" would give alice 2 GPU devices and gpus.max is 1/);
  const eq = start([d0.uuid], [hold(seven, d1.slot, 'alice', 1001, 'newer')], alice({ max: 5, maxEquivalents: 1 / 7 }));
  assert.equal(eq.ok || eq.rule, 'maxEquivalents');
  assert.equal(start([d0.uuid], [hold(seven, d1.slot, 'alice', 1001, 'newer')], undefined).ok, true, 'no known owner: no quota to apply');
});
