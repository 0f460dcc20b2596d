/**
 * Streams through the API face, byte for byte, with the docker CLI as
 * alice: stdin into `run -i` and `exec -i` (hijacked connections, half-close
 * passed on), `logs -f` (a long response; the client going away closes the
 * face's side to dockerd), `docker cp` of 100 MB both ways (sha256 equal,
 * the face's memory bounded: bodies stream), and `docker build` with the
 * classic builder (a chunked context) and with BuildKit (/session and /grpc
 * upgrades).
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { chmodSync, createReadStream, mkdirSync, mkdtempSync, readFileSync, readdirSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { spawn } from 'node:child_process';
import { FIXTURES, IS_ROOT, ensureTestUsers, missing, run, runAs, startDockerd, startFace, type PrivateDockerd, type RunningFace } from '../harness/index.ts';
import { forgetCacheEntries } from './runtime-cache-cleanup.ts';

const CLI20 = '/usr/bin/docker';
const CLI28 = '/usr/local/bin/docker';
let d: PrivateDockerd | undefined;
let face: RunningFace | undefined;
let work = '';
let home = '';
let policy = '';

before(async () => {
  if (!IS_ROOT) return;
  ensureTestUsers();
  d = await startDockerd();
  work = mkdtempSync('/tmp/gg-apistream-');
  chmodSync(work, 0o755);
  home = join(work, 'alice');
  mkdirSync(home);
  await run('chown', ['alice', home]);
  policy = join(work, 'policy.yaml');
  writeFileSync(policy, `${readFileSync(join(FIXTURES, 'policies/lab.yaml'), 'utf8').replace('containers: 3', 'containers: 20')}events: {log: ${work}/events.jsonl}\n`);
  chmodSync(policy, 0o644);
  face = await startFace(d, { policy, socketGroup: 'gg-docker' });
  const r = await alice(['run', '-d', '--name', 'ticker', 'bb', 'sh', '-c', 'i=0; while true; do echo tick $i; i=$((i+1)); sleep 0.1; done']);
  assert.equal(r.code, 0, r.stderr);
});

after(async () => {
  await face?.stop();
  await d?.stop();
  if (work) {
    forgetCacheEntries(policy);
    rmSync(work, { recursive: true, force: true });
  }
});

function alice(args: string[], opts: { input?: string; bin?: string; env?: Record<string, string>; cwd?: string } = {}) {
  return runAs('alice', opts.bin ?? CLI20, args, { env: { DOCKER_HOST: face!.host, HOME: home, ...opts.env }, cwd: opts.cwd ?? home, ...(opts.input !== undefined ? { input: opts.input } : {}) });
}

const sha256 = (path: string) =>
  new Promise<string>((resolve, reject) => {
    const h = createHash('sha256');
    createReadStream(path).on('data', (c) => h.update(c)).on('end', () => resolve(h.digest('hex'))).on('error', reject);
  });

/** The sockets the face holds open (its listener, clients, dockerd), by inode. */
/** Each unix socket's send buffer (`ss -xm`: skmem tb), by inode. */
async function sendBufferByInode(): Promise<Map<string, number>> {
  const r = await run('ss', ['-xmH']);
  const out = new Map<string, number>();
  for (const line of r.stdout.split('\n')) {
    const m = /^\S+\s+\S+\s+\d+\s+\d+\s+\S+\s+(\d+)\s.*\btb(\d+)/.exec(line);
    if (m) out.set(m[1]!, Number(m[2]));
  }
  return out;
}

const faceSockets = () =>
  new Set(
    readdirSync(`/proc/${face!.pid}/fd`).flatMap((fd) => {
      try {
        const link = readlinkSync(`/proc/${face!.pid}/fd/${fd}`);
        return link.startsWith('socket:') ? [link] : [];
      } catch {
        return [];
      }
    }),
  );

const peakRssMiB = () => Number(/VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${face!.pid}/status`, 'utf8'))![1]) / 1024;

for (const [name, bin] of [['20.10', CLI20], ['28', CLI28]] as const) {
  test(`CLI ${name}: echo hi | docker run -i --rm (attach hijack, stdin half-closed through the face)`, async (t) => {
    if (missing(t, { root: true, commands: ['dockerd', 'runuser'], files: [bin] }) || !face) return;
    const r = await alice(['run', '-i', '--rm', 'bb', 'cat'], { input: 'hi\n', bin });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, 'hi\n');
    const e = await alice(['exec', '-i', 'ticker', 'sh', '-c', 'cat; echo done'], { input: 'hello\nworld\n', bin });
    assert.equal(e.code, 0, e.stderr);
    assert.equal(e.stdout, 'hello\nworld\ndone\n');
    const code = await alice(['run', '--rm', 'bb', 'sh', '-c', 'exit 7'], { bin });
    assert.equal(code.code, 7, 'the exit code comes back through the face');
  });
}

test('docker logs -f streams; when the client goes away the face closes its side to dockerd', async (t) => {
  if (missing(t, { root: true, commands: ['dockerd', 'runuser'] }) || !face) return;
  // the same decision once first (the face's own keep-alive connection for its inspects stays open)
  assert.equal((await alice(['logs', '--tail', '1', 'ticker'])).code, 0);
  const before = faceSockets();
  // its own process group: runuser forks, and the client (the docker CLI under it) is what must go away
  const child = spawn('runuser', ['-u', 'alice', '--', CLI20, 'logs', '-f', '--tail', '0', 'ticker'], { env: { DOCKER_HOST: face.host, HOME: home, PATH: process.env.PATH }, detached: true });
  const lines = await new Promise<string[]>((resolve, reject) => {
    let out = '';
    child.stdout.on('data', (c: Buffer) => {
      out += c.toString();
      const got = out.split('\n').filter(Boolean);
      if (got.length >= 5) resolve(got);
    });
    child.on('exit', () => reject(new Error(`logs -f ended early: ${out}`)));
  });
  assert.ok(lines.every((l) => /^tick \d+$/.test(l)), lines.join('|'));
  const numbers = lines.map((l) => Number(l.split(' ')[1]));
  assert.deepEqual(numbers, numbers.map((_, i) => numbers[0]! + i), 'in order, none lost');
  const streaming = [...faceSockets()].filter((s) => !before.has(s));
  assert.ok(streaming.length >= 2, `a client and an upstream connection while it streams: ${streaming.join(' ')}`);
  process.kill(-child.pid!, 'SIGKILL');
  await new Promise((r) => child.once('exit', r));
  let left = streaming;
  for (let i = 0; i < 40 && left.length; i++) {
    await new Promise((r) => setTimeout(r, 100));
    const now = faceSockets();
    left = streaming.filter((s) => now.has(s));
  }
  assert.deepEqual(left, [], 'the client\'s connection and the face\'s to dockerd are both closed');
});

test('an idle long response (docker events, nothing happening): the client going away closes the face\'s side at once', async (t) => {
  if (missing(t, { root: true, commands: ['dockerd', 'runuser', 'ss'] }) || !face) return;
  assert.equal((await alice(['logs', '--tail', '1', 'ticker'])).code, 0);
  const before = faceSockets();
  const child = spawn('runuser', ['-u', 'alice', '--', CLI20, 'events', '--filter', 'type=plugin'], { env: { DOCKER_HOST: face.host, HOME: home, PATH: process.env.PATH }, detached: true });
  let streaming: string[] = [];
  for (let i = 0; i < 50 && streaming.length < 2; i++) {
    await new Promise((r) => setTimeout(r, 100));
    streaming = [...faceSockets()].filter((s) => !before.has(s));
  }
  assert.ok(streaming.length >= 2, `a client and an upstream connection: ${streaming.join(' ')}`);
  // Both carry the face's 1 MiB send buffer (sockopt.ts; the kernel reports it doubled): docker cp's throughput.
  const sendBuffers = await sendBufferByInode();
  for (const sock of streaming) assert.ok((sendBuffers.get(sock.slice('socket:['.length, -1)) ?? 0) >= 2 << 20, `${sock}: send buffer ${sendBuffers.get(sock.slice('socket:['.length, -1))}`);
  process.kill(-child.pid!, 'SIGKILL');
  await new Promise((r) => child.once('exit', r));
  let left = streaming;
  for (let i = 0; i < 20 && left.length; i++) {
    await new Promise((r) => setTimeout(r, 100));
    const now = faceSockets();
    left = streaming.filter((s) => now.has(s));
  }
  assert.deepEqual(left, [], 'nothing written, yet both connections are closed');
});

test('docker cp 100 MB into and out of a container through the face: sha256 equal, the face\'s memory bounded', async (t) => {
  if (missing(t, { root: true, commands: ['dockerd', 'runuser', 'head'] }) || !face) return;
  const src = join(home, 'big.bin');
  await run('sh', ['-c', `head -c 100000000 /dev/urandom > ${src} && chown alice ${src}`]);
  const want = await sha256(src);
  const into = await alice(['cp', src, 'ticker:/tmp/big.bin']);
  assert.equal(into.code, 0, into.stderr);
  const inside = await d!.docker(['exec', 'ticker', 'sha256sum', '/tmp/big.bin']);
  assert.equal(inside.stdout.split(' ')[0], want, 'into the container');
  const back = join(home, 'back.bin');
  const out = await alice(['cp', 'ticker:/tmp/big.bin', back]);
  assert.equal(out.code, 0, out.stderr);
  assert.equal(await sha256(back), want, 'out of the container');
  const peak = peakRssMiB();
  console.log(`face peak RSS after 2 x 100 MB: ${peak.toFixed(1)} MiB`);
  assert.ok(peak < 160, `the face streamed 100 MB both ways without holding it: peak RSS ${peak.toFixed(0)} MiB`);
});

test('docker build: the classic builder (chunked context) and BuildKit (/session and /grpc upgrades)', async (t) => {
  if (missing(t, { root: true, commands: ['dockerd', 'runuser'] }) || !face) return;
  const ctx = join(home, 'ctx');
  mkdirSync(ctx);
  writeFileSync(join(ctx, 'hello.txt'), 'built through the face\n');
  writeFileSync(join(ctx, 'Dockerfile'), 'FROM bb\nCOPY hello.txt /hello.txt\nCMD ["cat", "/hello.txt"]\n');
  await run('chown', ['-R', 'alice', ctx]);
  const classic = await alice(['build', '-t', 'alice-classic', '.'], { cwd: ctx, env: { DOCKER_BUILDKIT: '0' } });
  assert.equal(classic.code, 0, classic.stderr);
  const kit = await alice(['build', '--progress', 'plain', '-t', 'alice-kit', '.'], { cwd: ctx, env: { DOCKER_BUILDKIT: '1' } });
  assert.equal(kit.code, 0, kit.stderr);
  for (const tag of ['alice-classic', 'alice-kit']) {
    const r = await alice(['run', '--rm', tag]);
    assert.equal(r.stdout, 'built through the face\n', tag);
  }
});
