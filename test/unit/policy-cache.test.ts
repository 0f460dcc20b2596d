import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { loadPolicyCached } from '../../src/policy/cache.ts';

test('policy cache: an entry in a directory others can write is not trusted', async (t) => {
  if (process.getuid?.() !== 0) return t.skip('only root writes the cache');
  const dir = mkdtempSync(join(tmpdir(), 'gg-pcd-'));
  try {
    const policy = join(dir, 'policy.yaml');
    const cache = join(dir, 'cache');
    writeFileSync(policy, 'version: 1\nmode: audit\n');
    const env = { GPUGUARD_POLICY: policy };
    assert.equal((await loadPolicyCached(env, cache)).policy.mode, 'audit');
    const file = join(cache, readdirSync(cache)[0]!);
    const doctored = JSON.parse(readFileSync(file, 'utf8'));
    doctored.policy.mode = 'enforce';
    writeFileSync(file, JSON.stringify(doctored));
    assert.equal((await loadPolicyCached(env, cache)).policy.mode, 'enforce', 'a trusted fresh entry is what is read');
    chmodSync(cache, 0o777);
    assert.equal((await loadPolicyCached(env, cache)).policy.mode, 'audit', 'a world-writable cache directory is ignored: the file is parsed');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
