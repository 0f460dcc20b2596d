import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { parse } from 'yaml';
import { asksForGpu, fileSetting, keyValues, overrideDocument, servicesOf } from '../../src/compose/service.ts';
import { scanComposeArgv } from '../../src/compose/argv.ts';
import { prepareCompose } from '../../src/docker-shim/compose.ts';
import { FIXTURES } from '../harness/tools.ts';

test('labels and environment in both compose spellings', () => {
  assert.deepEqual(keyValues({ a: 'b', n: 1, e: null }), { a: 'b', n: '1', e: '' });
  assert.deepEqual(keyValues(['a=b', 'c', 'd=e=f']), { a: 'b', c: '', d: 'e=f' });
});

test('services: limits from either spelling, the smaller wins, as spelled', () => {
  const [s] = servicesOf({
    services: {
      web: { image: 'bb', mem_limit: '1g', cpus: 4, pids_limit: 100, shm_size: '64m', deploy: { resources: { limits: { memory: '512m', cpus: '1.5' } } }, labels: ['x=y'], cgroup_parent: '/p' },
    },
  });
  assert.deepEqual(s!.limits, { cpus: '1.5', memory: '512m', pids: '100', shmSize: '64m' });
  assert.deepEqual(s!.labels, { x: 'y' });
  assert.equal(s!.cgroupParent, '/p');
});

test('GPU asks: device reservations, runtime nvidia, NVIDIA_VISIBLE_DEVICES', () => {
  const asks = servicesOf({
    services: {
      dev: { deploy: { resources: { reservations: { devices: [{ driver: 'nvidia', count: 1, capabilities: ['gpu'] }] } } } },
      caps: { deploy: { resources: { reservations: { devices: [{ capabilities: ['gpu'], device_ids: ['0'] }] } } } },
      rt: { runtime: 'nvidia' },
      env: { environment: { NVIDIA_VISIBLE_DEVICES: 'all' } },
      envlist: { environment: ['NVIDIA_VISIBLE_DEVICES=void'] },
      plain: { image: 'bb' },
    },
  });
  assert.deepEqual(asks.map((a) => [a.service, asksForGpu(a)]), [['dev', true], ['caps', true], ['rt', true], ['env', true], ['envlist', false], ['plain', false]]);
  assert.deepEqual(asks[1]!.gpu.devices[0], { driver: undefined, count: undefined, deviceIds: ['0'], capabilities: ['gpu'] });
});

test('the file that sets a key: the last one, as compose merges', () => {
  const files = [
    { path: '/p/a.yml', doc: { services: { web: { labels: ['x=1'] } } } },
    { path: '/p/b.yml', doc: { services: { web: { image: 'bb' } } } },
    { path: '/p/c.yml', doc: { services: { web: { labels: { y: '2' } } } } },
  ];
  assert.equal(fileSetting(files, 'web', 'labels'), '/p/c.yml');
  assert.equal(fileSetting(files, 'web', 'image'), '/p/b.yml');
  assert.equal(fileSetting(files, 'db', 'image'), undefined);
});

test('the override carries only the additions, and the main file\'s version', () => {
  const doc = overrideDocument([{ service: 'web', labels: [['ds01.user', 'alice']], cgroupParent: '/ds01/s/alice', inject: { cpus: 2, memory: '256m' } }], '3.8');
  assert.deepEqual(doc, {
    version: '3.8',
    services: {
      web: {
        labels: { 'ds01.user': 'alice' },
        cgroup_parent: '/ds01/s/alice',
        cpus: 2,
        mem_limit: '256m',
      },
    },
  });
  assert.equal('version' in overrideDocument([], undefined), false);
});

/**
 * `docker compose` (v2) cannot be installed from this machine's package
 * sources, so its path is tested here against a stand-in docker CLI that
 * answers `compose … config` like the plugin would: the same planner, the
 * v2 global grammar, the docker globals kept before `compose`.
 */
test('docker compose (v2): globals before compose kept, --profile/--env-file kept, files explicit, override last', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'gg-v2-'));
  const fakeDocker = join(dir, 'docker');
  const log = join(dir, 'calls');
  writeFileSync(fakeDocker, `#!/bin/sh\necho "$@" >> ${log}\ncat <<'YAML'\nname: proj\nservices:\n  web:\n    image: bb\n    mem_limit: 128m\nYAML\n`);
  chmodSync(fakeDocker, 0o755);
  writeFileSync(join(dir, 'compose.yaml'), 'services:\n  web:\n    image: bb\n    mem_limit: 128m\n');
  writeFileSync(join(dir, '.env.lab'), 'X=1\n');
  const cwd = process.cwd();
  process.chdir(dir);
  try {
    const args = ['--profile', 'gpu', '--env-file', '.env.lab', 'up', '-d'];
    const scan = scanComposeArgv(args, 'v2');
    const env = { GPUGUARD_POLICY: join(FIXTURES, 'policies/lab.yaml'), GPUGUARD_USER: 'root', XDG_RUNTIME_DIR: dir, PATH: process.env.PATH };
    const p = await prepareCompose(scan, { real: fakeDocker, prefix: ['-H', 'unix:///run/x.sock', 'compose'] }, { local: true, why: 'test' }, env, { write: false });
    assert.equal(p.kind, 'rewrite');
    const override = join(dir, 'gpuguard', `${p.plan!.project}.override.yml`);
    assert.deepEqual(p.argv, ['-H', 'unix:///run/x.sock', 'compose', '-f', join(dir, 'compose.yaml'), '-f', override, '--profile', 'gpu', '--env-file', '.env.lab', 'up', '-d']);
    const o = parse(p.overrideText!);
    assert.equal(o.services.web.labels['ds01.interface'], 'compose');
    assert.equal(o.services.web.mem_limit, undefined, '128m is below the 256m limit: kept, not overridden');
    assert.equal(o.services.web.cgroup_parent, '/ds01/students/root');
    assert.equal(readFileSync(log, 'utf8'), `-H unix:///run/x.sock compose -f ${join(dir, 'compose.yaml')} --profile gpu --env-file .env.lab config\n`, 'the merged configuration comes from the plugin with the same globals');
  } finally {
    process.chdir(cwd);
    rmSync(dir, { recursive: true, force: true });
  }
});

test('GPU asks as one request, like docker run --gpus', async () => {
  const { gpuRequestOf } = await import('../../src/compose/service.ts');
  const req = (service: Record<string, unknown>) => {
    const { kind, count, devices, capabilities } = gpuRequestOf(servicesOf({ services: { s: service } })[0]!);
    return { kind, count, devices, capabilities };
  };
  const dev = (d: Record<string, unknown>) => ({ deploy: { resources: { reservations: { devices: [d] } } } });
  assert.deepEqual(req(dev({ driver: 'nvidia', count: 2, capabilities: ['gpu'] })), { kind: 'count', count: 2, devices: undefined, capabilities: ['gpu'] });
  assert.deepEqual(req(dev({ driver: 'nvidia', count: 'all', capabilities: ['gpu'] })), { kind: 'all', count: undefined, devices: undefined, capabilities: ['gpu'] });
  assert.deepEqual(req(dev({ capabilities: ['gpu'] })), { kind: 'all', count: undefined, devices: undefined, capabilities: ['gpu'] });
  assert.deepEqual(req(dev({ driver: 'nvidia', device_ids: ['0', '1'] })), { kind: 'devices', count: undefined, devices: ['0', '1'], capabilities: undefined });
  assert.deepEqual(req({ runtime: 'nvidia', environment: ['NVIDIA_VISIBLE_DEVICES=1'] }), { kind: 'devices', count: undefined, devices: ['1'], capabilities: undefined });
  assert.deepEqual(req({ runtime: 'nvidia' }), { kind: 'all', count: undefined, devices: undefined, capabilities: undefined });
  assert.equal(req({ environment: { NVIDIA_VISIBLE_DEVICES: 'void' } }).kind, 'none');
});

test('GPU projects: the merged configuration with the user GPU asks replaced, not added to', async () => {
  const { applyAnswers } = await import('../../src/compose/service.ts');
  const merged = {
    version: '3.9',
    services: {
      t: {
        image: 'bb',
        labels: { a: 'b' },
        environment: { NVIDIA_VISIBLE_DEVICES: 'all', X: '1' },
        deploy: { resources: { reservations: { devices: [{ driver: 'nvidia', count: 1, capabilities: ['gpu'] }, { driver: 'other', count: 1, capabilities: ['tpu'] }] } } },
      },
    },
  };
  const doc = applyAnswers(merged, [{ service: 't', labels: [['ds01.user', 'alice']], inject: { memory: '256m' }, gpu: { deviceIds: ['MIG-a'], capabilities: ['gpu', 'utility'] } }]) as typeof merged & { services: { t: Record<string, unknown> } };
  assert.deepEqual(doc.services.t.labels, { a: 'b', 'ds01.user': 'alice' });
  assert.deepEqual(doc.services.t.environment, { NVIDIA_VISIBLE_DEVICES: 'MIG-a', X: '1' });
  assert.equal(doc.services.t.mem_limit, '256m');
  assert.deepEqual((doc.services.t.deploy as typeof merged.services.t.deploy).resources.reservations.devices, [
    { driver: 'other', count: 1, capabilities: ['tpu'] },
    { driver: 'nvidia', device_ids: ['MIG-a'], capabilities: ['gpu', 'utility'] },
  ]);
  assert.equal(merged.services.t.environment.NVIDIA_VISIBLE_DEVICES, 'all', 'the input is not modified');
});
