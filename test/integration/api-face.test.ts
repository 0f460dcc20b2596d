/**
 * The API face itself: `gpuguard serve` (the compiled binary) in front of a
 * private dockerd whose socket only root may use, reached by real clients
 * run as real unix users (runuser): the docker CLI 20.10 and 28, and raw
 * HTTP for framing the CLIs never send. Identity comes from the kernel.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdirSync, statSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  BINARY,
  FIXTURES,
  IS_ROOT,
  ensureTestUsers,
  faceStatus,
  missing,
  rawExchange,
  rawRequest,
  responses,
  run,
  runAs,
  startDockerd,
  startFace,
  type PrivateDockerd,
  type RunningFace,
} from '../harness/index.ts';
import { forgetCacheEntries } from './runtime-cache-cleanup.ts';

const CLI20 = '/usr/bin/docker';
const CLI28 = '/usr/local/bin/docker';

let d: PrivateDockerd | undefined;
let face: RunningFace | undefined;
let dir: string;
let policy: string;
let events: string;

before(async () => {
  if (!IS_ROOT) return;
  ensureTestUsers();
  d = await startDockerd();
  dir = mkdtempSync('/tmp/gg-api-');
  chmodSync(dir, 0o755);
  events = join(dir, 'events.jsonl');
  policy = join(dir, 'policy.yaml');
  writeFileSync(policy, `${readFileSync(join(FIXTURES, 'policies/lab.yaml'), 'utf8').replace('containers: 3', 'containers: 20')}events: {log: ${events}}\n`);
  chmodSync(policy, 0o644);
  face = await startFace(d, { policy, socketGroup: 'gg-docker' });
});

after(async () => {
  await face?.stop();
  await d?.stop();
  if (dir) {
    forgetCacheEntries(policy);
    rmSync(dir, { recursive: true, force: true });
  }
});

const cli = (user: string, args: string[], opts: { bin?: string; env?: Record<string, string>; input?: string } = {}) =>
  runAs(user, opts.bin ?? CLI20, args, { env: { DOCKER_HOST: face!.host, HOME: '/tmp', ...opts.env }, ...(opts.input !== undefined ? { input: opts.input } : {}) });

const inspect = async (ref: string, format: string) => {
  const r = await d!.docker(['inspect', '--format', format, ref]);
  assert.equal(r.code, 0, r.stderr);
  return r.stdout.trim();
};

const readEvents = () =>
  readFileSync(events, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as Record<string, unknown>);

test('status: GET /_gpuguard/status answers the face\'s version, pid, upstream and policy; anything else under /_gpuguard/ is 404', async (t) => {
  if (missing(t, { root: true, commands: ['dockerd'] }) || !face) return;
  const s = await faceStatus(face.socket);
  assert.deepEqual(s, { gpuguard: JSON.parse(readFileSync(join(import.meta.dirname, '../../package.json'), 'utf8')).version, pid: face.pid, upstream: d!.socket, policy });
  const [r] = responses(await rawExchange('alice', face.socket, rawRequest('GET', '/_gpuguard/other')));
  assert.equal(r!.status, 404);
  const [v] = responses(await rawExchange('alice', face.socket, rawRequest('GET', '/v1.41/_gpuguard/status/x')));
  assert.equal(v!.status, 404);
});

for (const [name, bin] of [
  ['20.10', CLI20],
  ['28', CLI28],
] as const) {
  test(`docker CLI ${name} as alice through the face: owner labels (interface api), cgroup parent and limits applied; her ps shows hers only`, async (t) => {
    if (missing(t, { root: true, commands: ['dockerd', 'runuser'], files: [bin] }) || !face) return;
    const c = `cli${name.replace('.', '')}`;
    const r = await cli('alice', ['run', '-d', '--name', c, 'bb', 'sleep', '300'], { bin });
    assert.equal(r.code, 0, r.stderr);
    const labels = JSON.parse(await inspect(c, '{{json .Config.Labels}}')) as Record<string, string>;
    assert.equal(labels['ds01.user'], 'alice');
    assert.equal(labels['ds01.interface'], 'api');
    assert.equal(labels['ds01.group'], 'students');
    assert.equal(labels['ds01.managed'], 'true');
    assert.match(labels['ds01.created_at']!, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
    assert.equal(await inspect(c, '{{.HostConfig.CgroupParent}} {{.HostConfig.Memory}} {{.HostConfig.NanoCpus}} {{.HostConfig.PidsLimit}} {{.HostConfig.ShmSize}}'), `/ds01/students/alice ${256 * 1024 ** 2} 2000000000 512 ${64 * 1024 ** 2}`);
    // bob's container, made through the face too, is not in alice's list
    const b = await cli('bob', ['run', '-d', '--name', `${c}-bob`, 'bb', 'sleep', '300'], { bin });
    assert.equal(b.code, 0, b.stderr);
    const ps = await cli('alice', ['ps', '-a', '--format', '{{.Names}}'], { bin });
    assert.equal(ps.code, 0, ps.stderr);
    assert.ok(ps.stdout.split('\n').includes(c), ps.stdout);
    assert.ok(!ps.stdout.includes(`${c}-bob`), ps.stdout);
    // asking for more than the per-container limit: refused with the policy's words, exit 125, nothing created
    const over = await cli('alice', ['run', '--rm', '--memory', '1g', '--name', `${c}-over`, 'bb', 'true'], { bin });
    assert.equal(over.code, 125, `${over.code} ${over.stdout} ${over.stderr}`);
    assert.match(over.stderr, /gpuguard: --memory 1g asks for more than the 256m allowed per container to group students/);
    assert.equal((await d!.docker(['inspect', `${c}-over`])).code, 1);
    const reserved = await cli('alice', ['run', '--rm', '--label', 'ds01.user=bob', 'bb', 'true'], { bin });
    assert.equal(reserved.code, 125, reserved.stderr);
    assert.match(reserved.stderr, /label ds01\.user \(from Labels\) is reserved/);
  });
}

test('identity is the kernel\'s: bob with GPUGUARD_USER=alice, SUDO_USER=alice or a header claiming alice is still bob', async (t) => {
  if (missing(t, { root: true, commands: ['dockerd', 'runuser'] }) || !face) return;
  assert.equal((await cli('alice', ['run', '-d', '--name', 'ident-alice', 'bb', 'sleep', '300'])).code, 0);
  for (const env of [{ GPUGUARD_USER: 'alice' }, { SUDO_USER: 'alice', SUDO_UID: '1001' }] as Record<string, string>[]) {
    const name = `ident-${Object.keys(env)[0]!.toLowerCase()}`;
    const r = await cli('bob', ['create', '--name', name, 'bb', 'true'], { env });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(JSON.parse(await inspect(name, '{{json .Config.Labels}}'))['ds01.user'], 'bob');
    const stop = await cli('bob', ['rm', '-f', 'ident-alice'], { env });
    assert.equal(stop.code, 1);
    assert.match(stop.stderr, /gpuguard: container "ident-alice" belongs to another user/);
  }
  const [r] = responses(await rawExchange('bob', face.socket, rawRequest('POST', '/v1.41/containers/ident-alice/stop', { headers: [['X-Gpuguard-User', 'alice'], ['X-Forwarded-User', 'alice']] })));
  assert.equal(r!.status, 403);
  assert.equal(await inspect('ident-alice', '{{.State.Running}}'), 'true');
  const denied = readEvents().filter((e) => e.decision === 'deny' && e.user === 'bob');
  assert.ok(denied.length >= 3, JSON.stringify(denied));
  assert.ok(denied.every((e) => e.face === 'api' && e.uid === Number(JSON.parse(JSON.stringify(e)).uid)));
});

test('bob cannot reach dockerd\'s own socket: it is root\'s alone', async (t) => {
  if (missing(t, { root: true, commands: ['dockerd', 'runuser'] }) || !face) return;
  const r = await runAs('bob', CLI20, ['-H', `unix://${d!.socket}`, 'ps']);
  assert.notEqual(r.code, 0);
  assert.match(r.stderr, /permission denied/);
});

test('every request on a connection is decided: a refused request pipelined after an allowed one, and on a kept-alive connection, by id prefix', async (t) => {
  if (missing(t, { root: true, commands: ['dockerd', 'runuser', 'python3'] }) || !face) return;
  assert.equal((await cli('alice', ['run', '-d', '--name', 'pipe-alice', 'bb', 'sleep', '300'])).code, 0);
  const id = await inspect('pipe-alice', '{{.Id}}');
  // pipelined in one write
  const both = rawRequest('GET', '/_ping') + rawRequest('POST', `/v1.41/containers/${id.slice(0, 6)}/kill`);
  const rs = responses(await rawExchange('bob', face.socket, both));
  assert.deepEqual(rs.map((r) => r.status), [200, 403], JSON.stringify(rs));
  // second request after the first answer, same connection
  const later = responses(await rawExchange('bob', face.socket, rawRequest('GET', '/v1.41/version') + rawRequest('DELETE', `/containers/${id.slice(0, 10)}?force=1`), { pauseAfter: rawRequest('GET', '/v1.41/version').length }));
  assert.deepEqual(later.map((r) => r.status), [200, 403], JSON.stringify(later));
  // URL escapes, doubled slashes, dot segments and a version prefix: still alice's container
  for (const path of [`/v1.41//containers/${id.slice(0, 8)}/kill`, `/v1.41/containers/%70ipe-alice/kill`, `/v1.41/x/../containers/pipe-alice/./kill`, `/containers/pipe%2Dalice/kill`]) {
    const [r] = responses(await rawExchange('bob', face.socket, rawRequest('POST', path)));
    assert.equal(r!.status, 403, `${path}: ${r!.body}`);
  }
  assert.equal(await inspect('pipe-alice', '{{.State.Running}}'), 'true');
  // alice's own pipelined requests both go through
  const own = responses(await rawExchange('alice', face.socket, rawRequest('GET', '/_ping') + rawRequest('GET', `/containers/${id.slice(0, 6)}/json`)));
  assert.deepEqual(own.map((r) => r.status), [200, 200]);
  assert.equal(JSON.parse(own[1]!.body).Id, id);
});

test('framing is parsed strictly: Content-Length with Transfer-Encoding, two Content-Lengths, a bad chunk size are 400; an oversized create body is 413', async (t) => {
  if (missing(t, { root: true, commands: ['dockerd', 'runuser', 'python3'] }) || !face) return;
  const smuggle = 'POST /containers/create HTTP/1.1\r\nHost: d\r\nContent-Type: application/json\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n' + rawRequest('DELETE', '/containers/x');
  const dupCl = 'POST /containers/create HTTP/1.1\r\nHost: d\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n{}';
  const badChunk = 'POST /containers/create HTTP/1.1\r\nHost: d\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n';
  const teGzip = 'POST /build HTTP/1.1\r\nHost: d\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n';
  const bareLf = 'GET /_ping HTTP/1.1\nHost: d\n\n';
  const folded = 'GET /_ping HTTP/1.1\r\nHost: d\r\n X-Folded: yes\r\n\r\n';
  for (const [what, bytes, status] of [
    ['CL+TE', smuggle, 400],
    ['two Content-Lengths', dupCl, 400],
    ['bad chunk size', badChunk, 400],
    ['TE other than chunked', teGzip, 501],
    ['bare LF', bareLf, 400],
    ['obs-fold', folded, 400],
  ] as const) {
    const rs = responses(await rawExchange('alice', face.socket, bytes));
    assert.equal(rs.length, 1, `${what}: exactly one answer, then the connection is closed: ${JSON.stringify(rs)}`);
    assert.equal(rs[0]!.status, status, `${what}: ${rs[0]!.body}`);
  }
  const huge = { Image: 'bb', Env: Array.from({ length: 50_000 }, (_, i) => `V${i}=${'x'.repeat(100)}`) };
  const [big] = responses(await rawExchange('alice', face.socket, rawRequest('POST', '/containers/create?name=huge', { body: huge })));
  assert.equal(big!.status, 413);
  assert.equal((await d!.docker(['inspect', 'huge'])).code, 1);
  // a chunked create body is decided like any other
  const body = JSON.stringify({ Image: 'bb', Cmd: ['true'] });
  const chunked = `POST /v1.41/containers/create?name=chunky HTTP/1.1\r\nHost: d\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\n${body.slice(0, 5)}\r\n${(body.length - 5).toString(16)}\r\n${body.slice(5)}\r\n0\r\n\r\n`;
  const [made] = responses(await rawExchange('alice', face.socket, chunked));
  assert.equal(made!.status, 201, made!.body);
  assert.equal(JSON.parse(await inspect('chunky', '{{json .Config.Labels}}'))['ds01.user'], 'alice');
});

test('create bodies are read as dockerd reads them: field names in any case, and 20.10\'s top-level HostConfig fields', async (t) => {
  if (missing(t, { root: true, commands: ['dockerd', 'runuser', 'python3'] }) || !face) return;
  const cases: [string, unknown, number, string][] = [
    // dockerd would take the lower-case key: so does the decision (memory over the 256m limit)
    ['lower-case memory', { Image: 'bb', HostConfig: { memory: 1024 ** 3 } }, 403, 'asks for more than the 256m'],
    ['top-level Memory (20.10 merges it)', { Image: 'bb', Memory: 1024 ** 3, HostConfig: {} }, 403, 'asks for more than the 256m'],
    ['top-level CgroupParent without HostConfig', { Image: 'bb', CgroupParent: '/ds01/students/bob' }, 403, 'is not yours'],
    ['a field twice in two spellings', { Image: 'bb', HostConfig: { Memory: 0, MEMORY: 1 } }, 400, 'given twice'],
    ['a reserved label in lower-case labels', { Image: 'bb', labels: { 'ds01.user': 'bob' } }, 403, 'is reserved'],
    ['Kelvin sign in a field name', { Image: 'bb', HostConfig: { 'Networ\u212AMode': 'host' } }, 400, 'non-ASCII'],
  ];
  for (const [what, body, status, message] of cases) {
    const [r] = responses(await rawExchange('alice', face.socket, rawRequest('POST', '/v1.41/containers/create', { body })));
    assert.equal(r!.status, status, `${what}: ${r!.body}`);
    assert.match(JSON.parse(r!.body).message, new RegExp(message), what);
  }
  // a lower-case CgroupParent of her own is kept, and labels added
  const [ok] = responses(await rawExchange('alice', face.socket, rawRequest('POST', '/v1.41/containers/create?name=casey', { body: { image: 'bb', hostconfig: { cgroupparent: '/ds01/students/alice' } } })));
  assert.equal(ok!.status, 201, ok!.body);
  assert.equal(await inspect('casey', '{{.HostConfig.CgroupParent}} {{index .Config.Labels "ds01.user"}}'), '/ds01/students/alice alice');
});

test('unknown endpoints are refused naming method and path; swarm and plugins are for admins; API versions before 1.24 are refused', async (t) => {
  if (missing(t, { root: true, commands: ['dockerd', 'runuser', 'python3'] }) || !face) return;
  const [u] = responses(await rawExchange('alice', face.socket, rawRequest('POST', '/v1.41/containers/x/frobnicate')));
  assert.equal(u!.status, 403);
  assert.match(JSON.parse(u!.body).message, /^gpuguard: POST \/containers\/x\/frobnicate is not an Engine API request gpuguard knows/);
  for (const path of ['/v1.41/swarm', '/v1.41/plugins', '/v1.41/secrets', '/v1.41/configs', '/v1.41/services', '/v1.41/nodes']) {
    const [r] = responses(await rawExchange('alice', face.socket, rawRequest('GET', path)));
    assert.equal(r!.status, 403, path);
    assert.match(JSON.parse(r!.body).message, /only admins may do this/, path);
  }
  const [a] = responses(await rawExchange('dsadmin', face.socket, rawRequest('GET', '/v1.41/plugins')));
  assert.equal(a!.status, 200, a!.body);
  const [prune] = responses(await rawExchange('alice', face.socket, rawRequest('POST', '/v1.41/images/prune')));
  assert.equal(prune!.status, 403);
  const [old] = responses(await rawExchange('alice', face.socket, rawRequest('POST', '/v1.23/containers/x/start', { body: { Binds: ['/:/host'] } })));
  assert.equal(old!.status, 400);
  assert.match(JSON.parse(old!.body).message, /older than 1\.24/);
});

test('serve refuses to start with a one-line error: missing upstream, an upstream not owned by root, a busy listen path, a bad policy', async (t) => {
  if (missing(t, { root: true, commands: ['dockerd', 'runuser', 'python3'] }) || !face) return;
  const serve = (args: string[], env: Record<string, string> = {}) => run(BINARY, ['serve', ...args], { env: { PATH: process.env.PATH!, GPUGUARD_POLICY: policy, ...env }, timeout: 10_000 });
  const other = join(dir, 'other.sock');
  const cases: [string, string[], Record<string, string>, RegExp][] = [
    ['missing upstream', ['--listen', other, '--upstream', join(dir, 'nope.sock')], {}, /dockerd's socket: .*nope\.sock does not exist/],
    ['busy listen path', ['--listen', face.socket, '--upstream', d!.socket], {}, /is in use/],
    ['bad policy', ['--listen', other, '--upstream', d!.socket], { GPUGUARD_POLICY: join(dir, 'bad.yaml') }, /bad\.yaml:1:10: version: expected one of 1, got 2/],
  ];
  writeFileSync(join(dir, 'bad.yaml'), 'version: 2\n');
  // a socket a user made where dockerd's should be
  const own = join(dir, 'alice-owned');
  mkdirSync(own);
  chownSync(own, Number((await run('id', ['-u', 'alice'])).stdout.trim()), 0);
  const fake = join(own, 'fake.sock');
  await runAs('alice', 'python3', ['-c', `import socket; socket.socket(socket.AF_UNIX).bind(${JSON.stringify(fake)})`]);
  cases.push(['upstream owned by a user', ['--listen', other, '--upstream', fake], {}, /fake\.sock is owned by uid \d+, not root/]);
  for (const [what, args, env, message] of cases) {
    const r = await serve(args, env);
    assert.notEqual(r.code, 0, what);
    assert.equal(r.stderr.trim().split('\n').length, 1, `${what}: one line: ${r.stderr}`);
    assert.match(r.stderr, message, what);
  }
});

test('SIGHUP reloads the policy (a bad one is reported and the old one kept); SIGTERM drains and removes the socket', async (t) => {
  if (missing(t, { root: true, commands: ['dockerd', 'runuser', 'python3'] }) || !d) return;
  const p = join(dir, 'reload.yaml');
  writeFileSync(p, `${readFileSync(policy, 'utf8')}`);
  chmodSync(p, 0o644);
  const f = await startFace(d, { policy: p, socketGroup: 'gg-docker' });
  try {
    const mem = async (name: string) => {
      const r = await runAs('alice', CLI20, ['create', '--name', name, 'bb', 'true'], { env: { DOCKER_HOST: f.host, HOME: '/tmp' } });
      assert.equal(r.code, 0, r.stderr);
      return inspect(name, '{{.HostConfig.Memory}}');
    };
    assert.equal(await mem('hup1'), String(256 * 1024 ** 2));
    writeFileSync(p, readFileSync(policy, 'utf8').replace('memory: 256m', 'memory: 128m'));
    process.kill(f.pid, 'SIGHUP');
    for (let i = 0; i < 50 && !f.log().includes('policy reloaded'); i++) await new Promise((r) => setTimeout(r, 50));
    assert.equal(await mem('hup2'), String(128 * 1024 ** 2));
    writeFileSync(p, 'version: 1\ngroups: [\n');
    process.kill(f.pid, 'SIGHUP');
    for (let i = 0; i < 50 && !f.log().includes('not reloaded'); i++) await new Promise((r) => setTimeout(r, 50));
    assert.match(f.log(), /policy not reloaded, the old one stays: .*reload\.yaml:\d+:\d+/);
    assert.equal(await mem('hup3'), String(128 * 1024 ** 2));
    // a long request under way when SIGTERM comes still gets its answer
    const waiting = runAs('alice', CLI20, ['run', '--rm', 'bb', 'sleep', '2'], { env: { DOCKER_HOST: f.host, HOME: '/tmp' } });
    await new Promise((r) => setTimeout(r, 1000));
    process.kill(f.pid, 'SIGTERM');
    const w = await waiting;
    assert.equal(w.code, 0, w.stderr);
    for (let i = 0; i < 100 && (await faceStatus(f.socket)); i++) await new Promise((r) => setTimeout(r, 50));
    assert.equal(await faceStatus(f.socket), undefined);
    assert.equal(existsSync(f.socket), false, 'the socket is removed');
  } finally {
    await f.stop();
  }
});


test('systemd socket activation: with LISTEN_FDS the face serves the socket it was given as fd 3 (its mode and group left as they are)', async (t) => {
  if (missing(t, { root: true, commands: ['dockerd', 'runuser', 'python3'] }) || !d) return;
  const sock = join(dir, 'activated.sock');
  // What systemd does: bind and listen, then start the service with the socket as fd 3, LISTEN_FDS=1 and LISTEN_PID set to its pid.
  const launcher = `
import os, socket, sys
s = socket.socket(socket.AF_UNIX); s.bind(sys.argv[1]); s.listen(64); os.chmod(sys.argv[1], 0o666)
os.dup2(s.fileno(), 3); os.set_inheritable(3, True)
os.execvp('sh', ['sh', '-c', 'LISTEN_PID=$$ LISTEN_FDS=1 exec "$0" serve --upstream "$1"', sys.argv[2], sys.argv[3]])
`;
  const child = spawn('python3', ['-c', launcher, sock, BINARY, d.socket], { env: { PATH: process.env.PATH!, GPUGUARD_POLICY: policy }, stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  child.stderr.on('data', (c: Buffer) => (err += c.toString()));
  try {
    let status;
    for (let i = 0; i < 100 && !(status = await faceStatus(sock)); i++) await new Promise((r) => setTimeout(r, 100));
    assert.equal(status?.pid, child.pid, err);
    assert.match(err, /listening on the socket systemd passed \(fd 3\)/);
    const r = await runAs('alice', CLI20, ['run', '--rm', '--name', 'activated', 'bb', 'true'], { env: { DOCKER_HOST: `unix://${sock}`, HOME: '/tmp' } });
    assert.equal(r.code, 0, r.stderr);
    assert.equal((statSync(sock).mode & 0o777).toString(8), '666', 'systemd\'s mode is left alone');
  } finally {
    child.kill('SIGTERM');
    await new Promise((r) => child.once('exit', r));
  }
});
