/** Create bodies as dockerd reads them, translated into the policy's request and the GPU request, and the answers applied. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createBodyAsDockerdReadsIt } from '../../src/api/gobody.ts';
import { applyGpuGrant, applySettings, createRequestOf, gpuRequestOf, interfaceOfBody, readCreateBody } from '../../src/api/create.ts';
import { HttpError } from '../../src/api/http.ts';
import { securityRequestOfBody } from '../../src/api/security.ts';
import { GpuRequestError } from '../../src/gpu/request.ts';
import type { GpuDevice } from '../../src/gpu/inventory.ts';

const read = (body: unknown) => readCreateBody(createBodyAsDockerdReadsIt(body));

test('field names are canonicalised as Go matches them; two spellings of one field are refused', () => {
  assert.deepEqual(createBodyAsDockerdReadsIt({ image: 'bb', hostconfig: { memory: 5, mounts: [{ type: 'bind', source: '/a', target: '/b' }] } }), {
    Image: 'bb',
    HostConfig: { Memory: 5, Mounts: [{ Type: 'bind', Source: '/a', Target: '/b' }] },
  });
  assert.throws(() => createBodyAsDockerdReadsIt({ Image: 'bb', HostConfig: { Memory: 0, memory: 1 } }), (e: unknown) => e instanceof HttpError && e.status === 400 && /given twice/.test(e.message));
  assert.throws(() => createBodyAsDockerdReadsIt({ Image: 'bb', HostConfig: { Privileged: false, PRIVILEGED: true } }), HttpError);
  assert.throws(() => createBodyAsDockerdReadsIt({ Image: 'bb', HostConfig: { 'Networ\u212AMode': 'host' } }), /non-ASCII/);
  assert.throws(() => createBodyAsDockerdReadsIt({ Image: 'bb', HostConfig: { Binds: ['/:/x'], 'Bind\u017F': ['/:/y'] } }), /non-ASCII/);
  assert.deepEqual(createBodyAsDockerdReadsIt({ Image: 'bb', Labels: { 'a.B': 'x', 'A.b': 'y' } }).Labels, { 'a.B': 'x', 'A.b': 'y' }, 'map keys are not field names');
  assert.deepEqual(createBodyAsDockerdReadsIt({ Image: 'bb', Unknown: 1 }).Unknown, 1, 'unknown fields are kept (dockerd ignores them)');
});

test('dockerd 20.10 reads HostConfig fields from the top level: they are merged into HostConfig its way', () => {
  // no HostConfig: the top-level fields are the HostConfig
  assert.deepEqual(createBodyAsDockerdReadsIt({ Image: 'bb', Privileged: true, Binds: ['/:/host'] }), { Image: 'bb', HostConfig: { Privileged: true, Binds: ['/:/host'] } });
  // with a HostConfig: only Memory, MemorySwap, CpuShares, CpusetCpus, VolumeDriver fill its zero values; the rest is dropped
  assert.deepEqual(createBodyAsDockerdReadsIt({ Image: 'bb', Memory: 7, Privileged: true, CpuShares: 3, HostConfig: { CpuShares: 9 } }), { Image: 'bb', HostConfig: { CpuShares: 9, Memory: 7 } });
  assert.deepEqual(createBodyAsDockerdReadsIt({ Image: 'bb', Cpuset: '0-1', HostConfig: {} }), { Image: 'bb', HostConfig: { CpusetCpus: '0-1' } });
  assert.deepEqual(createBodyAsDockerdReadsIt({ Image: 'bb', privileged: true }), { Image: 'bb', HostConfig: { Privileged: true } });
});

test('the policy\'s request from a body: 0 means unset; sizes read like the flags', () => {
  assert.deepEqual(createRequestOf(read({ Image: 'bb', Labels: { a: 'b' }, HostConfig: { Memory: 0, NanoCpus: 0, PidsLimit: null, ShmSize: 0 } })), { labels: [{ key: 'a', value: 'b', from: 'Labels' }] });
  assert.deepEqual(createRequestOf(read({ Image: 'bb', HostConfig: { Memory: 2 * 1024 ** 3, NanoCpus: 1_500_000_000, PidsLimit: -1, ShmSize: 64 * 1024 ** 2, CgroupParent: '/x', Runtime: 'runc', CpuQuota: 50000, CpuPeriod: 100000 } })), {
    labels: [],
    memory: '2g',
    cpus: '1.5',
    pidsLimit: '-1',
    shmSize: '64m',
    cgroupParent: '/x',
    runtime: 'runc',
    cpuQuota: '50000',
    cpuPeriod: '100000',
  });
  assert.throws(() => read({ Image: 'bb', Labels: { a: 1 } }), (e: unknown) => e instanceof HttpError && e.status === 400);
  assert.throws(() => read({ Image: 'bb', HostConfig: { Memory: '1g' } }), HttpError);
  assert.equal(interfaceOfBody(read({ Image: 'bb' })), 'api');
  assert.equal(interfaceOfBody(read({ Image: 'bb', Labels: { 'com.docker.compose.project': 'p' } })), 'compose');
  assert.equal(interfaceOfBody(read({ Image: 'bb', Labels: { 'com.docker.compose.project': 'p', 'devcontainer.local_folder': '/x' } })), 'devcontainer');
});

test('every way of asking for GPUs in a body is one request for the allocator', () => {
  const g = (hc: unknown, env?: string[]) => {
    const { sources: _s, ...rest } = gpuRequestOf(read({ Image: 'bb', ...(env ? { Env: env } : {}), HostConfig: hc }));
    return rest;
  };
  assert.deepEqual(g({}), { kind: 'none' });
  assert.deepEqual(g({ DeviceRequests: [{ Driver: '', Count: -1, Capabilities: [['gpu']] }] }), { kind: 'all' });
  assert.deepEqual(g({ DeviceRequests: [{ Driver: 'nvidia', Count: 2 }] }), { kind: 'count', count: 2 });
  assert.deepEqual(g({ DeviceRequests: [{ Count: 1, Capabilities: [['compute', 'gpu']] }] }), { kind: 'count', count: 1, capabilities: ['compute'] });
  assert.deepEqual(g({ DeviceRequests: [{ Driver: 'nvidia', DeviceIDs: ['0', 'MIG-x'] }] }), { kind: 'devices', devices: ['0', 'MIG-x'] });
  assert.deepEqual(g({ DeviceRequests: [{ Driver: 'cdi', DeviceIDs: ['nvidia.com/gpu=1:2'] }] }), { kind: 'devices', devices: ['1:2'] });
  assert.deepEqual(g({ DeviceRequests: [{ Driver: 'other', Count: 1, Capabilities: [['fpga']] }] }), { kind: 'none' });
  assert.deepEqual(g({ Devices: [{ PathOnHost: '/dev/nvidia3', PathInContainer: '/dev/nvidia3' }] }), { kind: 'devices', devices: ['3'] });
  assert.deepEqual(g({ Runtime: 'nvidia' }), { kind: 'all' });
  assert.deepEqual(g({ Runtime: 'nvidia' }, ['NVIDIA_VISIBLE_DEVICES=void']), { kind: 'none' });
  assert.deepEqual(g({}, ['NVIDIA_VISIBLE_DEVICES=1.2', 'NVIDIA_VISIBLE_DEVICES']), { kind: 'devices', devices: ['1.2'] });
  assert.throws(() => g({ DeviceRequests: [{ Count: 1, Capabilities: [['gpu']] }] }, ['NVIDIA_VISIBLE_DEVICES=0']), GpuRequestError);
});

test('answers applied to the body: settings, then the grant in place of every GPU ask', () => {
  const body = createBodyAsDockerdReadsIt({
    Image: 'bb',
    Env: ['A=1', 'NVIDIA_VISIBLE_DEVICES=all'],
    Labels: { mine: 'x' },
    HostConfig: {
      Runtime: 'nvidia',
      DeviceRequests: [{ Driver: 'other', Count: 1 }, { Count: -1, Capabilities: [['compute', 'gpu']], Options: { o: 'v' } }],
      Devices: [{ PathOnHost: '/dev/fuse' }, { PathOnHost: '/dev/nvidia0' }],
      SomethingElse: 7,
    },
  });
  applySettings(body, [
    { rule: 'labels.owner', verdict: 'add', reason: '', add: [{ kind: 'label', key: 'ds01.user', value: 'alice' }] },
    { rule: 'limits.memory', verdict: 'add', reason: '', add: [{ kind: 'memory', value: '256m' }] },
    { rule: 'limits.cpus', verdict: 'add', reason: '', add: [{ kind: 'cpus', value: '2' }] },
    { rule: 'cgroup.parent', verdict: 'add', reason: '', add: [{ kind: 'cgroupParent', value: '/ds01/s/alice' }] },
    { rule: 'x', verdict: 'deny', reason: '', add: [{ kind: 'pidsLimit', value: '1' }] },
  ]);
  const dev = { uuid: 'MIG-1', slot: '0.1' } as GpuDevice;
  applyGpuGrant(body, [dev], [['ds01.gpu.uuid', 'MIG-1']]);
  assert.deepEqual(body, {
    Image: 'bb',
    Env: ['A=1', 'NVIDIA_VISIBLE_DEVICES=MIG-1'],
    Labels: { mine: 'x', 'ds01.user': 'alice', 'ds01.gpu.uuid': 'MIG-1' },
    HostConfig: {
      DeviceRequests: [{ Driver: 'other', Count: 1 }, { Driver: 'nvidia', Count: 0, DeviceIDs: ['MIG-1'], Capabilities: [['compute', 'gpu']], Options: { o: 'v' } }],
      Devices: [{ PathOnHost: '/dev/fuse' }],
      SomethingElse: 7,
      Memory: 256 * 1024 ** 2,
      NanoCpus: 2_000_000_000,
      CgroupParent: '/ds01/s/alice',
    },
  });
});

test('a create body as the security policy\'s request: every field dockerd reads, named where it came from', () => {
  const body = createBodyAsDockerdReadsIt({
    Image: 'bb',
    privileged: true,
    HostConfig: {
      CapAdd: ['SYS_ADMIN'],
      Devices: [{ PathOnHost: '/dev/mem' }, { PathOnHost: '/dev/nvidia0' }],
      DeviceRequests: [{ Driver: 'nvidia', Count: 1 }, { Driver: 'fpga', DeviceIDs: ['0'] }],
      DeviceCgroupRules: ['c 195:* rmw'],
      pidmode: 'host',
      NetworkMode: 'container:x',
      SecurityOpt: ['seccomp=unconfined'],
      MaskedPaths: [],
      Binds: ['/etc:/x:ro', 'vol:/v', 'rel:/r', './here:/h'],
      Mounts: [
        { Type: 'bind', Source: '/', Target: '/host' },
        { Type: 'volume', Target: '/y', VolumeOptions: { DriverConfig: { Options: { o: 'bind', device: '/root' } } } },
        { Type: 'tmpfs', Target: '/t' },
      ],
      VolumesFrom: ['alice-c:ro'],
      Links: ['/other:alias'],
    },
  });
  // top-level privileged with a HostConfig present is dropped by dockerd's merge: not an ask
  const req = securityRequestOfBody(body);
  assert.deepEqual(req.privileged, []);
  assert.deepEqual(req.capAdd, [{ cap: 'SYS_ADMIN', from: 'HostConfig.CapAdd SYS_ADMIN' }]);
  assert.deepEqual(req.devices.map((x) => x.device), ['/dev/mem', 'fpga 0']);
  assert.deepEqual(req.deviceCgroupRules.map((x) => x.rule), ['c 195:* rmw']);
  assert.deepEqual(req.namespaces.map((n) => `${n.kind} ${n.mode}`), ['pid host', 'network container:x']);
  assert.deepEqual(req.securityOpt.map((o) => o.opt), ['seccomp=unconfined', 'systempaths=unconfined']);
  assert.deepEqual(req.binds.map((b) => b.source), ['/etc', '/here', '/', '/root']);
  assert.deepEqual(req.volumes.map((v) => v.name), ['vol', 'rel']);
  assert.deepEqual(req.containers.map((c) => `${c.how} ${c.container}`), ['volumes-from alice-c', 'link other']);
  assert.deepEqual(securityRequestOfBody(createBodyAsDockerdReadsIt({ Image: 'bb', Privileged: true })).privileged, [{ from: 'HostConfig.Privileged' }]);
});
