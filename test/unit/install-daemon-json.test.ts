import { test } from 'node:test';
import assert from 'node:assert/strict';
import { detectIndent, formatDaemonJson, mergeDaemonConfig, parseDaemonJson, unmergeDaemonConfig } from '../../src/install/daemon-json.ts';
import { parseInstallArgs } from '../../src/install/layout.ts';
import { ensurePolicyKeys, examplePolicy } from '../../src/install/policy-file.ts';
import { parsePolicy } from '../../src/policy/load.ts';

const LIB = '/usr/local/lib/gpuguard';
const none = () => undefined;

test('merge: our runtime becomes the default, other runtimes go through their own wrapper, other keys stay', () => {
  const original = { 'log-driver': 'json-file', runtimes: { nvidia: { path: '/usr/bin/nvidia-container-runtime', runtimeArgs: ['--x'] } }, 'default-runtime': 'nvidia' };
  const m = mergeDaemonConfig(original, LIB, '/usr/sbin/runc', none);
  assert.deepEqual(m.config, {
    'log-driver': 'json-file',
    runtimes: { nvidia: { path: `${LIB}/runtimes/nvidia/gpuguard-runc`, runtimeArgs: ['--x'] }, gpuguard: { path: `${LIB}/runtimes/gpuguard/gpuguard-runc` } },
    'default-runtime': 'gpuguard',
  });
  assert.deepEqual(m.wrapped, { nvidia: '/usr/bin/nvidia-container-runtime', gpuguard: '/usr/bin/nvidia-container-runtime' });
  assert.equal(m.previousDefault, 'nvidia');
  assert.deepEqual(original.runtimes.nvidia.path, '/usr/bin/nvidia-container-runtime', 'input untouched');
});

test('merge is idempotent: a merged config merges to itself, real paths from the .real links', () => {
  const first = mergeDaemonConfig({ runtimes: { nvidia: { path: '/usr/bin/nvidia-container-runtime' } } }, LIB, '/usr/sbin/runc', none);
  const links: Record<string, string> = first.wrapped;
  const second = mergeDaemonConfig(first.config, LIB, '/usr/sbin/runc', (n) => links[n]);
  assert.deepEqual(second.config, first.config);
  assert.deepEqual(second.wrapped, first.wrapped);
});

test('merge refuses a wrapped runtime whose real path is lost, and a default runtime that is not registered', () => {
  const merged = mergeDaemonConfig({ runtimes: { nvidia: { path: '/x' } } }, LIB, '/usr/sbin/runc', none).config;
  assert.throws(() => mergeDaemonConfig(merged, LIB, '/usr/sbin/runc', none), /\.real link is gone/);
  assert.throws(() => mergeDaemonConfig({ 'default-runtime': 'crun' }, LIB, '/usr/sbin/runc', none), /default-runtime "crun" is not registered/);
});

test('unmerge restores real paths and the previous default; keeps later edits', () => {
  const original = { debug: false, runtimes: { nvidia: { path: '/usr/bin/nvidia-container-runtime' } } };
  const m = mergeDaemonConfig(original, LIB, '/usr/sbin/runc', none);
  const edited = { ...m.config, 'max-concurrent-downloads': 6 };
  assert.deepEqual(unmergeDaemonConfig(edited, LIB, m.wrapped, m.previousDefault, true), { ...original, 'max-concurrent-downloads': 6 });
  const fromEmpty = mergeDaemonConfig({}, LIB, '/usr/sbin/runc', none);
  assert.deepEqual(unmergeDaemonConfig(fromEmpty.config, LIB, fromEmpty.wrapped, undefined, false), {});
});

test('format keeps the indentation of the original', () => {
  assert.equal(detectIndent('{\n    "a": 1\n}\n'), '    ');
  assert.equal(detectIndent('{\n\t"a": 1\n}'), '\t');
  assert.equal(detectIndent('{"a":1}'), 2);
  assert.equal(formatDaemonJson({ a: 1 }, '{\n\t"b": 2\n}\n'), '{\n\t"a": 1\n}\n');
});

test('daemon.json that is not JSON or has a runtime without a path is refused with the file name', () => {
  assert.throws(() => parseDaemonJson('{"a":', '/etc/docker/daemon.json'), /\/etc\/docker\/daemon\.json: not valid JSON/);
  assert.throws(() => parseDaemonJson('{"runtimes":{"x":{}}}', 'f'), /runtime "x" has no "path"/);
  assert.deepEqual(parseDaemonJson('  \n', 'f'), {});
});

test('the example policy is valid for both cgroup drivers', () => {
  for (const cgroupDriver of ['systemd', 'cgroupfs'] as const) {
    const p = parsePolicy(examplePolicy({ realDocker: '/usr/bin/docker.real', realRuntime: '/usr/sbin/runc', eventsLog: '/var/log/gpuguard/events.jsonl', cgroupDriver, cpus: 2 }), 'example');
    assert.equal(p.groups.users?.limits?.cpus, 2, 'never more CPUs than the host has');
    assert.equal(p.docker.realPath, '/usr/bin/docker.real');
    assert.equal(p.cgroup?.parent.endsWith('.slice'), cgroupDriver === 'systemd');
    // The security block filled in, as DESIGN.md sketches it.
    assert.deepEqual(p.security, { privileged: false, capAdd: ['SYS_PTRACE'], devices: false, hostNamespaces: false, otherUsersContainers: false, unconfined: false, binds: ['{home}', '/srv/*', '/scratch/{user}'] });
  }
});

test('ensurePolicyKeys adds docker.realPath keeping comments, leaves a right one alone', () => {
  const text = '# site\nversion: 1 # v\ndocker: {psFilter: all}\n';
  const e = ensurePolicyKeys(text, '/usr/bin/docker.real', undefined, () => false)!;
  assert.deepEqual(e.changed, ['docker.realPath: /usr/bin/docker.real']);
  assert.match(e.text, /^# site\nversion: 1 # v\n/);
  assert.equal(parsePolicy(e.text, 'x').docker.realPath, '/usr/bin/docker.real');
  const same = ensurePolicyKeys(e.text, '/usr/bin/docker.real', undefined, (p) => p === '/usr/bin/docker.real')!;
  assert.deepEqual(same.changed, []);
  assert.equal(ensurePolicyKeys('[1, 2]', '/x', undefined, () => false), undefined);
});

test('install options: --root puts defaults under the tree, explicit paths are used as given', () => {
  const o = parseInstallArgs(['--root', '/tmp/t', '--daemon-json', '/tmp/d/daemon.json', '--concourse'], '/bin/true');
  assert.deepEqual(o.lib, { host: '/tmp/t/usr/local/lib/gpuguard', view: '/usr/local/lib/gpuguard' });
  assert.deepEqual(o.daemonJson, { host: '/tmp/d/daemon.json', view: '/tmp/d/daemon.json' });
  assert.deepEqual(o.concourse, { host: '/tmp/t/opt/concourse/bin', view: '/opt/concourse/bin' });
  assert.equal(o.dockerdPid, undefined, 'no reload of the host dockerd for a tree');
  assert.equal(parseInstallArgs([], '/bin/true').dockerdPid, '/var/run/docker.pid');
  assert.deepEqual(parseInstallArgs(['--concourse', '/srv/cc/bin'], '/bin/true').concourse, { host: '/srv/cc/bin', view: '/srv/cc/bin' });
  assert.throws(() => parseInstallArgs(['--bogus']), /unknown option "--bogus"/);
});
