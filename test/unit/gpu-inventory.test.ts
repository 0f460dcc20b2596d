/** `nvidia-smi -L` parsing against fixtures of real A100 output. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseInventory, profileEquivalents, formatEquivalents, InventoryError } from '../../src/gpu/inventory.ts';
import { FIXTURES } from '../harness/tools.ts';

const fixture = (name: string) => parseInventory(readFileSync(join(FIXTURES, 'nvidia-smi', `${name}.txt`), 'utf8'), name);

test('mixed host: MIG-enabled GPUs offer only their slices, others themselves', () => {
  const inv = fixture('a100-mig-mixed');
  assert.equal(inv.gpus.length, 4);
  assert.deepEqual(inv.gpus.map((g) => g.mig), [true, true, false, false]);
  assert.deepEqual(inv.devices.map((d) => d.slot), ['0.0', '0.1', '0.2', '0.3', '0.4', '0.5', '0.6', '1.0', '1.1', '1.2', '1.3', '2', '3']);
  const s = inv.devices.find((d) => d.slot === '1.0')!;
  assert.deepEqual([s.kind, s.profile, s.uuid, s.gpuUuid, s.gpu, s.mig], ['mig', '3g.40gb', 'MIG-8c9daebf-c0d1-52e3-84f5-7a8b9cadbec8', 'GPU-7b8c9dae-bf0c-41d2-b3e4-6f7a8b9cadb7', 1, 0]);
  assert.ok(Math.abs(s.equivalents - 3 / 7) < 1e-12);
  const full = inv.devices.find((d) => d.slot === '2')!;
  assert.deepEqual([full.kind, full.profile, full.equivalents, full.uuid], ['gpu', 'full', 1, 'GPU-c0d1e2f3-0415-4627-88d9-becfd0e1f20c']);
});

test('no-MIG host: four full GPUs', () => {
  const inv = fixture('a100-nomig');
  assert.deepEqual(inv.devices.map((d) => [d.slot, d.profile]), [['0', 'full'], ['1', 'full'], ['2', 'full'], ['3', 'full']]);
});

test('7x1g and 3g/1g hosts', () => {
  assert.equal(fixture('a100-7x1g').devices.length, 7);
  const inv = fixture('a100-3g-1g');
  assert.deepEqual(inv.devices.map((d) => `${d.slot}:${d.profile}`), ['0.0:3g.40gb', '0.1:1g.10gb', '0.2:1g.10gb', '0.3:1g.10gb', '0.4:1g.10gb', '1.0:3g.40gb', '1.1:3g.40gb']);
});

test('profiles to GPU-equivalents', () => {
  assert.equal(profileEquivalents('1g.10gb', 'NVIDIA A100-SXM4-80GB'), 1 / 7);
  assert.equal(profileEquivalents('7g.80gb', 'NVIDIA A100-SXM4-80GB'), 1);
  assert.equal(profileEquivalents('1g.10gb+me', 'NVIDIA A100-SXM4-80GB'), 1 / 7);
  assert.equal(profileEquivalents('1c.3g.40gb', 'NVIDIA A100-SXM4-80GB'), 1 / 7);
  assert.equal(profileEquivalents('2g.12gb', 'NVIDIA A30'), 2 / 4);
  assert.equal(profileEquivalents('big', 'x'), undefined);
  assert.equal(formatEquivalents(3 / 7), '3/7');
  assert.equal(formatEquivalents(1 + 1 / 7), '1 1/7');
  assert.equal(formatEquivalents(0.5), '1/2');
});

test('older driver MIG UUID form MIG-GPU-<uuid>/gi/ci', () => {
  const inv = parseInventory('GPU 0: A100-SXM4-40GB (UUID: GPU-aaaa-bbbb)\n  MIG 1g.5gb Device 0: (UUID: MIG-GPU-aaaa-bbbb/7/0)\n');
  assert.deepEqual(inv.devices.map((d) => [d.slot, d.uuid]), [['0.0', 'MIG-GPU-aaaa-bbbb/7/0']]);
});

test('parse failures name the line', () => {
  const bad: [string, RegExp][] = [
    ['GPU 0: A100 (UUID: GPU-1)\nNo devices found?\n', /^nvidia-smi -L: line 2: not a GPU or MIG device line: "No devices found\?"$/],
    ['  MIG 1g.10gb Device 0: (UUID: MIG-1)\n', /line 1: MIG device before any GPU line/],
    ['GPU 0: A100 (UUID: GPU-1)\n  MIG huge Device 0: (UUID: MIG-1)\n', /line 2: unknown MIG profile "huge"/],
    ['GPU 0: A100 (UUID: GPU-1)\nGPU 0: A100 (UUID: GPU-2)\n', /line 2: GPU 0 listed twice/],
  ];
  for (const [text, re] of bad) assert.throws(() => parseInventory(text), (e: unknown) => e instanceof InventoryError && re.test(e.message), text);
});
