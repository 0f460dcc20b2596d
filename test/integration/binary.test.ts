/**
 * Properties of the compiled binary itself. Bun's standalone executables
 * load `.env` and `bunfig.toml` from the working directory by default: the
 * shim would then hand a project's `.env` (DOCKER_HOST=…) to the real docker
 * CLI. The build turns that off; this proves it for the docker face.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { BINARY, run } from '../harness/index.ts';

test('a .env or bunfig.toml in the working directory changes nothing the real docker CLI gets', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'gg-bin-'));
  try {
    writeFileSync(join(dir, '.env'), 'GG_DOTENV_LEAK=yes\nDOCKER_HOST=tcp://10.255.255.1:2375\n');
    writeFileSync(join(dir, 'bunfig.toml'), 'preload = ["./nonexistent.ts"]\n');
    const standIn = join(dir, 'real-docker');
    writeFileSync(standIn, '#!/bin/sh\nenv | grep -E "^(GG_DOTENV_LEAK|DOCKER_HOST)=" | sort\necho "args: $*"\n');
    chmodSync(standIn, 0o755);
    symlinkSync(BINARY, join(dir, 'docker'));
    const r = await run(join(dir, 'docker'), ['version'], { cwd: dir, env: { PATH: '/usr/bin:/bin', GPUGUARD_REAL_DOCKER: standIn }, extendEnv: false });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, 'args: version\n');
    assert.equal(r.stderr, '');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
