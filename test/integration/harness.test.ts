/** Proves the harness: a private dockerd runs containers, and --gpus works through the stand-in hook. */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { IS_ROOT, missing, startDockerd, type PrivateDockerd } from '../harness/index.ts';

let d: PrivateDockerd | undefined;
before(async () => {
  if (IS_ROOT) d = await startDockerd();
});
after(async () => d?.stop());

test('a container runs on the private dockerd', async (t) => {
  if (missing(t, { root: true }) || !d) return;
  const r = await d.docker(['run', '--rm', 'bb', 'sh', '-c', 'cat /etc/os-release; echo ok']);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /ID=busybox/);
  assert.match(r.stdout, /ok\n$/);
});

test('--gpus device=GPU-… is accepted thanks to the stand-in hook', async (t) => {
  if (missing(t, { root: true }) || !d) return;
  const uuid = 'GPU-4f9a2c1e-8b3d-4e71-a2f0-6c5d9e8b1a20';
  const r = await d.docker(['run', '--rm', '--gpus', `device=${uuid}`, 'bb', 'sh', '-c', 'echo $NVIDIA_VISIBLE_DEVICES']);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, `${uuid}\n`);
});

test('stop removes everything it started', async (t) => {
  if (missing(t, { root: true })) return;
  const tmp = await startDockerd({ image: false });
  await tmp.stop();
  assert.equal(existsSync(tmp.dir), false);
  assert.throws(() => process.kill(tmp.pid, 0));
});
