import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { listDiversions, owningPackage } from '../../src/install/dpkg.ts';
import { hostPath } from '../../src/install/state.ts';

test('owningPackage reads dpkg file lists (dpkg -S), arch-qualified names included', () => {
  const root = mkdtempSync('/tmp/gg-dpkg-');
  try {
    mkdirSync(join(root, 'var/lib/dpkg/info'), { recursive: true });
    writeFileSync(join(root, 'var/lib/dpkg/info/docker.io.list'), '/.\n/usr\n/usr/bin\n/usr/bin/docker\n');
    writeFileSync(join(root, 'var/lib/dpkg/info/runc:amd64.list'), '/usr/sbin/runc\n');
    writeFileSync(join(root, 'var/lib/dpkg/info/docker.io.md5sums'), 'abc  usr/bin/dockerd\n');
    assert.equal(owningPackage(root, '/usr/bin/docker'), 'docker.io');
    assert.equal(owningPackage(root, '/usr/sbin/runc'), 'runc');
    assert.equal(owningPackage(root, '/usr/local/bin/docker'), undefined);
    assert.equal(owningPackage('/nonexistent', '/usr/bin/docker'), undefined, 'no dpkg database: unpackaged');
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('listDiversions parses dpkg\'s diversions file (from, to, package triples)', () => {
  const root = mkdtempSync('/tmp/gg-dpkg-');
  try {
    mkdirSync(join(root, 'var/lib/dpkg'), { recursive: true });
    writeFileSync(join(root, 'var/lib/dpkg/diversions'), '/usr/bin/docker\n/usr/bin/docker.real\ngpuguard\n/bin/sh\n/bin/sh.distrib\ndash\n');
    assert.deepEqual(listDiversions(root), [
      { from: '/usr/bin/docker', to: '/usr/bin/docker.real', package: 'gpuguard' },
      { from: '/bin/sh', to: '/bin/sh.distrib', package: 'dash' },
    ]);
    writeFileSync(join(root, 'var/lib/dpkg/diversions'), '');
    assert.deepEqual(listDiversions(root), []);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('hostPath: view paths under --root, explicit ones and paths already inside root as they are', () => {
  const s = { root: '/tmp/t', explicit: ['/srv/lib'] };
  assert.equal(hostPath(s, '/usr/bin/docker'), '/tmp/t/usr/bin/docker');
  assert.equal(hostPath(s, '/srv/lib/gpuguard'), '/srv/lib/gpuguard');
  assert.equal(hostPath(s, '/srv/library'), '/tmp/t/srv/library');
  assert.equal(hostPath(s, '/tmp/t/alt-runtime'), '/tmp/t/alt-runtime');
  assert.equal(hostPath({ root: '/' }, '/usr/bin/docker'), '/usr/bin/docker');
});
