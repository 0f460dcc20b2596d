/**
 * The docker face against a private dockerd, run by real users (runAs), the
 * compiled binary behind a symlink named `docker`: pass-through is
 * byte-identical and is the real CLI's own process (execve), run/create get
 * the policy's additions or a refusal, audit mode warns instead.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { BINARY, IS_ROOT, ensureTestUsers, missing, run, runAs, startDockerd, type PrivateDockerd, installFace } from '../harness/index.ts';

let d: PrivateDockerd | undefined;
let dir: string;
let shim: string;
let env: Record<string, string>;
let auditEnv: Record<string, string>;
let events: string;
let sleeper: string;

const POLICY = (mode: string, log: string) => `version: 1
mode: ${mode}
labelPrefix: ds01
admins: ["@ds01-admin"]
defaults: {group: students}
groups:
  students:
    members: ["@gg-students"]
    limits: {cpus: 1, memory: 256m, pids: 512, shmSize: 64m, containers: 3}
cgroup: {parent: "/ds01/{group}/{user}"}
events: {log: ${log}}
`;

before(async () => {
  if (!IS_ROOT) return;
  ensureTestUsers();
  d = await startDockerd({ socketGroup: 'gg-docker' });
  dir = mkdtempSync('/tmp/gg-shim-');
  chmodSync(dir, 0o777);
  shim = installFace(dir, 'docker');
  events = join(dir, 'events.jsonl');
  writeFileSync(events, '', { mode: 0o666 }); // every user appends to the one log (install.sh's job on a host)
  chmodSync(events, 0o666);
  writeFileSync(join(dir, 'policy.yaml'), POLICY('enforce', events));
  writeFileSync(join(dir, 'audit.yaml'), POLICY('audit', events));
  writeFileSync(join(dir, 'broken.yaml'), 'version: [1\n');
  writeFileSync(join(dir, 'reserved-labels.txt'), '# mine\nproject=x\nds01.user=bob\n');
  mkdirSync(join(dir, 'ctx'));
  writeFileSync(join(dir, 'ctx/Dockerfile'), 'FROM bb\nLABEL org.example.built-by=gpuguard-test\n');
  const base = { ...d.clientEnv, GPUGUARD_REAL_DOCKER: d.realDocker, HOME: dir, PATH: process.env.PATH ?? '/usr/bin:/bin' };
  env = { ...base, GPUGUARD_POLICY: join(dir, 'policy.yaml') };
  auditEnv = { ...base, GPUGUARD_POLICY: join(dir, 'audit.yaml') };
  // alice's for the ownership guard (only their owner may exec/logs them; ps lists only hers), by
  // AIME's owner label, so that removeAlices() (label ds01.user=alice) leaves them alone
  const s = await d.docker(['run', '-d', '--name', 'gg-sleeper', '--label', 'aime.mlc.USER=alice', 'bb', 'sleep', '600']);
  assert.equal(s.code, 0, s.stderr);
  sleeper = s.stdout.trim();
  const l = await d.docker(['run', '--name', 'gg-logger', '--label', 'aime.mlc.USER=alice', 'bb', 'sh', '-c', 'echo out; echo err >&2']);
  assert.equal(l.code, 0, l.stderr);
});

after(async () => {
  await d?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const skip = (t: Parameters<typeof missing>[0]) => missing(t, { root: true, commands: ['dockerd', 'runuser', 'script'] });
const viaShim = (args: string[], e = env, user = 'alice', input?: string) => runAs(user, shim, args, { env: e, extendEnv: false, cwd: dir, ...(input !== undefined ? { input } : {}) });
const direct = (args: string[], e = env, user = 'alice') => runAs(user, d!.realDocker, args, { env: e, extendEnv: false, cwd: dir });
const containers = async (filter: string) => (await d!.docker(['ps', '-aq', '--filter', filter])).stdout.split('\n').filter(Boolean);
const readEvents = () => (existsSync(events) ? readFileSync(events, 'utf8').trim().split('\n').filter(Boolean).map((l) => JSON.parse(l)) : []);
async function removeAlices() {
  const ids = await containers('label=ds01.user=alice');
  if (ids.length) await d!.docker(['rm', '-f', ...ids]);
}

test('pass-through is byte-identical: stdout, stderr, exit code', async (t) => {
  if (skip(t)) return;
  await direct(['build', '-t', 'gg-built', join(dir, 'ctx')]); // warm the build cache: both runs below then print the same
  const lines = [
    ['version'],
    ['--version'],
    ['ps', '-a', '--no-trunc', '--format', '{{.ID}} {{.Names}} {{.Command}} {{.Labels}}'],
    ['logs', '-f', 'gg-logger'],
    ['logs', 'no-such-container'],
    ['exec', sleeper, 'sh', '-c', 'echo hi; echo oops >&2; exit 3'],
    ['build', '-t', 'gg-built', join(dir, 'ctx')],
    ['compose', 'version'],
    // One image: docker lists images created in the same second in either order, run to run.
    ['image', 'ls', '--filter', 'reference=gg-built', '--format', '{{.Repository}}:{{.Tag}} {{.ID}}'],
    ['container', 'ls', '-a', '--format', '{{.Names}}'],
    ['no-such-command'],
    ['--log-level', 'error', 'info', '--format', '{{.ServerVersion}} {{.Driver}}'],
  ];
  for (const args of lines) {
    const [a, b] = [await direct(args), await viaShim(args)];
    assert.deepEqual(b, a, `docker ${args.join(' ')}`);
  }
});

test('pass-through loads no policy: a broken GPUGUARD_POLICY leaves docker version alone', async (t) => {
  if (skip(t)) return;
  const broken = { ...env, GPUGUARD_POLICY: join(dir, 'broken.yaml') };
  const [a, b] = [await direct(['version'], broken), await viaShim(['version'], broken)];
  assert.equal(b.code, 0, b.stderr);
  assert.deepEqual(b, a);
  const r = await viaShim(['create', 'bb'], broken);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /^gpuguard: .*broken\.yaml:\d+:\d+: invalid YAML/);
});

test('another daemon (-H tcp://, DOCKER_HOST tcp://, --context) is passed through untouched', async (t) => {
  if (skip(t)) return;
  const broken = { ...env, GPUGUARD_POLICY: join(dir, 'broken.yaml') };
  for (const [args, e] of [
    [['-H', 'tcp://127.0.0.1:9', 'run', '--rm', 'bb'], broken],
    [['run', '--rm', 'bb'], { ...broken, DOCKER_HOST: 'tcp://127.0.0.1:9' }],
    [['--context', 'nowhere', 'create', 'bb'], broken],
  ] as [string[], Record<string, string>][]) {
    const [a, b] = [await direct(args, e), await viaShim(args, e)];
    assert.notEqual(a.code, 0);
    assert.deepEqual(b, a, args.join(' '));
  }
});

test('a loop or a missing real CLI: one line, exit 127', async (t) => {
  if (skip(t)) return;
  const loop = await viaShim(['version'], { ...env, GPUGUARD_REAL_DOCKER: shim });
  assert.equal(loop.code, 127);
  assert.match(loop.stderr, /^gpuguard: the real docker CLI .* is gpuguard itself, which would loop; point GPUGUARD_REAL_DOCKER at the real docker binary\n$/);
  const gone = await viaShim(['ps'], { ...env, GPUGUARD_REAL_DOCKER: '/nonexistent/docker' });
  assert.equal(gone.code, 127);
  assert.match(gone.stderr, /^gpuguard: the real docker CLI \/nonexistent\/docker \(from GPUGUARD_REAL_DOCKER\) does not exist; [^\n]*\n$/);
  const { GPUGUARD_REAL_DOCKER: _, ...noReal } = env;
  for (const args of [['version'], ['create', 'bb']]) {
    const none = await runAs('alice', '/usr/bin/env', [`PATH=${dir}`, shim, ...args], { env: noReal, extendEnv: false, cwd: dir });
    assert.equal(none.code, 127, none.stderr);
    assert.equal(none.stderr, 'gpuguard: no real docker CLI found on PATH after gpuguard; set GPUGUARD_REAL_DOCKER or docker.realPath in the policy\n');
  }
  // The shim first on PATH, the real CLI after it: found, no loop.
  const onPath = await viaShim(['--version'], { ...noReal, PATH: `${dir}:/usr/sbin:/usr/bin:/sbin:/bin` });
  assert.equal(onPath.code, 0, onPath.stderr);
  assert.match(onPath.stdout, /^Docker version 20\.10/);
});

test('run: exit codes, stdin streaming, a TTY under script', async (t) => {
  if (skip(t)) return;
  await removeAlices();
  assert.equal((await viaShim(['run', '--rm', 'bb', 'sh', '-c', 'exit 7'])).code, 7);
  const cat = await viaShim(['run', '-i', '--rm', 'bb', 'cat'], env, 'alice', 'hi\n');
  assert.deepEqual([cat.code, cat.stdout, cat.stderr], [0, 'hi\n', '']);
  const tty = await runAs('alice', 'script', ['-qec', `${shim} run --rm -it bb sh -c 'test -t 0 && test -t 1 && echo TTY-OK'`, '/dev/null'], { env, extendEnv: false, cwd: dir });
  assert.equal(tty.code, 0, tty.stdout + tty.stderr);
  assert.match(tty.stdout, /TTY-OK/);
  assert.deepEqual(await containers('label=ds01.user=alice'), [], '--rm containers are gone');
  // docker exec -it under a pty: the same bytes and exit code as the real CLI.
  const underPty = (docker: string) =>
    runAs('alice', 'script', ['-qec', `${docker} exec -it ${sleeper} sh -c 'test -t 0 && test -t 1 && echo TTY-OK; exit 4'`, '/dev/null'], { env, extendEnv: false, cwd: dir });
  const [a, b] = [await underPty(d!.realDocker), await underPty(shim)];
  assert.deepEqual([b.code, b.stdout], [4, 'TTY-OK\r\n']);
  assert.deepEqual(b, a);
});

test('the shim becomes the real CLI: same pid (execve), for pass-through and for run', async (t) => {
  if (skip(t)) return;
  const standIn = join(dir, 'real-docker-stand-in');
  writeFileSync(standIn, '#!/bin/sh\n[ "$1" = ps ] && exit 0\necho "pid=$$ args=$*"\n', { mode: 0o755 });
  for (const args of [['version'], ['run', '--rm', 'bb']]) {
    const r = await runAs('alice', 'sh', ['-c', '"$0" "$@" & echo "child=$!"; wait', shim, ...args], { env: { ...env, GPUGUARD_REAL_DOCKER: standIn }, extendEnv: false, cwd: dir });
    assert.equal(r.code, 0, r.stderr);
    const child = /child=(\d+)/.exec(r.stdout)?.[1];
    const pid = /pid=(\d+)/.exec(r.stdout)?.[1];
    assert.ok(child && pid, r.stdout);
    assert.equal(pid, child, `the real CLI runs as the shim's own process (${args.join(' ')})`);
    if (args[0] === 'run') assert.match(r.stdout, /args=run --rm --label ds01\.managed=true --label ds01\.user=alice .* --cpus 1 --memory 256m --pids-limit 512 --shm-size 64m bb\n/);
  }
});

test('create: owner labels, cgroup parent, limits; one event', async (t) => {
  if (skip(t)) return;
  await removeAlices();
  const before = readEvents().length;
  const r = await viaShim(['create', '--name', 'gg-made', '--cpus', '0.5', '-l', 'project=x', 'bb']);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stderr, '');
  const [c] = JSON.parse((await d!.docker(['inspect', 'gg-made'])).stdout);
  const uid = (await run('id', ['-u', 'alice'])).stdout.trim();
  assert.deepEqual(
    Object.fromEntries(Object.entries(c.Config.Labels as Record<string, string>).filter(([k]) => k !== 'ds01.created_at')),
    { project: 'x', 'ds01.managed': 'true', 'ds01.user': 'alice', 'ds01.uid': uid, 'ds01.group': 'students', 'ds01.interface': 'docker' },
  );
  assert.match(c.Config.Labels['ds01.created_at'], /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
  assert.deepEqual([c.HostConfig.CgroupParent, c.HostConfig.NanoCpus, c.HostConfig.Memory, c.HostConfig.PidsLimit, c.HostConfig.ShmSize], ['/ds01/students/alice', 0.5e9, 256 * 1024 ** 2, 512, 64 * 1024 ** 2]);
  const added = readEvents().slice(before);
  assert.equal(added.length, 1);
  assert.deepEqual([added[0].face, added[0].decision, added[0].user], ['docker', 'rewrite', 'alice']);
  assert.ok(added[0].reasons.some((x: string) => x.startsWith('keep limits.cpus: --cpus 0.5 is within')));
  await removeAlices();
});

const REFUSALS: [string, string[], RegExp][] = [
  ['reserved label via -l', ['-l', 'ds01.user=bob'], /^gpuguard: label ds01\.user \(from -l\) is reserved: gpuguard sets the ds01\.\* labels that say who owns a container; remove it from the command\n$/],
  ['reserved label via --label=', ['--label=ds01.gpu.uuid=GPU-x'], /^gpuguard: label ds01\.gpu\.uuid \(from --label\) is reserved/],
  ['reserved label via --label-file', ['--label-file', 'reserved-labels.txt'], /^gpuguard: label ds01\.user \(from --label-file reserved-labels\.txt\) is reserved/],
  ['foreign --cgroup-parent', ['--cgroup-parent', '/ds01/students/bob'], /^gpuguard: --cgroup-parent \/ds01\/students\/bob is not yours: containers of alice go under \/ds01\/students\/alice; drop --cgroup-parent \(gpuguard sets it\)\n$/],
  ['--cpus over quota', ['--cpus', '2'], /^gpuguard: --cpus 2 asks for more than the 1 allowed per container to group students; use --cpus 1 or less, or ask an admin to raise limits\.cpus\n$/],
  ['--memory over quota', ['-m', '1g'], /^gpuguard: --memory 1g asks for more than the 256m allowed per container to group students; use --memory 256m or less/],
  ['--pids-limit unlimited', ['--pids-limit', '-1'], /^gpuguard: --pids-limit -1 asks for no limit allowed per container to group students/],
  ['--shm-size over quota', ['--shm-size=1g'], /^gpuguard: --shm-size 1g asks for more than the 64m/],
  ['--runtime runc (skips the wrapper)', ['--runtime', 'runc'], /^gpuguard: --runtime runc would start the container without gpuguard's runtime wrapper \(dockerd's built-in name cannot be wrapped\); leave --runtime out/],
];

for (const [what, flags, message] of REFUSALS) {
  test(`refused: ${what} (exit 125, one line, nothing created); audit mode warns and creates`, async (t) => {
    if (skip(t)) return;
    await removeAlices();
    const name = `gg-refused-${what.replace(/[^a-z0-9]+/gi, '-')}`;
    for (const sub of [['create'], ['run', '--rm'], ['container', 'create']]) {
      const before = readEvents().length;
      const r = await viaShim([...sub, '--name', name, ...flags, 'bb', 'true']);
      assert.equal(r.code, 125, r.stderr);
      assert.match(r.stderr, message);
      assert.equal(r.stderr.split('\n').length, 2, 'one line');
      assert.deepEqual(await containers(`name=${name}`), []);
      const ev = readEvents().slice(before);
      assert.deepEqual(ev.map((e) => e.decision), ['deny']);
    }
    const before = readEvents().length;
    const a = await viaShim(['create', '--name', name, ...flags, 'bb', 'true'], auditEnv);
    assert.equal(a.code, 0, a.stderr);
    assert.match(a.stderr, /^gpuguard: warning: audit mode, not refused: /);
    assert.equal(a.stderr.split('\n').length, 2);
    const [c] = JSON.parse((await d!.docker(['inspect', name])).stdout);
    assert.equal(c.Config.Labels['ds01.user'], 'alice', 'owner labels still added in audit mode');
    const ev = readEvents().slice(before);
    assert.deepEqual([ev.length, ev[0].decision, ev[0].mode], [1, 'warn', 'audit']);
    await removeAlices();
  });
}

test('refused: too many containers; audit mode warns; admins override (logged)', async (t) => {
  if (skip(t)) return;
  await removeAlices();
  for (let i = 0; i < 3; i++) assert.equal((await viaShim(['create', 'bb'])).code, 0);
  const r = await viaShim(['create', '--name', 'gg-fourth', 'bb']);
  assert.equal(r.code, 125);
  assert.equal(r.stderr, 'gpuguard: alice already has 3 containers (running or stopped) and group students allows 3; remove one with docker rm (list them: docker ps -a --filter label=ds01.user=alice)\n');
  assert.deepEqual(await containers('name=gg-fourth'), []);
  // The count comes from the Engine socket, not from a second docker CLI: a stand-in CLI whose `ps` lists nothing changes nothing.
  const standIn = join(dir, 'ps-lists-nothing');
  writeFileSync(standIn, `#!/bin/sh\n[ "$1" = ps ] && exit 0\nexec ${d!.realDocker} "$@"\n`, { mode: 0o755 });
  assert.equal((await viaShim(['create', 'bb'], { ...env, GPUGUARD_REAL_DOCKER: standIn })).code, 125);
  const a = await viaShim(['create', '--name', 'gg-fourth', 'bb'], auditEnv);
  assert.equal(a.code, 0, a.stderr);
  assert.match(a.stderr, /^gpuguard: warning: audit mode, not refused: alice already has 3 containers/);
  await removeAlices();

  const before = readEvents().length;
  const o = await viaShim(['create', '--name', 'gg-admin', '-l', 'ds01.user=bob', '--cpus', '2', 'bb'], env, 'dsadmin');
  assert.equal(o.code, 0, o.stderr);
  const [c] = JSON.parse((await d!.docker(['inspect', 'gg-admin'])).stdout);
  assert.equal(c.Config.Labels['ds01.user'], 'bob', "the admin's own value stays");
  const ev = readEvents().slice(before);
  assert.equal(ev[0].user, 'dsadmin');
  assert.ok(ev[0].reasons.some((x: string) => x.startsWith('override labels.reserved')));
  assert.ok(ev[0].reasons.some((x: string) => x.startsWith('override limits.cpus')));
  await d!.docker(['rm', '-f', 'gg-admin']);
});

test('explain: the rewritten argv is copy-pasteable, one line per decision, nothing runs', async (t) => {
  if (skip(t)) return;
  await removeAlices();
  const r = await runAs('alice', BINARY, ['explain', '--', 'docker', 'create', '--name', 'gg-explained', '-e', "MSG=it's here", 'bb', 'sh', '-c', 'echo "$MSG"'], { env, extendEnv: false, cwd: dir });
  assert.equal(r.code, 0, r.stderr);
  const [line, ...reasons] = r.stdout.trimEnd().split('\n');
  assert.match(line!, /^docker create --name gg-explained -e 'MSG=it'\\''s here' --label ds01\.managed=true .* bb sh -c 'echo "\$MSG"'$/);
  assert.ok(reasons.some((x) => /^ {2}add +limits\.memory: no --memory given: --memory 256m/.test(x)), reasons.join('\n'));
  assert.ok(reasons.some((x) => /^ {2}keep +limits\.containers: alice has 0 containers/.test(x)));
  assert.deepEqual(await containers('name=gg-explained'), [], 'explain ran nothing');
  // Pasted into a shell with the real CLI, it makes exactly that container.
  const pasted = await run('sh', ['-c', line!], { env: { ...d!.clientEnv, PATH: `${join(d!.realDocker, '..')}:/usr/bin:/bin` } });
  assert.equal(pasted.code, 0, pasted.stderr);
  const [c] = JSON.parse((await d!.docker(['inspect', 'gg-explained'])).stdout);
  assert.deepEqual(c.Config.Env.filter((e: string) => e.startsWith('MSG=')), ["MSG=it's here"]);
  assert.equal(c.Config.Labels['ds01.user'], 'alice');
  await d!.docker(['rm', '-f', 'gg-explained']);

  const j = await runAs('alice', BINARY, ['explain', '--json', '--', 'docker', 'run', '-m', '1g', 'bb'], { env, extendEnv: false, cwd: dir });
  const doc = JSON.parse(j.stdout);
  assert.equal(doc.argv, null);
  assert.equal(doc.decision, 'deny');
  assert.equal(doc.refusal.rule, 'limits.memory');
  const noDocker = await runAs('alice', BINARY, ['explain', '--', 'docker', 'run', 'bb'], { env: { ...env, DOCKER_HOST: 'unix:///nonexistent.sock' }, extendEnv: false, cwd: dir });
  assert.match(noDocker.stdout, /warn +limits\.containers: could not count the containers of alice \(docker ps failed: .*\); limit of 3 not checked/);
  const ps = await runAs('alice', BINARY, ['explain', '--', 'docker', 'ps'], { env, extendEnv: false });
  assert.equal(ps.stdout, 'docker ps\n  pass   docker ps is not run/create: passed to the real docker unchanged\n');
});
