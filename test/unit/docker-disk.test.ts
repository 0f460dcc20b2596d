/**
 * dockerd's own container records (config.v2.json + hostconfig.json) read as
 * the inspect view: captured from dockerd 20.10.24 (running with a GPU,
 * labels, a bind and a volume; exited; created; paused on the nvidia
 * runtime) together with `docker inspect` of each, which they must match.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseContainerFiles, stateString } from '../../src/docker/disk.ts';
import { gpuIdsOf } from '../../src/gpu/state.ts';
import { bindSources } from '../../src/ownership/detect.ts';
import { FIXTURES } from '../harness/tools.ts';

const dir = (name: string) => join(FIXTURES, 'docker-records', name);
const read = (name: string, file: string) => readFileSync(join(dir(name), file), 'utf8');

for (const name of ['running', 'exited', 'created', 'paused']) {
  test(`record of the ${name} container equals its docker inspect`, () => {
    const r = parseContainerFiles(read(name, 'config.v2.json'), read(name, 'hostconfig.json'));
    assert.ok(r, 'parsed');
    const inspect = JSON.parse(read(name, 'inspect.json'))[0];
    const d = r.details;
    assert.deepEqual([d.Id, d.Name, d.Created, d.Image], [inspect.Id, inspect.Name, inspect.Created, inspect.Image]);
    assert.deepEqual([d.State.Status, d.State.Running, d.State.StartedAt, d.State.FinishedAt], [inspect.State.Status, inspect.State.Running, inspect.State.StartedAt, inspect.State.FinishedAt]);
    assert.equal(r.pid, inspect.State.Running ? inspect.State.Pid : 0);
    assert.deepEqual(d.Config.Labels, inspect.Config.Labels ?? {});
    assert.deepEqual(d.Config.Env, inspect.Config.Env ?? []);
    assert.equal(d.HostConfig.Runtime, inspect.HostConfig.Runtime);
    assert.deepEqual(gpuIdsOf(d), gpuIdsOf(inspect));
    assert.deepEqual(bindSources(d).sort(), bindSources(inspect).sort());
    assert.deepEqual(
      (d.Mounts ?? []).map((m) => `${m.Type}:${m.Source}:${m.Destination}`).sort(),
      (inspect.Mounts ?? []).map((m: { Type: string; Source: string; Destination: string }) => `${m.Type}:${m.Source}:${m.Destination}`).sort(),
    );
  });
}

test('the running capture has its GPU, stop timeout and pid; the paused one its NVIDIA_VISIBLE_DEVICES', () => {
  const running = parseContainerFiles(read('running', 'config.v2.json'), read('running', 'hostconfig.json'))!;
  assert.deepEqual(gpuIdsOf(running.details), ['MIG-63748596-a7b8-5c9d-ef30-253647586973']);
  assert.equal(running.stopTimeout, 30);
  assert.ok(running.pid > 0);
  const paused = parseContainerFiles(read('paused', 'config.v2.json'), read('paused', 'hostconfig.json'))!;
  assert.equal(paused.details.State.Status, 'paused');
  assert.deepEqual(gpuIdsOf(paused.details), ['0', '1']);
});

test('state words as dockerd spells them; anything else is no record', () => {
  const base = { Running: false, Pid: 0, StartedAt: '0001-01-01T00:00:00Z', FinishedAt: '0001-01-01T00:00:00Z' };
  assert.equal(stateString(base), 'created');
  assert.equal(stateString({ ...base, StartedAt: '2026-01-01T00:00:00Z' }), 'exited');
  assert.equal(stateString({ ...base, Dead: true }), 'dead');
  assert.equal(stateString({ ...base, RemovalInProgress: true, Dead: true }), 'removing');
  assert.equal(stateString({ ...base, Running: true, Restarting: true }), 'restarting');
  assert.equal(parseContainerFiles('{', '{}'), undefined);
  assert.equal(parseContainerFiles('{"ID": 1}', '{}'), undefined);
});
