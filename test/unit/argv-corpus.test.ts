/**
 * The scanner on every line of test/fixtures/docker-run/corpus.txt: the
 * image is found where the line has it, every word before it belongs to a
 * flag, and no flag of these real-world lines is unknown to the table. The
 * integration test (shim-corpus) checks the same lines against the real CLI.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { scanDockerArgv } from '../../src/docker-shim/argv.ts';
import { shellWords } from '../../src/docker-shim/quote.ts';

const FILE = join(import.meta.dirname, '../fixtures/docker-run/corpus.txt');
export const corpus = readFileSync(FILE, 'utf8')
  .split('\n')
  .filter((l) => l.trim() && !l.startsWith('#'));

test('the corpus has at least 80 lines', () => assert.ok(corpus.length >= 80, String(corpus.length)));

for (const line of corpus) {
  test(`corpus: ${line.slice(0, 110)}`, () => {
    const argv = shellWords(line);
    assert.equal(argv[0], 'docker');
    const s = scanDockerArgv(argv.slice(1));
    assert.ok(s, 'a run/create line');
    assert.equal(s.error, undefined);
    assert.ok(s.image !== undefined, 'has an image');
    assert.match(argv[s.image + 1]!, /^bb(:latest)?$/, 'the image is bb');
    assert.deepEqual(s.flags.filter((f) => f.unknown).map((f) => f.spelled), []);
    // Every word from the flags' start to insertAt is covered by a flag.
    const covered = new Set<number>();
    for (const f of s.flags) for (let i = f.start; i < f.end; i++) covered.add(i);
    for (let i = s.flagsFrom; i < s.insertAt; i++) assert.ok(covered.has(i), `word ${i} (${argv[i + 1]}) is a flag or a flag's value`);
  });
}
