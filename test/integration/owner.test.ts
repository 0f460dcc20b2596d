/**
 * Ownership against a real dockerd: containers made with the raw docker CLI
 * (bypassing the shim) by each of the six detection paths, read back by the
 * compiled `gpuguard ps --json` / `gpuguard who`; and isolation through the
 * compiled shim, run as real unix users (runuser), identity from the uid.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, chownSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { execFileSync } from 'node:child_process';
import { forgetCacheEntries } from './runtime-cache-cleanup.ts';
import { BINARY, FIXTURES, IS_ROOT, countingProxy, ensureTestUsers, missing, run, runAs, startDockerd, type PrivateDockerd, type RunResult, installFace } from '../harness/index.ts';

let d: PrivateDockerd | undefined;
let dir: string;
const homeDirs: string[] = [];
const lab = join(FIXTURES, 'policies/lab.yaml');

const lookupUid = (user: string) => Number(execFileSync('id', ['-u', user], { encoding: 'utf8' }).trim());

function ownedDir(path: string, user: string): string {
  mkdirSync(path, { recursive: true });
  const uid = lookupUid(user);
  chownSync(path, uid, uid);
  return path;
}

before(async () => {
  if (!IS_ROOT) return;
  ensureTestUsers();
  d = await startDockerd({ socketGroup: 'gg-docker' });
  dir = mkdtempSync('/tmp/gg-owner-');
  chmodSync(dir, 0o755);
  // The shim's face: a symlink named docker to the compiled binary.
  installFace(dir, 'docker');
  mkdirSync(join(dir, 'events'), { mode: 0o1777 });
  chmodSync(join(dir, 'events'), 0o1777);
  // Every test user appends to one log (the shim runs as the user).
  writeFileSync(join(dir, 'events/events.jsonl'), '', { mode: 0o666 });
  chmodSync(join(dir, 'events/events.jsonl'), 0o666);
  const policy = `${readFileSync(lab, 'utf8')}docker: {realPath: ${d.realDocker}}\nevents: {log: ${dir}/events/events.jsonl}\n`;
  writeFileSync(join(dir, 'policy.yaml'), policy);
  writeFileSync(join(dir, 'audit.yaml'), `${policy}mode: audit\n`);
  writeFileSync(join(dir, 'broken.yaml'), 'version: 1\ngroups: [\n');
});

after(async () => {
  await d?.stop();
  // root's `gpuguard ps` wrote validated copies of these temp policies (policy/cache.ts)
  if (dir) for (const name of ['policy.yaml', 'audit.yaml']) forgetCacheEntries(join(dir, name));
  for (const h of homeDirs) rmSync(h, { recursive: true, force: true });
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const env = () => ({ ...d!.clientEnv, GPUGUARD_POLICY: join(dir, 'policy.yaml') });
const gg = (args: string[]) => run(BINARY, args, { env: env() });
const raw = async (args: string[]) => {
  const r = await d!.docker(args);
  assert.equal(r.code, 0, `docker ${args.join(' ')}: ${r.stderr}`);
  return r.stdout.trim();
};

test('gpuguard ps --json: owner and method for containers made with raw docker, by each detection path', async (t) => {
  if (missing(t, { root: true }) || !d) return;
  const aliceUid = lookupUid('alice');
  const stamp = Date.now().toString(36);
  const devFolder = ownedDir(`/home/alice/gg-dev-${stamp}`, 'alice');
  const bobData = ownedDir(`/home/bob/gg-data-${stamp}`, 'bob');
  const planted = ownedDir(`/home/alice/gg-planted-${stamp}`, 'bob');
  const composeDir = ownedDir(join(dir, 'carol-project'), 'carol');
  homeDirs.push(devFolder, bobData, planted);

  // An image that carries an owner label: building it must not make its containers mallory's.
  await raw(['create', '--name', 'labelled-src', 'bb', 'true']);
  await raw(['commit', '--change', 'LABEL ds01.user=mallory', '--change', 'LABEL aime.mlc.USER=mallory', 'labelled-src', 'bb-labelled']);
  await raw(['rm', 'labelled-src']);

  const sleep = ['sleep', '600'];
  await raw(['run', '-d', '--name', `proj._.${aliceUid}`, 'bb', ...sleep]);
  await raw(['run', '-d', '--name', 'vsc-dev', '--label', `devcontainer.local_folder=${devFolder}`, 'bb', ...sleep]);
  await raw(['run', '-d', '--name', 'bind-bob', '-v', `${bobData}:/data`, 'bb', ...sleep]);
  await raw(['run', '-d', '--name', 'bind-planted', '--mount', `type=bind,source=${planted},target=/x`, 'bb', ...sleep]);
  await raw(['run', '-d', '--name', 'compose-web', '--label', 'com.docker.compose.project=carolproj', '--label', `com.docker.compose.project.working_dir=${composeDir}`, 'bb', ...sleep]);
  await raw(['run', '-d', '--name', 'image-label', 'bb-labelled', ...sleep]);
  await raw(['create', '--name', 'image-label-own', '--label', 'ds01.user=carol', 'bb-labelled', 'true']);
  await raw(['create', '--name', 'labelled', '--label', 'ds01.user=alice', '--label', 'ds01.uid=1234', 'bb', 'true']);
  await raw(['create', '--name', 'aime', '--label', 'aime.mlc.USER=bob', 'bb', 'true']);
  await raw(['create', '--name', 'nobody', 'bb', 'true']);
  await raw(['create', '--name', 'gpu', '--gpus', 'device=GPU-4f9a2c1e-8b3d-4e71-a2f0-6c5d9e8b1a20', 'bb', 'true']);

  const r = await gg(['ps', '--json']);
  assert.equal(r.code, 0, r.stderr);
  const rows = JSON.parse(r.stdout) as { name: string; owner: string; method: string; rejected: string[]; interface: string; gpus: string[]; state: string; uid: number | null }[];
  const by = (name: string) => {
    const row = rows.find((x) => x.name === name);
    assert.ok(row, `${name} is listed`);
    return row;
  };
  const expect: [string, string, string][] = [
    [`proj._.${aliceUid}`, 'alice', 'name_pattern'],
    ['vsc-dev', 'alice', 'devcontainer'],
    ['bind-bob', 'bob', 'mount_path'],
    ['bind-planted', 'unknown', 'none'],
    ['compose-web', 'carol', 'compose'],
    ['image-label', 'unknown', 'none'],
    ['image-label-own', 'carol', 'label'],
    ['labelled', 'alice', 'label'],
    ['aime', 'bob', 'aime_label'],
    ['nobody', 'unknown', 'none'],
  ];
  for (const [name, owner, method] of expect) {
    const row = by(name);
    assert.deepEqual([row.owner, row.method], [owner, method], `${name}: ${JSON.stringify(row)}`);
  }
  assert.match(by('bind-planted').rejected.join('\n'), /owned by bob, not alice/);
  assert.match(by('image-label').rejected.join('\n'), /ds01\.user=mallory comes from the image/);
  assert.match(by('image-label').rejected.join('\n'), /aime\.mlc\.USER=mallory comes from the image/);
  assert.equal(by('labelled').uid, 1234);
  assert.equal(by('compose-web').interface, 'compose');
  assert.equal(by('vsc-dev').interface, 'devcontainer');
  assert.deepEqual(by('gpu').gpus, ['GPU-4f9a2c1e-8b3d-4e71-a2f0-6c5d9e8b1a20']);
  assert.equal(by('bind-bob').state, 'running');
  assert.equal(by('nobody').state, 'created');

  const mine = JSON.parse((await gg(['ps', '--json', '--user', 'alice'])).stdout) as { owner: string }[];
  assert.ok(mine.length >= 3 && mine.every((x) => x.owner === 'alice'));

  const table = await gg(['ps']);
  assert.match(table.stdout, /^CONTAINER +ID +OWNER +METHOD +INTERFACE +GPUS +STATE +AGE$/m);
  assert.match(table.stdout, /^compose-web +[0-9a-f]{12} +carol +compose +compose +- +running +\d+[smhd]$/m);

  const who = await gg(['who', 'bind-planted']);
  assert.equal(who.code, 0, who.stderr);
  assert.match(who.stdout, /^owner: +unknown$/m);
  assert.match(who.stdout, /^rejected: +bind mount .*gg-planted.*: owned by bob, not alice$/m);
  const whoJson = JSON.parse((await gg(['who', '--json', 'vsc-dev'])).stdout);
  assert.deepEqual([whoJson.owner, whoJson.method], ['alice', 'devcontainer']);
  const none = await gg(['who', 'no-such-container']);
  assert.equal(none.code, 1);
  assert.match(none.stderr, /no such container: no-such-container/);
});

const shim = (user: string, args: string[], policy = 'policy.yaml') => runAs(user, join(dir, 'docker'), args, { env: { ...d!.clientEnv, GPUGUARD_POLICY: join(dir, policy) } });
const running = async (name: string) => (await d!.docker(['inspect', '-f', '{{.State.Running}}', name])).stdout.trim() === 'true';
const names = (out: string) => out.split('\n').filter(Boolean).sort();

test('isolation: bob cannot touch alice\'s container, the admin can, docker ps shows each their own', async (t) => {
  if (missing(t, { root: true }) || !d) return;
  const a1 = await shim('alice', ['run', '-d', '--name', 'a1', 'bb', 'sleep', '600']);
  assert.equal(a1.code, 0, a1.stderr);
  const a1Id = a1.stdout.trim();
  const b1 = await shim('bob', ['run', '-d', '--name', 'b1', 'bb', 'sleep', '600']);
  assert.equal(b1.code, 0, b1.stderr);
  const b1Id = b1.stdout.trim();
  // bob's, by a bind mount under his home (made with raw docker, no labels)
  const bobDir = ownedDir(`/home/bob/gg-iso-${Date.now().toString(36)}`, 'bob');
  homeDirs.push(bobDir);
  await raw(['run', '-d', '--name', 'b-raw', '-v', `${bobDir}:/w`, 'bb', 'sleep', '600']);

  const refused: string[][] = [
    ['stop', 'a1'],
    ['exec', 'a1', 'true'],
    ['rm', '-f', 'a1'],
    ['logs', 'a1'],
    ['container', 'stop', '-t', '0', 'a1'],
    ['kill', '-s', 'KILL', a1Id.slice(0, 12)],
    ['restart', a1Id],
    ['exec', '-u', 'root', '-w', '/', 'a1', 'sh', '-c', 'true'],
    ['inspect', 'a1'],
    ['container', 'inspect', '-f', '{{.Config.Env}}', 'a1'],
    ['cp', 'a1:/etc/hostname', '-'],
    ['pause', 'a1'],
    ['update', '--cpus', '1', 'a1'],
    ['rename', 'a1', 'mine'],
    ['top', 'a1'],
    ['stop', 'b1', 'a1'], // several at once: nothing happens to b1 either
  ];
  for (const args of refused) {
    const r = await shim('bob', args);
    assert.equal(r.code, 1, `bob: docker ${args.join(' ')}: ${r.stdout}${r.stderr}`);
    assert.match(r.stderr, /^gpuguard: container "a1"( \(a1\))?|^gpuguard: container "[0-9a-f]+" \(a1\)/, args.join(' '));
    assert.match(r.stderr, /belongs to alice \(method: label, label ds01\.user=alice\); only alice or an admin may \w+ it\n$/, args.join(' '));
    assert.equal(r.stdout, '', args.join(' '));
  }
  // -H naming the same daemon is the same daemon.
  const viaH = await shim('bob', ['-H', d.host, 'stop', 'a1']);
  assert.equal(viaH.code, 1);
  assert.match(viaH.stderr, /belongs to alice/);
  // No daemon to reach, or another daemon (docker.remote: passthrough): the real CLI answers, byte for byte.
  for (const [args, extra] of [
    [['-H', 'unix:///nonexistent/docker.sock', 'stop', 'a1'], {}],
    [['stop', 'a1'], { DOCKER_HOST: 'tcp://127.0.0.1:9' }],
  ] as [string[], Record<string, string>][]) {
    const e: Record<string, string> = { ...d!.clientEnv, GPUGUARD_REAL_DOCKER: d!.realDocker, GPUGUARD_POLICY: join(dir, 'policy.yaml'), ...extra };
    const direct: RunResult = await runAs('bob', d!.realDocker, args, { env: e });
    const via: RunResult = await runAs('bob', join(dir, 'docker'), args, { env: e });
    assert.notEqual(direct.code, 0);
    assert.deepEqual(via, direct, args.join(' '));
  }
  for (const args of [['ps', '--help'], ['stop', '--help'], ['container', 'prune', '--help']]) {
    const e: Record<string, string> = { ...d!.clientEnv, GPUGUARD_REAL_DOCKER: d!.realDocker, GPUGUARD_POLICY: join(dir, 'policy.yaml') };
    assert.deepEqual(await runAs('bob', join(dir, 'docker'), args, { env: e }), await runAs('bob', d!.realDocker, args, { env: e }), args.join(' '));
  }
  assert.ok(await running('a1'), 'a1 keeps running');
  assert.ok(await running('b1'), 'b1 was not stopped by the refused `stop b1 a1`');
  assert.equal((await d.docker(['inspect', '-f', '{{.Name}}', a1Id])).stdout.trim(), '/a1', 'not renamed');

  // What bob may do to his own containers works, found by any method.
  assert.equal((await shim('bob', ['exec', 'b1', 'true'])).code, 0);
  assert.equal((await shim('bob', ['logs', 'b-raw'])).code, 0);
  assert.equal((await shim('bob', ['inspect', '--type', 'image', '-f', '{{.Id}}', 'bb'])).code, 0, 'inspect of an image is no container');
  const gone = await shim('bob', ['stop', 'no-such-container']);
  assert.equal(gone.code, 1);
  assert.match(gone.stderr, /No such container: no-such-container/i, 'docker itself reports unknown containers');

  // docker ps: each sees their own, with their own filters and formats.
  const ps = async (user: string, args: string[]) => {
    const r = await shim(user, ['ps', ...args]);
    assert.equal(r.code, 0, r.stderr);
    return r.stdout;
  };
  // (the first test's containers are on this daemon too: look at this test's names only)
  const mine = (out: string) => names(out).filter((n) => ['a1', 'b1', 'b-raw', 'bind-bob', 'vsc-dev', 'compose-web'].includes(n));
  assert.deepEqual(mine(await ps('bob', ['--format', '{{.Names}}'])), ['b-raw', 'b1', 'bind-bob']);
  assert.deepEqual(names(await ps('bob', ['-a', '--format', '{{.Names}}', '--filter', 'name=b1'])), ['b1']);
  assert.deepEqual(names(await ps('bob', ['-q', '--no-trunc', '--filter', `id=${a1Id}`])), []);
  assert.deepEqual(names(await ps('bob', ['-q', '--no-trunc', '-f', `id=${b1Id.slice(0, 12)}`])), [b1Id]);
  assert.deepEqual(names(await ps('bob', ['-aq', '--filter', 'name=a1'])), []);
  assert.doesNotMatch(await ps('bob', []), /\ba1\b/);
  assert.match(await ps('bob', []), /^CONTAINER ID +IMAGE/);
  assert.deepEqual(mine(await ps('alice', ['--format', '{{.Names}}'])), ['a1', 'vsc-dev']);
  assert.deepEqual(mine(await ps('carol', ['-a', '--format', '{{.Names}}'])), ['compose-web']);
  assert.deepEqual(mine(await ps('dsadmin', ['--format', '{{.Names}}'])), ['a1', 'b-raw', 'b1', 'bind-bob', 'compose-web', 'vsc-dev']);
  const stats = await shim('bob', ['stats', '--no-stream', '--format', '{{.Name}}']);
  assert.equal(stats.code, 0, stats.stderr);
  assert.deepEqual(mine(stats.stdout), ['b-raw', 'b1', 'bind-bob']);
  assert.equal(names(stats.stdout).includes('a1'), false);

  // The refusal is in the event log.
  const events = readFileSync(join(dir, 'events/events.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
  assert.ok(events.some((e) => e.decision === 'deny' && e.user === 'bob' && e.argv.join(' ') === 'docker stop a1'), JSON.stringify(events.slice(0, 3)));

  // Audit mode: decided, logged, warned, not refused.
  const audit = await shim('bob', ['logs', 'a1'], 'audit.yaml');
  assert.equal(audit.code, 0, audit.stderr);
  assert.match(audit.stderr, /warning \(audit mode\): container "a1" belongs to alice/);
  // A broken policy does not block docker (as for the GPU start check): skipped, with a warning.
  const broken = await shim('bob', ['logs', 'a1'], 'broken.yaml');
  assert.equal(broken.code, 0, broken.stderr);
  assert.match(broken.stderr, /^gpuguard: warning: ownership check skipped: .*broken\.yaml:3:1: invalid YAML/);
  const auditPs = await shim('bob', ['ps', '--format', '{{.Names}}'], 'audit.yaml');
  assert.ok(names(auditPs.stdout).includes('a1'), 'audit mode lists everything, as docker does');

  // The admin may do everything; the owner too.
  for (const args of [['logs', 'a1'], ['exec', 'a1', 'true'], ['inspect', '-f', '{{.Id}}', 'a1'], ['exec', 'b1', 'true']]) {
    const r = await shim('dsadmin', args);
    assert.equal(r.code, 0, `dsadmin: docker ${args.join(' ')}: ${r.stderr}`);
  }
  assert.equal((await shim('alice', ['exec', 'a1', 'true'])).code, 0);
  assert.equal((await shim('alice', ['stop', '-t', '0', 'a1'])).code, 0);
  assert.equal(await running('a1'), false);
  const rm = await shim('dsadmin', ['rm', '-f', 'a1', 'b1']);
  assert.equal(rm.code, 0, rm.stderr);
  // By full id and by exact name: `inspect a1` also matches any other container whose id starts with a1.
  const after = await d.docker(['container', 'inspect', a1Id]);
  assert.equal(after.code, 1, `a1 is gone: ${rm.stdout} ${rm.stderr} ${after.stdout}`);
  assert.equal((await d.docker(['ps', '-aq', '--filter', 'name=^/a1$'])).stdout.trim(), '', 'no container named a1 is left');
});

test('a container with no known owner: only an admin may act on it', async (t) => {
  if (missing(t, { root: true }) || !d) return;
  await raw(['create', '--name', 'orphan', 'bb', 'true']);
  const r = await shim('bob', ['rm', 'orphan']);
  assert.equal(r.code, 1);
  assert.equal(r.stderr, 'gpuguard: container "orphan" has no known owner (method: none); only an admin may rm it\n');
  assert.equal((await shim('dsadmin', ['rm', 'orphan'])).code, 0);
});

test('alice\'s own image says LABEL ds01.user=alice: her container made through the shim is still hers', async (t) => {
  if (missing(t, { root: true }) || !d) return;
  await raw(['create', '--name', 'selfish-src', 'bb', 'true']);
  await raw(['commit', '--change', 'LABEL ds01.user=alice', 'selfish-src', 'bb-selfish']);
  await raw(['rm', 'selfish-src']);
  const c = await shim('alice', ['create', '--name', 'selfish', 'bb-selfish', 'true']);
  assert.equal(c.code, 0, c.stderr);
  const who = JSON.parse((await gg(['who', '--json', 'selfish'])).stdout);
  assert.deepEqual([who.owner, who.method], ['alice', 'label']);
  assert.match(who.evidence, /set at create/);
  assert.equal((await shim('bob', ['rm', 'selfish'])).code, 1);
  assert.equal((await shim('alice', ['rm', 'selfish'])).code, 0);
  // Made with the raw CLI from the same image: inherited, nobody's.
  await raw(['create', '--name', 'inherited', 'bb-selfish', 'true']);
  const inh = JSON.parse((await gg(['who', '--json', 'inherited'])).stdout);
  assert.deepEqual([inh.owner, inh.method], ['unknown', 'none']);
});

test('prune: a user prunes only their own stopped containers; system prune is refused; the admin prunes all', async (t) => {
  if (missing(t, { root: true }) || !d) return;
  assert.equal((await shim('alice', ['create', '--name', 'pa', 'bb', 'true'])).code, 0);
  assert.equal((await shim('bob', ['create', '--name', 'pb', 'bb', 'true'])).code, 0);
  const exists = async (name: string) => (await d!.docker(['container', 'inspect', name])).code === 0;
  const pr = await shim('bob', ['container', 'prune', '-f']);
  assert.equal(pr.code, 0, pr.stderr);
  assert.equal(await exists('pa'), true, "alice's stopped container survives bob's prune");
  assert.equal(await exists('pb'), false, "bob's own is pruned");
  const sys = await shim('bob', ['system', 'prune', '-f']);
  assert.equal(sys.code, 1);
  assert.equal(sys.stderr, "gpuguard: docker system prune would remove other users' stopped containers; use docker container prune (yours only), docker image prune and docker network prune, or ask an admin\n");
  assert.equal(await exists('pa'), true);
  assert.equal((await shim('dsadmin', ['container', 'prune', '-f'])).code, 0);
  assert.equal(await exists('pa'), false, 'the admin prunes every stopped container');
});

test('docker ps and docker stats as a user: the same few Engine API calls with 3 or 23 more containers on the host, no inspect per container', async (t) => {
  if (missing(t, { root: true }) || !d) return;
  const proxy = await countingProxy(d.socket, join(dir, 'count.sock'));
  try {
    // The shim's own calls (Bun's fetch), told apart from the real CLI's by the User-Agent.
    const shimCalls = async (user: string, args: string[]) => {
      proxy.calls.length = 0;
      const r = await runAs(user, join(dir, 'docker'), args, { env: { DOCKER_HOST: `unix://${proxy.socket}`, GPUGUARD_POLICY: join(dir, 'policy.yaml') } });
      assert.equal(r.code, 0, `${user}: docker ${args.join(' ')}: ${r.stderr}`);
      const calls = proxy.calls.filter((c) => !c.userAgent.startsWith('Docker-Client/')).map((c) => `${c.method} ${c.path.replace(/^\/v[\d.]+\//, '/')}`);
      return { out: names(r.stdout), calls };
    };
    // Three images that carry owner labels, so the image rule has several images to read.
    for (const who of ['x', 'y', 'z']) {
      await raw(['create', '--name', `src-${who}`, 'bb', 'true']);
      await raw(['commit', '--change', `LABEL ds01.user=mallory-${who}`, `src-${who}`, `bb-${who}`]);
      await raw(['rm', `src-${who}`]);
      await raw(['create', '--name', `scale-${who}`, `bb-${who}`, 'true']);
    }
    await raw(['create', '--name', 'scale-bob', '--label', 'ds01.user=bob', 'bb', 'true']);
    const small = await shimCalls('bob', ['ps', '-a', '--format', '{{.Names}}']);
    const smallStats = await shimCalls('bob', ['stats', '-a', '--no-stream', '--format', '{{.Name}}']);
    for (let i = 0; i < 20; i++) {
      const image = ['bb', 'bb-x', 'bb-y', 'bb-z'][i % 4]!;
      const label = i % 2 ? ['--label', 'ds01.user=bob'] : [];
      await raw(['create', '--name', `scale-${i}`, ...label, image, 'true']);
    }
    const big = await shimCalls('bob', ['ps', '-a', '--format', '{{.Names}}']);
    const bigStats = await shimCalls('bob', ['stats', '-a', '--no-stream', '--format', '{{.Name}}']);
    assert.deepEqual(big.calls, small.calls, 'docker ps: the same calls whatever the number of containers');
    assert.deepEqual(bigStats.calls, smallStats.calls, 'docker stats: the same calls whatever the number of containers');
    for (const c of [...big.calls, ...bigStats.calls]) assert.doesNotMatch(c, /^GET \/containers\/[^/?]+\/json/, 'no inspect per container');
    assert.ok(big.calls.length <= 2 && big.calls.some((c) => c.startsWith('GET /containers/json?all=1')) && big.calls.includes('GET /images/json'), big.calls.join(', '));
    // Same decisions: bob's labelled containers are his, on any image; the image's mallory label proves nothing.
    const bobs = ['scale-bob', ...Array.from({ length: 10 }, (_, k) => `scale-${2 * k + 1}`)].sort();
    assert.deepEqual(big.out.filter((n) => n.startsWith('scale-')), bobs);
    assert.deepEqual(bigStats.out.filter((n) => n.startsWith('scale-')), bobs);
    const admin = await shimCalls('dsadmin', ['ps', '-a', '--format', '{{.Names}}']);
    assert.ok(['scale-0', 'scale-x', ...bobs].every((n) => admin.out.includes(n)), 'the admin sees every container');
    // The list is asked for before the user is known; an admin's answer is left unread: no image read, no inspect.
    assert.ok(admin.calls.every((c) => c.startsWith('GET /containers/json?all=1')) && admin.calls.length <= 1, `the admin's listing needs no decision: ${admin.calls.join(', ')}`);
  } finally {
    await proxy.close();
    for (const n of ['bob', 'x', 'y', 'z', ...Array.from({ length: 20 }, (_, i) => i)]) await d.docker(['rm', '-f', `scale-${n}`]);
  }
});
