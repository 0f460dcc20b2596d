/**
 * API mode against a private dockerd on a host without systemd (this one):
 * install.sh --api writes daemon.json "hosts", dockerd restarts onto the
 * root-only upstream socket, and a face listens where users' clients go (a
 * stand-in for `gpuguard serve` that answers its status endpoint and passes
 * requests on). doctor's boundary checks pass, then each is broken in turn:
 * the socket users reach answered by dockerd itself or by nobody, dockerd's
 * socket reachable by its group, dockerd listening on another unix socket and
 * on TCP (live, from /proc), a face whose dockerd is gone, a face alice
 * cannot reach, the shim left on PATH. --uninstall puts daemon.json back.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { BINARY, ensureTestUsers, IS_ROOT, missing, ROOT, run, runAs, startDockerd, which, type PrivateDockerd } from '../harness/index.ts';
import { startStandInFace, type StandInFace, type StandInOptions } from '../harness/stand-in-face.ts';
import { snapshot } from '../fixtures/install/trees.ts';

let d: PrivateDockerd | undefined;
let tree = '';
let face: StandInFace | undefined;
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
let gid = 0;

before(async () => {
  if (!IS_ROOT || !which('dockerd')) return;
  ensureTestUsers();
  gid = Number((await run('getent', ['group', 'gg-docker'])).stdout.split(':')[2]);
  tree = mkdtempSync('/tmp/gg-api-');
  chmodSync(tree, 0o755);
  mkdirSync(p().bin);
  mkdirSync(join(tree, 'etc'));
  symlinkSync('/usr/bin/docker', join(p().bin, 'docker'));
  // The site's policy names the sockets (here inside the temp tree); install.sh keeps them.
  writeFileSync(p().policy, `version: 1\napi: {listen: ${p().listen}, upstream: ${p().upstream}, group: gg-docker, mode: "0660"}\n`);
  treeBefore = snapshot(tree);
  // dockerd takes its socket from daemon.json "hosts" (no -H), as sysvinit's /etc/init.d/docker starts it.
  d = await startDockerd({ socketGroup: 'gg-docker', hostsInConfig: true });
  daemonBefore = readFileSync(d.configFile, 'utf8');
});
after(async () => {
  await face?.close();
  await d?.stop();
  if (tree) rmSync(tree, { recursive: true, force: true });
});

const installArgs = () => ['--root', tree, '--bin-dir', p().bin, '--lib-dir', p().lib, '--policy', p().policy, '--state-dir', p().state, '--events-log', p().log,
  '--daemon-json', d!.configFile, '--dockerd-pid', join(d!.dir, 'docker.pid'), '--real-runtime', which('runc')!];

async function restartFace(o: StandInOptions = {}) {
  await face?.close();
  face = await startStandInFace(p().listen, p().upstream, { gid, ...o });
}

interface Line {
  check: string;
  status: string;
  message: string;
  fix?: string;
}
async function doctor(): Promise<{ exit: number; checks: Line[] }> {
  const env = { DOCKER_HOST: `unix://${p().listen}`, GPUGUARD_POLICY: p().policy, GPUGUARD_NVIDIA_SMI: '/bin/true', PATH: `${p().bin}:/usr/sbin:/usr/bin:/sbin:/bin` };
  const r = await run(BINARY, ['doctor', '--json', '--root', tree, '--state-dir', p().state, '--daemon-json', d!.configFile, '--user', 'alice', '--path', env.PATH], { env });
  return JSON.parse(r.stdout);
}
const line = (doc: { checks: Line[] }, check: string) => {
  const l = doc.checks.find((c) => c.check === check);
  assert.ok(l, `no ${check} line in ${JSON.stringify(doc.checks.map((c) => c.check))}`);
  return l;
};
async function fails(check: string, message: RegExp) {
  const doc = await doctor();
  const l = line(doc, check);
  assert.equal(l.status, 'fail', JSON.stringify(l));
  assert.match(l.message, message);
  assert.ok(l.fix, 'a fail line says how to fix it');
  assert.equal(doc.exit, 2);
}
const API_CHECKS = ['shim-on-path', 'api-socket', 'dockerd-socket', 'api-answers', 'dockerd-tcp'];

describe('install.sh --api against a private dockerd, and doctor\'s boundary checks', { concurrency: false }, () => {
  test('install moves dockerd behind the face: daemon.json hosts, a root-only socket alice cannot reach, the face she can', async (t) => {
    if (missing(t, needs)) return;
    // Until its restart dockerd still listens on its old socket: that is where install reloads and asks it.
    const r = await run('bash', [join(ROOT, 'install.sh'), '--api', ...installArgs()], { env: d!.clientEnv });
    assert.equal(r.code, 0, r.stderr + r.stdout);
    assert.deepEqual(JSON.parse(readFileSync(d!.configFile, 'utf8')).hosts, [`unix://${p().upstream}`]);
    assert.match(r.stdout, /reloaded dockerd \(SIGHUP/, 'the runtime is reloaded now; the socket moves at the restart');
    assert.match(r.stdout, /2\. restart dockerd .*: dockerd reads "hosts" only when it starts/);
    assert.match(r.stdout, new RegExp(`3\\. as root, keep running: GPUGUARD_POLICY=${p().policy} ${p().lib}/gpuguard serve`));
    // As the printed steps say: restart dockerd, start the face.
    await d!.restart(p().upstream);
    assert.ok(!existsSync(d!.socket), 'dockerd left its old socket');
    await restartFace();
    const info = await run('/usr/bin/docker', ['-H', `unix://${p().upstream}`, 'info', '--format', '{{.DefaultRuntime}}']);
    assert.equal(info.stdout.trim(), 'gpuguard', 'root reaches dockerd on the upstream; the runtime wrapper is the default');
    const direct = await runAs('alice', '/usr/bin/docker', ['-H', `unix://${p().upstream}`, 'ps']);
    assert.notEqual(direct.code, 0);
    assert.match(direct.stderr, /permission denied/);
    const through = await runAs('alice', '/usr/bin/docker', ['-H', `unix://${p().listen}`, 'version', '--format', '{{.Server.Version}}']);
    assert.equal(through.code, 0, through.stderr);
    const again = await run('bash', [join(ROOT, 'install.sh'), '--api', ...installArgs()]);
    assert.match(again.stdout, /nothing to change/);
  });

  test('doctor: every boundary check passes', async (t) => {
    if (missing(t, needs)) return;
    const doc = await doctor();
    for (const c of API_CHECKS) assert.equal(line(doc, c).status, 'ok', JSON.stringify(line(doc, c)));
    assert.match(line(doc, 'api-socket').message, /is gpuguard's face \(gpuguard 0\.0\.0-stand-in, pid \d+\)/);
    assert.match(line(doc, 'dockerd-socket').message, /is root's alone .*; user alice is refused: .*permission denied/);
    assert.match(line(doc, 'api-answers').message, /docker version as alice \(server 20\.10/);
    assert.match(line(doc, 'shim-on-path').message, /API mode/);
  });

  test('api-socket: dockerd itself answers the socket users reach; nothing does', async (t) => {
    if (missing(t, needs)) return;
    await restartFace({ as: 'dockerd' });
    await fails('api-socket', /is answered by something that is not gpuguard \(GET \/_gpuguard\/status: HTTP 404 page not found; dockerd itself\?\)/);
    await face!.close();
    face = undefined;
    await fails('api-socket', /nothing (at|answers on) .*docker\.sock/);
    await restartFace();
    assert.equal(line(await doctor(), 'api-socket').status, 'ok');
  });

  test('dockerd-socket: its directory opened to group gg-docker', async (t) => {
    if (missing(t, needs)) return;
    chmodSync(join(tree, 'up'), 0o755);
    try {
      await fails('dockerd-socket', new RegExp(`reachable by group ${gid} \\(socket mode 0660\\)`));
    } finally {
      chmodSync(join(tree, 'up'), 0o700);
    }
    assert.equal(line(await doctor(), 'dockerd-socket').status, 'ok');
  });

  test('dockerd-socket and dockerd-tcp: dockerd also listening on a group socket and on TCP (daemon.json, and live from /proc)', async (t) => {
    if (missing(t, needs)) return;
    const conf = JSON.parse(readFileSync(d!.configFile, 'utf8'));
    const saved = readFileSync(d!.configFile, 'utf8');
    const extra = join(tree, 'extra.sock');
    const port = 20000 + (process.pid % 20000);
    writeFileSync(d!.configFile, JSON.stringify({ ...conf, hosts: [...conf.hosts, `unix://${extra}`, `tcp://127.0.0.1:${port}`] }));
    try {
      await d!.restart(p().upstream);
      const doc = await doctor();
      assert.equal(line(doc, 'dockerd-socket').status, 'fail');
      assert.match(line(doc, 'dockerd-socket').message, new RegExp(`dockerd also listens on ${extra} \\(.*daemon\\.json "hosts"\\).*${extra} \\(the running dockerd, pid \\d+: reachable by group ${gid}`));
      assert.equal(line(doc, 'dockerd-tcp').status, 'fail');
      assert.match(line(doc, 'dockerd-tcp').message, new RegExp(`tcp://127\\.0\\.0\\.1:${port} \\(.*daemon\\.json "hosts"\\), 127\\.0\\.0\\.1:${port} \\(the running dockerd, pid \\d+\\)`));
    } finally {
      writeFileSync(d!.configFile, saved);
      await d!.restart(p().upstream);
    }
    const doc = await doctor();
    assert.equal(line(doc, 'dockerd-socket').status, 'ok');
    assert.equal(line(doc, 'dockerd-tcp').status, 'ok');
  });

  test('api-answers: the face\'s dockerd is gone; alice cannot reach the face', async (t) => {
    if (missing(t, needs)) return;
    await restartFace({ pingStatus: 502 });
    await fails('api-answers', /answers GET \/_ping with HTTP 502/);
    await restartFace({ mode: 0o600 });
    await fails('api-answers', /user alice's docker version through .*docker\.sock failed: .*permission denied/);
    await restartFace();
    assert.equal(line(await doctor(), 'api-answers').status, 'ok');
  });

  test('shim-on-path: the docker shim left first on PATH in API mode', async (t) => {
    if (missing(t, needs)) return;
    const docker = join(p().bin, 'docker');
    unlinkSync(docker);
    symlinkSync(join(p().lib, 'gpuguard'), docker); // as a shim-mode install lays it out
    try {
      await fails('shim-on-path', /root's first docker is .*\/bin\/docker, gpuguard's shim: in API mode every request would be decided twice/);
    } finally {
      unlinkSync(docker);
      symlinkSync('/usr/bin/docker', docker);
    }
  });

  test('--uninstall: daemon.json and the tree as before; dockerd back on its own socket after the restart', async (t) => {
    if (missing(t, needs)) return;
    await face?.close();
    face = undefined;
    const r = await run('bash', [join(ROOT, 'install.sh'), '--uninstall', ...installArgs()]);
    assert.equal(r.code, 0, r.stderr + r.stdout);
    assert.match(r.stdout, /uninstall: removed directory .*\/up \(dockerd's upstream socket\)/);
    assert.match(r.stdout, /uninstall: now restart dockerd \(however this host starts it\)/);
    assert.equal(readFileSync(d!.configFile, 'utf8'), daemonBefore);
    assert.deepEqual(snapshot(tree), treeBefore, 'every file in the tree as before install');
    await d!.restart(d!.socket);
    assert.equal((await d!.docker(['info', '--format', '{{.DefaultRuntime}}'])).stdout.trim(), 'runc');
  });
});
