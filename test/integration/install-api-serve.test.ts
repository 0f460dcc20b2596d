/**
 * install.sh --api end to end, on a host without systemd (this one), with
 * the real face: a private dockerd that takes its socket from daemon.json
 * "hosts" (as /etc/init.d/docker starts it), install.sh --api, then exactly
 * the steps install printed — dockerd restarted onto the root-only upstream,
 * the installed binary's `gpuguard serve` started as root. As alice through
 * the face: docker run gets owner labels (interface api); bob does not see
 * her container; neither reaches dockerd's own socket. doctor passes every
 * check of the boundary. --uninstall (after stopping the face, as it says)
 * puts daemon.json and every file of the tree back, and dockerd restarted on
 * its own socket again has no gpuguard runtime.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { BINARY, ensureTestUsers, faceStatus, IS_ROOT, missing, ROOT, run, runAs, startDockerd, which, type PrivateDockerd } from '../harness/index.ts';
import { snapshot } from '../fixtures/install/trees.ts';

let d: PrivateDockerd | undefined;
let tree = '';
let face: ChildProcess | undefined;
let daemonBefore = '';
let treeBefore: ReturnType<typeof snapshot> = {};
const p = () => ({
  bin: join(tree, 'bin'),
  lib: join(tree, 'lib'),
  policy: join(tree, 'etc/policy.yaml'),
  state: join(tree, 'state'),
  log: join(tree, 'log/events.jsonl'),
  listen: join(tree, 'docker.sock'),
  upstream: join(tree, 'up/docker.sock'),
});
const needs = { root: true, commands: ['dockerd', 'runc', 'runuser'], files: [BINARY, '/usr/bin/docker'] };

before(async () => {
  if (!IS_ROOT || !which('dockerd')) return;
  ensureTestUsers();
  tree = mkdtempSync('/tmp/gg-apiserve-');
  chmodSync(tree, 0o755);
  mkdirSync(p().bin);
  mkdirSync(join(tree, 'etc'));
  symlinkSync('/usr/bin/docker', join(p().bin, 'docker'));
  writeFileSync(p().policy, `version: 1\nlabelPrefix: ds01\nevents: {log: ${p().log}}\napi: {listen: ${p().listen}, upstream: ${p().upstream}, group: gg-docker, mode: "0660"}\n`);
  treeBefore = snapshot(tree);
  d = await startDockerd({ socketGroup: 'gg-docker', hostsInConfig: true });
  daemonBefore = readFileSync(d.configFile, 'utf8');
});
after(async () => {
  face?.kill('SIGKILL');
  await d?.stop();
  if (tree) rmSync(tree, { recursive: true, force: true });
});

const installArgs = () => ['--root', tree, '--bin-dir', p().bin, '--lib-dir', p().lib, '--policy', p().policy, '--state-dir', p().state, '--events-log', p().log,
  '--daemon-json', d!.configFile, '--dockerd-pid', join(d!.dir, 'docker.pid'), '--real-runtime', which('runc')!];

/** Step 3 of install's instructions, as printed: the installed binary's serve, as root, with the policy in the environment. */
async function startServe(command: string): Promise<void> {
  const [envAssign, binary, verb] = command.split(/\s+/);
  assert.match(envAssign!, /^GPUGUARD_POLICY=/);
  const out = openSync(join(tree, 'serve.log'), 'a');
  face = spawn(binary!, [verb!], { env: { PATH: '/usr/sbin:/usr/bin:/sbin:/bin', GPUGUARD_POLICY: envAssign!.slice('GPUGUARD_POLICY='.length), GPUGUARD_NVIDIA_SMI: '/bin/true' }, stdio: ['ignore', out, out], detached: true });
  face.unref();
  const deadline = Date.now() + 20_000;
  while (!(await faceStatus(p().listen))) {
    if (face.exitCode !== null || Date.now() > deadline) assert.fail(`gpuguard serve did not start:\n${readFileSync(join(tree, 'serve.log'), 'utf8')}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe('install.sh --api with the real gpuguard serve, on a host without systemd', { concurrency: false }, () => {
  test('install, then its printed steps: dockerd on the root-only upstream, the face on the socket users reach', async (t) => {
    if (missing(t, needs)) return;
    const r = await run('bash', [join(ROOT, 'install.sh'), '--api', ...installArgs()], { env: d!.clientEnv });
    assert.equal(r.code, 0, r.stderr + r.stdout);
    const steps = r.stdout.split('\n');
    assert.ok(steps.some((l) => l.includes(`1. install -d -m 0700 -o root -g root ${join(tree, 'up')}`)));
    const serveLine = steps.find((l) => /3\. as root, keep running: /.test(l))!;
    await d!.restart(p().upstream);
    await startServe(serveLine.replace(/^.*keep running: /, '').replace(/\s+\(listens on.*$/, ''));
    const status = await faceStatus(p().listen);
    assert.equal(status?.upstream, p().upstream);
  });

  test('as alice through the face: owner labels; bob does not see her container; neither reaches dockerd directly', async (t) => {
    if (missing(t, needs)) return;
    const env = { DOCKER_HOST: `unix://${p().listen}` };
    const r = await runAs('alice', '/usr/bin/docker', ['run', '-d', '--name', 'gg-api-alice', 'bb', 'sleep', '60'], { env });
    assert.equal(r.code, 0, r.stderr);
    try {
      const labels = JSON.parse((await run('/usr/bin/docker', ['-H', `unix://${p().upstream}`, 'inspect', '--format', '{{json .Config.Labels}}', 'gg-api-alice'])).stdout);
      assert.equal(labels['ds01.user'], 'alice');
      assert.equal(labels['ds01.interface'], 'api');
      // The face's record, in the event log install prepared: one line for her create, face "api".
      const events = readFileSync(p().log, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { face?: string; user?: string });
      assert.ok(events.some((e) => e.face === 'api' && e.user === 'alice'), `an api event for alice in ${JSON.stringify(events.slice(-3))}`);
      const bob = await runAs('bob', '/usr/bin/docker', ['ps', '-a', '--format', '{{.Names}}'], { env });
      assert.equal(bob.code, 0, bob.stderr);
      assert.doesNotMatch(bob.stdout, /gg-api-alice/);
      for (const user of ['alice', 'bob']) {
        const direct = await runAs(user, '/usr/bin/docker', ['-H', `unix://${p().upstream}`, 'ps']);
        assert.notEqual(direct.code, 0);
        assert.match(direct.stderr, /permission denied/);
      }
    } finally {
      await run('/usr/bin/docker', ['-H', `unix://${p().upstream}`, 'rm', '-f', 'gg-api-alice']);
    }
  });

  test('doctor: every check of the boundary passes against the real face', async (t) => {
    if (missing(t, needs)) return;
    const env = { DOCKER_HOST: `unix://${p().listen}`, GPUGUARD_POLICY: p().policy, GPUGUARD_NVIDIA_SMI: '/bin/true', PATH: `${p().bin}:/usr/sbin:/usr/bin:/sbin:/bin` };
    const r = await run(BINARY, ['doctor', '--json', '--root', tree, '--state-dir', p().state, '--daemon-json', d!.configFile, '--user', 'alice', '--path', env.PATH], { env });
    const checks = JSON.parse(r.stdout).checks as { check: string; status: string; message: string }[];
    for (const c of ['shim-on-path', 'api-socket', 'dockerd-socket', 'api-answers', 'dockerd-tcp', 'runtime-default']) {
      const l = checks.find((x) => x.check === c);
      assert.equal(l?.status, 'ok', JSON.stringify(l));
    }
    assert.match(checks.find((x) => x.check === 'api-socket')!.message, /is gpuguard's face \(gpuguard \d+\.\d+\.\d+, pid \d+\)/);
  });

  test('--uninstall after stopping the face: daemon.json and the tree as before; dockerd back on its own socket', async (t) => {
    if (missing(t, needs)) return;
    // As uninstall says: stop the face first (SIGTERM drains).
    face!.kill('SIGTERM');
    for (let i = 0; i < 150 && face!.exitCode === null && face!.signalCode === null; i++) await new Promise((r) => setTimeout(r, 100));
    assert.ok(face!.exitCode !== null || face!.signalCode !== null, 'the face stopped on SIGTERM');
    face = undefined;
    const r = await run('bash', [join(ROOT, 'install.sh'), '--uninstall', ...installArgs()]);
    assert.equal(r.code, 0, r.stderr + r.stdout);
    assert.equal(readFileSync(d!.configFile, 'utf8'), daemonBefore);
    rmSync(join(tree, 'serve.log'));
    assert.deepEqual(snapshot(tree), treeBefore, 'every file in the tree as before install');
    await d!.restart(d!.socket);
    assert.equal((await d!.docker(['info', '--format', '{{.DefaultRuntime}}'])).stdout.trim(), 'runc');
  });
});
