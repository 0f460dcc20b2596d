/**
 * GPU device hygiene in the runtime wrapper, on real dockerd 20.10 captures
 * with NVIDIA device nodes and cgroup rules added as `--device` and
 * `--device-cgroup-rule` put them: removed without a grant, untouched with
 * one (the NVIDIA hook of --gpus, or a rule that sets NVIDIA_VISIBLE_DEVICES).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { gpuDevicesModifier, nvidiaMajors } from '../../src/oci-hook/modifiers/gpu-devices.ts';
import { gpuEnvDecision } from '../../src/policy/runtime-rules.ts';
import { MemorySpec, type OciConfig } from '../../src/oci/spec.ts';
import { parsePolicy } from '../../src/policy/load.ts';
import { FIXTURES } from '../harness/tools.ts';

const capture = (name: string): OciConfig => JSON.parse(readFileSync(join(FIXTURES, 'config-json', `${name}.json`), 'utf8'));
const policy = parsePolicy('version: 1\n', 'p.yaml');
const PROC_DEVICES = `Character devices:
  1 mem
  4 /dev/vc/0
136 pts
195 nvidia-frontend
234 nvidia-caps
509 nvidia-uvm

Block devices:
  8 sd
259 blkext
`;

function withNvidia(config: OciConfig): OciConfig {
  const c = structuredClone(config);
  c.linux!.devices = [
    ...(c.linux!.devices ?? []),
    { path: '/dev/nvidia0', type: 'c', major: 195, minor: 0, fileMode: 438, uid: 0, gid: 0 },
    { path: '/dev/nvidia-uvm', type: 'c', major: 509, minor: 0, fileMode: 438, uid: 0, gid: 0 },
    { path: '/dev/gpu-in-disguise', type: 'c', major: 195, minor: 255, fileMode: 438, uid: 0, gid: 0 },
    { path: '/dev/nvidia-caps/nvidia-cap1', type: 'c', major: 234, minor: 1, fileMode: 256, uid: 0, gid: 0 },
    { path: '/dev/mynull', type: 'c', major: 1, minor: 3, fileMode: 438, uid: 0, gid: 0 },
  ];
  c.linux!.resources!.devices = [
    ...(c.linux!.resources!.devices ?? []),
    { allow: true, type: 'c', major: 195, minor: 0, access: 'rwm' },
    { allow: true, type: 'c', major: 195, minor: -1, access: 'rwm' },
    { allow: true, type: 'c', major: 509, minor: 0, access: 'rwm' },
    { allow: true, type: 'c', major: 1, minor: 3, access: 'rwm' },
    { allow: false, type: 'c', major: 195, access: 'rwm' },
  ];
  return c;
}

test('/proc/devices: the nvidia* character majors, 195 always', () => {
  assert.deepEqual([...nvidiaMajors(PROC_DEVICES)].sort((a, b) => a - b), [195, 234, 509]);
  assert.deepEqual([...nvidiaMajors(undefined)], [195]);
});

test('no grant: NVIDIA nodes and the rules that allow them are removed, everything else kept; once is enough', () => {
  const config = withNvidia(capture('dockerd-20.10-plain'));
  const before = config.linux!.resources!.devices!.length;
  const spec = new MemorySpec(config);
  const decision = gpuEnvDecision(policy, { namespace: 'moby', annotations: {}, env: {}, nvidiaHook: false }, []);
  assert.equal(decision.action, 'void');
  const changes = gpuDevicesModifier(decision, () => nvidiaMajors(PROC_DEVICES)).modify(spec);
  assert.deepEqual(spec.config.linux!.devices!.map((d) => d.path), ['/dev/mynull']);
  const rules = spec.config.linux!.resources!.devices!;
  assert.equal(rules.length, before - 3);
  assert.ok(!rules.some((r) => r.allow && r.major !== undefined && [195, 509].includes(r.major)));
  assert.ok(rules.some((r) => !r.allow && r.major === 195), 'deny rules stay');
  assert.ok(rules.some((r) => r.allow && r.major === 1 && r.minor === 3));
  assert.deepEqual(changes.map((c) => c.what.replace(/: no GPU grant.*/, '')), [
    'removed device /dev/nvidia0 (c 195:0)',
    'removed device /dev/nvidia-uvm (c 509:0)',
    'removed device /dev/gpu-in-disguise (c 195:255)',
    'removed device /dev/nvidia-caps/nvidia-cap1 (c 234:1)',
    'removed device cgroup rule c 195:0 rwm',
    'removed device cgroup rule c 195:* rwm',
    'removed device cgroup rule c 509:0 rwm',
  ]);
  assert.deepEqual(gpuDevicesModifier(decision, () => nvidiaMajors(PROC_DEVICES)).modify(spec), [], 'applying twice changes nothing');
});

test('a grant (the --gpus hook, or a rule with NVIDIA_VISIBLE_DEVICES) leaves devices and rules untouched', () => {
  const hooked = withNvidia(capture('dockerd-20.10-gpus-device'));
  const spec = new MemorySpec(hooked);
  const byHook = gpuEnvDecision(policy, { namespace: 'moby', annotations: {}, env: {}, nvidiaHook: true }, []);
  assert.deepEqual(gpuDevicesModifier(byHook, () => new Set([195])).modify(spec), []);
  assert.equal(spec.changed(), false);
  const rule = { name: 'concourse-gpu', env: { NVIDIA_VISIBLE_DEVICES: 'all' } };
  const byRule = gpuEnvDecision(policy, { namespace: 'concourse', annotations: {}, env: {}, nvidiaHook: false }, [rule]);
  assert.deepEqual(gpuDevicesModifier(byRule, () => new Set([195])).modify(new MemorySpec(hooked)), []);
});

test('a plain container without NVIDIA devices: nothing changes', () => {
  const spec = new MemorySpec(capture('dockerd-20.10-plain'));
  const decision = gpuEnvDecision(policy, { namespace: 'moby', annotations: {}, env: {}, nvidiaHook: false }, []);
  assert.deepEqual(gpuDevicesModifier(decision, () => new Set([195])).modify(spec), []);
  assert.equal(spec.changed(), false);
});
