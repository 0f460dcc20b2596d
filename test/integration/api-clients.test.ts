/**
 * The SDKs people use, straight on the API face as alice (no shim on PATH:
 * each client speaks the Engine API itself): docker-py (Debian's
 * python3-docker), docker-compose 1.29 itself (built on docker-py),
 * @devcontainers/cli (with the real docker CLI and compose), and dockerode
 * from npm. Each gets owner labels and limits; bob's compose cannot take
 * alice's project down.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { FIXTURES, IS_ROOT, ROOT, ensureTestUsers, missing, run, runAs, startDockerd, startFace, type PrivateDockerd, type RunningFace } from '../harness/index.ts';
import { forgetCacheEntries } from './runtime-cache-cleanup.ts';

const DEVCONTAINER = join(ROOT, 'node_modules/.bin/devcontainer');
const DOCKERODE = join(ROOT, 'node_modules/dockerode/lib/docker.js');
let d: PrivateDockerd | undefined;
let face: RunningFace | undefined;
let work = '';
let policy = '';

before(async () => {
  if (!IS_ROOT) return;
  ensureTestUsers();
  d = await startDockerd();
  work = mkdtempSync('/tmp/gg-apicli-');
  chmodSync(work, 0o755);
  policy = join(work, 'policy.yaml');
  writeFileSync(policy, `${readFileSync(join(FIXTURES, 'policies/lab.yaml'), 'utf8').replace('containers: 3', 'containers: 20')}events: {log: ${work}/events.jsonl}\n`);
  chmodSync(policy, 0o644);
  cpSync(join(FIXTURES, 'compose'), join(work, 'projects'), { recursive: true });
  await run('chown', ['-R', 'alice', join(work, 'projects')]);
  face = await startFace(d, { policy, socketGroup: 'gg-docker' });
});

after(async () => {
  await face?.stop();
  await d?.stop();
  if (work) {
    forgetCacheEntries(policy);
    rmSync(work, { recursive: true, force: true });
  }
});

/** The client's environment: the face as DOCKER_HOST, and nothing of gpuguard's on PATH. */
const clientEnv = () => ({ DOCKER_HOST: face!.host, HOME: '/tmp', PATH: '/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin' });
const as = (user: string, cmd: string, args: string[], cwd = work) => runAs(user, cmd, args, { cwd, env: clientEnv(), extendEnv: false });
const inspect = async (name: string) => JSON.parse((await d!.docker(['inspect', name])).stdout)[0];

test('docker-py (python3-docker) as alice: run, detach, list: owner labels and limits, her containers only', async (t) => {
  if (missing(t, { root: true, commands: ['dockerd', 'runuser', 'python3'], files: ['/usr/lib/python3/dist-packages/docker/__init__.py'] }) || !face) return;
  assert.equal((await as('bob', '/usr/bin/docker', ['run', '-d', '--name', 'bob-py', 'bb', 'sleep', '300'])).code, 0);
  const script = `
import docker, json, sys
c = docker.DockerClient(base_url=${JSON.stringify(face.host)})
out = c.containers.run('bb', ['echo', 'hi-py'], remove=True)
ct = c.containers.run('bb', ['sleep', '300'], detach=True, name='py1', mem_limit='128m')
print(json.dumps({'out': out.decode().strip(), 'names': sorted(x.name for x in c.containers.list(all=True))}))
`;
  const r = await as('alice', 'python3', ['-c', script]);
  assert.equal(r.code, 0, r.stderr);
  const res = JSON.parse(r.stdout.trim().split('\n').at(-1)!);
  assert.equal(res.out, 'hi-py');
  assert.deepEqual(res.names, ['py1']);
  const c = await inspect('py1');
  assert.equal(c.Config.Labels['ds01.user'], 'alice');
  assert.equal(c.Config.Labels['ds01.interface'], 'api');
  assert.equal(c.HostConfig.Memory, 128 * 1024 ** 2, 'her own smaller limit is kept');
  assert.equal(c.HostConfig.NanoCpus, 2e9, 'the cpu limit is injected');
  const bad = await as('alice', 'python3', ['-c', `import docker\ndocker.DockerClient(base_url=${JSON.stringify(face.host)}).containers.get('bob-py').stop()`]);
  assert.notEqual(bad.code, 0);
  assert.match(bad.stderr, /403 Client Error.*gpuguard: container "bob-py" belongs to another user/s);
});

test('docker-compose 1.29 itself (not the shim) as alice: up, ps, down; labels say compose; bob\'s down leaves her project alone', async (t) => {
  if (missing(t, { root: true, commands: ['dockerd', 'runuser', 'docker-compose'] }) || !face) return;
  const cwd = join(work, 'projects', 'two-services');
  const up = await as('alice', '/usr/bin/docker-compose', ['up', '-d'], cwd);
  assert.equal(up.code, 0, up.stderr);
  for (const name of ['two-services_web_1', 'two-services_worker_1']) {
    const c = await inspect(name);
    assert.equal(c.Config.Labels['ds01.user'], 'alice', name);
    assert.equal(c.Config.Labels['ds01.interface'], 'compose', name);
    assert.equal(c.HostConfig.CgroupParent, '/ds01/students/alice', name);
    assert.equal(c.HostConfig.PidsLimit, 512, name);
  }
  const net = JSON.parse((await d!.docker(['network', 'inspect', 'two-services_default'])).stdout)[0];
  assert.equal(net.Labels['ds01.user'], 'alice', 'compose\'s network carries her owner labels');
  const ps = await as('alice', '/usr/bin/docker-compose', ['ps', '-q'], cwd);
  assert.equal(ps.stdout.trim().split('\n').length, 2, ps.stderr);
  // bob runs down in a copy of the same project: he sees nothing of hers, removes nothing of hers
  const bobs = join(work, 'bob', 'two-services');
  mkdirSync(join(work, 'bob'));
  cpSync(cwd, bobs, { recursive: true });
  await run('chown', ['-R', 'bob', join(work, 'bob')]);
  await as('bob', '/usr/bin/docker-compose', ['down'], bobs);
  assert.equal((await inspect('two-services_web_1')).State.Running, true);
  assert.equal((await d!.docker(['network', 'inspect', 'two-services_default'])).code, 0);
  const down = await as('alice', '/usr/bin/docker-compose', ['down'], cwd);
  assert.equal(down.code, 0, down.stderr);
  assert.equal((await d!.docker(['inspect', 'two-services_web_1'])).code, 1);
});

for (const [fixture, service] of [['devcontainer-image', undefined], ['devcontainer-compose', 'app']] as const) {
  test(`@devcontainers/cli ${fixture} as alice, real docker CLI and compose on the face: interface devcontainer, exec works`, async (t) => {
    if (missing(t, { root: true, commands: ['dockerd', 'runuser', 'docker-compose'], files: [DEVCONTAINER] }) || !face) return;
    const folder = join(work, 'projects', fixture);
    const args = ['--workspace-folder', folder, '--docker-path', '/usr/bin/docker', '--docker-compose-path', '/usr/bin/docker-compose'];
    const r = await as('alice', process.execPath, [DEVCONTAINER, 'up', ...args], folder);
    assert.equal(r.code, 0, `${r.stdout}\n${r.stderr}`);
    const outcome = JSON.parse(r.stdout.trim().split('\n').at(-1)!);
    assert.equal(outcome.outcome, 'success');
    const c = await inspect(outcome.containerId);
    assert.equal(c.Config.Labels['ds01.user'], 'alice');
    assert.equal(c.Config.Labels['ds01.interface'], 'devcontainer');
    assert.equal(c.HostConfig.CgroupParent, '/ds01/students/alice');
    if (service) assert.equal(c.Config.Labels['com.docker.compose.service'], service);
    const exec = await as('alice', process.execPath, [DEVCONTAINER, 'exec', ...args, 'echo', 'ok'], folder);
    assert.equal(exec.code, 0, exec.stderr);
    assert.match(exec.stdout, /^ok$/m);
    await d!.docker(['rm', '-f', outcome.containerId]);
  });
}

test('dockerode (npm) as alice: create, start, wait, logs, remove through the face', async (t) => {
  if (missing(t, { root: true, commands: ['dockerd', 'runuser'], files: [DOCKERODE] }) || !face) return;
  const script = join(work, 'dockerode.cjs');
  writeFileSync(
    script,
    `const Docker = require(${JSON.stringify(DOCKERODE)});
const docker = new Docker({ socketPath: ${JSON.stringify(face.socket)} });
(async () => {
  const c = await docker.createContainer({ Image: 'bb', Cmd: ['echo', 'hi-dockerode'], name: 'dode' });
  await c.start();
  const w = await c.wait();
  const info = await c.inspect();
  const logs = await c.logs({ stdout: true });
  await c.remove();
  console.log(JSON.stringify({ status: w.StatusCode, labels: info.Config.Labels, memory: info.HostConfig.Memory, logs: logs.toString('latin1') }));
})().catch((e) => { console.error(e.message); process.exit(1); });
`,
  );
  chmodSync(script, 0o644);
  const r = await as('alice', process.execPath, [script]);
  assert.equal(r.code, 0, r.stderr);
  const res = JSON.parse(r.stdout.trim().split('\n').at(-1)!);
  assert.equal(res.status, 0);
  assert.equal(res.labels['ds01.user'], 'alice');
  assert.equal(res.labels['ds01.interface'], 'api');
  assert.equal(res.memory, 256 * 1024 ** 2);
  assert.match(res.logs, /hi-dockerode/);
});
