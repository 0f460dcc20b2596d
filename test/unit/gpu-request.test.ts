/** The GPU request normaliser: every docker way of asking for a GPU → one request. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { normaliseGpuRequest, parseCsvRecord, parseGpusFlag, GpuRequestError, type GpuFlags } from '../../src/gpu/request.ts';

const simple = (r: ReturnType<typeof normaliseGpuRequest>) => {
  const { sources: _s, ...rest } = r;
  return rest;
};

const ok: [string, GpuFlags, NodeJS.ProcessEnv, object][] = [
  ['no flags', {}, {}, { kind: 'none' }],
  ['--gpus all', { gpus: ['all'] }, {}, { kind: 'all' }],
  ['--gpus 2', { gpus: ['2'] }, {}, { kind: 'count', count: 2 }],
  ['--gpus count=3', { gpus: ['count=3'] }, {}, { kind: 'count', count: 3 }],
  ['--gpus count=all', { gpus: ['count=all'] }, {}, { kind: 'all' }],
  ['--gpus 0 is no GPU', { gpus: ['0'] }, {}, { kind: 'none' }],
  ['--gpus device=1.2', { gpus: ['device=1.2'] }, {}, { kind: 'devices', devices: ['1.2'] }],
  ['--gpus device=<uuid>', { gpus: ['device=MIG-0a1b2c3d-4e5f-5a6b-8c7d-9e0f1a2b3c40'] }, {}, { kind: 'devices', devices: ['MIG-0a1b2c3d-4e5f-5a6b-8c7d-9e0f1a2b3c40'] }],
  ['--gpus "device=0,1" (quoted CSV)', { gpus: ['"device=0,1"'] }, {}, { kind: 'devices', devices: ['0', '1'] }],
  ['--gpus capabilities only is a count of 1', { gpus: ['capabilities=compute'] }, {}, { kind: 'count', count: 1, capabilities: ['compute'] }],
  ['--gpus 2,"capabilities=compute,utility"', { gpus: ['2,"capabilities=compute,utility"'] }, {}, { kind: 'count', count: 2, capabilities: ['compute', 'utility'] }],
  ['--gpus "device=0,1","capabilities=compute,utility"', { gpus: ['"device=0,1","capabilities=compute,utility"'] }, {}, { kind: 'devices', devices: ['0', '1'], capabilities: ['compute', 'utility'] }],
  ['--gpus driver=nvidia,count=1', { gpus: ['driver=nvidia,count=1'] }, {}, { kind: 'count', count: 1 }],
  ['--runtime nvidia -e NVIDIA_VISIBLE_DEVICES=0', { runtime: 'nvidia', env: ['NVIDIA_VISIBLE_DEVICES=0'] }, {}, { kind: 'devices', devices: ['0'] }],
  ['-e NVIDIA_VISIBLE_DEVICES=all alone', { env: ['NVIDIA_VISIBLE_DEVICES=all'] }, {}, { kind: 'all' }],
  ['-e NVIDIA_VISIBLE_DEVICES=1:2,MIG-x (gpu:mig and UUID)', { env: ['NVIDIA_VISIBLE_DEVICES=1:2,MIG-x'] }, {}, { kind: 'devices', devices: ['1:2', 'MIG-x'] }],
  ['bare -e NVIDIA_VISIBLE_DEVICES takes the caller env', { env: ['NVIDIA_VISIBLE_DEVICES'] }, { NVIDIA_VISIBLE_DEVICES: '3' }, { kind: 'devices', devices: ['3'] }],
  ['bare -e NVIDIA_VISIBLE_DEVICES unset in the caller env: none', { env: ['NVIDIA_VISIBLE_DEVICES'] }, {}, { kind: 'none' }],
  ['last env entry wins (env-file, then -e)', { env: ['NVIDIA_VISIBLE_DEVICES=all', 'NVIDIA_VISIBLE_DEVICES=void'] }, {}, { kind: 'none' }],
  ['NVIDIA_VISIBLE_DEVICES=none', { runtime: 'nvidia', env: ['NVIDIA_VISIBLE_DEVICES=none'] }, {}, { kind: 'none' }],
  ['--runtime nvidia alone: the image decides, so all (up to quota)', { runtime: 'nvidia' }, {}, { kind: 'all' }],
  ['CDI --device nvidia.com/gpu=0', { devices: ['nvidia.com/gpu=0'] }, {}, { kind: 'devices', devices: ['0'] }],
  ['CDI --device nvidia.com/gpu=1:2 (MIG)', { devices: ['nvidia.com/gpu=1:2'] }, {}, { kind: 'devices', devices: ['1:2'] }],
  ['CDI --device nvidia.com/gpu=all', { devices: ['nvidia.com/gpu=all'] }, {}, { kind: 'all' }],
  ['device node --device /dev/nvidia1', { devices: ['/dev/nvidia1'] }, {}, { kind: 'devices', devices: ['1'] }],
  ['other devices are not GPU requests', { devices: ['/dev/fuse', '/dev/nvidiactl'] }, {}, { kind: 'none' }],
  ['CUDA_VISIBLE_DEVICES is not a request', { env: ['CUDA_VISIBLE_DEVICES=0'] }, {}, { kind: 'none' }],
  ['--gpus 0 plus an env request: the env request', { gpus: ['0'], env: ['NVIDIA_VISIBLE_DEVICES=1'] }, {}, { kind: 'devices', devices: ['1'] }],
];

for (const [name, flags, env, want] of ok) {
  test(`normalise: ${name}`, () => assert.deepEqual(simple(normaliseGpuRequest(flags, env)), want));
}

const bad: [string, GpuFlags, RegExp][] = [
  ['unquoted device list', { gpus: ['device=0,1'] }, /quote the list: --gpus '"device=0,1"'/],
  ['count not a number', { gpus: ['two'] }, /count must be a whole number or "all", got "two"/],
  ['unknown key', { gpus: ['devices=0'] }, /unknown key "devices"/],
  ['key twice', { gpus: ['count=1,count=2'] }, /"count" given twice/],
  ['unterminated quote', { gpus: ['"device=0'] }, /unterminated quote/],
  ['unquoted capabilities list', { gpus: ['capabilities=compute,utility'] }, /got "utility"/],
  ['another driver', { gpus: ['driver=amd'] }, /driver "amd"/],
  ['empty device id', { gpus: ['device='] }, /empty device id/],
  ['two requests', { gpus: ['1'], env: ['NVIDIA_VISIBLE_DEVICES=0'] }, /several GPU requests in one command \(--gpus 1; -e NVIDIA_VISIBLE_DEVICES=0\)/],
  ['--gpus twice', { gpus: ['1', '2'] }, /several GPU requests/],
];
for (const [name, flags, re] of bad) {
  test(`normalise refuses: ${name} (exit 125)`, () => {
    assert.throws(() => normaliseGpuRequest(flags), (err: unknown) => err instanceof GpuRequestError && err.exitCode === 125 && re.test(err.message) && !err.message.includes('\n'));
  });
}

test('sources name the flags', () => {
  assert.deepEqual(parseGpusFlag('2').sources, ['--gpus 2']);
  assert.deepEqual(normaliseGpuRequest({ runtime: 'nvidia', env: ['NVIDIA_VISIBLE_DEVICES=0'] }).sources, ['-e NVIDIA_VISIBLE_DEVICES=0 --runtime nvidia']);
});

test('CSV record like Go encoding/csv', () => {
  assert.deepEqual(parseCsvRecord('a,"b,c",d'), ['a', 'b,c', 'd']);
  assert.deepEqual(parseCsvRecord('"x""y"'), ['x"y']);
  assert.deepEqual(parseCsvRecord(''), ['']);
});
