/**
 * doctor `bind-mounts` (src/doctor/binds.ts): reading mountinfo, finding the
 * mount a path is on, and the verdict over the policy's bind roots.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { bindRootMounts, judgeBindMounts, mountOf, parseMountinfo } from '../../src/doctor/binds.ts';

const MOUNTINFO = [
  '22 1 254:0 / / rw,relatime shared:1 - ext4 /dev/vda rw',
  '30 22 0:26 / /home rw,nosuid,nodev,relatime shared:2 - ext4 /dev/vdb rw',
  '31 22 0:27 / /home2 rw,relatime shared:3 - ext4 /dev/vdc rw',
  '32 22 0:28 / /srv/data\\040sets rw,nosuid,relatime shared:4 - xfs /dev/vdd rw',
  '33 30 0:29 / /home/alice rw,relatime shared:5 - nfs srv:/alice rw',
  '34 30 0:30 / /home/alice rw,nosuid,nodev,relatime shared:6 - nfs srv:/alice2 rw',
].join('\n');

test('parseMountinfo: mount point with its escapes, and the per-mount options', () => {
  const m = parseMountinfo(MOUNTINFO);
  assert.equal(m.length, 6);
  assert.deepEqual(m[1], { mountPoint: '/home', options: ['rw', 'nosuid', 'nodev', 'relatime'] });
  assert.equal(m[3]!.mountPoint, '/srv/data sets');
});

test('mountOf: the longest mount point by components; of two on one point, the later', () => {
  const m = parseMountinfo(MOUNTINFO);
  assert.equal(mountOf('/home/bob/x', m)!.mountPoint, '/home');
  assert.equal(mountOf('/home2/bob', m)!.mountPoint, '/home2', '/home2 is not under /home');
  assert.equal(mountOf('/homework', m)!.mountPoint, '/');
  assert.equal(mountOf('/srv/data sets/a', m)!.mountPoint, '/srv/data sets');
  assert.deepEqual(mountOf('/home/alice/w', m)!.options, ['rw', 'nosuid', 'nodev', 'relatime']);
  assert.equal(mountOf('/', m)!.mountPoint, '/');
});

test('judgeBindMounts: ok with userns-remap or nosuid,nodev everywhere; fail naming each open root and what to mount', () => {
  const m = parseMountinfo(MOUNTINFO);
  const root = (written: string, path: string) => ({ written, rendered: path, path, mount: mountOf(path, m)! });
  assert.equal(judgeBindMounts([root('{home}', '/home/bob')], false).status, 'ok');
  assert.equal(judgeBindMounts([root('{home}', '/home2/bob')], true).status, 'ok', 'userns-remap: container root is not host root');
  assert.equal(judgeBindMounts([], false).status, 'ok');
  const v = judgeBindMounts([root('{home}', '/home/bob'), root('/srv/*', '/srv/data sets'), root('/scratch/{user}', '/scratch/bob')], false);
  assert.equal(v.status, 'fail');
  assert.match(v.message, /^security\.binds lets users bind \/srv\/\* \(\/srv\/data sets on \/srv\/data sets, mounted rw,nosuid,relatime\); \/scratch\/\{user\} \(\/scratch\/bob on \/, mounted rw,relatime\): root in their container can leave a setuid-root program/);
  assert.doesNotMatch(v.message, /\{home\}/, 'the nosuid,nodev home is not named');
  assert.match(v.fix!, /^mount \/srv\/data sets, \/scratch nosuid,nodev /, 'a root on / names its top directory, never /');
});

test('bindRootMounts: roots rendered for the user, a missing one judged by its nearest existing parent', () => {
  const dir = mkdtempSync(join(tmpdir(), 'gg-binds-'));
  try {
    mkdirSync(join(dir, 'home/alice'), { recursive: true });
    mkdirSync(join(dir, 'scratch'));
    const info = join(dir, 'mountinfo');
    writeFileSync(info, `22 1 254:0 / / rw,relatime shared:1 - ext4 /dev/vda rw\n30 22 0:26 / ${dir}/home rw,nosuid,nodev shared:2 - ext4 /dev/vdb rw\n`);
    const roots = bindRootMounts({ binds: ['{home}', `${dir}/scratch/{user}`, '{home}/../x'] } as never, { user: 'alice', home: `${dir}/home/alice` }, info);
    assert.deepEqual(
      roots.map((r) => [r.written, r.path, r.mount?.mountPoint]),
      [
        ['{home}', `${dir}/home/alice`, `${dir}/home`],
        [`${dir}/scratch/{user}`, `${dir}/scratch`, '/'],
        ['{home}/../x', `${dir}/home`, `${dir}/home`],
      ],
    );
    assert.deepEqual(bindRootMounts({ binds: ['{home}'] } as never, { user: 'nohome' }, info), [], 'no home: nothing to bind');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
