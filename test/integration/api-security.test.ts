/**
 * The security issue's escape corpus (test/fixtures/security/escapes.jsonl)
 * through the API face: the same docker lines, run by bob with the real
 * docker CLI (no shim anywhere) against the face, so each escape arrives as
 * an Engine API body (Binds, Mounts, HostConfig.Privileged, CapAdd,
 * Devices, DeviceCgroupRules, the namespace modes, SecurityOpt,
 * VolumesFrom, Links, volume DriverOpts) and is decided by the same
 * decideSecurity. Each is refused naming the rule, and nothing is created
 * (checked on dockerd's own socket). Positive controls in the same run.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { FIXTURES, IS_ROOT, ensureTestUsers, missing, runAs, startDockerd, startFace, type PrivateDockerd, type RunningFace } from '../harness/index.ts';
import { corpusVars, homeOf, makeBobCorner, makeCorpusObjects, makeSecurityHost, securityPolicy } from '../fixtures/security/host.ts';
import { shellWords } from '../../src/docker-shim/quote.ts';
import { forgetCacheEntries } from './runtime-cache-cleanup.ts';

interface Escape {
  rule: string;
  flag: string;
  line: string;
}
const ESCAPES = readFileSync(join(FIXTURES, 'security', 'escapes.jsonl'), 'utf8')
  .split('\n')
  .filter((l) => l.trim())
  .map((l) => JSON.parse(l) as Escape);

const CLI = '/usr/bin/docker';
let d: PrivateDockerd | undefined;
let face: RunningFace | undefined;
let dir = '';
let bobDir = '';
let policy = '';
const vars: Record<string, string> = {};

before(async () => {
  if (!IS_ROOT) return;
  ensureTestUsers();
  d = await startDockerd();
  dir = mkdtempSync('/tmp/gg-apisec-');
  chmodSync(dir, 0o755);
  makeSecurityHost(dir); // the host the corpus is judged on, as in the shim's security test
  policy = join(dir, 'policy.yaml');
  writeFileSync(policy, securityPolicy(dir, { events: `${dir}/events.jsonl` }));
  chmodSync(policy, 0o644);
  bobDir = makeBobCorner(`gg-apisec-${process.pid}`, d.socket);
  const ok = async (args: string[]) => {
    const r = await d!.docker(args);
    assert.equal(r.code, 0, `docker ${args.join(' ')}: ${r.stderr}`);
    return r.stdout.trim();
  };
  // Straight on dockerd (root): another user's container and bind volume, one of bob's, one nobody's.
  const aliceId = await makeCorpusObjects(ok);
  Object.assign(vars, corpusVars({ dir, bobDir, socket: d.socket, aliceId }));
  face = await startFace(d, { policy, socketGroup: 'gg-docker' });
});

after(async () => {
  await face?.stop();
  await d?.stop();
  if (dir) {
    forgetCacheEntries(policy);
    rmSync(dir, { recursive: true, force: true });
  }
  if (bobDir) rmSync(bobDir, { recursive: true, force: true });
});

const needs = { root: true, commands: ['dockerd', 'runuser'] };
const fill = (s: string) => Object.entries(vars).reduce((acc, [k, v]) => acc.replaceAll(k, v), s);
const as = (user: string, args: string[], env: Record<string, string> = {}) =>
  runAs(user, CLI, args, { env: { DOCKER_HOST: face!.host, HOME: homeOf(user), PATH: '/usr/bin:/bin:/usr/sbin:/sbin', ...env }, extendEnv: false, cwd: user === 'bob' ? bobDir : dir });

async function snapshot(): Promise<string> {
  const out = await Promise.all([['ps', '-aq', '--no-trunc'], ['volume', 'ls', '-q']].map((args) => d!.docker(args)));
  return out.map((r) => r.stdout.split('\n').filter(Boolean).sort().join(',')).join(' | ');
}

describe('the escape corpus through the API face, sent by the real docker CLI as bob', { concurrency: 4 }, () => {
  for (const [n, e] of ESCAPES.entries()) {
    test(`escape ${n + 1} (${e.rule}): docker ${e.line}`, async (t) => {
      if (missing(t, needs) || !face) return;
      const before = await snapshot();
      const r = await as('bob', shellWords(fill(e.line)));
      assert.notEqual(r.code, 0, `refused; stdout: ${r.stdout}`);
      assert.match(r.stderr, /Error response from daemon: gpuguard: /, r.stderr);
      assert.ok(r.stderr.includes(`(security.${e.rule}`), `names the rule: ${r.stderr}`);
      assert.equal(await snapshot(), before, 'nothing created');
    });
  }
});

describe('through the API face: exec --privileged, a build on the host network, and the positive controls', () => {
  test('exec --privileged into bob\'s own container is refused (security.privileged); a plain exec works', async (t) => {
    if (missing(t, needs) || !face) return;
    assert.equal((await as('bob', ['run', '-d', '--name', 'bob-run', 'bb', 'sleep', '600'])).code, 0);
    const r = await as('bob', ['exec', '--privileged', 'bob-run', 'true']);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /gpuguard: exec Privileged: a privileged container is root on the host \(security\.privileged: false\)/);
    assert.equal((await as('bob', ['exec', 'bob-run', 'true'])).code, 0);
  });

  test('a classic build with --network host is refused (security.hostNamespaces)', async (t) => {
    if (missing(t, needs) || !face) return;
    const ctx = join(bobDir, 'ctx');
    mkdirSync(ctx);
    writeFileSync(join(ctx, 'Dockerfile'), 'FROM bb\nCMD ["true"]\n');
    execFileSync('chown', ['-R', 'bob:', ctx]);
    const r = await runAs('bob', CLI, ['build', '--network', 'host', '-t', 'bob-hostnet', ctx], { env: { DOCKER_HOST: face.host, HOME: homeOf('bob'), DOCKER_BUILDKIT: '0' } });
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /gpuguard: build networkmode=host: the host's network namespace may not be shared \(security\.hostNamespaces: false\)/);
  });

  const controls: [string, string][] = [
    ['bob', 'run --rm -v @BOB@/data:/d bb ls /d'],
    ['bob', 'run --rm -v @SRV@/datasets:/data:ro bb true'],
    ['bob', 'run --rm --mount type=bind,src=@SRV@/proj,dst=/p bb true'],
    ['bob', 'run --rm -v @SCRATCH@/bob:/s bb true'],
    ['bob', 'run --rm --cap-add SYS_PTRACE --security-opt no-new-privileges bb true'],
    ['bob', 'run --rm --volumes-from gg-sec-bobs --network none --ipc private bb true'],
    ['bob', 'run --rm -v gg-sec-plain:/v --mount type=tmpfs,dst=/t bb true'],
    ['bob', 'volume create gg-sec-bob-plain'],
    ['bob', 'volume create -o type=none -o o=bind -o device=@BOB@/data gg-sec-bob-bind'],
    ['dsadmin', 'create --privileged -v /etc:/x:ro --volumes-from gg-sec-alice --pid host bb true'],
  ];
  for (const [user, line] of controls) {
    test(`${user}: docker ${line}`, async (t) => {
      if (missing(t, needs) || !face) return;
      const r = await as(user, shellWords(fill(line)));
      assert.equal(r.code, 0, r.stderr);
      assert.doesNotMatch(r.stderr, /gpuguard/);
      if (line.startsWith('create')) await d!.docker(['rm', '-f', r.stdout.trim()]);
    });
  }
});
