/**
 * A real install against a private dockerd: install.sh merges the daemon's
 * own daemon.json, reloads it by pid (SIGHUP) and checks `docker info`;
 * `docker run` through the installed shim as a real user gets labels and the
 * datasets mount; doctor passes, then finds containers made around
 * gpuguard; --uninstall puts the daemon back and doctor names what is gone.
 * The tree (bin dir with the shim, lib, policy, state, event log) is a temp
 * dir; nothing of the host is touched.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  BINARY, ensureTestUsers, fakeNvidiaSmi, IN_CI, IS_ROOT, missing, ROOT, run, runAs, startDockerd, which, type PrivateDockerd,
} from '../harness/index.ts';

let d: PrivateDockerd | undefined;
let tree = '';
const paths = () => ({
  bin: join(tree, 'bin'),
  lib: join(tree, 'lib'),
  policy: join(tree, 'etc/policy.yaml'),
  state: join(tree, 'state'),
  log: join(tree, 'log/events.jsonl'),
  datasets: join(tree, 'datasets'),
});
let smi = '';

const needs = { root: true, commands: ['dockerd', 'runc', 'runuser'], files: [BINARY, '/usr/bin/docker'] };

before(async () => {
  if (!IS_ROOT || !which('dockerd')) return;
  ensureTestUsers();
  tree = mkdtempSync('/tmp/gg-inst-');
  chmodSync(tree, 0o755);
  const p = paths();
  mkdirSync(p.bin);
  // The "host's" docker CLI, in a PATH directory of its own.
  symlinkSync('/usr/bin/docker', join(p.bin, 'docker'));
  if (which('docker-compose')) symlinkSync(which('docker-compose')!, join(p.bin, 'docker-compose'));
  smi = fakeNvidiaSmi(tree, 'a100-mig-mixed');
  // A second registered runtime (as nvidia would be): a script that logs its calls and becomes runc.
  writeFileSync(join(tree, 'alt-runtime'), `#!/bin/sh\necho "$@" >> ${join(tree, 'alt.calls')}\nexec runc "$@"\n`, { mode: 0o755 });
  d = await startDockerd({ socketGroup: 'gg-docker', env: { GPUGUARD_POLICY: p.policy }, runtimes: { alt: { path: join(tree, 'alt-runtime') } } });
});
after(async () => {
  await d?.stop();
  if (tree) rmSync(tree, { recursive: true, force: true });
});

function installArgs(): string[] {
  const p = paths();
  return ['--root', tree, '--bin-dir', p.bin, '--lib-dir', p.lib, '--policy', p.policy, '--state-dir', p.state, '--events-log', p.log,
    '--daemon-json', d!.configFile, '--dockerd-pid', join(d!.dir, 'docker.pid'), '--real-runtime', which('runc')!];
}

function env(): Record<string, string> {
  return { ...d!.clientEnv, GPUGUARD_POLICY: paths().policy, GPUGUARD_NVIDIA_SMI: smi, PATH: `${paths().bin}:/usr/sbin:/usr/bin:/sbin:/bin` };
}

async function doctor(): Promise<{ exit: number; checks: { check: string; status: string; message: string }[] }> {
  const r = await run(BINARY, ['doctor', '--json', '--root', tree, '--state-dir', paths().state, '--daemon-json', d!.configFile, '--user', 'alice', '--path', env().PATH!], { env: env() });
  return JSON.parse(r.stdout);
}
const status = (ds: { checks: { check: string; status: string; message: string }[] }, check: string) => ds.checks.find((c) => c.check === check);

describe('install.sh against a private dockerd', { concurrency: false }, () => {
  test('install registers the runtime, reloads dockerd, and doctor passes', async (t) => {
    if (missing(t, needs)) return;
    const r = await run('bash', [join(ROOT, 'install.sh'), ...installArgs()], { env: env() });
    assert.equal(r.code, 0, r.stderr + r.stdout);
    assert.match(r.stdout, /reloaded dockerd \(SIGHUP to pid \d+/);
    assert.match(r.stdout, /docker info lists runtime "gpuguard" as the default/);
    const info = await d!.docker(['info', '--format', '{{.DefaultRuntime}} {{json .Runtimes}}']);
    assert.match(info.stdout, /^gpuguard /);
    assert.match(info.stdout, new RegExp(`"gpuguard":\\{"path":"${paths().lib}/runtimes/gpuguard/gpuguard-runc"`));
    assert.match(info.stdout, new RegExp(`"alt":\\{"path":"${paths().lib}/runtimes/alt/gpuguard-runc"`));
    const policy = readFileSync(paths().policy, 'utf8');
    assert.match(policy, new RegExp(`realPath: ${paths().bin}/docker.real`));
    assert.match(policy, /parent: "\/gpuguard\/\{group\}\/\{user\}"/, 'cgroupfs daemon → cgroupfs parent');

    // No systemd here: install says how to start the decider; started so (on this tree's run dir), doctor finds it.
    assert.match(r.stdout, new RegExp(`^install: the decider .* start it as root at boot: GPUGUARD_POLICY=${paths().policy} ${paths().lib}/gpuguard decider &$`, 'm'));
    mkdirSync(join(tree, 'run/gpuguard-decider'), { recursive: true, mode: 0o755 });
    const decider = spawn(join(paths().lib, 'gpuguard'), ['decider', '--listen', join(tree, 'run/gpuguard-decider/decider.sock'), '--docker-socket', d!.socket], { env: env(), stdio: 'ignore' });
    try {
      for (let i = 0; i < 100 && !existsSync(join(tree, 'run/gpuguard-decider/decider.sock')); i++) await new Promise((ok) => setTimeout(ok, 50));
      const doc = await doctor();
      assert.deepEqual(doc.checks.filter((c) => c.status !== 'ok'), [], 'every check ok');
      assert.equal(doc.exit, 0);
    } finally {
      decider.kill('SIGTERM');
    }

    // Pass-through finds the real CLIs beside the shims (docker.real, docker-compose.real) without the policy.
    const v = await runAs('alice', join(paths().bin, 'docker'), ['version', '--format', '{{.Client.Version}}'], { env: { ...env(), GPUGUARD_POLICY: '/nonexistent/policy.yaml' } });
    assert.equal(v.code, 0, v.stderr);
    assert.match(v.stdout, /^20\.10/);
    if (existsSync(join(paths().bin, 'docker-compose.real'))) {
      const cv = await runAs('alice', join(paths().bin, 'docker-compose'), ['version', '--short'], { env: env() });
      assert.equal(cv.code, 0, cv.stderr);
      assert.match(cv.stdout, /^\d+\.\d+/);
    }
    const again = await run('bash', [join(ROOT, 'install.sh'), ...installArgs()], { env: env() });
    assert.match(again.stdout, /nothing to change/);
  });

  test('docker run through the installed shim, as a real user: labels and the datasets mount', async (t) => {
    if (missing(t, needs)) return;
    // The shim and the runtime wrapper are other engineers' work: when this branch lacks them, say so.
    const probe = await runAs('alice', join(paths().bin, 'docker'), ['version', '--format', '{{.Server.Version}}'], { env: env() });
    const wrapper = await run(join(paths().lib, 'gpuguard-runc'), ['--version'], { env: env() });
    if (/not built yet/.test(probe.stderr + wrapper.stderr)) {
      const msg = `the docker shim or the runtime wrapper is not built on this branch yet (${(probe.stderr + wrapper.stderr).trim()})`;
      if (IN_CI) assert.fail(msg);
      t.skip(msg);
      return;
    }
    // As an admin would after install: the datasets rule points at this host's dataset dir (a temp dir here).
    const policy = readFileSync(paths().policy, 'utf8');
    assert.match(policy, /source: \/srv\/datasets,/);
    writeFileSync(paths().policy, policy.replace('source: /srv/datasets,', `source: ${paths().datasets},`));
    mkdirSync(paths().datasets);
    writeFileSync(join(paths().datasets, 'README'), 'shared data\n');
    const check = await run(BINARY, ['policy', 'check', paths().policy]);
    assert.equal(check.code, 0, check.stderr);

    const r = await runAs('alice', join(paths().bin, 'docker'), ['run', '--name', 'gg-inst-alice', 'bb', 'sh', '-c', 'cat /srv/datasets/README; touch /srv/datasets/x 2>&1; grep " /srv/datasets " /proc/mounts'], { env: env() });
    try {
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /^shared data\n/);
      assert.match(r.stdout, /Read-only file system/);
      assert.match(r.stdout, / \/srv\/datasets \S+ ro[,\s]/);
      const labels = JSON.parse((await d!.docker(['inspect', '--format', '{{json .Config.Labels}}', 'gg-inst-alice'])).stdout);
      assert.equal(labels['ds01.user'], 'alice');
      assert.equal(labels['ds01.managed'], 'true');
      assert.equal(labels['ds01.interface'], 'docker');
      const runtime = (await d!.docker(['inspect', '--format', '{{.HostConfig.Runtime}}', 'gg-inst-alice'])).stdout.trim();
      assert.equal(runtime, 'gpuguard');
    } finally {
      await d!.docker(['rm', '-f', 'gg-inst-alice']);
    }
    // --runtime alt goes through the wrapper (datasets mount) and then to alt's own binary (its .real link).
    const alt = await runAs('alice', join(paths().bin, 'docker'), ['run', '--rm', '--runtime', 'alt', 'bb', 'cat', '/srv/datasets/README'], { env: env() });
    assert.equal(alt.code, 0, alt.stderr);
    assert.equal(alt.stdout, 'shared data\n');
    assert.match(readFileSync(join(tree, 'alt.calls'), 'utf8'), /create --bundle/, 'the wrapper chained to the runtime registered as alt, not to runc');
  });

  test('doctor finds containers made around gpuguard', async (t) => {
    if (missing(t, needs)) return;
    // The real CLI straight to the socket: no labels; --runtime runc; --gpus without an allocation.
    assert.equal((await d!.docker(['create', '--name', 'gg-around', 'bb', 'true'])).code, 0);
    assert.equal((await d!.docker(['create', '--name', 'gg-runc', '--runtime', 'runc', '--label', 'ds01.user=alice', 'bb', 'true'])).code, 0);
    assert.equal((await d!.docker(['create', '--name', 'gg-gpu', '--gpus', 'all', '--label', 'ds01.user=alice', 'bb', 'true'])).code, 0);
    try {
      const doc = await doctor();
      assert.equal(doc.exit, 2);
      assert.equal(status(doc, 'owner-labels')?.status, 'warn');
      assert.match(status(doc, 'owner-labels')!.message, /1 of 3 container\(s\) have no ds01\.user label.*gg-around/);
      assert.equal(status(doc, 'gpu-allocations')?.status, 'fail');
      assert.match(status(doc, 'gpu-allocations')!.message, /1 container\(s\) hold GPUs without a ds01\.gpu\.allocated label.*gg-gpu/);
      assert.equal(status(doc, 'container-runtimes')?.status, 'fail');
      assert.match(status(doc, 'container-runtimes')!.message, /1 container\(s\) run with a runtime that is not gpuguard \(runc\): gg-runc/);
    } finally {
      await d!.docker(['rm', '-f', 'gg-around', 'gg-runc', 'gg-gpu']);
    }
  });

  test('doctor: a user whose PATH finds another docker first', async (t) => {
    if (missing(t, needs)) return;
    const r = await run(BINARY, ['doctor', '--json', '--root', tree, '--state-dir', paths().state, '--user', 'alice', '--path', '/usr/bin:/bin'], { env: env() });
    const l = (JSON.parse(r.stdout).checks as { check: string; status: string; message: string }[]).find((c) => c.check === 'shim-on-path-user')!;
    assert.equal(l.status, 'fail');
    assert.match(l.message, /user alice's first docker is \/usr\/bin\/docker, not gpuguard/);
  });

  test('--uninstall restores daemon.json and the CLI, reloads dockerd; doctor names what is missing', async (t) => {
    if (missing(t, needs)) return;
    const before = readFileSync(`${d!.configFile}.pre-gpuguard`, 'utf8');
    const r = await run('bash', [join(ROOT, 'install.sh'), '--uninstall', ...installArgs()], { env: env() });
    assert.equal(r.code, 0, r.stderr + r.stdout);
    assert.equal(readFileSync(d!.configFile, 'utf8'), before);
    assert.match(r.stdout, /reloaded dockerd/);
    // SIGHUP is handled asynchronously: wait for the default runtime to be runc again.
    let def = '';
    for (let i = 0; i < 50 && def !== 'runc'; i++) {
      def = (await d!.docker(['info', '--format', '{{.DefaultRuntime}}'])).stdout.trim();
      if (def !== 'runc') await new Promise((res) => setTimeout(res, 200));
    }
    assert.equal(def, 'runc');
    assert.ok(!existsSync(paths().lib) && !existsSync(paths().state));
    if (existsSync(paths().policy)) assert.match(r.stdout, /kept .*policy\.yaml: edited since install/, 'an edited policy is kept');
    const doc = await doctor();
    assert.equal(doc.exit, 2);
    for (const check of ['shim-on-path', 'runtime-registered', 'runtime-default']) assert.equal(status(doc, check)?.status, 'fail', check);
    assert.match(status(doc, 'runtime-registered')!.message, /registers no runtime "gpuguard"/);
    assert.match(status(doc, 'runtime-default')!.message, /the running dockerd uses default runtime "runc"/);
  });
});
