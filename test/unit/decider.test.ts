/**
 * The decider's pure parts: its answers' wire format (the front parses it),
 * and what it declines before asking anybody, for callers given as their
 * /proc view (the integration test, test/integration/decider.test.ts, asks
 * it through the front as real users).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chownSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decideFor, type DeciderConfig } from '../../src/decider/index.ts';
import { decodeAnswer, encodeAnswer, type Answer } from '../../src/decider/protocol.ts';

test('answers survive the wire: exec with words holding spaces, quotes and newlines, exit, self', () => {
  const answers: Answer[] = [
    { kind: 'exec', stderr: 'gpuguard: warning: x\n', real: '/usr/bin/docker', argv: ['create', '--label', 'a=b c', "it's", 'two\nlines', ''] },
    { kind: 'exec', stderr: '', real: '/usr/bin/docker', argv: [] },
    { kind: 'exit', stderr: 'gpuguard: refused\n', code: 125 },
    { kind: 'self', why: 'busy' },
  ];
  for (const a of answers) assert.deepEqual(decodeAnswer(encodeAnswer(a)), a);
  // A NUL in a message cannot split it into two fields.
  assert.deepEqual(decodeAnswer(encodeAnswer({ kind: 'self', why: 'a\0b' })), { kind: 'self', why: 'ab' });
  for (const bad of ['exec\0\0/x\x002\0one\0', 'exit\0\0x\0', 'self\0', 'what\0\0', 'self\0x']) assert.equal(decodeAnswer(Buffer.from(bad)), undefined, JSON.stringify(bad));
});

const config: DeciderConfig = { dockerSocket: '/var/run/docker.sock', policyPath: '/etc/gpuguard/policy.yaml' };
const alice = { pid: 4242, uid: 1001, gid: 1001 };
const proc = (argv: string[], env: NodeJS.ProcessEnv = {}, cwd = '/') => () => ({ argv, env: { PATH: '/usr/bin:/bin', HOME: '/nonexistent', ...env }, cwd });

async function why(argv: string[], env: NodeJS.ProcessEnv = {}, cred = alice): Promise<string> {
  const a = await decideFor(cred, config, proc(argv, env));
  assert.equal(a.kind, 'self', JSON.stringify(a));
  return (a as { why: string }).why;
}

test('declined before anything is asked: root, not docker, another policy, another daemon', async () => {
  assert.match(await why(['docker', 'create', 'bb'], {}, { ...alice, uid: 0 }), /root's identity/);
  assert.match(await why(['python3', 'x']), /not a docker call/);
  assert.match(await why(['/usr/local/bin/docker-compose', 'up']), /not a docker call/);
  assert.match(await why(['docker', 'create', 'bb'], { GPUGUARD_POLICY: '/home/alice/mine.yaml' }), /another policy/);
  assert.match(await why(['docker', 'create', 'bb'], { DOCKER_HOST: 'unix:///home/alice/d.sock' }), /another daemon/);
  assert.match(await why(['docker', '-H', 'tcp://10.0.0.1:2375', 'ps']), /another daemon/);
  assert.match(await why(['docker', '--context', 'remote', 'ps']), /another daemon/);
  assert.match(await why(['docker', 'create', 'bb'], { DOCKER_CONTEXT: 'remote' }), /another daemon/);
});

test("the user's docker config is read only when it is the user's own file", { skip: process.getuid?.() !== 0 && 'needs root (chown)' }, async () => {
  const home = mkdtempSync(join(tmpdir(), 'gg-decider-home-'));
  try {
    mkdirSync(join(home, '.docker'));
    const cfg = join(home, '.docker/config.json');
    writeFileSync(cfg, JSON.stringify({ currentContext: 'remote' }));
    chownSync(cfg, 0, 0);
    assert.match(await why(['docker', 'create', 'bb'], { HOME: home }), /is not the caller's own file/);
    // Owned by alice, it is read: her current context is another daemon.
    chownSync(cfg, alice.uid, alice.gid);
    assert.match(await why(['docker', 'create', 'bb'], { HOME: home }), /another daemon \(current context remote/);
    // DOCKER_CONFIG names the directory the same way.
    chownSync(cfg, 0, 0);
    assert.match(await why(['docker', 'ps'], { DOCKER_CONFIG: join(home, '.docker') }), /is not the caller's own file/);
  } finally {
    rmSync(home, { recursive: true, force: true });
  }
});
