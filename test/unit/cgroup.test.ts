/** /proc/<pid>/cgroup, mountinfo and CPU counters: cgroup v1 and v2, dockerd's cgroupfs and systemd layouts (src/sys/cgroup.ts). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { containerOfEntries, containerOfPath, cpuCounterFile, parseCgroupMounts, parseCpuCounter, parseProcCgroup } from '../../src/sys/cgroup.ts';

const ID = 'c2906aeed0a9852c3df3cae32c6e19aecc87bb3e8505b4c9dafaf9306aee9f9a';
const INNER = '52d4ed1c83e8d98b8a0d015bb35f3137d7dae4d0a8090f3949b78c4e8112b2a5';

/** This machine's (Debian 12, cgroup v1 hybrid, dockerd 20.10 cgroupfs driver), captured. */
const V1_CGROUPFS = `9:name=systemd:/docker/${ID}
8:pids:/docker/${ID}
7:blkio:/docker/${ID}
6:freezer:/docker/${ID}
5:devices:/docker/${ID}
4:memory:/docker/${ID}
3:cpuset:/docker/${ID}
2:cpuacct:/docker/${ID}
1:cpu:/docker/${ID}
0::/docker/${ID}
`;
const V1_MOUNTS = `31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
`;
/** A systemd host with cgroup v2 only (Debian 12, Ubuntu 22.04 default). */
const V2_MOUNTS = `30 23 0:26 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot\n`;
/** cgroup v1 with co-mounted cpu,cpuacct (Ubuntu 20.04, CentOS 7). */
const V1_COMOUNTED = `25 22 0:22 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid,nodev,noexec,relatime shared:9 - cgroup cgroup rw,cpu,cpuacct\n`;

test('cgroupfs driver, v1 hybrid: the container from any line, the counter from cpuacct', () => {
  const entries = parseProcCgroup(V1_CGROUPFS);
  assert.equal(entries.length, 10);
  assert.deepEqual(entries[1], { hierarchy: 8, controllers: ['pids'], path: `/docker/${ID}` });
  assert.deepEqual(entries.at(-1), { hierarchy: 0, controllers: [], path: `/docker/${ID}` });
  assert.deepEqual(containerOfEntries(entries), { id: ID, engine: 'docker', path: `/docker/${ID}` });
  assert.deepEqual(cpuCounterFile(entries, parseCgroupMounts(V1_MOUNTS)), { file: `/sys/fs/cgroup/cpuacct/docker/${ID}/cpuacct.usage`, kind: 'cpuacct.usage' });
});

test('systemd driver: docker-<id>.scope under the user\'s slice; v2 counter cpu.stat; v1 co-mounted cpu,cpuacct', () => {
  const path = `/gpuguard.slice/gpuguard-students.slice/gpuguard-students-alice.slice/docker-${ID}.scope`;
  const v2 = parseProcCgroup(`0::${path}\n`);
  assert.deepEqual(containerOfEntries(v2), { id: ID, engine: 'docker', path });
  assert.deepEqual(cpuCounterFile(v2, parseCgroupMounts(V2_MOUNTS)), { file: `/sys/fs/cgroup${path}/cpu.stat`, kind: 'cpu.stat' });
  const v1 = parseProcCgroup(`12:cpu,cpuacct:/system.slice/docker-${ID}.scope\n1:name=systemd:/system.slice/docker-${ID}.scope\n0::/system.slice/containerd.service\n`);
  assert.equal(containerOfEntries(v1)?.id, ID, 'the v2 line names no container here: a v1 line does');
  assert.deepEqual(cpuCounterFile(v1, parseCgroupMounts(V1_COMOUNTED)), { file: `/sys/fs/cgroup/cpu,cpuacct/system.slice/docker-${ID}.scope/cpuacct.usage`, kind: 'cpuacct.usage' });
});

test('a cgroup parent of the cgroupfs form, nesting, other engines, host processes', () => {
  assert.deepEqual(containerOfPath(`/gpuguard/students/alice/${ID}`), { id: ID, engine: 'docker' });
  // Docker in Docker: the outermost container is the one on this host's dockerd.
  assert.deepEqual(containerOfPath(`/docker/${ID}/docker/${INNER}`), { id: ID, engine: 'docker' });
  assert.deepEqual(containerOfPath(`/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod1234.slice/cri-containerd-${ID}.scope`), { id: ID, engine: 'other' });
  assert.equal(containerOfPath('/user.slice/user-1002.slice/session-3.scope'), undefined);
  assert.equal(containerOfPath('/'), undefined);
  assert.equal(containerOfPath(`/docker/${ID.slice(0, 12)}`), undefined, 'a short id is no cgroup dockerd makes');
  assert.equal(containerOfEntries(parseProcCgroup('0::/user.slice/user-1002.slice/session-3.scope\n')), undefined);
});

test('mountinfo: v1 controllers, v2, escapes, a mount root other than /', () => {
  const m = parseCgroupMounts(V1_MOUNTS);
  assert.deepEqual(m.map((x) => [x.version, x.controllers.join('+'), x.mountPoint]), [
    [1, 'cpu', '/sys/fs/cgroup/cpu'],
    [1, 'cpuacct', '/sys/fs/cgroup/cpuacct'],
    [1, 'pids', '/sys/fs/cgroup/pids'],
    [1, 'name=systemd', '/sys/fs/cgroup/systemd'],
    [2, '', '/sys/fs/cgroup/unified'],
  ]);
  const nsed = parseCgroupMounts('50 40 0:30 /docker /sys/fs/cgroup\\040x rw - cgroup2 cgroup2 rw\n');
  assert.deepEqual(nsed, [{ version: 2, controllers: [], mountPoint: '/sys/fs/cgroup x', root: '/docker' }]);
  assert.deepEqual(cpuCounterFile(parseProcCgroup(`0::/docker/${ID}\n`), nsed), { file: `/sys/fs/cgroup x/${ID}/cpu.stat`, kind: 'cpu.stat' });
  assert.equal(cpuCounterFile(parseProcCgroup('0::/elsewhere\n'), nsed), undefined, 'outside the mounted part: not visible');
});

test('CPU counters in ns', () => {
  assert.equal(parseCpuCounter('123456789\n', 'cpuacct.usage'), 123456789);
  assert.equal(parseCpuCounter('usage_usec 1500\nuser_usec 1000\nsystem_usec 500\n', 'cpu.stat'), 1_500_000);
  assert.equal(parseCpuCounter('garbage', 'cpuacct.usage'), undefined);
  assert.equal(parseCpuCounter('user_usec 1\n', 'cpu.stat'), undefined);
});
