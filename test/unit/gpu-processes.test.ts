/** GPU processes: the compute-apps query's output, attribution to containers and host users, conflicts, placement (src/gpu/processes.ts). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { attributeProcesses, holdersOn, parseComputeApps, placeProcesses, type KnownContainer, type ProcFacts } from '../../src/gpu/processes.ts';
import { InventoryError, parseInventory } from '../../src/gpu/inventory.ts';
import type { Holding } from '../../src/gpu/allocate.ts';
import { FIXTURES } from '../harness/tools.ts';

const text = (name: string) => readFileSync(join(FIXTURES, 'nvidia-smi', name), 'utf8');
const inventory = (name: string) => parseInventory(text(`${name}.txt`), name);

test('compute apps: no MIG, MiB figures', () => {
  assert.deepEqual(parseComputeApps(text('apps-nomig.csv')), [
    { pid: 41234, gpuUuid: 'GPU-1e2f3041-5263-4748-9aeb-d0e1f203142e', usedMiB: 18432 },
    { pid: 41301, gpuUuid: 'GPU-1e2f3041-5263-4748-9aeb-d0e1f203142e', usedMiB: 1024 },
    { pid: 52011, gpuUuid: 'GPU-30415263-7485-496a-bc0d-f20314253640', usedMiB: 40960 },
  ]);
});

test('compute apps: MIG (the physical GPU\'s UUID, memory [N/A]); slice UUIDs; [N/A] fields; no processes', () => {
  const mig = parseComputeApps(text('apps-mig.csv'));
  assert.deepEqual(mig.map((a) => [a.pid, a.usedMiB]), [[61002, null], [61877, null], [61878, null], [62001, 30720]]);
  assert.deepEqual(parseComputeApps(text('apps-mig-slice-uuid.csv')).map((a) => a.gpuUuid), ['MIG-8c9daebf-c0d1-52e3-84f5-7a8b9cadbec8', 'MIG-aebfc0d1-e2f3-5405-a6b7-9cadbecfd0ea']);
  assert.deepEqual(parseComputeApps(text('apps-na.csv')).map((a) => a.usedMiB), [null, null, null]);
  assert.deepEqual(parseComputeApps(text('apps-none.csv')), []);
  assert.deepEqual(parseComputeApps('No running processes found\n'), []);
});

test('compute apps: anything else is an error naming the line', () => {
  const bad: [string, RegExp][] = [
    ['12, GPU-1, 5\n13 GPU-2 5\n', /^q: line 2: expected "pid, gpu_uuid, used_gpu_memory", got "13 GPU-2 5"$/],
    ['abc, GPU-1, 5\n', /^q: line 1: "abc" is not a process id$/],
    ['12, 0, 5\n', /^q: line 1: "0" is not a GPU or MIG UUID$/],
    ['12, GPU-1, 5 MiB\n', /^q: line 1: "5 MiB" is not a memory figure in MiB$/],
  ];
  for (const [input, re] of bad) assert.throws(() => parseComputeApps(input, 'q'), (e: unknown) => e instanceof InventoryError && re.test(e.message), input);
});

const ALICE_CTR = 'c2906aeed0a9852c3df3cae32c6e19aecc87bb3e8505b4c9dafaf9306aee9f9a';
const OTHER_ENGINE = '6075c4d8e8a415f8c0adeec0badf7d9e995831f07d973775bc3950e91b64f010';

/** /proc as a table: pid → [cgroup text, uid, start time]; a pid not in it has exited. */
function procOf(table: Record<number, [string, number, string]>): ProcFacts {
  return { cgroup: (pid) => table[pid]?.[0], uid: (pid) => table[pid]?.[1], startTime: (pid) => table[pid]?.[2] };
}

const known = new Map<string, KnownContainer>([[ALICE_CTR, { name: 'train', user: 'alice', uid: 1001 }]]);
const users: Record<number, string> = { 1001: 'alice', 1002: 'bob', 0: 'root' };

test('attribution: a container process to the container and its owner, a host process to its unix user, an exited one apart', () => {
  const inv = inventory('a100-nomig');
  const holdings: Holding[] = [{ uuid: 'GPU-1e2f3041-5263-4748-9aeb-d0e1f203142e', holder: { kind: 'container', id: ALICE_CTR, name: 'train', state: 'running', user: 'alice' } }];
  const proc = procOf({
    41234: [`12:cpu,cpuacct:/docker/${ALICE_CTR}\n0::/docker/${ALICE_CTR}\n`, 0, '111'], // root inside alice's container
    41301: ['0::/user.slice/user-1002.slice/session-3.scope\n', 1002, '222'],
  });
  const r = attributeProcesses(parseComputeApps(text('apps-nomig.csv')), { proc, containers: known, userByUid: (u) => users[u], inventory: inv, holdings });
  assert.deepEqual(r.exited.map((a) => a.pid), [52011]);
  assert.deepEqual(r.processes, [
    { pid: 41234, gpu: 'GPU-1e2f3041-5263-4748-9aeb-d0e1f203142e', slot: '0', usedMiB: 18432, startTime: '111', user: 'alice', uid: 1001, where: 'container', id: ALICE_CTR, name: 'train', conflict: false, conflictWith: [] },
    { pid: 41301, gpu: 'GPU-1e2f3041-5263-4748-9aeb-d0e1f203142e', slot: '0', usedMiB: 1024, startTime: '222', user: 'bob', uid: 1002, where: 'host', id: null, name: null, conflict: true, conflictWith: ['train'] },
  ]);
});

test('attribution: another engine\'s container is a container (not a host process), named by its process\'s user', () => {
  const inv = inventory('a100-nomig');
  const proc = procOf({ 1: [`0::/kubepods.slice/cri-containerd-${OTHER_ENGINE}.scope\n`, 1002, '9'] });
  const r = attributeProcesses([{ pid: 1, gpuUuid: inv.devices[0]!.uuid, usedMiB: 1 }], { proc, containers: known, userByUid: (u) => users[u], inventory: inv, holdings: [] });
  assert.deepEqual([r.processes[0]!.where, r.processes[0]!.id, r.processes[0]!.name, r.processes[0]!.user], ['container', OTHER_ENGINE, null, 'bob']);
});

test('MIG: a host process on a GPU whose slices containers hold conflicts with them; placement by slice or by GPU', () => {
  const inv = inventory('a100-mig-mixed');
  const slice = inv.devices.find((d) => d.slot === '1.0')!;
  const holdings: Holding[] = [
    { uuid: slice.uuid, holder: { kind: 'container', id: ALICE_CTR, name: 'train', state: 'running', user: 'alice' } },
    { uuid: inv.devices.find((d) => d.slot === '1.2')!.uuid, holder: { kind: 'reservation', id: 'r', name: 'pid 9', state: 'reserved' } },
  ];
  assert.deepEqual(holdersOn('GPU-7b8c9dae-bf0c-41d2-b3e4-6f7a8b9cadb7', inv, holdings), ['train'], 'the GPU\'s own UUID: any slice; reservations are not containers');
  assert.deepEqual(holdersOn(slice.uuid, inv, holdings), ['train']);
  assert.deepEqual(holdersOn('GPU-4f9a2c1e-8b3d-4e71-a2f0-6c5d9e8b1a20', inv, holdings), []);
  const proc = procOf({
    61877: [`0::/docker/${ALICE_CTR}\n`, 1001, '1'],
    61878: ['0::/user.slice/user-1002.slice/session-3.scope\n', 1002, '2'],
    62001: ['0::/user.slice/user-1002.slice/session-3.scope\n', 1002, '3'],
  });
  const r = attributeProcesses(parseComputeApps(text('apps-mig.csv')), { proc, containers: known, userByUid: (u) => users[u], inventory: inv, holdings });
  assert.deepEqual(r.exited.map((a) => a.pid), [61002]);
  assert.deepEqual(r.processes.map((p) => [p.pid, p.slot, p.where, p.conflict]), [[61877, '1', 'container', false], [61878, '1', 'host', true], [62001, '2', 'host', false]]);
  const placed = placeProcesses(r.processes, inv, holdings);
  assert.deepEqual(placed.get(slice.uuid)?.map((p) => p.pid), [61877], 'alice\'s process under the slice her container holds');
  assert.deepEqual(placed.get('gpu:1')?.map((p) => p.pid), [61878], 'bob\'s under the GPU: nvidia-smi does not say which slice');
  assert.deepEqual(placed.get(inv.devices.find((d) => d.slot === '2')!.uuid)?.map((p) => p.pid), [62001]);
  // A driver that names the slice: placed on it.
  const bySlice = attributeProcesses(parseComputeApps(text('apps-mig-slice-uuid.csv')), { proc: procOf({ 71001: ['0::/\n', 1002, '1'], 71002: ['0::/\n', 1002, '2'] }), containers: known, userByUid: (u) => users[u], inventory: inv, holdings });
  assert.deepEqual(bySlice.processes.map((p) => [p.slot, p.conflict]), [['1.0', true], ['1.2', false]]);
});
