/**
 * GPU device hygiene in the runtime wrapper, as root through the real docker
 * CLI (no shim) on a private dockerd whose default runtime is the wrapper:
 * `--device <a 195:0 node>:/dev/nvidia0` and `--device-cgroup-rule 'c 195:*
 * rwm'` reach no GPU without a grant; with `--gpus 1` the NVIDIA hook runs
 * and the device stays. Whether the cgroup lets the container open 195:0 is
 * seen from inside: with no NVIDIA driver on this host, an allowed open
 * fails with ENXIO ("No such device or address"), a denied one with EPERM.
 * The same lines with dockerd's built-in runc show the other outcome, so
 * the test can fail.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { BINARY, IS_ROOT, installFace, missing, startDockerd, which, type PrivateDockerd } from '../harness/index.ts';
import { forgetCacheEntries } from './runtime-cache-cleanup.ts';

let d: PrivateDockerd | undefined;
let dir = '';
let node = '';
let events = '';
let hookRan = '';

before(async () => {
  if (!IS_ROOT || !existsSync(BINARY) || !which('runc')) return;
  dir = mkdtempSync('/tmp/gg-secrt-');
  chmodSync(dir, 0o755);
  const wrapper = installFace(dir, 'gpuguard-runc');
  events = join(dir, 'events.jsonl');
  const policy = join(dir, 'policy.yaml');
  writeFileSync(policy, `version: 1\nruntime: {realPath: ${which('runc')}}\nevents: {log: ${events}}\n`);
  node = join(dir, 'nvidia0');
  execFileSync('mknod', ['-m', '666', node, 'c', '195', '0']);
  d = await startDockerd({ runtimes: { gpuguard: { path: wrapper } }, defaultRuntime: 'gpuguard', env: { GPUGUARD_POLICY: policy } });
  // The stand-in NVIDIA hook of this daemon, made to leave a mark when runc runs it.
  hookRan = join(dir, 'hook-ran');
  writeFileSync(join(d.binDir, 'nvidia-container-runtime-hook'), `#!/bin/sh\ncat >/dev/null 2>&1\necho ran >> ${hookRan}\nexit 0\n`, { mode: 0o755 });
});

after(async () => {
  await d?.stop();
  if (!dir) return;
  forgetCacheEntries(join(dir, 'policy.yaml'));
  rmSync(dir, { recursive: true, force: true });
});

const skip = (t: Parameters<typeof missing>[0]) => missing(t, { root: true, files: [BINARY], commands: ['runc', 'mknod'] }) || !d;
/** Inside the container: is /dev/nvidia0 there, and what does opening a fresh 195:0 node say. */
const PROBE = 'test -e /dev/nvidia0 && echo node-present; mknod /tmp/n c 195 0 && cat /tmp/n; true';

function lastRuntimeEvent(): Record<string, unknown> | undefined {
  if (!existsSync(events)) return undefined;
  return readFileSync(events, 'utf8').trim().split('\n').map((l) => JSON.parse(l)).filter((e) => e.face === 'runtime' && e.argv?.[0] === 'create').at(-1);
}

test('--device <195:0 node>:/dev/nvidia0 without a grant: no node, no cgroup rule; the event says so', async (t) => {
  if (skip(t)) return;
  const viaWrapper = await d!.docker(['run', '--rm', '--device', `${node}:/dev/nvidia0`, 'bb', 'sh', '-c', PROBE]);
  assert.equal(viaWrapper.code, 0, viaWrapper.stderr);
  assert.doesNotMatch(viaWrapper.stdout, /node-present/);
  assert.match(viaWrapper.stderr, /can't open '\/tmp\/n': Operation not permitted/, 'the device cgroup denies 195:0');
  const ev = lastRuntimeEvent();
  assert.ok((ev?.changes as string[] | undefined)?.some((c) => /^removed device \/dev\/nvidia0 \(c 195:0\): no GPU grant/.test(c)), JSON.stringify(ev));
  assert.ok((ev?.changes as string[]).some((c) => /^removed device cgroup rule c 195:0 rwm/.test(c)), JSON.stringify(ev));

  // dockerd's own runc, same line: the node is there and the cgroup lets it through (ENXIO: no driver here).
  const viaRunc = await d!.docker(['run', '--rm', '--runtime', 'runc', '--device', `${node}:/dev/nvidia0`, 'bb', 'sh', '-c', PROBE]);
  assert.equal(viaRunc.code, 0, viaRunc.stderr);
  assert.match(viaRunc.stdout, /node-present/);
  assert.match(viaRunc.stderr, /can't open '\/tmp\/n': No such device or address/);
});

test("--device-cgroup-rule 'c 195:* rwm' without a grant: the rule is removed", async (t) => {
  if (skip(t)) return;
  const r = await d!.docker(['run', '--rm', '--device-cgroup-rule', 'c 195:* rwm', 'bb', 'sh', '-c', PROBE]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stderr, /Operation not permitted/);
  assert.ok((lastRuntimeEvent()?.changes as string[]).some((c) => /^removed device cgroup rule c 195:\* rwm/.test(c)));
  const viaRunc = await d!.docker(['run', '--rm', '--runtime', 'runc', '--device-cgroup-rule', 'c 195:* rwm', 'bb', 'sh', '-c', PROBE]);
  assert.match(viaRunc.stderr, /No such device or address/);
});

test('--gpus 1: the NVIDIA hook runs and the devices stay (a grant)', async (t) => {
  if (skip(t)) return;
  rmSync(hookRan, { force: true });
  const r = await d!.docker(['run', '--rm', '--gpus', '1', '--device', `${node}:/dev/nvidia0`, 'bb', 'sh', '-c', PROBE]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /node-present/);
  assert.match(r.stderr, /No such device or address/);
  assert.ok(existsSync(hookRan), 'the stand-in NVIDIA hook ran');
  const ev = lastRuntimeEvent();
  assert.ok(!(ev?.changes as string[] | undefined)?.some((c) => c.startsWith('removed')), JSON.stringify(ev));
});
