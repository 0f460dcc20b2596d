import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseRuncArgs } from '../../src/oci-hook/args.ts';
import { applyAggregate, hostCgroupIo, systemdProperties } from '../../src/oci-hook/cgroups.ts';
import { namespaceOf } from '../../src/oci-hook/facts.ts';
import { featuresListRro, kernelSupportsRro } from '../../src/oci-hook/features.ts';
import { aggregateFor, cgroupParentOf, matchCgroupParent } from '../../src/policy/cgroup-aggregate.ts';
import { renderCgroupParent } from '../../src/policy/effective.ts';
import { parsePolicy } from '../../src/policy/load.ts';
import { gpuEnvDecision, matchingRules, plannedMounts } from '../../src/policy/runtime-rules.ts';

const facts = (over: Partial<Parameters<typeof matchingRules>[1]> = {}) => ({ namespace: 'moby', annotations: {}, env: {}, nvidiaHook: false, ...over });

test('namespace from the bundle path, else from a per-namespace --root', () => {
  const ns = (argv: string[]) => namespaceOf(parseRuncArgs(argv, '/somewhere'));
  assert.equal(ns(['--root', '/x', 'create', '--bundle', '/run/containerd/io.containerd.runtime.v2.task/k8s.io/abc', 'abc']), 'k8s.io');
  assert.equal(ns(['--root', '/run/containerd/runc/concourse', 'create', 'abc']), 'concourse');
  assert.equal(ns(['--root', '/var/run/docker/runtime-runc/moby', 'create', 'abc']), 'moby');
  assert.equal(ns(['--root', '/run/runc', 'create', 'abc']), undefined);
  assert.equal(ns(['create', 'abc']), undefined);
});

test('rule matching: namespace (one or many), annotations and env with "*"', () => {
  const p = parsePolicy(
    `version: 1
runtime:
  rules:
    - {name: all}
    - {name: ns, match: {namespace: [concourse, k8s.io]}}
    - {name: ann, match: {annotations: {a/b: "*"}}}
    - {name: env, match: {env: {CI: "true"}, namespace: concourse}}
`,
    'p.yaml',
  );
  const names = (f: ReturnType<typeof facts>) => matchingRules(p, f).map((r) => r.name);
  assert.deepEqual(names(facts()), ['all']);
  assert.deepEqual(names(facts({ namespace: 'k8s.io', annotations: { 'a/b': '' } })), ['all', 'ns', 'ann']);
  assert.deepEqual(names(facts({ namespace: 'concourse', env: { CI: 'true' } })), ['all', 'ns', 'env']);
  assert.deepEqual(names(facts({ namespace: 'concourse', env: { CI: 'false' } })), ['all', 'ns']);
  assert.deepEqual(names(facts({ namespace: undefined })), ['all']);
});

test('no runtime.rules: the built-in datasets rule', () => {
  const p = parsePolicy('version: 1\n', 'p.yaml');
  const plan = plannedMounts(matchingRules(p, facts()), () => []);
  assert.deepEqual(plan.mounts.map((m) => [m.source, m.destination, m.readOnly]), [['/srv/datasets', '/srv/datasets', true]]);
});

test('GPU env: hook or rule grants; gpuEnv keep turns hygiene off', () => {
  const p = parsePolicy('version: 1\nruntime: {rules: [{name: g, match: {namespace: concourse}, env: {NVIDIA_VISIBLE_DEVICES: all}}]}\n', 'p.yaml');
  assert.equal(gpuEnvDecision(p, facts(), matchingRules(p, facts())).action, 'void');
  assert.equal(gpuEnvDecision(p, facts({ nvidiaHook: true }), []).action, 'keep');
  const c = facts({ namespace: 'concourse' });
  assert.equal(gpuEnvDecision(p, c, matchingRules(p, c)).action, 'keep');
  assert.equal(gpuEnvDecision(parsePolicy('version: 1\nruntime: {gpuEnv: keep}\n', 'p'), facts(), []).action, 'keep');
});

test('cgroup parent from cgroupsPath, cgroupfs and systemd', () => {
  assert.deepEqual(cgroupParentOf('/ds01/students/alice/0123', false), { parent: '/ds01/students/alice', driver: 'cgroupfs' });
  assert.deepEqual(cgroupParentOf('ds01-students-alice.slice:docker:0123', true), { parent: 'ds01-students-alice.slice', driver: 'systemd' });
  assert.equal(cgroupParentOf('/docker', false), undefined);
  assert.equal(cgroupParentOf(undefined, false), undefined);
});

test('the user is recovered from a parent by the template (systemd-escaped in slices)', () => {
  assert.deepEqual(matchCgroupParent('/ds01/{group}/{user}', '/ds01/students/h.baker@hertie-school.lan'), { group: 'students', user: 'h.baker@hertie-school.lan' });
  const slice = renderCgroupParent('ds01-{group}-{user}.slice', { user: 'a-b', group: 'students', uid: 1 });
  assert.equal(slice, 'ds01-students-a\\x2db.slice');
  assert.deepEqual(matchCgroupParent('ds01-{group}-{user}.slice', slice), { group: 'students', user: 'a-b' });
  assert.equal(matchCgroupParent('/ds01/{group}/{user}', '/docker'), undefined);
  assert.equal(matchCgroupParent('/ds01/{user}/{user}', '/ds01/a/b'), undefined);
});

test('aggregate decision: the user’s limits, a note when the group in the path is not theirs', () => {
  const p = parsePolicy(
    'version: 1\ngroups:\n  students: {members: [alice], aggregate: {memory: 64m, cpus: 2}}\n  other: {members: [carol]}\ncgroup: {parent: "/ds01/{group}/{user}"}\n',
    'p.yaml',
  );
  const lookup = (u: string) => ({ user: u, uid: 1, unixGroups: [] });
  const a = aggregateFor(p, '/ds01/students/alice', lookup)!;
  assert.deepEqual(a.limits, { memoryMax: 64 * 1024 * 1024, cpuPeriodUs: 100000, cpuQuotaUs: 200000 });
  assert.equal(a.note, undefined);
  assert.match(aggregateFor(p, '/ds01/other/alice', lookup)!.note!, /not alice's parent \/ds01\/students\/alice/);
  assert.equal(aggregateFor(p, '/ds01/other/carol', lookup), undefined, 'no aggregate: nothing to set');
  assert.equal(aggregateFor(p, '/docker', lookup), undefined);
});

test('cgroup v2 layout: controllers enabled down the path, limit files written', () => {
  const root = mkdtempSync(join(tmpdir(), 'gg-cg2-'));
  try {
    writeFileSync(join(root, 'cgroup.controllers'), 'cpuset cpu io memory pids\n');
    mkdirSync(join(root, 'ds01'));
    writeFileSync(join(root, 'ds01/cgroup.controllers'), 'cpu memory pids\n');
    mkdirSync(join(root, 'ds01/students'));
    writeFileSync(join(root, 'ds01/students/cgroup.controllers'), 'cpu memory pids\n');
    const set = applyAggregate(
      { user: 'alice', group: 'students', parent: '/ds01/students/alice', limits: { memoryMax: 100, memoryHigh: 90, cpuQuotaUs: 150000, cpuPeriodUs: 100000, pidsMax: 7 } },
      'cgroupfs',
      { kind: 'v2', root },
      hostCgroupIo,
    );
    assert.equal(readFileSync(join(root, 'cgroup.subtree_control'), 'utf8'), '+memory +cpu +pids');
    assert.equal(readFileSync(join(root, 'ds01/students/cgroup.subtree_control'), 'utf8'), '+memory +cpu +pids');
    const dir = join(root, 'ds01/students/alice');
    assert.equal(readFileSync(join(dir, 'cpu.max'), 'utf8'), '150000 100000');
    assert.equal(readFileSync(join(dir, 'memory.high'), 'utf8'), '90');
    assert.equal(set.length, 4);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('systemd driver: slice properties (MemoryLimit on v1), refused without a running systemd', () => {
  const l = { memoryMax: 1024, memoryHigh: 900, cpuQuotaUs: 250000, cpuPeriodUs: 100000, pidsMax: 5 };
  assert.deepEqual(systemdProperties('u.slice', l, true), ['set-property', '--runtime', '--', 'u.slice', 'MemoryMax=1024', 'MemoryHigh=900', 'CPUQuota=250%', 'TasksMax=5']);
  assert.deepEqual(systemdProperties('u.slice', l, false).slice(4), ['MemoryLimit=1024', 'CPUQuota=250%', 'TasksMax=5']);
  const calls: string[][] = [];
  const io = { ...hostCgroupIo, systemdRunning: () => true, systemctl: (a: string[]) => void calls.push(a) };
  applyAggregate({ user: 'u', group: 'g', parent: 'u.slice', limits: l }, 'systemd', { kind: 'v2', root: '/nonexistent' }, io);
  assert.equal(calls.length, 1);
  assert.throws(
    () => applyAggregate({ user: 'u', group: 'g', parent: 'u.slice', limits: l }, 'systemd', { kind: 'v2', root: '/x' }, { ...io, systemdRunning: () => false }),
    /systemd is not running/,
  );
});

test('rro: kernel ≥ 5.12 and runc features listing rro', () => {
  assert.equal(kernelSupportsRro('5.11.0-1-amd64'), false);
  assert.equal(kernelSupportsRro('5.12.0'), true);
  assert.equal(kernelSupportsRro('6.18.44-fc'), true);
  assert.equal(featuresListRro('{"mountOptions":["ro","rro"]}'), true);
  assert.equal(featuresListRro('{"mountOptions":["ro"]}'), false);
  assert.equal(featuresListRro('No help topic for \'features\''), false);
});
