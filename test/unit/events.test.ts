import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { spawn } from 'node:child_process';
import { appendEvent } from '../../src/events/log.ts';

test('events: one JSON line each, directory created on demand', () => {
  const dir = mkdtempSync(join(tmpdir(), 'gg-ev-'));
  const log = join(dir, 'sub/events.jsonl');
  assert.ok(appendEvent(log, { face: 'docker', decision: 'rewrite', user: 'alice', reasons: ['labels'] }, new Date('2026-01-01T00:00:00Z')));
  assert.ok(appendEvent(log, { face: 'runtime', decision: 'allow' }));
  const lines = readFileSync(log, 'utf8').trimEnd().split('\n').map((l) => JSON.parse(l));
  assert.equal(lines.length, 2);
  assert.equal(lines[0].time, '2026-01-01T00:00:00.000Z');
  assert.equal(lines[0].user, 'alice');
  rmSync(dir, { recursive: true });
});

test('events: an unwritable log never throws', () => {
  assert.equal(appendEvent('/proc/version/x/events.jsonl', { face: 'docker', decision: 'allow' }), false);
});

test('events: concurrent writers never interleave or lose lines', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'gg-ev-'));
  const log = join(dir, 'events.jsonl');
  const writers = 8;
  const each = 200;
  const script = `import { appendEvent } from ${JSON.stringify(join(import.meta.dirname, '../../src/events/log.ts'))};
for (let i = 0; i < ${each}; i++) appendEvent(${JSON.stringify(log)}, { face: 'docker', decision: 'allow', argv: ['x'.repeat(500)], i, w: process.argv[2] });`;
  await Promise.all(
    Array.from({ length: writers }, (_, w) =>
      new Promise<void>((resolve, reject) => {
        const p = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script, String(w)], { stdio: 'inherit' });
        p.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`writer exited ${code}`))));
      }),
    ),
  );
  const lines = readFileSync(log, 'utf8').trimEnd().split('\n');
  assert.equal(lines.length, writers * each);
  for (const l of lines) JSON.parse(l);
  rmSync(dir, { recursive: true });
});

test('events: a log this creates is 0622 (everyone appends, only root reads) whatever the umask', () => {
  const dir = mkdtempSync(join(tmpdir(), 'gg-ev-'));
  const log = join(dir, 'events.jsonl');
  const old = process.umask(0o077);
  try {
    assert.ok(appendEvent(log, { face: 'runtime', decision: 'allow' }));
    assert.equal(statSync(log).mode & 0o777, 0o622);
  } finally {
    process.umask(old);
    rmSync(dir, { recursive: true });
  }
});
