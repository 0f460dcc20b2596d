import { test } from 'node:test';
import { createRequire } from 'node:module';
const require = createRequire(import.meta.url);
import assert from 'node:assert/strict';
import { chmodSync, copyFileSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setEnv } from '../../src/oci/env.ts';
import { FileSpec, SpecUnreadable, SpecWriteError, type FlushIo } from '../../src/oci/spec.ts';
import { FIXTURES } from '../harness/tools.ts';

function bundleWith(fixture: string, mode = 0o640): string {
  const dir = mkdtempSync(join(tmpdir(), 'gg-bundle-'));
  copyFileSync(join(FIXTURES, 'config-json', `${fixture}.json`), join(dir, 'config.json'));
  chmodSync(join(dir, 'config.json'), mode);
  return dir;
}

test('FileSpec: loads once, flushes by rename, keeps mode and every byte it did not change', () => {
  const dir = bundleWith('dockerd-20.10-gpus-device', 0o640);
  try {
    const before = readFileSync(join(dir, 'config.json'), 'utf8');
    const ino = statSync(join(dir, 'config.json')).ino;
    const spec = FileSpec.load(dir);
    assert.equal(spec.flush(), false, 'unchanged: no write at all');
    assert.equal(statSync(join(dir, 'config.json')).ino, ino);
    setEnv(spec.config, 'X', '1');
    assert.equal(spec.flush(), true);
    const after = readFileSync(join(dir, 'config.json'), 'utf8');
    assert.notEqual(statSync(join(dir, 'config.json')).ino, ino, 'replaced by rename, not rewritten in place');
    assert.equal(statSync(join(dir, 'config.json')).mode & 0o7777, 0o640);
    assert.equal(after, before.replace('"NVIDIA_VISIBLE_DEVICES=GPU-11111111-2222-3333-4444-555555555555"', '$&,"X=1"'));
    assert.deepEqual(readdirSync(dir), ['config.json'], 'no temp file left');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

for (const [what, io] of [
  ['a write that fails half-way (ENOSPC)', { writeSync: (fd: number, buf: Buffer, off: number, len: number) => {
    if (off > 0) throw Object.assign(new Error('no space'), { code: 'ENOSPC' });
    return require('node:fs').writeSync(fd, buf, off, Math.min(len, 100));
  } }],
  ['a failing fsync (EIO)', { fsyncSync: () => { throw Object.assign(new Error('io'), { code: 'EIO' }); } }],
  ['a failing rename', { renameSync: () => { throw Object.assign(new Error('busy'), { code: 'EBUSY' }); } }],
] as [string, Partial<FlushIo>][]) {
  test(`FileSpec: ${what} leaves the original config.json intact and no temp file`, () => {
    const dir = bundleWith('dockerd-20.10-plain');
    try {
      const before = readFileSync(join(dir, 'config.json'));
      const fs = require('node:fs');
      const spec = FileSpec.load(dir, { writeSync: fs.writeSync, fsyncSync: fs.fsyncSync, renameSync: fs.renameSync, ...io });
      setEnv(spec.config, 'NVIDIA_VISIBLE_DEVICES', 'void');
      assert.throws(() => spec.flush(), SpecWriteError);
      assert.deepEqual(readFileSync(join(dir, 'config.json')), before);
      assert.deepEqual(readdirSync(dir), ['config.json']);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
}

test('FileSpec: a missing or malformed config.json is SpecUnreadable (handed to the real runtime untouched)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'gg-bundle-'));
  try {
    assert.throws(() => FileSpec.load(dir), SpecUnreadable);
    writeFileSync(join(dir, 'config.json'), '{"ociVersion": ');
    assert.throws(() => FileSpec.load(dir), SpecUnreadable);
    writeFileSync(join(dir, 'config.json'), '[]');
    assert.throws(() => FileSpec.load(dir), SpecUnreadable);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('env: set replaces every entry of the name in place of the first; absent env is created', () => {
  const c = { ociVersion: '1', process: { cwd: '/', env: ['A=1', 'N=x', 'B=2', 'N=y'] } };
  assert.equal(setEnv(c, 'N', 'z'), true);
  assert.deepEqual(c.process.env, ['A=1', 'N=z', 'B=2']);
  assert.equal(setEnv(c, 'N', 'z'), false);
  const d: { ociVersion: string; process: { cwd: string; env?: string[] } } = { ociVersion: '1', process: { cwd: '/' } };
  assert.equal(setEnv(d, 'N', 'v'), true);
  assert.deepEqual(d.process.env, ['N=v']);
});
