/**
 * The flag table (test/fixtures/docker-run/value-flags.json) against the real
 * CLIs: every flag `docker run --help` and `docker create --help` print, for
 * Debian's 20.10 and the static 28, is in the table with the same shorthand
 * and the same value-or-boolean kind. The table is the union; flags only one
 * version has are fine. A missing CLI skips loudly (fails in CI).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import table from '../fixtures/docker-run/value-flags.json' with { type: 'json' };
import { missing } from '../harness/index.ts';

const flags = table.flags as Record<string, { short?: string; type: string; hidden?: boolean }>;

/** Parse cobra's help: "  -a, --attach list   …" / "      --rm   …". */
export function helpFlags(help: string): Map<string, { short?: string; type: string }> {
  const out = new Map<string, { short?: string; type: string }>();
  for (const line of help.split('\n')) {
    const m = /^ {2}(?:-(\w), | {4})--([a-z0-9-]+)(?: ([a-z0-9]+))?(?: {2,}|$)/.exec(line);
    if (m) out.set(m[2]!, { ...(m[1] ? { short: m[1] } : {}), type: m[3] ?? 'bool' });
  }
  return out;
}

for (const cli of ['/usr/bin/docker', '/usr/local/bin/docker']) {
  for (const sub of ['run', 'create']) {
    test(`table covers ${cli} ${sub} --help`, (t) => {
      if (missing(t, { files: [cli] })) return;
      // --help needs no daemon; DOCKER_HOST points nowhere so nothing is contacted.
      const help = execFileSync(cli, [sub, '--help'], { encoding: 'utf8', env: { PATH: process.env.PATH, HOME: '/nonexistent', DOCKER_HOST: 'unix:///nonexistent.sock' } });
      const seen = helpFlags(help);
      assert.ok(seen.size > 80, `parsed ${seen.size} flags from the help`);
      for (const [name, f] of seen) {
        if (name === 'help') continue;
        const entry = flags[name];
        assert.ok(entry, `--${name} (${f.type}) from ${cli} ${sub} is missing in value-flags.json`);
        assert.equal(entry.short, f.short, `--${name} shorthand`);
        assert.equal(entry.type === 'bool', f.type === 'bool', `--${name}: value-taking in help (${f.type}) vs table (${entry.type})`);
        assert.equal(entry.hidden, undefined, `--${name} is shown by ${cli}, not hidden`);
      }
    });
  }
}

test('table: hidden flags are accepted by the real CLI (unknown flags would fail before any daemon call)', (t) => {
  if (missing(t, { files: ['/usr/bin/docker'] })) return;
  for (const [name, f] of Object.entries(flags)) {
    if (!f.hidden) continue;
    let stderr = '';
    try {
      execFileSync('/usr/bin/docker', ['create', `--${name}=x`, 'bb'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], env: { PATH: process.env.PATH, HOME: '/nonexistent', DOCKER_HOST: 'unix:///nonexistent.sock' } });
    } catch (err) {
      stderr = String((err as { stderr?: string }).stderr);
    }
    assert.doesNotMatch(stderr, /unknown flag/, `--${name}`);
  }
});
