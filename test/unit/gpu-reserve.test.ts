/** Reservation records: live exactly while their process lives, believed only from their owner. */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, chownSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { ensureRunDir, processStart, readReservations, writeReservation, ReservationError } from '../../src/gpu/reserve.ts';
import { requestFromFlags, envFileEntries } from '../../src/gpu/plan.ts';

const IS_ROOT = process.getuid?.() === 0;

const made: string[] = [];
after(() => made.forEach((d) => rmSync(d, { recursive: true, force: true })));

function shared(): string {
  const dir = mkdtempSync(join(tmpdir(), 'gg-res-'));
  made.push(dir);
  chmodSync(dir, 0o1777);
  return dir;
}

const me = { uid: process.getuid?.() ?? 0, user: 'me', devices: ['MIG-a'], slots: ['0.0'], at: new Date().toISOString(), priority: 0 };

test('a reservation of a live process is read back, world-readable', () => {
  const dir = shared();
  const path = writeReservation(dir, me);
  assert.equal(statSync(path).mode & 0o777, 0o644);
  const r = readReservations(dir);
  assert.equal(r.length, 1);
  assert.deepEqual(r[0]!.record.devices, ['MIG-a']);
  assert.equal(r[0]!.record.pid, process.pid);
  assert.equal(r[0]!.record.start, processStart(process.pid));
});

test('a dead process\'s reservation is void at once (and its owner cleans it)', async () => {
  const dir = shared();
  const child = spawn('sleep', ['30']);
  await new Promise((r) => child.once('spawn', r));
  const start = processStart(child.pid!)!;
  const name = join(dir, `gpu-res.${me.uid}.${child.pid}.abc.json`);
  writeFileSync(name, JSON.stringify({ v: 1, ...me, pid: child.pid, start }), { mode: 0o644 });
  assert.equal(readReservations(dir).length, 1);
  child.kill('SIGKILL');
  await new Promise((r) => child.once('exit', r));
  assert.equal(readReservations(dir).length, 0);
  assert.deepEqual(readdirSync(dir), []);
});

test('a reused pid (other start time) does not keep a reservation alive', () => {
  const dir = shared();
  writeFileSync(join(dir, `gpu-res.${me.uid}.${process.pid}.x.json`), JSON.stringify({ v: 1, ...me, pid: process.pid, start: '1' }));
  assert.equal(readReservations(dir).length, 0);
});

test('a file claiming another uid than its owner is ignored (and left alone)', { skip: !IS_ROOT && 'needs root to chown' }, () => {
  const dir = shared();
  const path = join(dir, `gpu-res.999.${process.pid}.x.json`);
  writeFileSync(path, JSON.stringify({ v: 1, ...me, uid: 999, pid: process.pid, start: processStart(process.pid) }));
  chownSync(path, 1234, 1234);
  assert.equal(readReservations(dir).length, 0);
});

test('the shared directory must not be world-writable without the sticky bit', () => {
  const dir = mkdtempSync(join(tmpdir(), 'gg-res-'));
  made.push(dir);
  chmodSync(dir, 0o777);
  assert.throws(() => ensureRunDir(dir), (e: unknown) => e instanceof ReservationError && /without the sticky bit/.test(e.message));
  chmodSync(dir, 0o1777);
  ensureRunDir(dir);
  const fresh = join(dir, 'sub');
  ensureRunDir(fresh);
  assert.equal(statSync(fresh).mode & 0o7777, 0o1777);
});

test('the plan reads --env-file then -e, as docker does', () => {
  const files: Record<string, string> = { '/f.env': '# comment\n\n  NVIDIA_VISIBLE_DEVICES=all\nOTHER=1\n' };
  const flag = (name: string, value: string, start: number) => ({ name, value, start, end: start + 2, cluster: false });
  const read = (p: string) => files[p] ?? (() => { throw new Error('ENOENT'); })();
  assert.equal(requestFromFlags([flag('env-file', '/f.env', 0)], {}, read).kind, 'all');
  const r = requestFromFlags([flag('env-file', '/f.env', 0), flag('env', 'NVIDIA_VISIBLE_DEVICES=0.1', 2)], {}, read);
  assert.deepEqual(r.devices, ['0.1']);
  assert.equal(requestFromFlags([flag('env-file', '/missing', 0)], {}, read).kind, 'none');
  assert.deepEqual(envFileEntries('\uFEFFA=1\r\n#x\nB\n'), ['A=1', 'B']);
});

test('docker start targets: flags skipped, -- respected', async () => {
  const { startTargets } = await import('../../src/gpu/start.ts');
  assert.deepEqual(startTargets(['start', '-a', '-i', 'web', 'db'], 1), ['web', 'db']);
  assert.deepEqual(startTargets(['-H', 'unix:///x', 'start', '--detach-keys', 'ctrl-x', '-ai', 'c1'], 3), ['c1']);
  assert.deepEqual(startTargets(['container', 'start', '--checkpoint', 'cp1', '--', '-odd-name'], 2), ['-odd-name']);
});
