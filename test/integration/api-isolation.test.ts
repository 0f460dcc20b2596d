/**
 * Isolation through the API face, endpoint by endpoint: bob (a real unix
 * user, identity from SO_PEERCRED) against alice's containers, exec
 * instance, network and volume, each request sent twice: alone with the
 * container's name, and as the second request of a kept-alive connection
 * (pipelined after a ping) with an id prefix. Then the docker CLI as bob,
 * and the lists (ps, filters, limit, events, df, volumes, networks). What
 * alice has is read back through dockerd's own socket at the end: nothing
 * of hers changed.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { FIXTURES, IS_ROOT, ensureTestUsers, missing, rawExchange, rawRequest, responses, runAs, startDockerd, startFace, type PrivateDockerd, type RunningFace } from '../harness/index.ts';
import { forgetCacheEntries } from './runtime-cache-cleanup.ts';

const CLI = '/usr/bin/docker';
let d: PrivateDockerd | undefined;
let face: RunningFace | undefined;
let dir: string;
let policy: string;
let t0: number;
const ids: Record<string, string> = {};

before(async () => {
  if (!IS_ROOT) return;
  ensureTestUsers();
  d = await startDockerd();
  dir = mkdtempSync('/tmp/gg-iso-');
  chmodSync(dir, 0o755);
  policy = join(dir, 'policy.yaml');
  writeFileSync(policy, `${readFileSync(join(FIXTURES, 'policies/lab.yaml'), 'utf8').replace('containers: 3', 'containers: 20')}events: {log: ${dir}/events.jsonl}\n`);
  chmodSync(policy, 0o644);
  face = await startFace(d, { policy, socketGroup: 'gg-docker' });
  t0 = Math.floor(Date.now() / 1000) - 1;
  const as = async (user: string, args: string[]) => {
    const r = await runAs(user, CLI, args, { env: { DOCKER_HOST: face!.host, HOME: '/tmp' } });
    assert.equal(r.code, 0, `${user}: docker ${args.join(' ')}: ${r.stderr}`);
    return r.stdout.trim();
  };
  await as('alice', ['network', 'create', 'alicenet']);
  await as('alice', ['volume', 'create', 'alicevol']);
  ids.web = await as('alice', ['run', '-d', '--name', 'web', '-v', 'alicevol:/data', 'bb', 'sleep', '600']);
  ids.stopped = await as('alice', ['create', '--name', 'stopped', 'bb', 'true']);
  await as('bob', ['network', 'create', 'bobnet']);
  ids.bobc = await as('bob', ['run', '-d', '--name', 'bobc', 'bb', 'sleep', '600']);
  ids.bobStopped = await as('bob', ['create', '--name', 'bob-stopped', 'bb', 'true']);
  // a network nobody owns (made by root straight on dockerd) with both users' containers on it
  assert.equal((await d.docker(['network', 'create', 'shared'])).code, 0);
  for (const c of ['web', 'bobc']) assert.equal((await d.docker(['network', 'connect', 'shared', c])).code, 0);
  const [exec] = responses(await rawExchange('alice', face.socket, rawRequest('POST', '/v1.41/containers/web/exec', { body: { Cmd: ['touch', '/tmp/alice-exec'] } })));
  assert.equal(exec!.status, 201, exec!.body);
  ids.exec = JSON.parse(exec!.body).Id;
});

after(async () => {
  await face?.stop();
  await d?.stop();
  if (dir) {
    forgetCacheEntries(policy);
    rmSync(dir, { recursive: true, force: true });
  }
});

const tar = (() => {
  // one empty file "x", as `docker cp` sends it
  const h = Buffer.alloc(512);
  h.write('x');
  h.write('0000644\0', 100);
  h.write('0000000\0', 108);
  h.write('0000000\0', 116);
  h.write('00000000000\0', 124);
  h.write('00000000000\0', 136);
  h.write('        ', 148);
  h.write('0', 156);
  h.write('ustar\0', 257);
  h.write('00', 263);
  let sum = 0;
  for (const b of h) sum += b;
  h.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148);
  return Buffer.concat([h, Buffer.alloc(1024)]).toString('latin1');
})();

/** Every endpoint of issue 13 item 3 that names a container (or an exec of one), as [what, method, path, body?, headers?]. */
function attacks(ref: (name: string) => string): [string, string, string, unknown?, [string, string][]?][] {
  const web = ref('web');
  return [
    ['inspect', 'GET', `/containers/${web}/json`],
    ['logs', 'GET', `/containers/${web}/logs?stdout=1&stderr=1`],
    ['top', 'GET', `/containers/${web}/top`],
    ['stats', 'GET', `/containers/${web}/stats?stream=0`],
    ['changes', 'GET', `/containers/${web}/changes`],
    ['export', 'GET', `/containers/${web}/export`],
    ['archive GET', 'GET', `/containers/${web}/archive?path=/etc/passwd`],
    ['archive HEAD', 'HEAD', `/containers/${web}/archive?path=/etc/passwd`],
    ['archive PUT', 'PUT', `/containers/${web}/archive?path=/tmp`, tar, [['Content-Type', 'application/x-tar']]],
    ['attach', 'POST', `/containers/${web}/attach?stream=1&stdout=1&stdin=1`, undefined, [['Upgrade', 'tcp'], ['Connection', 'Upgrade']]],
    ['attach/ws', 'GET', `/containers/${web}/attach/ws?stream=1&stdout=1`, undefined, [['Upgrade', 'websocket'], ['Connection', 'Upgrade'], ['Sec-WebSocket-Key', 'dGhlIHNhbXBsZSBub25jZQ=='], ['Sec-WebSocket-Version', '13']]],
    ['wait', 'POST', `/containers/${web}/wait?condition=not-running`],
    ['resize', 'POST', `/containers/${web}/resize?h=10&w=10`],
    ['start', 'POST', `/containers/${ref('stopped')}/start`],
    ['stop', 'POST', `/containers/${web}/stop?t=0`],
    ['restart', 'POST', `/containers/${web}/restart?t=0`],
    ['kill', 'POST', `/containers/${web}/kill`],
    ['pause', 'POST', `/containers/${web}/pause`],
    ['unpause', 'POST', `/containers/${web}/unpause`],
    ['update', 'POST', `/containers/${web}/update`, { Memory: 64 * 1024 ** 2 }],
    ['rename', 'POST', `/containers/${web}/rename?name=bobs-now`],
    ['delete', 'DELETE', `/containers/${web}?force=1&v=1`],
    ['exec create', 'POST', `/containers/${web}/exec`, { Cmd: ['true'] }],
    ['exec start', 'POST', `/exec/${ids.exec}/start`, { Detach: true }],
    ['exec resize', 'POST', `/exec/${ids.exec}/resize?h=10&w=10`],
    ['exec inspect', 'GET', `/exec/${ids.exec}/json`],
    ['commit', 'POST', `/commit?container=${web}&repo=bob-stole`],
    ['network connect (alice\'s container to bob\'s network)', 'POST', '/networks/bobnet/connect', { Container: web }],
    ['network disconnect (alice\'s container from a shared network)', 'POST', '/networks/shared/disconnect', { Container: web, Force: true }],
    ['network connect (bob\'s container to alice\'s network)', 'POST', '/networks/alicenet/connect', { Container: 'bobc' }],
    ['network inspect (alice\'s)', 'GET', '/networks/alicenet'],
    ['network delete (alice\'s)', 'DELETE', '/networks/alicenet'],
    ['volume inspect (alice\'s)', 'GET', '/volumes/alicevol'],
    ['volume delete (alice\'s)', 'DELETE', '/volumes/alicevol?force=1'],
  ];
}

test('bob cannot touch alice\'s containers through any endpoint: by name alone, and by id prefix as the second request of a kept-alive connection', async (t) => {
  if (missing(t, { root: true, commands: ['dockerd', 'runuser', 'python3'] }) || !face) return;
  const byName = attacks((n) => n);
  const byPrefix = attacks((n) => ids[n]!.slice(0, 7));
  for (const [i, [what, method, path, body, headers]] of byName.entries()) {
    const req = rawRequest(method, `/v1.41${path}`, { ...(body !== undefined ? { body } : {}), ...(headers ? { headers } : {}) });
    const [alone] = responses(await rawExchange('bob', face.socket, req), [method]);
    assert.ok(alone, `${what}: an answer`);
    assert.equal(alone.status, 403, `${what} by name: ${alone.status} ${alone.body}`);
    if (method !== 'HEAD') assert.match(JSON.parse(alone.body).message, /^gpuguard: /, what);
    const [pm, pp, pb, ph] = byPrefix[i]!.slice(1) as [string, string, unknown, [string, string][] | undefined];
    const second = rawRequest(pm, `/v1.41${pp}`, { ...(pb !== undefined ? { body: pb } : {}), ...(ph ? { headers: ph } : {}) });
    const rs = responses(await rawExchange('bob', face.socket, rawRequest('GET', '/_ping') + second), ['GET', pm]);
    assert.deepEqual(rs.map((r) => r.status), [200, 403], `${what} by id prefix, second on the connection: ${JSON.stringify(rs)}`);
  }
});

test('the docker CLI as bob: alice\'s container is invisible and untouchable', async (t) => {
  if (missing(t, { root: true, commands: ['dockerd', 'runuser'] }) || !face) return;
  const bob = (args: string[]) => runAs('bob', CLI, args, { env: { DOCKER_HOST: face!.host, HOME: '/tmp' } });
  for (const args of [
    ['stop', 'web'],
    ['rm', '-f', 'web'],
    ['exec', 'web', 'true'],
    ['logs', 'web'],
    ['inspect', 'web'],
    ['cp', 'web:/etc/passwd', '/tmp/gg-stolen'],
    ['rename', 'web', 'x'],
    ['commit', 'web', 'stolen'],
    ['start', 'stopped'],
    ['update', '--memory', '64m', 'web'],
    ['network', 'connect', 'bobnet', 'web'],
    ['volume', 'rm', 'alicevol'],
  ]) {
    const r = await bob(args);
    assert.notEqual(r.code, 0, `docker ${args.join(' ')}: ${r.stdout}`);
    assert.match(r.stderr, /gpuguard: /, `docker ${args.join(' ')}: ${r.stderr}`);
  }
  const ps = await bob(['ps', '-a', '--format', '{{.Names}}']);
  assert.equal(ps.code, 0, ps.stderr);
  assert.deepEqual(ps.stdout.trim().split('\n').sort(), ['bob-stopped', 'bobc']);
  const filtered = await bob(['ps', '-a', '--filter', 'name=web', '-q']);
  assert.equal(filtered.stdout.trim(), '');
  const latest = await bob(['ps', '-l', '--format', '{{.Names}}']);
  assert.equal(latest.stdout.trim(), 'bob-stopped', 'ps -l is bob\'s latest, not the host\'s');
});

test('lists: events, system df, volumes and networks show bob only what is his (or nobody\'s)', async (t) => {
  if (missing(t, { root: true, commands: ['dockerd', 'runuser', 'python3'] }) || !face) return;
  const get = async (user: string, path: string) => {
    const [r] = responses(await rawExchange(user, face!.socket, rawRequest('GET', `/v1.41${path}`)));
    assert.equal(r!.status, 200, `${path}: ${r!.body}`);
    return r!.body;
  };
  const until = Math.floor(Date.now() / 1000) + 1;
  const events = (await get('bob', `/events?since=${t0}&until=${until}`)).split('\n').filter(Boolean).map((l) => JSON.parse(l));
  assert.ok(events.some((e) => e.Actor?.ID === ids.bobc), 'bob sees his own container\'s events');
  assert.ok(!events.some((e) => [ids.web, ids.stopped].includes(e.Actor?.ID) || [ids.web, ids.stopped].includes(e.Actor?.Attributes?.container)), 'and none of alice\'s');
  assert.ok(!events.some((e) => e.Actor?.Attributes?.name === 'alicenet' || e.Actor?.ID === 'alicevol'), 'nor her network and volume');
  const aliceEvents = (await get('alice', `/events?since=${t0}&until=${until}`)).split('\n').filter(Boolean).map((l) => JSON.parse(l));
  assert.ok(aliceEvents.some((e) => e.Actor?.ID === ids.web));
  const df = JSON.parse(await get('bob', '/system/df'));
  assert.deepEqual(df.Containers.map((c: { Id: string }) => c.Id).sort(), [ids.bobc, ids.bobStopped].sort());
  assert.ok(!df.Volumes.some((v: { Name: string }) => v.Name === 'alicevol'));
  const vols = JSON.parse(await get('bob', '/volumes'));
  assert.ok(!vols.Volumes.some((v: { Name: string }) => v.Name === 'alicevol'));
  assert.ok(JSON.parse(await get('alice', '/volumes')).Volumes.some((v: { Name: string }) => v.Name === 'alicevol'));
  const nets = JSON.parse(await get('bob', '/networks')).map((n: { Name: string }) => n.Name);
  assert.ok(nets.includes('bobnet') && nets.includes('shared') && !nets.includes('alicenet'), nets.join(' '));
  const shared = JSON.parse(await get('bob', '/networks/shared'));
  assert.deepEqual(Object.keys(shared.Containers), [ids.bobc], 'a shared network shows bob only his own endpoints');
  const list = JSON.parse(await get('bob', '/containers/json?all=1'));
  assert.ok(!list.some((c: { Id: string }) => c.Id === ids.web || c.Id === ids.stopped));
});

test('prune removes only the caller\'s stopped containers; volume and network create add owner labels, reserved ones are refused', async (t) => {
  if (missing(t, { root: true, commands: ['dockerd', 'runuser', 'python3'] }) || !face) return;
  const [p] = responses(await rawExchange('bob', face.socket, rawRequest('POST', '/v1.41/containers/prune')));
  assert.equal(p!.status, 200, p!.body);
  assert.deepEqual(JSON.parse(p!.body).ContainersDeleted, [ids.bobStopped]);
  assert.equal((await d!.docker(['inspect', 'stopped'])).code, 0, 'alice\'s stopped container is still there');
  const labels = async (kind: 'network' | 'volume', name: string) => JSON.parse((await d!.docker([kind, 'inspect', '--format', '{{json .Labels}}', name])).stdout);
  assert.equal((await labels('network', 'alicenet'))['ds01.user'], 'alice');
  assert.equal((await labels('volume', 'alicevol'))['ds01.user'], 'alice');
  const [r] = responses(await rawExchange('bob', face.socket, rawRequest('POST', '/v1.41/volumes/create', { body: { Name: 'fakevol', Labels: { 'ds01.user': 'alice' } } })));
  assert.equal(r!.status, 403);
  assert.match(JSON.parse(r!.body).message, /label ds01\.user \(from volume Labels\) is reserved/);
});

test('a create may not mount another user\'s volume or join their network; a volume made on the fly is the caller\'s', async (t) => {
  if (missing(t, { root: true, commands: ['dockerd', 'runuser'] }) || !face) return;
  const as = (user: string, args: string[]) => runAs(user, CLI, args, { env: { DOCKER_HOST: face!.host, HOME: '/tmp' } });
  for (const [args, message] of [
    [['-v', 'alicevol:/x'], /volume "alicevol" \(Binds alicevol:\/x\) belongs to another user/],
    [['--mount', 'type=volume,src=alicevol,dst=/x'], /volume "alicevol" \(Mounts alicevol\) belongs to another user/],
    [['--network', 'alicenet'], /network "alicenet" belongs to another user/],
  ] as const) {
    const r = await as('bob', ['run', '--rm', ...args, 'bb', 'true']);
    assert.equal(r.code, 125, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, message);
  }
  const made = await as('bob', ['run', '--rm', '-v', 'bobnew:/x', 'bb', 'true']);
  assert.equal(made.code, 0, made.stderr);
  const labels = JSON.parse((await d!.docker(['volume', 'inspect', '--format', '{{json .Labels}}', 'bobnew'])).stdout);
  assert.equal(labels['ds01.user'], 'bob');
  const own = await as('alice', ['run', '--rm', '-v', 'alicevol:/y', '--network', 'alicenet', 'bb', 'true']);
  assert.equal(own.code, 0, own.stderr);
});

test('afterwards: nothing of alice\'s changed', async (t) => {
  if (missing(t, { root: true, commands: ['dockerd'] }) || !d) return;
  const state = (await d.docker(['inspect', '--format', '{{.Name}} {{.State.Status}} {{.HostConfig.Memory}}', 'web', 'stopped'])).stdout.trim().split('\n');
  assert.deepEqual(state, [`/web running ${256 * 1024 ** 2}`, `/stopped created ${256 * 1024 ** 2}`]);
  assert.equal((await d.docker(['exec', 'web', 'test', '-e', '/tmp/x'])).code, 1, 'bob\'s archive PUT put nothing');
  assert.equal((await d.docker(['exec', 'web', 'test', '-e', '/tmp/alice-exec'])).code, 1, 'alice\'s exec was never started by bob');
  assert.equal((await d.docker(['image', 'inspect', 'bob-stole'])).code, 1);
  assert.equal((await d.docker(['network', 'inspect', 'alicenet'])).code, 0);
  assert.equal((await d.docker(['volume', 'inspect', 'alicevol'])).code, 0);
  const shared = JSON.parse((await d.docker(['network', 'inspect', '--format', '{{json .Containers}}', 'shared'])).stdout);
  assert.ok(ids.web! in shared, 'still on the shared network');
});
