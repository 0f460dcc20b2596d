/**
 * A user's clone has no ../shared beside it: the committed OCI types and the
 * build must still work there, and the compiled binary must run without Node.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { tmpdir } from 'node:os';
import { ROOT, run } from '../harness/index.ts';

test('a copy of the tracked files without ../shared builds a working binary', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'gg-clone-'));
  try {
    const repo = join(dir, 'gpuguard');
    const files = execFileSync('git', ['ls-files', '-z'], { cwd: ROOT, encoding: 'utf8' }).split('\0').filter(Boolean);
    for (const f of files) {
      if (!existsSync(join(ROOT, f))) continue; // deleted in the work tree
      mkdirSync(dirname(join(repo, f)), { recursive: true });
      cpSync(join(ROOT, f), join(repo, f));
    }
    symlinkSync(join(ROOT, 'node_modules'), join(repo, 'node_modules'));
    assert.equal(existsSync(join(dir, 'shared')), false);
    const build = await run('npm', ['run', '--silent', 'build'], { cwd: repo });
    assert.equal(build.code, 0, build.stderr);
    const version = await run(join(repo, 'dist/gpuguard'), ['version'], { env: { PATH: '/nonexistent' }, extendEnv: false });
    assert.equal(version.code, 0, version.stderr);
    assert.match(version.stdout, /^gpuguard \d/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
