/**
 * The security policy through the real clients, as a non-admin (bob, by
 * runuser) against a private dockerd: every escape of the corpus
 * (test/fixtures/security/escapes.jsonl: the flags in their spellings,
 * symlink and `..` tricks, the daemon's socket, /home, /root, volume driver
 * options, another user's container as a namespace or volume source) is
 * refused with exit 125 and one line naming the flag, the rule and what is
 * allowed, and nothing is created (checked with the real CLI); the same
 * escapes as docker-compose files (compose-escapes.jsonl) are refused
 * naming file and service; the positive controls pass in the same run.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { BINARY, FIXTURES, IS_ROOT, ensureTestUsers, installFace, missing, runAs, startDockerd, type PrivateDockerd } from '../harness/index.ts';
import { corpusVars, homeOf, makeBobCorner, makeCorpusObjects, makeSecurityHost, securityPolicy } from '../fixtures/security/host.ts';
import { shellWords } from '../../src/docker-shim/quote.ts';

interface Escape {
  rule: string;
  flag: string;
  line: string;
  /** What the refusal says instead of the allowed roots (a path under them, beyond the user's own rights). */
  says?: string;
}
interface ComposeEscape {
  rule: string;
  key?: string;
  volume?: string;
  service: Record<string, unknown>;
  volumes?: Record<string, unknown>;
}
const readTable = <T>(name: string): T[] =>
  readFileSync(join(FIXTURES, 'security', name), 'utf8')
    .split('\n')
    .filter((l) => l.trim())
    .map((l) => JSON.parse(l) as T);
const ESCAPES = readTable<Escape>('escapes.jsonl');
const COMPOSE_ESCAPES = readTable<ComposeEscape>('compose-escapes.jsonl');

let d: PrivateDockerd | undefined;
let dir = '';
let bin = '';
let shim = '';
let events = '';
let bobDir = '';
let env: Record<string, string> = {};
let auditEnv: Record<string, string> = {};
const vars: Record<string, string> = {};

before(async () => {
  if (!IS_ROOT) return;
  ensureTestUsers();
  d = await startDockerd({ socketGroup: 'gg-docker' });
  dir = mkdtempSync('/tmp/gg-sec-');
  chmodSync(dir, 0o755);
  bin = join(dir, 'bin');
  mkdirSync(bin);
  shim = installFace(bin, 'docker');
  installFace(bin, 'docker-compose');
  makeSecurityHost(dir);
  events = join(dir, 'events.jsonl');
  writeFileSync(events, '');
  chmodSync(events, 0o666);
  writeFileSync(join(dir, 'policy.yaml'), securityPolicy(dir, { mode: 'enforce', events }));
  writeFileSync(join(dir, 'audit.yaml'), securityPolicy(dir, { mode: 'audit', events }));

  // bob's own corner of his home: data, and links that point out of it.
  bobDir = makeBobCorner(`gg-sec-${process.pid}`, d.socket);
  const bobHome = homeOf('bob');

  const base = { DOCKER_HOST: d.host, GPUGUARD_REAL_DOCKER: d.realDocker, HOME: bobHome, PATH: `${bin}:/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin` };
  env = { ...base, GPUGUARD_POLICY: join(dir, 'policy.yaml') };
  auditEnv = { ...base, GPUGUARD_POLICY: join(dir, 'audit.yaml') };

  // Another user's containers and volume, made with the real CLI; one of bob's own; one nobody owns.
  const ok = async (args: string[]) => {
    const r = await d!.docker(args);
    assert.equal(r.code, 0, `docker ${args.join(' ')}: ${r.stderr}`);
    return r.stdout.trim();
  };
  const aliceId = await makeCorpusObjects(ok);
  await ok(['run', '-d', '--name', 'gg-sec-bobrun', '--label', 'ds01.user=bob', 'bb', 'sleep', '600']);
  Object.assign(vars, corpusVars({ dir, bobDir, socket: d.socket, aliceId }));
});

after(async () => {
  await d?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
  if (bobDir) rmSync(bobDir, { recursive: true, force: true });
});

const needs = { root: true, commands: ['dockerd', 'runuser'] };
const fill = (s: string) => Object.entries(vars).reduce((acc, [k, v]) => acc.replaceAll(k, v), s);
const asUser = (user: string, args: string[], e = env, cwd = bobDir) => runAs(user, shim, args, { env: e, extendEnv: false, cwd });

/** What exists on the daemon, by the real CLI: containers and volumes (and networks, which compose makes first). */
async function snapshot(withNetworks = false): Promise<string> {
  const lists = [['ps', '-aq', '--no-trunc'], ['volume', 'ls', '-q'], ...(withNetworks ? [['network', 'ls', '-q']] : [])];
  const out = await Promise.all(lists.map((args) => d!.docker(args)));
  return out.map((r) => r.stdout.split('\n').filter(Boolean).sort().join(',')).join(' | ');
}

const ALLOWED_ROOTS = () => `you may mount paths under ${homeOf('bob')}, ${vars['@SRV@']}/* or ${vars['@SCRATCH@']}/bob`;

// Escapes create nothing, so they run side by side: every snapshot before and after must still agree.
describe('docker through the shim: the escape corpus', { concurrency: 4 }, () => {
  test(`the corpus has at least 35 escapes (${ESCAPES.length})`, () => {
    assert.ok(ESCAPES.length >= 35);
  });
  for (const [n, e] of ESCAPES.entries()) {
    test(`escape ${n + 1} (${e.rule}): docker ${e.line}`, async (t) => {
      if (missing(t, needs)) return;
      const before = await snapshot();
      const r = await asUser('bob', shellWords(fill(e.line)));
      assert.equal(r.code, 125, `exit code; stderr: ${r.stderr}`);
      assert.equal(r.stdout, '');
      assert.match(r.stderr, /^gpuguard: [^\n]*\n$/, 'one line');
      assert.ok(r.stderr.startsWith(`gpuguard: ${fill(e.flag)}: `), `names the flag: ${r.stderr}`);
      assert.ok(r.stderr.includes(`(security.${e.rule}`), `names the rule: ${r.stderr}`);
      if (e.says) assert.ok(r.stderr.includes(fill(e.says)), `says "${fill(e.says)}": ${r.stderr}`);
      else if (e.rule === 'binds' && !e.line.includes('gg-sec-alicevol')) assert.ok(r.stderr.includes(ALLOWED_ROOTS()), `says what is allowed: ${r.stderr}`);
      if (e.rule === 'capAdd') assert.match(r.stderr, /allowed: SYS_PTRACE/);
      if (e.rule === 'otherUsersContainers') assert.match(r.stderr, /belongs to alice|has no known owner/);
      assert.equal(await snapshot(), before, 'nothing created');
    });
  }
});

describe('docker through the shim: positive controls', () => {
  const controls: [string, string, string?][] = [
    ['bob', 'run --rm -v @BOB@/data:/d bb ls /d'],
    ['bob', 'run --rm -v @BOB@/new-dir/sub:/d bb true'],
    ['bob', 'run --rm -v @SRV@/datasets:/data:ro bb cat /data/README'],
    ['bob', 'run --rm --mount type=bind,src=@SRV@/proj,dst=/p bb true'],
    ['bob', 'run --rm -v @SCRATCH@/bob:/s bb true'],
    ['bob', 'run --rm --cap-add SYS_PTRACE --security-opt no-new-privileges bb true'],
    ['bob', 'run --rm --volumes-from gg-sec-bobs --network none --ipc private bb true'],
    ['bob', 'run --rm -v gg-sec-plain:/v --mount type=tmpfs,dst=/t bb true'],
    ['bob', 'volume create gg-sec-bob-plain'],
    ['bob', 'volume create -o type=none -o o=bind -o device=@BOB@/data gg-sec-bob-bind'],
    // create, not run: this machine's kernel may refuse a privileged container's capabilities to runc.
    ['dsadmin', 'create --privileged -v /etc:/x:ro --volumes-from gg-sec-alice --pid host bb true'],
  ];
  for (const [user, line] of controls) {
    test(`${user}: docker ${line}`, async (t) => {
      if (missing(t, needs)) return;
      const r = await asUser(user, shellWords(fill(line)), env, user === 'bob' ? bobDir : dir);
      assert.equal(r.code, 0, r.stderr);
      assert.doesNotMatch(r.stderr, /gpuguard/);
      if (line.startsWith('create')) await d!.docker(['rm', '-f', r.stdout.trim()]);
    });
  }

  test('docker exec --privileged in one\'s own container is refused like --privileged; plain exec is not', async (t) => {
    if (missing(t, needs)) return;
    const r = await asUser('bob', ['exec', '--privileged', 'gg-sec-bobrun', 'true']);
    assert.equal(r.code, 125, r.stderr);
    assert.equal(r.stderr, 'gpuguard: docker exec --privileged: a privileged container is root on the host (security.privileged: false); remove it, and add only the capabilities you need with --cap-add (allowed: SYS_PTRACE)\n');
    const plain = await asUser('bob', ['exec', 'gg-sec-bobrun', 'true']);
    assert.equal(plain.code, 0, plain.stderr);
    const admin = await asUser('dsadmin', ['exec', '--privileged', 'gg-sec-bobrun', 'true'], env, dir);
    assert.doesNotMatch(admin.stderr, /^gpuguard:/m, 'an admin is not refused (docker itself may still fail here to apply every capability)');
  });

  test('an admin is never refused: the event says override', async (t) => {
    if (missing(t, needs)) return;
    const lines = readFileSync(events, 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    const ev = lines.filter((l) => l.user === 'dsadmin' && l.argv[1] === 'create').at(-1);
    assert.ok(ev, 'an event for the admin');
    assert.ok((ev.reasons as string[]).some((r) => /^override security\.privileged: --privileged: a privileged container: allowed because dsadmin is an admin/.test(r)), JSON.stringify(ev.reasons));
  });

  test('audit mode: a refusal becomes a warning and the container runs', async (t) => {
    if (missing(t, needs)) return;
    const r = await asUser('bob', ['run', '--rm', '--cap-add', 'SYS_ADMIN', '-v', '/etc:/x:ro', 'bb', 'true'], auditEnv);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /^gpuguard: warning: audit mode, not refused: --cap-add SYS_ADMIN: capability SYS_ADMIN may not be added/m);
    assert.match(r.stderr, /^gpuguard: warning: audit mode, not refused: -v \/etc:\/x:ro: \/etc is not a path you may mount/m);
  });

  test('a refusal is in the event log as deny, with the rule', async (t) => {
    if (missing(t, needs)) return;
    await asUser('bob', ['run', '--rm', '--pid', 'host', 'bb', 'true']);
    const ev = readFileSync(events, 'utf8').trim().split('\n').map((l) => JSON.parse(l)).filter((l) => l.user === 'bob').at(-1);
    assert.equal(ev.decision, 'deny');
    assert.ok((ev.reasons as string[]).some((x) => x.startsWith('deny security.hostNamespaces: --pid host')), JSON.stringify(ev.reasons));
  });

  test('gpuguard policy show: what this user may mount, filled in', async (t) => {
    if (missing(t, needs)) return;
    const r = await runAs('root', BINARY, ['policy', 'show', '--user', 'bob'], { env, extendEnv: false });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, new RegExp(`^security: +binds under ${homeOf('bob')}, ${vars['@SRV@']}/\\*, ${vars['@SCRATCH@']}/bob; cap-add SYS_PTRACE; no privileged; no devices; no host namespaces; no other users' containers; no unconfined$`, 'm'));
    const admin = await runAs('root', BINARY, ['policy', 'show', '--user', 'dsadmin', '--json'], { env, extendEnv: false });
    assert.equal(JSON.parse(admin.stdout).security.neverRefused, true);
  });

  test('gpuguard explain shows the security decisions, allowed and refused', async (t) => {
    if (missing(t, needs)) return;
    const r = await runAs('bob', BINARY, ['explain', '--', 'docker', 'run', '-v', `${bobDir}/data:/d`, '-v', `${bobDir}/etc-link:/x`, '--cap-add', 'SYS_PTRACE', 'bb'], { env, extendEnv: false, cwd: bobDir });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^# refused \(exit 125\), nothing would run: -v [^ ]*etc-link:\/x: [^ ]*etc-link \(resolves to \/etc\) is not a path you may mount/);
    assert.match(r.stdout, /\n {2}keep {5}security\.binds: -v [^ ]*\/data:\/d: [^ ]*\/data is under \{home\} = /);
    assert.match(r.stdout, /\n {2}deny {5}security\.binds: /);
    assert.match(r.stdout, /\n {2}keep {5}security\.capAdd: --cap-add SYS_PTRACE: CAP_SYS_PTRACE is allowed/);
  });
});

const composeNeeds = { ...needs, commands: [...needs.commands, 'docker-compose'] };

describe('docker-compose through the shim: the same escapes as compose files', { concurrency: 4 }, () => {
  /** A project per case in bob's corner; the refusal names this file and the service (or the volume). */
  function project(n: number, c: ComposeEscape): { cwd: string; file: string } {
    const cwd = join(bobDir, `compose-${n}`);
    mkdirSync(cwd, { recursive: true });
    symlinkSync(vars['@ALICE_HOME@']!, join(cwd, 'alice-link'));
    const doc = { version: '2.4', services: { svc: { image: 'bb', command: 'true', ...JSON.parse(fill(JSON.stringify(c.service))) } }, ...(c.volumes ? { volumes: JSON.parse(fill(JSON.stringify(c.volumes))) } : {}) };
    const file = join(cwd, 'docker-compose.yml');
    writeFileSync(file, JSON.stringify(doc, null, 2));
    execFileSync('chown', ['-R', 'bob:', cwd]);
    return { cwd, file };
  }

  for (const [n, c] of COMPOSE_ESCAPES.entries()) {
    test(`compose escape ${n + 1} (${c.rule}): ${JSON.stringify(c.service)}${c.volumes ? ` volumes ${JSON.stringify(c.volumes)}` : ''}`, async (t) => {
      if (missing(t, composeNeeds)) return;
      const { cwd, file } = project(n, c);
      const before = await snapshot(true);
      const r = await runAs('bob', 'docker-compose', ['up', '-d'], { env, extendEnv: false, cwd });
      assert.equal(r.code, 125, `exit code; stderr: ${r.stderr}`);
      assert.match(r.stderr, /^gpuguard: [^\n]*\n$/, 'one line');
      const where = c.volume !== undefined ? `gpuguard: ${file}: volume ${c.volume}: volumes: ${c.volume}: driver_opts ` : `gpuguard: ${file}: service svc: ${c.key}: `;
      assert.ok(r.stderr.startsWith(where), `names the file, the service and the key: ${r.stderr}`);
      assert.ok(r.stderr.includes(`(security.${c.rule}`), `names the rule: ${r.stderr}`);
      assert.equal(await snapshot(true), before, 'nothing created');
    });
  }

});

describe('docker-compose through the shim: positive controls and run', () => {
  test('positive controls: own home, /srv/*, an allowed capability, own service volumes', async (t) => {
    if (missing(t, composeNeeds)) return;
    const cwd = join(bobDir, 'compose-ok');
    mkdirSync(cwd, { recursive: true });
    writeFileSync(
      join(cwd, 'docker-compose.yml'),
      JSON.stringify({
        version: '2.4',
        services: {
          a: { image: 'bb', command: 'sleep 30', volumes: ['./:/work', `${vars['@SRV@']}/datasets:/data:ro`, 'cache:/cache'], cap_add: ['SYS_PTRACE'] },
          b: { image: 'bb', command: 'true', volumes_from: ['a'], network_mode: 'service:a' },
        },
        volumes: { cache: {} },
      }),
    );
    execFileSync('chown', ['-R', 'bob:', cwd]);
    const up = await runAs('bob', 'docker-compose', ['up', '-d'], { env, extendEnv: false, cwd });
    assert.equal(up.code, 0, up.stderr);
    assert.doesNotMatch(up.stderr, /gpuguard/);
    const down = await runAs('bob', 'docker-compose', ['down', '-v'], { env, extendEnv: false, cwd });
    assert.equal(down.code, 0, down.stderr);
  });

  test('docker-compose run -v is judged like the file', async (t) => {
    if (missing(t, composeNeeds)) return;
    const cwd = join(bobDir, 'compose-run');
    mkdirSync(cwd, { recursive: true });
    writeFileSync(join(cwd, 'docker-compose.yml'), JSON.stringify({ version: '2.4', services: { svc: { image: 'bb', command: 'true' } } }));
    execFileSync('chown', ['-R', 'bob:', cwd]);
    const before = await snapshot();
    const r = await runAs('bob', 'docker-compose', ['run', '--rm', '-v', '/etc:/x', 'svc'], { env, extendEnv: false, cwd });
    assert.equal(r.code, 125, r.stderr);
    assert.match(r.stderr, /^gpuguard: .*docker-compose\.yml: service svc: run -v \/etc:\/x: \/etc is not a path you may mount \(security\.binds\)/);
    assert.equal(await snapshot(), before);
  });
});
