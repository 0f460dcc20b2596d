/**
 * config.json edits on real captures (dockerd 20.10, containerd 1.6 via ctr),
 * in memory: the policy decides, the modifiers apply, nothing touches disk
 * but the dataset stand-in directories.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseRuncArgs } from '../../src/oci-hook/args.ts';
import { editSpec, hostMounts, listDirs, type EditHost } from '../../src/oci-hook/create.ts';
import type { CgroupIo } from '../../src/oci-hook/cgroups.ts';
import { envMap } from '../../src/oci/env.ts';
import { MemorySpec, type OciConfig } from '../../src/oci/spec.ts';
import { parsePolicy } from '../../src/policy/load.ts';
import { FIXTURES } from '../harness/tools.ts';

const capture = (name: string): string => readFileSync(join(FIXTURES, 'config-json', `${name}.json`), 'utf8');

const srv = mkdtempSync(join(tmpdir(), 'gg-srv-'));
const datasets = join(srv, 'datasets');
for (const d of ['datasets', 'a', 'b_rw', '.hidden']) mkdirSync(join(srv, d));

const policy = parsePolicy(
  `version: 1
groups:
  students: {members: [alice], aggregate: {memory: 64m, memoryHigh: 60m, cpus: 1.5, pids: 100}}
  researchers: {members: [carol]}
cgroup: {parent: "/ds01/{group}/{user}"}
runtime:
  rules:
    - name: concourse-gpu
      match: {namespace: concourse}
      env: {NVIDIA_VISIBLE_DEVICES: all, NVIDIA_DRIVER_CAPABILITIES: all}
    - name: datasets
      mounts: [{source: ${datasets}, destination: /srv/datasets, readOnly: true, ifExists: true}]
    - name: concourse-srv
      match: {namespace: concourse}
      mounts: [{source: "${srv}/*", destination: "/srv/{name}", readOnly: true, writableSuffixes: [_rw, _writable]}]
    - name: gone
      match: {annotations: {org.example/gone: "*"}}
      mounts: [{source: /nonexistent/gpuguard, destination: /gone, readOnly: true, ifExists: true}]
`,
  'test-policy.yaml',
);

const writes: string[] = [];
const fakeCgroups: CgroupIo = {
  mkdirp: () => {},
  write: (p, v) => void writes.push(`${p}=${v}`),
  read: () => '',
  systemctl: () => {},
  systemdRunning: () => false,
};
function host(rro = true): EditHost {
  return {
    mounts: { ...hostMounts('/nonexistent'), rro },
    lookup: (name) => ({ user: name, uid: 1000, unixGroups: [] }),
    cgroupLayout: () => ({ kind: 'v1', mounts: { memory: '/cg/memory', cpu: '/cg/cpu', pids: '/cg/pids' } }),
    cgroupIo: fakeCgroups,
    listDirs,
    nvidiaMajors: () => new Set([195, 511]),
  };
}

const dockerCall = (id = 'c1') =>
  parseRuncArgs(['--root', '/run/docker/runtime-runc/moby', '--log', '/b/log.json', '--log-format', 'json', 'create', '--bundle', `/run/containerd/io.containerd.runtime.v2.task/moby/${id}`, id], '/');
const ctrCall = parseRuncArgs(['--root', '/run/containerd/runc/concourse', 'create', '--bundle', '/x/io.containerd.runtime.v2.task/concourse/t1', 't1'], '/');

function mountAt(config: OciConfig, dest: string) {
  return (config.mounts ?? []).filter((m) => m.destination === dest);
}

test('docker (moby): datasets bind rro, no GPU grant → void, unknown fields kept, idempotent', () => {
  const raw = JSON.parse(capture('dockerd-20.10-plain'));
  raw['x-unknown-top'] = { keep: [1, 2] };
  raw.linux['x-unknown-linux'] = true;
  const spec = new MemorySpec(raw);
  const r = editSpec(spec, dockerCall(), policy, host());
  assert.equal(r.namespace, 'moby');
  assert.deepEqual(r.rules, ['datasets']);
  const [m] = mountAt(spec.config, '/srv/datasets');
  assert.deepEqual(m, { destination: '/srv/datasets', type: 'bind', source: datasets, options: ['rbind', 'ro', 'rro', 'nosuid', 'nodev'] });
  assert.equal(envMap(spec.config).NVIDIA_VISIBLE_DEVICES, 'void');
  assert.ok(r.written);
  const written = JSON.parse(spec.writes[0]!);
  assert.deepEqual(written['x-unknown-top'], { keep: [1, 2] });
  assert.equal(written.linux['x-unknown-linux'], true);
  // every original key is still there, in order
  assert.deepEqual(Object.keys(written), Object.keys(raw));

  const again = new MemorySpec(spec.writes[0]!);
  const r2 = editSpec(again, dockerCall(), policy, host());
  assert.equal(r2.written, false, 'a second application changes nothing');
  assert.deepEqual(r2.changes, []);
});

test('docker: without rro support the mount is ro and a warning says submounts stay writable', () => {
  const spec = new MemorySpec(capture('dockerd-20.10-plain'));
  const r = editSpec(spec, dockerCall(), policy, host(false));
  assert.deepEqual(mountAt(spec.config, '/srv/datasets')[0]!.options, ['rbind', 'ro', 'nosuid', 'nodev']);
  assert.ok(r.changes.some((c) => c.warning && /rro/.test(c.what)));
});

test('docker: -v dir:/srv/datasets (rw) becomes read-only, not a duplicate; -e NVIDIA_VISIBLE_DEVICES=all → void', () => {
  const spec = new MemorySpec(capture('dockerd-20.10-volume-nvenv'));
  assert.equal(envMap(spec.config).NVIDIA_VISIBLE_DEVICES, 'all');
  editSpec(spec, dockerCall(), policy, host());
  const ms = mountAt(spec.config, '/srv/datasets');
  assert.equal(ms.length, 1);
  assert.equal(ms[0]!.source, '/tmp/ggcap/vol', "the user's own mount is kept");
  assert.deepEqual(ms[0]!.options, ['rbind', 'rprivate', 'ro', 'rro']);
  assert.equal(envMap(spec.config).NVIDIA_VISIBLE_DEVICES, 'void');
  assert.equal(spec.config.process!.env!.filter((e) => e.startsWith('NVIDIA_VISIBLE_DEVICES=')).length, 1);
});

test('docker: a bind of the protected source elsewhere is made read-only too', () => {
  const raw = JSON.parse(capture('dockerd-20.10-plain')) as OciConfig;
  raw.mounts!.push({ destination: '/data', type: 'bind', source: join(datasets, '.'), options: ['rbind', 'rprivate'] });
  const spec = new MemorySpec(raw);
  editSpec(spec, dockerCall(), policy, host());
  assert.deepEqual(mountAt(spec.config, '/data')[0]!.options, ['rbind', 'rprivate', 'ro', 'rro']);
});

test('docker --gpus device=GPU-…: the NVIDIA hook is a grant, the device list is kept', () => {
  const spec = new MemorySpec(capture('dockerd-20.10-gpus-device'));
  const r = editSpec(spec, dockerCall(), policy, host());
  assert.equal(envMap(spec.config).NVIDIA_VISIBLE_DEVICES, 'GPU-11111111-2222-3333-4444-555555555555');
  assert.ok(!r.changes.some((c) => c.modifier === 'gpu-env'));
  assert.deepEqual(r.gpus, ['GPU-11111111-2222-3333-4444-555555555555']);
});

test('ctr in namespace concourse: rule env (process.env created), /srv/* glob with writable suffix', () => {
  const spec = new MemorySpec(capture('containerd-1.6-ctr-concourse'));
  assert.equal(spec.config.process!.env, undefined);
  const r = editSpec(spec, ctrCall, policy, host());
  assert.equal(r.namespace, 'concourse');
  assert.deepEqual(r.gpus, ['all']);
  assert.deepEqual(r.rules, ['concourse-gpu', 'datasets', 'concourse-srv']);
  assert.deepEqual(spec.config.process!.env, ['NVIDIA_VISIBLE_DEVICES=all', 'NVIDIA_DRIVER_CAPABILITIES=all']);
  assert.deepEqual(mountAt(spec.config, '/srv/a')[0]!.options, ['rbind', 'ro', 'rro', 'nosuid', 'nodev']);
  assert.deepEqual(mountAt(spec.config, '/srv/b_rw')[0]!.options, ['rbind', 'nosuid', 'nodev']);
  assert.equal(mountAt(spec.config, '/srv/datasets').length, 1, 'datasets from two rules: one mount');
  assert.equal(mountAt(spec.config, '/srv/.hidden').length, 0);
  const again = new MemorySpec(spec.writes[0]!);
  assert.equal(editSpec(again, ctrCall, policy, host()).written, false);
});

test('namespace default: the concourse rules do not apply', () => {
  const call = parseRuncArgs(['--root', '/run/containerd/runc/default', 'create', '--bundle', '/x/io.containerd.runtime.v2.task/default/t1', 't1'], '/');
  const spec = new MemorySpec(capture('containerd-1.6-ctr-concourse'));
  const r = editSpec(spec, call, policy, host());
  assert.equal(r.namespace, 'default');
  assert.deepEqual(envMap(spec.config), { NVIDIA_VISIBLE_DEVICES: 'void' });
});

test('missing ifExists source: skipped with a warning, container still edited', () => {
  const raw = JSON.parse(capture('dockerd-20.10-plain')) as OciConfig;
  raw.annotations = { 'org.example/gone': 'yes' };
  const spec = new MemorySpec(raw);
  const r = editSpec(spec, dockerCall(), policy, host());
  assert.deepEqual(r.rules, ['datasets', 'gone']);
  assert.equal(mountAt(spec.config, '/gone').length, 0);
  assert.ok(r.changes.some((c) => c.warning && /skipped \/nonexistent\/gpuguard/.test(c.what)));
});

test('cgroup parent of the policy: the user aggregate goes on the parent before the create', () => {
  writes.length = 0;
  const spec = new MemorySpec(capture('dockerd-20.10-cgroup-parent'));
  const r = editSpec(spec, dockerCall(), policy, host());
  assert.equal(r.aggregate?.user, 'alice');
  assert.deepEqual(writes, [
    '/cg/memory/ds01/students/alice/memory.limit_in_bytes=67108864',
    '/cg/memory/ds01/students/alice/memory.soft_limit_in_bytes=62914560',
    '/cg/cpu/ds01/students/alice/cpu.cfs_period_us=100000',
    '/cg/cpu/ds01/students/alice/cpu.cfs_quota_us=150000',
    '/cg/pids/ds01/students/alice/pids.max=100',
  ]);
  writes.length = 0;
  editSpec(new MemorySpec(capture('dockerd-20.10-plain')), dockerCall(), policy, host());
  assert.deepEqual(writes, [], '/docker/<id> is nobody’s parent');
});

test('policy failure in a modifier aborts the whole edit (nothing flushed)', () => {
  const strict = parsePolicy(
    `version: 1\nruntime:\n  rules:\n    - name: need\n      mounts: [{source: /nonexistent/gpuguard, destination: /need, ifExists: false}]\n`,
    'p.yaml',
  );
  const spec = new MemorySpec(capture('dockerd-20.10-plain'));
  assert.throws(() => editSpec(spec, dockerCall(), strict, host()), /does not exist \(ifExists: false\)/);
  assert.deepEqual(spec.writes, []);
});

test.after(() => rmSync(srv, { recursive: true, force: true }));
