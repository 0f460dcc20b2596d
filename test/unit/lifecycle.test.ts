/** Lifecycle policy keys and the pure decisions of `gpuguard reap` (src/policy/lifecycle.ts). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parsePolicy } from '../../src/policy/load.ts';
import { PolicyError } from '../../src/errors.ts';
import {
  decideHostProcess, decideLifecycle, formatSpan, lifecycleFor, lifecycleMs, reaperNeeded, trackActivity,
  type ActivityMemory, type LifecycleFacts,
} from '../../src/policy/lifecycle.ts';

const policy = (text: string) => parsePolicy(`version: 1\n${text}`, 'p.yaml');

const invalid: [string, string, string][] = [
  ['a bare number', 'lifecycle: {maxRuntime: 7}\n', 'p.yaml:2:25: lifecycle.maxRuntime: expected a whole number above 0 with a unit (s, m, h, d) such as 30s, 20m, 2h or 7d, or never, got 7'],
  ['an unknown unit', 'lifecycle: {maxRuntime: 7w}\n', 'p.yaml:2:25: lifecycle.maxRuntime: expected a whole number above 0 with a unit (s, m, h, d) such as 30s, 20m, 2h or 7d, or never, got "7w"'],
  ['milliseconds', 'lifecycle: {idleAfter: 500ms}\n', 'p.yaml:2:24: lifecycle.idleAfter: expected a whole number above 0 with a unit (s, m, h, d) such as 30s, 20m, 2h or 7d, or never, got "500ms"'],
  ['a fraction', 'lifecycle: {idleAfter: 1.5h}\n', 'p.yaml:2:24: lifecycle.idleAfter: expected a whole number above 0 with a unit (s, m, h, d) such as 30s, 20m, 2h or 7d, or never, got "1.5h"'],
  ['zero as a rule', 'lifecycle: {removeStoppedAfter: 0d}\n', 'p.yaml:2:33: lifecycle.removeStoppedAfter: expected a whole number above 0 with a unit (s, m, h, d) such as 30s, 20m, 2h or 7d, or never, got "0d"'],
  ['a space', 'lifecycle: {idleAfter: "2 h"}\n', 'p.yaml:2:24: lifecycle.idleAfter: expected a whole number above 0 with a unit (s, m, h, d) such as 30s, 20m, 2h or 7d, or never, got "2 h"'],
  ['never as a warning', 'lifecycle: {warnBefore: never}\n', 'p.yaml:2:25: lifecycle.warnBefore: expected a whole number with a unit (s, m, h, d) such as 0s, 30s, 20m or 2h, got "never"'],
  ['cpu percent 0', 'lifecycle: {idleCpuPercent: 0}\n', 'p.yaml:2:29: lifecycle.idleCpuPercent: expected a percentage of one core, above 0, got 0'],
  ['cpu percent over a core', 'lifecycle: {idleCpuPercent: 150}\n', 'p.yaml:2:29: lifecycle.idleCpuPercent: expected a percentage of one core, at most 100, got 150'],
  ['notify not a path', 'lifecycle: {notify: mail}\n', 'p.yaml:2:21: lifecycle.notify: expected the absolute path of a program, or a list [program, arg…] that starts with one, got "mail"'],
  ['notify per group', 'groups: {a: {lifecycle: {notify: /bin/true}}}\n', 'p.yaml:2:26: groups.a.lifecycle.notify: unknown key "notify" (see `gpuguard policy schema` for the keys)'],
  ['unknown lifecycle key', 'lifecycle: {idleFor: 2h}\n', 'p.yaml:2:13: lifecycle.idleFor: unknown key "idleFor" (see `gpuguard policy schema` for the keys)'],
  ['host processes mode', 'gpu: {hostProcesses: block}\n', 'p.yaml:2:22: gpu.hostProcesses: expected one of "allow", "warn", "kill", got "block"'],
];
for (const [name, text, message] of invalid) {
  test(`invalid lifecycle policy: ${name}`, () => {
    assert.throws(() => policy(text), (err: unknown) => err instanceof PolicyError && err.message === message && err.exitCode === 2, message);
  });
}

test('valid lifecycle: durations in s, m, h, d; never; notify as a path or a list', () => {
  const p = policy('lifecycle: {idleAfter: 2h, idleCpuPercent: 2.5, maxRuntime: 7d, removeStoppedAfter: 30m, warnBefore: 0s, stopTimeout: 45s, notify: [/usr/bin/logger, -t, gpuguard]}\ngroups:\n  r: {lifecycle: {maxRuntime: never}}\n');
  assert.equal(p.lifecycle?.maxRuntime, '7d');
  assert.deepEqual(p.lifecycle?.notify, ['/usr/bin/logger', '-t', 'gpuguard']);
  assert.equal(policy('lifecycle: {notify: /usr/local/sbin/gpuguard-notify}\n').lifecycle?.notify, '/usr/local/sbin/gpuguard-notify');
  assert.deepEqual([lifecycleMs('30s'), lifecycleMs('20m'), lifecycleMs('2h'), lifecycleMs('7d'), lifecycleMs('never'), lifecycleMs(undefined)], [30_000, 1_200_000, 7_200_000, 604_800_000, undefined, undefined]);
});

test('lifecycleFor: a group\'s keys over the top level\'s; never turns a rule off; unowned containers get the top level', () => {
  const p = policy(
    'defaults: {group: students}\nlifecycle: {idleAfter: 2h, maxRuntime: 7d, removeStoppedAfter: 3d, warnBefore: 30m}\ngroups:\n  students: {lifecycle: {idleAfter: 1h, idleCpuPercent: 5}}\n  researchers: {lifecycle: {maxRuntime: never, stopTimeout: 2m}}\n',
  );
  const s = lifecycleFor(p, 'students');
  assert.deepEqual([s.idleAfterMs, s.idleCpuPercent, s.maxRuntimeMs, s.removeStoppedAfterMs, s.warnBeforeMs, s.stopTimeoutS], [3_600_000, 5, 604_800_000, 259_200_000, 1_800_000, undefined]);
  const r = lifecycleFor(p, 'researchers');
  assert.deepEqual([r.idleAfterMs, r.idleCpuPercent, r.maxRuntimeMs, r.stopTimeoutS], [7_200_000, 2, undefined, 120]);
  assert.equal(r.written.maxRuntime, undefined);
  const none = lifecycleFor(p, undefined);
  assert.equal(none.idleAfterMs, 7_200_000);
  assert.equal(reaperNeeded(p), true);
  assert.equal(reaperNeeded(policy('')), false, 'no lifecycle, host processes allowed: nothing for a reaper');
  assert.equal(reaperNeeded(policy('lifecycle: {maxRuntime: never}\n')), false);
  assert.equal(reaperNeeded(policy('gpu: {hostProcesses: warn}\n')), true);
  assert.equal(reaperNeeded(policy('groups: {g: {lifecycle: {idleAfter: 1h}}}\n')), true);
});

const S = '2026-12-01T10:00:00.000Z';
const T0 = Date.parse('2026-12-01T12:00:00Z');
const mem = (at: number, cpuNs: number, idleSince?: number): ActivityMemory => ({ startedAt: S, at, cpuNs, ...(idleSince !== undefined ? { idleSince } : {}) });
const obs = (at: number, cpuNs: number | undefined, o: { gpu?: number | undefined; hasGpu?: boolean; startedAt?: string } = {}) => ({
  startedAt: o.startedAt ?? S,
  at,
  cpuNs,
  gpuProcesses: 'gpu' in o ? o.gpu : 0,
  hasGpu: o.hasGpu ?? false,
});

test('activity: the CPU counter\'s growth between two reaps, percent of one core', () => {
  // 5 minutes, 3 s of CPU: 1% of a core, under 2%: idle since the interval began.
  let a = trackActivity(mem(T0, 1e9), obs(T0 + 300_000, 1e9 + 3e9), 2);
  assert.deepEqual([a.state, a.idleSince, Math.round(a.cpuPercent! * 100) / 100], ['idle', T0, 1]);
  assert.equal(a.memory?.idleSince, T0);
  // The run goes on: idle since stays where it began.
  a = trackActivity(a.memory, obs(T0 + 600_000, 1e9 + 3e9 + 1e8), 2);
  assert.deepEqual([a.state, a.idleSince], ['idle', T0]);
  // 30 s of CPU in 5 minutes is 10%: busy, the run is broken.
  a = trackActivity(a.memory, obs(T0 + 900_000, 1e9 + 33e9 + 1e8), 2);
  assert.equal(a.state, 'busy');
  assert.equal(a.memory?.idleSince, undefined);
  assert.match(a.why, /^CPU 10% of a core over 5m \(idleCpuPercent 2\)$/);
});

test('activity: GPU processes make a container busy whatever its CPU; GPU use unknown is never idle', () => {
  const gpuBusy = trackActivity(mem(T0, 0, T0 - 60_000), obs(T0 + 300_000, 0, { gpu: 2, hasGpu: true }), 2);
  assert.deepEqual([gpuBusy.state, gpuBusy.memory?.idleSince], ['busy', undefined]);
  assert.match(gpuBusy.why, /^2 GPU processes, CPU 0\.0%/);
  const unknown = trackActivity(mem(T0, 0, T0 - 60_000), obs(T0 + 300_000, 0, { gpu: undefined, hasGpu: true }), 2);
  assert.equal(unknown.state, 'unknown');
  assert.equal(unknown.memory?.idleSince, undefined, 'an unknown interval breaks the idle run');
  // Without GPUs, the process query does not matter.
  const cpuOnly = trackActivity(mem(T0, 0), obs(T0 + 300_000, 0, { gpu: undefined, hasGpu: false }), 2);
  assert.equal(cpuOnly.state, 'idle');
  const gpuIdle = trackActivity(mem(T0, 0), obs(T0 + 300_000, 0, { gpu: 0, hasGpu: true }), 2);
  assert.deepEqual([gpuIdle.state, gpuIdle.why], ['idle', 'no GPU process, CPU 0.0% of a core over 5m']);
});

test('activity: first sight, a restart, a counter gone backwards or unreadable: not idle, measured afresh', () => {
  const first = trackActivity(undefined, obs(T0, 5e9), 2);
  assert.deepEqual([first.state, first.memory], ['unknown', { startedAt: S, at: T0, cpuNs: 5e9 }]);
  const restarted = trackActivity(mem(T0, 5e9, T0 - 1), obs(T0 + 300_000, 1e6, { startedAt: '2026-12-01T11:59:00Z' }), 2);
  assert.deepEqual([restarted.state, restarted.memory?.startedAt, restarted.memory?.idleSince], ['unknown', '2026-12-01T11:59:00Z', undefined]);
  const backwards = trackActivity(mem(T0, 5e9), obs(T0 + 300_000, 4e9), 2);
  assert.equal(backwards.state, 'unknown');
  const unreadable = trackActivity(mem(T0, 5e9, T0 - 1), obs(T0 + 300_000, undefined), 2);
  assert.deepEqual([unreadable.state, unreadable.memory], ['unknown', undefined]);
  // Two reaps within half a second: the earlier verdict stands, the baseline is kept.
  const quick = trackActivity(mem(T0, 5e9, T0 - 60_000), obs(T0 + 200, 9e9), 2);
  assert.deepEqual([quick.state, quick.idleSince, quick.memory], ['idle', T0 - 60_000, mem(T0, 5e9, T0 - 60_000)]);
});

const rules = (text: string, group?: string) => lifecycleFor(policy(`lifecycle: ${text}\n`), group);
const running = (o: Partial<LifecycleFacts> = {}): LifecycleFacts => ({ state: 'running', createdAt: T0 - 86_400_000, startedAt: T0 - 86_400_000, exempt: false, ...o });
const idleFor = (ms: number) => ({ state: 'idle' as const, idleSince: T0 - ms, why: 'CPU 0.1% of a core over 5m' });

test('decide: idle past idleAfter is stopped; before, nothing; without warnBefore no warning', () => {
  const r = rules('{idleAfter: 2h}');
  assert.equal(decideLifecycle(running({ activity: idleFor(3_600_000) }), r, T0, undefined, 'nb').action, 'none');
  const d = decideLifecycle(running({ activity: idleFor(2 * 3_600_000) }), r, T0, undefined, 'nb');
  assert.deepEqual([d.action, d.rule], ['stop', 'idleAfter']);
  assert.equal(d.reason, 'idle since 2026-12-01T10:00:00Z (2h00m; idleAfter 2h): CPU 0.1% of a core over 5m');
  assert.equal(decideLifecycle(running({ activity: { state: 'busy', why: 'x' } }), r, T0, undefined, 'nb').action, 'none');
  assert.equal(decideLifecycle(running({ activity: { state: 'unknown', why: 'x' } }), r, T0, undefined, 'nb').action, 'none');
});

test('decide: warned warnBefore ahead, then acted on; a late warning moves the action, not the notice', () => {
  const r = rules('{idleAfter: 2h, warnBefore: 30m}');
  const early = decideLifecycle(running({ activity: idleFor(80 * 60_000) }), r, T0, undefined, 'nb');
  assert.equal(early.action, 'none');
  const warn = decideLifecycle(running({ activity: idleFor(95 * 60_000) }), r, T0, undefined, 'nb');
  assert.equal(warn.action, 'warn');
  // Due at idleAfter (12:25), but never less than warnBefore after the warning: 12:30.
  assert.equal(warn.due, T0 + 30 * 60_000);
  assert.equal(warn.message, 'your container nb will be stopped at 2026-12-01T12:30:00Z (in 30m): idle since 2026-12-01T10:25:00Z (1h35m; idleAfter 2h): CPU 0.1% of a core over 5m. Use it or save your work; an admin can exempt it.');
  // The next reap, 5 minutes later: warned already, nothing new.
  const later = decideLifecycle(running({ activity: { ...idleFor(100 * 60_000), idleSince: T0 - 95 * 60_000 } }), r, T0 + 300_000, warn.warned, 'nb');
  assert.deepEqual([later.action, later.warned], ['none', warn.warned]);
  const early2 = decideLifecycle(running({ activity: { ...idleFor(0), idleSince: T0 - 95 * 60_000 } }), r, T0 + 25 * 60_000, warn.warned, 'nb');
  assert.equal(early2.action, 'none', 'idleAfter has passed, but the owner was told 12:30');
  const stop = decideLifecycle(running({ activity: { ...idleFor(0), idleSince: T0 - 95 * 60_000 } }), r, T0 + 30 * 60_000, warn.warned, 'nb');
  assert.equal(stop.action, 'stop');
  // Never warned (the reaper was not running): warned now, stopped warnBefore later.
  const late = decideLifecycle(running({ activity: idleFor(10 * 3_600_000) }), r, T0, undefined, 'nb');
  assert.deepEqual([late.action, late.due], ['warn', T0 + 30 * 60_000]);
  const notYet = decideLifecycle(running({ activity: idleFor(10 * 3_600_000) }), r, T0 + 29 * 60_000, late.warned, 'nb');
  assert.equal(notYet.action, 'none');
  assert.equal(decideLifecycle(running({ activity: idleFor(10 * 3_600_000) }), r, T0 + 30 * 60_000, late.warned, 'nb').action, 'stop');
  // Busy again after a warning: the warning is forgotten; a new idle run is warned anew.
  const busy = decideLifecycle(running({ activity: { state: 'busy', why: 'x' } }), r, T0, warn.warned, 'nb');
  assert.deepEqual([busy.action, busy.warned], ['none', undefined]);
});

test('decide: maxRuntime stops however busy; the earlier deadline wins', () => {
  const r = rules('{idleAfter: 2h, maxRuntime: 1d}');
  const d = decideLifecycle(running({ startedAt: T0 - 86_400_000, activity: { state: 'busy', why: 'CPU 99%' } }), r, T0, undefined, 'train');
  assert.deepEqual([d.action, d.rule, d.reason], ['stop', 'maxRuntime', 'running since 2026-11-30T12:00:00Z (1d0h; maxRuntime 1d)']);
  const young = decideLifecycle(running({ startedAt: T0 - 3_600_000, activity: idleFor(3 * 3_600_000) }), r, T0, undefined, 'nb');
  assert.equal(young.rule, 'idleAfter');
  assert.equal(decideLifecycle(running({ state: 'paused', startedAt: T0 - 2 * 86_400_000 }), r, T0, undefined, 'p').action, 'stop');
});

test('decide: stopped longer than removeStoppedAfter is removed; created-never-started counts from creation; exempt is left alone', () => {
  const r = rules('{removeStoppedAfter: 3d, maxRuntime: 1h}');
  const exited = (finishedAt: number): LifecycleFacts => ({ state: 'exited', createdAt: T0 - 10 * 86_400_000, startedAt: T0 - 9 * 86_400_000, finishedAt, exempt: false });
  assert.equal(decideLifecycle(exited(T0 - 2 * 86_400_000), r, T0, undefined, 'old').action, 'none');
  const rm = decideLifecycle(exited(T0 - 3 * 86_400_000), r, T0, undefined, 'old');
  assert.deepEqual([rm.action, rm.rule, rm.reason], ['remove', 'removeStoppedAfter', 'stopped since 2026-11-28T12:00:00Z (3d0h; removeStoppedAfter 3d)']);
  const created: LifecycleFacts = { state: 'created', createdAt: T0 - 4 * 86_400_000, exempt: false };
  assert.match(decideLifecycle(created, r, T0, undefined, 'c').reason, /^created, never started, since 2026-11-27T12:00:00Z/);
  assert.equal(decideLifecycle({ ...exited(T0 - 30 * 86_400_000), exempt: true }, r, T0, undefined, 'keep').action, 'none');
  assert.equal(decideLifecycle(running({ exempt: true }), r, T0, undefined, 'keep').reason, 'exempt (lifecycle=exempt label set at create)');
  assert.equal(decideLifecycle({ ...exited(T0 - 30 * 86_400_000), state: 'removing' }, r, T0, undefined, 'x').action, 'none');
  const warn = decideLifecycle(exited(T0 - 3 * 86_400_000 + 60_000), rules('{removeStoppedAfter: 3d, warnBefore: 1h}'), T0, undefined, 'old');
  assert.match(warn.message!, /^your stopped container old will be removed at 2026-12-01T13:00:00Z \(in 1h00m\): stopped since 2026-11-28T12:01:00Z \(2d23h; removeStoppedAfter 3d\)\. Its named volumes are kept/);
});

test('host processes: gpu.hostProcesses decides; root and hostProcessUsers are always allowed', () => {
  const p = policy('gpu: {hostProcesses: kill, hostProcessUsers: [carol, "@ds01-admin"]}\n');
  const bob = { user: 'bob', uid: 1002, unixGroups: ['bob'] };
  assert.deepEqual(decideHostProcess(p, bob, ['train']), { action: 'kill', reason: 'GPU process of bob outside any container (gpu.hostProcesses kill); its GPU is allocated to train' });
  assert.equal(decideHostProcess(p, { user: 'root', uid: 0, unixGroups: [] }, []).action, 'allow');
  assert.equal(decideHostProcess(p, { user: 'carol', uid: 1003, unixGroups: [] }, []).action, 'allow');
  assert.equal(decideHostProcess(p, { user: 'zed', uid: 1009, unixGroups: ['ds01-admin'] }, []).action, 'allow');
  assert.equal(decideHostProcess(policy('gpu: {hostProcesses: warn}\n'), bob, []).action, 'warn');
  assert.equal(decideHostProcess(policy(''), bob, ['x']).action, 'allow');
});

test('formatSpan', () => {
  assert.deepEqual([formatSpan(45_000), formatSpan(12 * 60_000), formatSpan(90_000), formatSpan(2 * 3_600_000 + 5 * 60_000), formatSpan(3 * 86_400_000 + 4 * 3_600_000)], ['45s', '12m', '1m30s', '2h05m', '3d4h']);
});
