/**
 * docker-compose 1.29 (Debian) and @devcontainers/cli through the compiled
 * shim, as a real unix user, against the private dockerd.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { BINARY, FIXTURES, IS_ROOT, ROOT, ensureTestUsers, fakeNvidiaSmi, missing, run, runAs, startDockerd, which, type PrivateDockerd, installFace } from '../harness/index.ts';
import { selectComposeFiles } from '../../src/compose/files.ts';

const DEVCONTAINER = join(ROOT, 'node_modules/.bin/devcontainer');
let d: PrivateDockerd | undefined;
let work = '';
let env: Record<string, string> = {};

before(async () => {
  if (!IS_ROOT || !which('docker-compose')) return;
  ensureTestUsers();
  d = await startDockerd({ socketGroup: 'gg-docker' });
  work = mkdtempSync('/tmp/gg-compose-');
  chmodSync(work, 0o755);
  const bin = join(work, 'bin');
  mkdirSync(bin);
  for (const face of ['docker', 'docker-compose'] as const) installFace(bin, face);
  const events = join(work, 'events.jsonl');
  writeFileSync(events, '');
  chmodSync(events, 0o666);
  const policy = join(work, 'policy.yaml');
  writeFileSync(policy, `${readFileSync(join(FIXTURES, 'policies/lab.yaml'), 'utf8')}events: {log: ${events}}\n`);
  cpSync(join(FIXTURES, 'compose'), join(work, 'projects'), { recursive: true });
  chmodSync(join(work, 'projects'), 0o777);
  const runDir = join(work, 'run');
  mkdirSync(runDir);
  chmodSync(runDir, 0o1777);
  env = {
    GPUGUARD_NVIDIA_SMI: fakeNvidiaSmi(work, 'a100-7x1g'),
    GPUGUARD_RUN_DIR: runDir,
    PATH: `${bin}:/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin`,
    HOME: '/home/alice',
    DOCKER_HOST: d.host,
    GPUGUARD_POLICY: policy,
    GPUGUARD_REAL_DOCKER: '/usr/bin/docker',
  };
});

after(async () => {
  await d?.stop();
  if (work) rmSync(work, { recursive: true, force: true });
});

const needs = { root: true, commands: ['docker-compose', 'runuser'] };
const project = (name: string) => join(work, 'projects', name);
const asAlice = (cmd: string, args: string[], cwd: string, extra: Record<string, string> = {}) => runAs('alice', cmd, args, { cwd, env: { ...env, ...extra }, extendEnv: false });
const compose = (args: string[], cwd: string, extra: Record<string, string> = {}) => asAlice('docker-compose', args, cwd, extra);
const inspect = async (name: string) => JSON.parse((await d!.docker(['inspect', name])).stdout)[0];
const names = async () => (await d!.docker(['ps', '-a', '--format', '{{.Names}}'])).stdout.split('\n').filter(Boolean).sort();

describe('docker-compose v1 through the shim', () => {
  test('up -d with default discovery: both services, owner labels, cgroup parent and limits; up again recreates nothing; down removes them', async (t) => {
    if (missing(t, needs)) return;
    const cwd = project('two-services');
    const up = await compose(['up', '-d'], cwd);
    assert.equal(up.code, 0, up.stderr);
    assert.deepEqual(await names(), ['two-services_web_1', 'two-services_worker_1']);
    const web = await inspect('two-services_web_1');
    const worker = await inspect('two-services_worker_1');
    for (const c of [web, worker]) {
      const l = c.Config.Labels;
      assert.equal(l['ds01.managed'], 'true');
      assert.equal(l['ds01.user'], 'alice');
      assert.equal(l['ds01.uid'], (await run('id', ['-u', 'alice'])).stdout.trim());
      assert.equal(l['ds01.group'], 'students');
      assert.equal(l['ds01.interface'], 'compose');
      assert.match(l['ds01.created_at'], /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
      assert.equal(c.HostConfig.CgroupParent, '/ds01/students/alice');
      assert.equal(c.HostConfig.NanoCpus, 2e9);
      assert.equal(c.HostConfig.PidsLimit, 512);
      assert.equal(c.HostConfig.ShmSize, 64 * 1024 ** 2);
    }
    assert.equal(web.Config.Labels['app.role'], 'web', 'the user labels are kept');
    assert.equal(web.HostConfig.Memory, 128 * 1024 ** 2, 'a lower limit of the user is kept');
    assert.equal(worker.HostConfig.Memory, 256 * 1024 ** 2, 'the group limit is injected where none was set');
    const again = await compose(['up', '-d'], cwd);
    assert.equal(again.code, 0, again.stderr);
    assert.match(again.stderr, /two-services_web_1 is up-to-date/);
    assert.equal((await inspect('two-services_web_1')).Id, web.Id);
    const events = readFileSync(env.GPUGUARD_POLICY!.replace('policy.yaml', 'events.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    assert.ok(events.some((e) => e.face === 'compose' && e.decision === 'rewrite' && e.user === 'alice' && e.project === 'two-services'));
    const down = await compose(['down'], cwd);
    assert.equal(down.code, 0, down.stderr);
    assert.deepEqual(await names(), []);
  });

  test('-f a.yml -f b.yml, COMPOSE_FILE and its separator keep exactly the user\'s files', async (t) => {
    if (missing(t, needs)) return;
    const cwd = project('ab');
    const variants: [string[], Record<string, string>][] = [
      [['-f', 'a.yml', '-f', 'b.yml'], {}],
      [[], { COMPOSE_FILE: 'a.yml:b.yml' }],
      [[], { COMPOSE_FILE: 'a.yml;b.yml', COMPOSE_PATH_SEPARATOR: ';' }],
    ];
    for (const [files, extra] of variants) {
      const up = await compose([...files, 'up', '-d'], cwd, extra);
      assert.equal(up.code, 0, up.stderr);
      assert.deepEqual(await names(), ['ab_a_1', 'ab_b_1'], `${files.join(' ')} ${JSON.stringify(extra)}`);
      const configFiles = (await inspect('ab_a_1')).Config.Labels['com.docker.compose.project.config_files'].split(',');
      assert.deepEqual(configFiles.slice(0, 2), [join(cwd, 'a.yml'), join(cwd, 'b.yml')]);
      assert.match(configFiles[2], /\/tmp\/gpuguard-\d+\/ab\.override\.yml$/);
      assert.equal(configFiles.length, 3);
      assert.equal((await compose([...files, 'down'], cwd, extra)).code, 0);
    }
  });

  test('docker-compose config is unchanged by the shim', async (t) => {
    if (missing(t, needs)) return;
    const cwd = project('two-services');
    const viaShim = await compose(['config'], cwd);
    const direct = await runAs('alice', '/usr/bin/docker-compose', ['config'], { cwd, env, extendEnv: false });
    assert.equal(viaShim.code, 0);
    assert.deepEqual(viaShim, direct);
  });

  test('the file selection matches compose\'s own (its debug log)', async (t) => {
    if (missing(t, needs)) return;
    const cases: [string, string[], Record<string, string>][] = [
      ['two-services', [], {}],
      ['ab', ['-f', 'b.yml', '-f', 'a.yml'], {}],
      ['ab', [], { COMPOSE_FILE: 'b.yml:a.yml' }],
    ];
    for (const [name, files, extra] of cases) {
      const cwd = project(name);
      const r = await run('/usr/bin/docker-compose', [...files, '--log-level', 'DEBUG', 'config'], { cwd, env: { ...env, ...extra } });
      const theirs = /Using configuration files: (.*)/.exec(r.stderr)?.[1]?.split(',').map((f) => join(cwd, f));
      const ours = selectComposeFiles({ dialect: 'v1', cwd, files: files.filter((_, i) => i % 2 === 1), env: { ...extra } }).files;
      assert.deepEqual(ours, theirs, name);
    }
  });

  test('gpuguard explain -- docker-compose up shows the command, the decisions and the override; runs nothing', async (t) => {
    if (missing(t, needs)) return;
    const cwd = project('two-services');
    const r = await asAlice(BINARY, ['explain', '--', 'docker-compose', 'up', '-d'], cwd);
    assert.equal(r.code, 0, r.stderr);
    const [first, ...rest] = r.stdout.split('\n');
    assert.match(first!, new RegExp(`^docker-compose -f ${cwd}/docker-compose.yml -f ${cwd}/docker-compose.override.yml -f /tmp/gpuguard-\\d+/two-services.override.yml up -d$`));
    assert.ok(rest.includes('  worker: add limits.memory: no mem_limit given: mem_limit 256m, the per-container limit of group students'));
    assert.ok(rest.includes('#         ds01.user: "alice"'));
    const j = JSON.parse((await asAlice(BINARY, ['explain', '--json', '--', 'docker-compose', 'up', '-d'], cwd)).stdout);
    assert.equal(j.project, 'two-services');
    assert.match(j.override.content, /cgroup_parent: "\/ds01\/students\/alice"/);
    assert.deepEqual(await names(), []);
  });

  test('a service above quota is refused, naming file and service; nothing is created', async (t) => {
    if (missing(t, needs)) return;
    const cwd = project('overquota');
    const up = await compose(['up', '-d'], cwd);
    assert.equal(up.code, 125);
    assert.equal(up.stderr, `gpuguard: ${join(cwd, 'docker-compose.yml')}: service big: mem_limit 8g asks for more than the 256m allowed per container to group students; use mem_limit 256m or less, or ask an admin to raise limits.memory\n`);
    assert.deepEqual(await names(), []);
  });

  test('a reserved label in the compose file is refused', async (t) => {
    if (missing(t, needs)) return;
    const cwd = project('reserved');
    const up = await compose(['up', '-d'], cwd);
    assert.equal(up.code, 125);
    assert.match(up.stderr, /^gpuguard: .*reserved\/docker-compose\.yml: service sneaky: label ds01\.user .* is reserved: .* remove it from the compose file\n$/);
    assert.deepEqual(await names(), []);
  });
});

describe('GPU services in compose', () => {
  test('a device reservation gets one MIG slice of the quota, labelled; up again keeps it; down frees it', async (t) => {
    if (missing(t, needs)) return;
    const cwd = project('gpu');
    const up = await compose(['up', '-d'], cwd);
    assert.equal(up.code, 0, up.stderr);
    const train = await inspect('gpu_train_1');
    const requests = train.HostConfig.DeviceRequests;
    assert.equal(requests.length, 1, JSON.stringify(requests));
    assert.equal(requests[0].Driver, 'nvidia');
    assert.equal(requests[0].DeviceIDs.length, 1);
    assert.match(requests[0].DeviceIDs[0], /^MIG-/);
    assert.equal(train.Config.Labels['ds01.gpu.uuid'], requests[0].DeviceIDs[0]);
    assert.match(train.Config.Labels['ds01.gpu.allocated'], /^0\.\d$/);
    assert.equal(train.Config.Labels['ds01.interface'], 'compose');
    const notebook = await inspect('gpu_notebook_1');
    assert.equal(notebook.HostConfig.DeviceRequests, null, 'a service without a GPU ask gets none');
    assert.equal(notebook.Config.Labels['ds01.user'], 'alice');
    const again = await compose(['up', '-d'], cwd);
    assert.equal(again.code, 0, again.stderr);
    assert.match(again.stderr, /gpu_train_1 is up-to-date/);
    assert.equal((await inspect('gpu_train_1')).Id, train.Id, 'the same device again: nothing recreated');
    const gpus = JSON.parse((await asAlice(BINARY, ['gpus', '--json'], cwd)).stdout);
    const held = (Array.isArray(gpus) ? gpus : gpus.devices ?? gpus.rows).filter((r: { uuid: string }) => r.uuid === requests[0].DeviceIDs[0]);
    assert.equal(held.length, 1);
    assert.equal((await compose(['down'], cwd)).code, 0);
  });

  test('a service asking for more GPUs than the quota is refused before anything exists', async (t) => {
    if (missing(t, needs)) return;
    const cwd = project('gpu-overquota');
    const up = await compose(['up', '-d'], cwd);
    assert.equal(up.code, 125, up.stderr);
    assert.match(up.stderr, /^gpuguard: .*gpu-overquota\/docker-compose\.yml: service big: .*\n$/);
    assert.deepEqual(await names(), []);
  });
});

describe('Dev Containers CLI through the shim', () => {
  const up = (folder: string) => asAlice(process.execPath, [DEVCONTAINER, 'up', '--workspace-folder', folder, '--docker-path', join(work, 'bin/docker')], folder);

  for (const [fixture, service] of [['devcontainer-image', undefined], ['devcontainer-compose', 'app']] as const) {
    test(`${fixture}: up succeeds with interface=devcontainer, and exec works`, async (t) => {
      if (missing(t, { ...needs, files: [DEVCONTAINER] })) return;
      const folder = project(fixture);
      const r = await up(folder);
      assert.equal(r.code, 0, `${r.stdout}\n${r.stderr}`);
      const outcome = JSON.parse(r.stdout.trim().split('\n').at(-1)!);
      assert.equal(outcome.outcome, 'success');
      const c = await inspect(outcome.containerId);
      assert.equal(c.Config.Labels['ds01.user'], 'alice');
      assert.equal(c.Config.Labels['ds01.interface'], 'devcontainer');
      assert.equal(c.Config.Labels['devcontainer.local_folder'], folder);
      assert.equal(c.HostConfig.CgroupParent, '/ds01/students/alice');
      if (service) assert.equal(c.Config.Labels['com.docker.compose.service'], service);
      const exec = await asAlice(process.execPath, [DEVCONTAINER, 'exec', '--workspace-folder', folder, '--docker-path', join(work, 'bin/docker'), 'echo', 'ok'], folder);
      assert.equal(exec.code, 0, exec.stderr);
      assert.match(exec.stdout, /^ok$/m);
      await d!.docker(['rm', '-f', outcome.containerId]);
    });
  }
});
