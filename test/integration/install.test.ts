/**
 * install.sh --root against fixture trees (packaged docker with dpkg, an
 * unpackaged /usr/local/bin/docker, Concourse's runc, an existing daemon.json
 * with an nvidia runtime, an existing policy): the resulting tree, a second
 * install that changes nothing, a dry run that changes nothing, and an
 * uninstall that leaves every file as it was (content, mode, owner).
 */
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { lstatSync, readFileSync, readlinkSync, rmSync, writeFileSync, existsSync, renameSync, symlinkSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';
import { BINARY, missing, ROOT, run } from '../harness/index.ts';
import { makeTree, snapshot } from '../fixtures/install/trees.ts';

const INSTALL = join(ROOT, 'install.sh');
const LIB = '/usr/local/lib/gpuguard';
const SHIM = `${LIB}/gpuguard`;
/** The face names (docker, docker-compose, the runtime wrappers, Concourse's runc) point at the native front. */
const FACE = `${LIB}/gpuguard-front`;
const trees: string[] = [];
after(() => {
  for (const t of trees) rmSync(t, { recursive: true, force: true });
});

function tree(name: Parameters<typeof makeTree>[0]): string {
  const t = makeTree(name);
  trees.push(t);
  return t;
}

async function install(root: string, ...args: string[]) {
  const r = await run('bash', [INSTALL, '--root', root, ...args]);
  return r;
}

const json = (p: string) => JSON.parse(readFileSync(p, 'utf8'));

describe('install.sh --root on a Debian tree with docker.io, docker-compose and nvidia runtime', () => {
  test('installs, is a no-op the second time, and uninstalls to the identical tree', async (t) => {
    if (missing(t, { commands: ['dpkg-divert'], files: [BINARY] })) return;
    const root = tree('packaged');
    const before = snapshot(root);

    const dry = await install(root, '--dry-run');
    assert.equal(dry.code, 0, dry.stderr);
    assert.match(dry.stdout, /would divert \/usr\/bin\/docker \(package docker\.io\)/);
    assert.match(dry.stdout, /would register runtime "gpuguard"/);
    assert.deepEqual(snapshot(root), before, 'a dry run changes nothing');

    const r = await install(root);
    assert.equal(r.code, 0, r.stderr + r.stdout);
    // The shim is docker and docker-compose; the packaged originals are diverted.
    assert.equal(readlinkSync(join(root, 'usr/bin/docker')), FACE);
    assert.equal(readlinkSync(join(root, 'usr/bin/docker-compose')), FACE);
    assert.equal(readFileSync(join(root, 'usr/bin/docker.real'), 'utf8'), '#!/bin/sh\necho "docker 20.10" "$@"\n');
    assert.equal(readFileSync(join(root, 'var/lib/dpkg/diversions'), 'utf8'),
      '/usr/bin/docker\n/usr/bin/docker.real\ngpuguard\n/usr/bin/docker-compose\n/usr/bin/docker-compose.real\ngpuguard\n');
    assert.equal(lstatSync(join(root, `${LIB}/gpuguard`)).mode & 0o7777, 0o755);
    assert.equal(lstatSync(join(root, FACE)).mode & 0o7777, 0o755);
    assert.deepEqual(readFileSync(join(root, FACE)), readFileSync(join(ROOT, 'dist/gpuguard-front')), 'the front installed beside the binary');
    assert.equal(readlinkSync(join(root, `${LIB}/gpuguard-runc`)), FACE);
    assert.equal(readlinkSync(join(root, 'usr/local/bin/gpuguard')), SHIM, 'the admin CLI on PATH');
    // daemon.json: every key kept, our runtime the default, nvidia through its own wrapper.
    const d = json(join(root, 'etc/docker/daemon.json'));
    const orig = json(join(ROOT, 'test/fixtures/install/daemon-nvidia.json'));
    assert.deepEqual(Object.keys(d), Object.keys(orig));
    assert.deepEqual(d['log-opts'], orig['log-opts']);
    assert.equal(d['default-runtime'], 'gpuguard');
    assert.deepEqual(d.runtimes.nvidia, { path: `${LIB}/runtimes/nvidia/gpuguard-runc`, runtimeArgs: [] });
    assert.deepEqual(d.runtimes.gpuguard, { path: `${LIB}/runtimes/gpuguard/gpuguard-runc` });
    assert.equal(lstatSync(join(root, 'etc/docker/daemon.json')).mode & 0o777, 0o600, 'mode kept');
    assert.equal(readFileSync(join(root, 'etc/docker/daemon.json.pre-gpuguard'), 'utf8'), readFileSync(join(ROOT, 'test/fixtures/install/daemon-nvidia.json'), 'utf8'));
    // Each wrapper remembers its real runtime; the old default (nvidia) is what the default chains to.
    assert.equal(readlinkSync(join(root, `${LIB}/runtimes/nvidia/gpuguard-runc`)), FACE);
    assert.equal(readlinkSync(join(root, `${LIB}/runtimes/nvidia/gpuguard-runc.real`)), '/usr/bin/nvidia-container-runtime');
    assert.equal(readlinkSync(join(root, `${LIB}/runtimes/gpuguard/gpuguard-runc.real`)), '/usr/bin/nvidia-container-runtime');
    // The policy: valid, knows where the real CLI went, cgroup parent fits the systemd driver.
    const policy = readFileSync(join(root, 'etc/gpuguard/policy.yaml'), 'utf8');
    assert.match(policy, /realPath: \/usr\/bin\/docker\.real/);
    assert.match(policy, /parent: "gpuguard-\{group\}-\{user\}\.slice"/);
    const check = await run(BINARY, ['policy', 'check', join(root, 'etc/gpuguard/policy.yaml')]);
    assert.equal(check.code, 0, check.stderr);
    assert.equal(lstatSync(join(root, 'var/log/gpuguard/events.jsonl')).mode & 0o7777, 0o622);
    assert.equal(lstatSync(join(root, 'var/log/gpuguard')).mode & 0o7777, 0o755);
    // GPU reservations need a shared sticky directory in /run, now and after a reboot.
    assert.equal(lstatSync(join(root, 'run/gpuguard')).mode & 0o7777, 0o1777);
    assert.match(readFileSync(join(root, 'etc/tmpfiles.d/gpuguard.conf'), 'utf8'), /^d \/run\/gpuguard 1777 root root -$/m);

    const installed = snapshot(root);
    const again = await install(root);
    assert.equal(again.code, 0, again.stderr);
    assert.match(again.stdout, /nothing to change/);
    assert.deepEqual(snapshot(root), installed, 'a second install changes nothing');

    const u = await install(root, '--uninstall');
    assert.equal(u.code, 0, u.stderr + u.stdout);
    assert.deepEqual(snapshot(root), before, 'uninstall restores every file');
    assert.equal(readFileSync(join(root, 'var/lib/dpkg/diversions'), 'utf8'), '');
  });
});

describe('install.sh over an install from before the native front', () => {
  test('face links that point at the binary are re-pointed at the front; uninstall still restores the tree', async (t) => {
    if (missing(t, { commands: ['dpkg-divert'], files: [BINARY] })) return;
    const root = tree('packaged');
    const before = snapshot(root);
    assert.equal((await install(root)).code, 0);
    // What the earlier installer left: every face name straight at the binary, no front.
    const faces = ['usr/bin/docker', 'usr/bin/docker-compose', `${LIB}/gpuguard-runc`, `${LIB}/runtimes/gpuguard/gpuguard-runc`, `${LIB}/runtimes/nvidia/gpuguard-runc`];
    for (const f of faces) {
      unlinkSync(join(root, f));
      symlinkSync(SHIM, join(root, f));
    }
    const r = await install(root);
    assert.equal(r.code, 0, r.stderr + r.stdout);
    for (const f of faces) assert.equal(readlinkSync(join(root, f)), FACE, f);
    assert.match(r.stdout, /re-point .*usr\/bin\/docker → \/usr\/local\/lib\/gpuguard\/gpuguard-front/);
    assert.match((await install(root)).stdout, /nothing to change/);
    const u = await install(root, '--uninstall');
    assert.equal(u.code, 0, u.stderr + u.stdout);
    assert.deepEqual(snapshot(root), before);
  });
});

describe('install.sh --root on a host with an unpackaged /usr/local/bin/docker and no daemon.json', () => {
  test('moves the CLI aside, creates daemon.json, and uninstall removes what it created', async (t) => {
    if (missing(t, { files: [BINARY] })) return;
    const root = tree('unpackaged');
    const before = snapshot(root);
    const r = await install(root);
    assert.equal(r.code, 0, r.stderr + r.stdout);
    assert.match(r.stdout, /move the unpackaged .*\/usr\/local\/bin\/docker aside/);
    assert.equal(readlinkSync(join(root, 'usr/local/bin/docker')), FACE);
    assert.ok(existsSync(join(root, 'usr/local/bin/docker.real')));
    assert.ok(!existsSync(join(root, 'usr/local/bin/docker-compose')), 'no compose, no compose shim');
    assert.deepEqual(json(join(root, 'etc/docker/daemon.json')), {
      runtimes: { gpuguard: { path: `${LIB}/runtimes/gpuguard/gpuguard-runc` } },
      'default-runtime': 'gpuguard',
    });
    assert.equal(readlinkSync(join(root, `${LIB}/runtimes/gpuguard/gpuguard-runc.real`)), '/usr/sbin/runc');
    assert.match(readFileSync(join(root, 'etc/gpuguard/policy.yaml'), 'utf8'), /realPath: \/usr\/local\/bin\/docker\.real/);
    const again = await install(root);
    assert.match(again.stdout, /nothing to change/);
    const u = await install(root, '--uninstall');
    assert.equal(u.code, 0, u.stderr + u.stdout);
    assert.deepEqual(snapshot(root), before);
  });

  test('a daemon.json edited after install keeps the edit on uninstall; gpuguard is taken out of it', async (t) => {
    if (missing(t, { files: [BINARY] })) return;
    const root = tree('packaged');
    assert.equal((await install(root)).code, 0);
    const file = join(root, 'etc/docker/daemon.json');
    const d = json(file);
    d.debug = true;
    writeFileSync(file, `${JSON.stringify(d, null, 2)}\n`);
    const u = await install(root, '--uninstall');
    assert.equal(u.code, 0, u.stdout);
    assert.match(u.stdout, /edited since install/);
    const restored = json(file);
    const orig = json(join(ROOT, 'test/fixtures/install/daemon-nvidia.json'));
    assert.deepEqual(restored, { ...orig, debug: true });
  });
});

describe('install.sh --concourse', () => {
  test('runc → runc.real once, never wraps the wrapper, keeps an existing policy and adds docker.realPath', async (t) => {
    if (missing(t, { files: [BINARY] })) return;
    const root = tree('concourse');
    const before = snapshot(root);
    const r = await install(root, '--concourse');
    assert.equal(r.code, 0, r.stderr + r.stdout);
    const bin = join(root, 'opt/concourse/bin');
    assert.equal(readlinkSync(join(bin, 'runc')), FACE);
    assert.equal(readFileSync(join(bin, 'runc.real'), 'utf8'), '#!/bin/sh\necho "concourse runc" "$@"\n');
    const policy = readFileSync(join(root, 'etc/gpuguard/policy.yaml'), 'utf8');
    assert.match(policy, /^# Our lab's policy/, 'comments kept');
    assert.match(policy, /labelPrefix: lab # our prefix/);
    assert.match(policy, /realPath: \/usr\/bin\/docker\.real/);
    assert.equal(lstatSync(join(root, 'etc/gpuguard/policy.yaml')).mode & 0o777, 0o640);
    const again = await install(root, '--concourse');
    assert.match(again.stdout, /nothing to change/);
    assert.equal(readlinkSync(join(bin, 'runc')), FACE);
    assert.equal(readFileSync(join(bin, 'runc.real'), 'utf8'), '#!/bin/sh\necho "concourse runc" "$@"\n', 'runc.real is still Concourse\'s runc');
    const u = await install(root, '--uninstall');
    assert.equal(u.code, 0, u.stderr + u.stdout);
    assert.deepEqual(snapshot(root), before);
  });

  test('refuses to wrap another wrapper (seed 001: runc → runc-gpu-wrapper, runc.real beside)', async (t) => {
    if (missing(t, { files: [BINARY] })) return;
    const root = tree('concourse');
    const bin = join(root, 'opt/concourse/bin');
    renameSync(join(bin, 'runc'), join(bin, 'runc.real'));
    symlinkSync('/usr/local/bin/runc-gpu-wrapper', join(bin, 'runc'));
    const before = snapshot(root);
    const r = await install(root, '--concourse');
    assert.equal(r.code, 1);
    assert.match(r.stderr, /runc\.real exists and .*runc is not gpuguard \(another wrapper/);
    assert.deepEqual(snapshot(root), before, 'refused before the first change');
    unlinkSync(join(bin, 'runc'));
  });
});
