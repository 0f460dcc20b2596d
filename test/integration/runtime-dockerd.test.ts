/**
 * The runtime wrapper as a private dockerd's default runtime (and as ctr's
 * --runc-binary on that dockerd's containerd), with real containerd, shim and
 * runc. The policy reaches the wrapper as dockerd's env GPUGUARD_POLICY:
 * dockerd passes its environment to the containerd it starts, containerd to
 * its shims, the shim to the runtime (captured: every runtime call saw it).
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { forgetCacheEntries } from './runtime-cache-cleanup.ts';
import { BINARY, ensureTestUsers, IS_ROOT, missing, run, startDockerd, which, type PrivateDockerd, installFace } from '../harness/index.ts';

let d: PrivateDockerd | undefined;
let dir: string;
let wrapper: string;
let datasets: string;
let rootfs: string;
let events: string;
const tag = `gg-rt-${process.pid}`;
const cgroupTop = `/${tag}`;
const UUID = 'GPU-4f9a2c1e-8b3d-4e71-a2f0-6c5d9e8b1a20';

before(async () => {
  if (!IS_ROOT || !existsSync(BINARY)) return;
  ensureTestUsers();
  dir = mkdtempSync('/tmp/gg-rtd-');
  chmodSync(dir, 0o755);
  wrapper = installFace(dir, 'gpuguard-runc');
  datasets = join(dir, 'datasets');
  mkdirSync(join(datasets, 'nfs'), { recursive: true });
  writeFileSync(join(datasets, 'hello.txt'), 'hi\n');
  // A submount inside the dataset dir, as an NFS share would be: `ro` leaves it writable, `rro` does not.
  execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', join(datasets, 'nfs')]);
  const srv = join(dir, 'srv');
  for (const s of ['a', 'b_rw']) mkdirSync(join(srv, s), { recursive: true });
  events = join(dir, 'events.jsonl');
  const policy = join(dir, 'policy.yaml');
  writeFileSync(
    policy,
    `version: 1
groups:
  students: {members: ["@gg-students"], aggregate: {memory: 64m, memoryHigh: 60m, pids: 500, cpus: 1.5}}
  researchers: {members: ["@gg-researchers"]}
cgroup: {parent: "${cgroupTop}/{group}/{user}"}
runtime:
  realPath: ${which('runc')}
  rules:
    - name: concourse-gpu
      match: {namespace: concourse}
      env: {NVIDIA_VISIBLE_DEVICES: all, NVIDIA_DRIVER_CAPABILITIES: all}
    - name: datasets
      mounts: [{source: ${datasets}, destination: /srv/datasets, readOnly: true, ifExists: true}]
    - name: concourse-srv
      match: {namespace: concourse}
      mounts: [{source: "${srv}/*", destination: "/srv/{name}", readOnly: true, writableSuffixes: [_rw, _writable]}]
events: {log: ${events}}
`,
  );
  // Variants through the same binary: a real runtime that is the wrapper, or missing; broken policies.
  const variant = (name: string, env: string) => {
    const p = join(dir, name);
    writeFileSync(p, `#!/bin/sh\n${env}\nexec ${wrapper} "$@"\n`, { mode: 0o755 });
    return { path: p };
  };
  writeFileSync(join(dir, 'broken-closed.yaml'), 'version: 1\nruntime: {onPolicyError: closed}\nbogus: 1\n');
  writeFileSync(join(dir, 'broken-open.yaml'), `version: 1\nevents: {log: ${events}}\nbogus: 1\n`);
  d = await startDockerd({
    runtimes: {
      gpuguard: { path: wrapper },
      'gg-loop': variant('rt-loop', `export GPUGUARD_REAL_RUNTIME=${wrapper}`),
      'gg-missing': variant('rt-missing', 'export GPUGUARD_REAL_RUNTIME=/nonexistent/runc'),
      'gg-closed': variant('rt-closed', `export GPUGUARD_POLICY=${join(dir, 'broken-closed.yaml')}`),
      'gg-open': variant('rt-open', `export GPUGUARD_POLICY=${join(dir, 'broken-open.yaml')}`),
    },
    defaultRuntime: 'gpuguard',
    env: { GPUGUARD_POLICY: policy },
  });
  // A rootfs for ctr, from busybox-static.
  rootfs = join(dir, 'rootfs');
  mkdirSync(join(rootfs, 'bin'), { recursive: true });
  for (const sub of ['proc', 'sys', 'dev', 'tmp', 'srv']) mkdirSync(join(rootfs, sub));
  copyFileSync('/bin/busybox', join(rootfs, 'bin/busybox'));
  chmodSync(join(rootfs, 'bin/busybox'), 0o755);
  for (const a of ['sh', 'env', 'touch', 'echo', 'cat', 'ls']) symlinkSync('busybox', join(rootfs, 'bin', a));
});

after(async () => {
  await d?.stop();
  if (!dir) return;
  try {
    execFileSync('umount', ['-l', join(datasets, 'nfs')], { stdio: 'ignore' });
  } catch {
    /* moved or gone */
  }
  // The test's parent cgroups, deepest first.
  for (const ctl of ['memory', 'cpu', 'pids']) {
    for (const sub of ['students/alice', 'students/bob', 'researchers/carol', 'students', 'researchers', '']) {
      try {
        rmdirSync(join('/sys/fs/cgroup', ctl, cgroupTop, sub));
      } catch {
        /* not there */
      }
    }
  }
  for (const p of ['policy.yaml', 'broken-closed.yaml', 'broken-open.yaml']) forgetCacheEntries(join(dir, p));
  rmSync(dir, { recursive: true, force: true });
});

const skip = (t: Parameters<typeof missing>[0]) => missing(t, { root: true, files: [BINARY], commands: ['ctr', 'runc'] }) || !d;

async function ok(args: string[]): Promise<string> {
  const r = await d!.docker(args);
  assert.equal(r.code, 0, `docker ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

function lastEvent(filter: (e: Record<string, unknown>) => boolean): Record<string, unknown> | undefined {
  if (!existsSync(events)) return undefined;
  return readFileSync(events, 'utf8').trim().split('\n').map((l) => JSON.parse(l)).filter(filter).at(-1);
}

test('datasets: visible, read-only (EROFS), its tmpfs submount read-only too (rro); one event per container', async (t) => {
  if (skip(t)) return;
  assert.match(await ok(['run', '--rm', 'bb', 'ls', '/srv/datasets']), /hello\.txt/);
  const r = await d!.docker(['run', '--rm', 'bb', 'sh', '-c', 'touch /srv/datasets/x; echo top=$?; touch /srv/datasets/nfs/x; echo sub=$?; grep " /srv/datasets" /proc/mounts']);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stderr, /touch: \/srv\/datasets\/x: Read-only file system/);
  assert.match(r.stderr, /touch: \/srv\/datasets\/nfs\/x: Read-only file system/);
  assert.match(r.stdout, /top=1\nsub=1\n/);
  const ev = lastEvent((e) => e.face === 'runtime' && e.decision === 'rewrite');
  assert.ok(ev, 'an event for the edited container');
  assert.equal(ev.namespace, 'moby');
  assert.equal(typeof ev.container, 'string');
  assert.deepEqual(ev.rules, ['datasets']);
  assert.ok((ev.changes as string[]).some((c) => c.startsWith(`mount ${datasets} at /srv/datasets rro`)), JSON.stringify(ev.changes));
});

test('datasets: -v <dir>:/srv/datasets (rw) ends read-only; with the source gone, containers still start', async (t) => {
  if (skip(t)) return;
  const mine = join(dir, 'mine');
  mkdirSync(mine, { recursive: true });
  const r = await d!.docker(['run', '--rm', '-v', `${mine}:/srv/datasets`, 'bb', 'sh', '-c', 'touch /srv/datasets/x; echo rc=$?; grep -c " /srv/datasets " /proc/mounts']);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stderr, /Read-only file system/);
  assert.equal(r.stdout, 'rc=1\n1\n', 'one mount, read-only');
  const away = `${datasets}.away`;
  renameSync(datasets, away);
  try {
    const g = await d!.docker(['run', '--rm', 'bb', 'sh', '-c', 'ls /srv/datasets 2>&1; echo started']);
    assert.equal(g.code, 0, g.stderr);
    assert.match(g.stdout, /started/);
    const ev = lastEvent((e) => e.face === 'runtime');
    assert.ok((ev?.warnings as string[] | undefined)?.some((w) => /skipped .*source does not exist/.test(w)), JSON.stringify(ev));
  } finally {
    renameSync(away, datasets);
  }
});

test('GPU env: -e NVIDIA_VISIBLE_DEVICES=all → void; --gpus device=GPU-… keeps the device list', async (t) => {
  if (skip(t)) return;
  assert.match(await ok(['run', '--rm', '-e', 'NVIDIA_VISIBLE_DEVICES=all', 'bb', 'env']), /^NVIDIA_VISIBLE_DEVICES=void$/m);
  const gpus = await ok(['run', '--rm', '--gpus', `device=${UUID}`, 'bb', 'env']);
  assert.match(gpus, new RegExp(`^NVIDIA_VISIBLE_DEVICES=${UUID}$`, 'm'));
  assert.deepEqual(lastEvent((e) => e.face === 'runtime')?.gpus, [UUID], 'the event records the granted device');
});

async function ctr(ns: string, id: string, cmd: string[]) {
  return run('ctr', ['-a', d!.containerdSocket, '-n', ns, 'run', '--rm', '--runc-binary', wrapper, '--rootfs', rootfs, id, ...cmd]);
}

test('ctr: namespace concourse gets the concourse rule env and /srv/* (a read-only, b_rw writable); default and moby do not', async (t) => {
  if (skip(t)) return;
  const c = await ctr('concourse', `${tag}-1`, ['/bin/env']);
  assert.equal(c.code, 0, c.stderr);
  assert.match(c.stdout, /^NVIDIA_VISIBLE_DEVICES=all$/m);
  assert.match(c.stdout, /^NVIDIA_DRIVER_CAPABILITIES=all$/m);
  const s = await ctr('concourse', `${tag}-2`, ['/bin/sh', '-c', 'touch /srv/a/x; echo a=$?; touch /srv/b_rw/x; echo b=$?; ls /srv']);
  assert.equal(s.code, 0, s.stderr);
  assert.match(s.stdout, /a=1\nb=0\n/);
  assert.match(s.stderr, /\/srv\/a\/x: Read-only file system/);
  assert.ok(existsSync(join(dir, 'srv/b_rw/x')));
  for (const ns of ['default', 'moby']) {
    const o = await ctr(ns, `${tag}-${ns}`, ['/bin/env']);
    assert.equal(o.code, 0, o.stderr);
    assert.doesNotMatch(o.stdout, /NVIDIA_DRIVER_CAPABILITIES/);
    assert.match(o.stdout, /^NVIDIA_VISIBLE_DEVICES=void$/m, ns);
  }
});

test('lifecycle through the wrapper: health checks, exec, pause/unpause, stop, restart, kill, rm -f; docker info reads --version', async (t) => {
  if (skip(t)) return;
  const name = `${tag}-life`;
  await ok(['run', '-d', '--name', name, '--health-cmd', 'true', '--health-interval', '1s', '--health-retries', '1', 'bb', 'sleep', '300']);
  try {
    let health = '';
    for (let i = 0; i < 40 && health !== 'healthy'; i++) {
      await new Promise((r) => setTimeout(r, 500));
      health = (await ok(['inspect', '-f', '{{.State.Health.Status}}', name])).trim();
    }
    assert.equal(health, 'healthy');
    assert.equal(await ok(['exec', name, 'echo', 'hi']), 'hi\n');
    await ok(['pause', name]);
    assert.equal((await ok(['inspect', '-f', '{{.State.Status}}', name])).trim(), 'paused');
    await ok(['unpause', name]);
    await ok(['stop', '-t', '1', name]);
    await ok(['restart', '-t', '1', name]);
    assert.equal((await ok(['inspect', '-f', '{{.State.Running}}', name])).trim(), 'true');
    await ok(['kill', name]);
    await ok(['start', name]);
  } finally {
    await ok(['rm', '-f', name]);
  }
  const runcVersion = execFileSync(which('runc')!, ['--version'], { encoding: 'utf8' });
  const commit = /commit: (\S+)/.exec(runcVersion)![1];
  assert.equal((await ok(['info', '--format', '{{.DefaultRuntime}} {{.RuncCommit.ID}}'])).trim(), `gpuguard ${commit}`);
});

test('aggregate 64 MiB: two of alice’s containers writing 40 MiB to /dev/shm cannot both succeed; carol’s (no aggregate) can', async (t) => {
  if (skip(t)) return;
  const fill = 'dd if=/dev/zero of=/dev/shm/f bs=1M count=40 2>/dev/null && echo filled && sleep 120';
  const pair = async (parent: string, who: string) => {
    const first = `${tag}-${who}-1`;
    await ok(['run', '-d', '--name', first, '--cgroup-parent', parent, 'bb', 'sh', '-c', fill]);
    try {
      let logs = '';
      for (let i = 0; i < 40 && !logs.includes('filled'); i++) {
        await new Promise((r) => setTimeout(r, 250));
        logs = (await d!.docker(['logs', first])).stdout;
      }
      assert.match(logs, /filled/, `${who}: the first container filled its 40 MiB`);
      return await d!.docker(['run', '--rm', '--cgroup-parent', parent, 'bb', 'sh', '-c', 'dd if=/dev/zero of=/dev/shm/f bs=1M count=40 2>/dev/null && echo filled']);
    } finally {
      await d!.docker(['rm', '-f', first]);
    }
  };
  const alice = await pair(`${cgroupTop}/students/alice`, 'alice');
  t.diagnostic(`alice's second container: exit ${alice.code} ${alice.stderr.trim()}`);
  assert.notEqual(alice.code, 0, 'the second of alice’s containers is stopped by the aggregate');
  assert.doesNotMatch(alice.stdout, /filled/);
  const mem = join('/sys/fs/cgroup/memory', cgroupTop, 'students/alice');
  assert.equal(readFileSync(join(mem, 'memory.limit_in_bytes'), 'utf8').trim(), String(64 * 1024 * 1024));
  assert.equal(readFileSync(join(mem, 'memory.soft_limit_in_bytes'), 'utf8').trim(), String(60 * 1024 * 1024));
  assert.equal(readFileSync(join('/sys/fs/cgroup/pids', cgroupTop, 'students/alice/pids.max'), 'utf8').trim(), '500');
  assert.equal(readFileSync(join('/sys/fs/cgroup/cpu', cgroupTop, 'students/alice/cpu.cfs_quota_us'), 'utf8').trim(), '150000');
  assert.equal(readFileSync(join('/sys/fs/cgroup/cpu', cgroupTop, 'students/alice/cpu.cfs_period_us'), 'utf8').trim(), '100000');
  const ev = lastEvent((e) => e.user === 'alice');
  assert.ok(ev, 'the event names the user');

  const carol = await pair(`${cgroupTop}/researchers/carol`, 'carol');
  assert.equal(carol.code, 0, carol.stderr);
  assert.match(carol.stdout, /filled/);
});

test('a real runtime that resolves to the wrapper, or is missing: one clear line in docker’s error, no hang', async (t) => {
  if (skip(t)) return;
  for (const [runtime, want] of [
    ['gg-loop', /gpuguard: real runtime .* is this wrapper itself/],
    ['gg-missing', /gpuguard: real runtime \/nonexistent\/runc .*does not exist/],
  ] as const) {
    const started = Date.now();
    const r = await d!.docker(['run', '--rm', '--runtime', runtime, 'bb', 'true']);
    t.diagnostic(`${runtime}: exit ${r.code} in ${Date.now() - started} ms: ${r.stderr.trim()}`);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, want);
    assert.ok(Date.now() - started < 30_000, 'no hang');
  }
});

test('broken policy: onPolicyError closed refuses with the reason in docker’s error; open starts the container unmodified and logs why', async (t) => {
  if (skip(t)) return;
  const closed = await d!.docker(['run', '--rm', '--runtime', 'gg-closed', 'bb', 'true']);
  t.diagnostic(`closed: ${closed.stderr.trim()}`);
  assert.notEqual(closed.code, 0);
  assert.match(closed.stderr, /gpuguard: refusing to create container .*unknown key "bogus".*onPolicyError: closed/);
  const open = await d!.docker(['run', '--rm', '--runtime', 'gg-open', '-e', 'NVIDIA_VISIBLE_DEVICES=all', 'bb', 'env']);
  assert.equal(open.code, 0, open.stderr);
  assert.match(open.stdout, /^NVIDIA_VISIBLE_DEVICES=all$/m, 'unmodified');
  const ev = lastEvent((e) => e.decision === 'error');
  assert.ok((ev?.reasons as string[]).some((r) => /unknown key "bogus"/.test(r)), JSON.stringify(ev));
});
