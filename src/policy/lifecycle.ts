/**
 * Lifecycle decisions for `gpuguard reap`: which containers are warned,
 * stopped or removed and why, how idleness is measured between two reaps,
 * and what happens to GPU processes outside containers. Pure: facts in
 * (times, CPU counters and GPU processes the reaper read, what was already
 * warned), decisions out. The reap command gathers the facts and applies
 * the answers.
 */
import { principalMatches } from './effective.ts';
import type { Identity } from './identity.ts';
import type { LifecycleRulesT, Policy } from './schema.ts';

/** Percent of one core under which a container is idle, when the policy names none (seed 003: 1% was too strict). */
export const DEFAULT_IDLE_CPU_PERCENT = 2;

export type LifecycleRule = 'idleAfter' | 'maxRuntime' | 'removeStoppedAfter';

/** One user's (or an unowned container's) rules, durations in ms; an absent rule is off. */
export interface LifecycleRules {
  idleAfterMs?: number;
  idleCpuPercent: number;
  maxRuntimeMs?: number;
  removeStoppedAfterMs?: number;
  warnBeforeMs: number;
  /** Seconds between SIGTERM and SIGKILL for containers without their own --stop-timeout; undefined: Docker's default. */
  stopTimeoutS?: number;
  /** The values as written, for messages. */
  written: Partial<Record<LifecycleRule | 'warnBefore', string>>;
}

const UNIT_MS: Record<string, number> = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** Milliseconds of a lifecycle duration (`30s`, `2h`, `7d`); undefined for `never` or nothing. */
export function lifecycleMs(value: string | undefined): number | undefined {
  if (value === undefined || value === 'never') return undefined;
  const m = /^(\d+)([smhd])$/.exec(value);
  if (!m) throw new Error(`lifecycle duration "${value}" passed validation but is not understood`);
  return Number(m[1]) * UNIT_MS[m[2]!]!;
}

/** The rules for a member of `group` (undefined: a container nobody could be shown to own): the group's keys over the top level's. */
export function lifecycleFor(policy: Policy, group: string | undefined): LifecycleRules {
  const top: LifecycleRulesT = policy.lifecycle ?? {};
  const own: LifecycleRulesT = (group !== undefined ? policy.groups[group]?.lifecycle : undefined) ?? {};
  const pick = <K extends keyof LifecycleRulesT>(k: K): LifecycleRulesT[K] => (own[k] !== undefined ? own[k] : top[k]);
  const written: LifecycleRules['written'] = {};
  for (const k of ['idleAfter', 'maxRuntime', 'removeStoppedAfter', 'warnBefore'] as const) {
    const v = pick(k);
    if (v !== undefined && v !== 'never') written[k] = v;
  }
  const stopTimeout = lifecycleMs(pick('stopTimeout'));
  return {
    ...(written.idleAfter ? { idleAfterMs: lifecycleMs(written.idleAfter)! } : {}),
    idleCpuPercent: pick('idleCpuPercent') ?? DEFAULT_IDLE_CPU_PERCENT,
    ...(written.maxRuntime ? { maxRuntimeMs: lifecycleMs(written.maxRuntime)! } : {}),
    ...(written.removeStoppedAfter ? { removeStoppedAfterMs: lifecycleMs(written.removeStoppedAfter)! } : {}),
    warnBeforeMs: lifecycleMs(written.warnBefore) ?? 0,
    ...(stopTimeout !== undefined ? { stopTimeoutS: Math.round(stopTimeout / 1000) } : {}),
    written,
  };
}

/** Whether the policy asks the reaper for anything at all (lifecycle rules anywhere, or host GPU process enforcement). */
export function reaperNeeded(policy: Policy): boolean {
  const any = (l: LifecycleRulesT | undefined) => !!l && [l.idleAfter, l.maxRuntime, l.removeStoppedAfter].some((v) => v !== undefined && v !== 'never');
  return any(policy.lifecycle) || Object.values(policy.groups).some((g) => any(g.lifecycle)) || policy.gpu.hostProcesses !== 'allow';
}

// ---------------------------------------------------------------- activity

/** What the reaper keeps per running container between two runs. */
export interface ActivityMemory {
  /** The start the counter belongs to: a restart makes a new cgroup, whose counter starts again. */
  startedAt: string;
  /** When the counter was read (ms since the epoch) and its value (ns of CPU time). */
  at: number;
  cpuNs: number;
  /** Since when every interval measured was idle; absent: busy, or not known yet. */
  idleSince?: number;
}

export interface ActivityObservation {
  startedAt: string;
  at: number;
  /** The container's cgroup CPU counter (ns); undefined when it could not be read. */
  cpuNs: number | undefined;
  /** GPU processes attributed to the container; undefined when GPU processes could not be read. */
  gpuProcesses: number | undefined;
  /** Whether the container was given GPUs (without any it is idle on CPU alone). */
  hasGpu: boolean;
}

export interface Activity {
  state: 'idle' | 'busy' | 'unknown';
  idleSince?: number;
  /** CPU use over the interval since the last reap, percent of one core. */
  cpuPercent?: number;
  intervalMs?: number;
  /** Why, in words. */
  why: string;
  /** What to keep for the next run (undefined: nothing, the next run starts afresh). */
  memory: ActivityMemory | undefined;
}

/** Two reaps closer than this measure noise, not use: the earlier verdict stands. */
export const MIN_INTERVAL_MS = 500;

/**
 * Idle or busy, from the CPU counter's growth since the last reap and the
 * GPU processes seen now. A container is idle over an interval when it ran
 * no GPU process and used less than `idleCpuPercent` of one core; it has
 * been idle since the start of the first interval of an unbroken idle run.
 * Anything not measured (first sight, a restart, an unreadable counter, GPU
 * use unknown) is not idle: nothing is stopped on a guess.
 */
export function trackActivity(prev: ActivityMemory | undefined, obs: ActivityObservation, idleCpuPercent: number): Activity {
  const gpuBusy = (obs.gpuProcesses ?? 0) > 0;
  const gpuWhy = gpuBusy ? `${obs.gpuProcesses} GPU process${obs.gpuProcesses === 1 ? '' : 'es'}` : '';
  const fresh = (cpuNs: number): ActivityMemory => ({ startedAt: obs.startedAt, at: obs.at, cpuNs });
  if (obs.cpuNs === undefined) {
    return { state: gpuBusy ? 'busy' : 'unknown', why: gpuBusy ? gpuWhy : 'CPU counter unreadable', memory: undefined };
  }
  if (!prev || prev.startedAt !== obs.startedAt || obs.cpuNs < prev.cpuNs) {
    return { state: gpuBusy ? 'busy' : 'unknown', why: gpuBusy ? gpuWhy : 'first measurement since the container started', memory: fresh(obs.cpuNs) };
  }
  const intervalMs = obs.at - prev.at;
  if (intervalMs < MIN_INTERVAL_MS) {
    if (gpuBusy) return { state: 'busy', why: gpuWhy, memory: { ...prev, idleSince: undefined } };
    return prev.idleSince !== undefined
      ? { state: 'idle', idleSince: prev.idleSince, why: 'idle at the last measurement (under 0.5 s ago)', memory: prev }
      : { state: 'unknown', why: 'measured under 0.5 s ago', memory: prev };
  }
  const cpuPercent = ((obs.cpuNs - prev.cpuNs) / (intervalMs * 1e6)) * 100;
  const cpu = `CPU ${formatPercent(cpuPercent)} of a core over ${formatSpan(intervalMs)}`;
  const measured = { cpuPercent, intervalMs };
  if (gpuBusy || cpuPercent >= idleCpuPercent) {
    return { ...measured, state: 'busy', why: gpuBusy ? `${gpuWhy}, ${cpu}` : `${cpu} (idleCpuPercent ${idleCpuPercent})`, memory: fresh(obs.cpuNs) };
  }
  if (obs.hasGpu && obs.gpuProcesses === undefined) return { ...measured, state: 'unknown', why: `${cpu}, but GPU processes could not be read`, memory: fresh(obs.cpuNs) };
  const idleSince = prev.idleSince ?? prev.at;
  return { ...measured, state: 'idle', idleSince, why: `${obs.hasGpu ? 'no GPU process, ' : ''}${cpu}`, memory: { ...fresh(obs.cpuNs), idleSince } };
}

// ---------------------------------------------------------------- decisions

export interface LifecycleFacts {
  /** Docker's state: running, paused, restarting, created, exited, dead, removing. */
  state: string;
  /** ms since the epoch. */
  createdAt: number;
  startedAt?: number;
  finishedAt?: number;
  /** Labelled `<p>.lifecycle=exempt` at create (not by its image). */
  exempt: boolean;
  /** For running containers. */
  activity?: Pick<Activity, 'state' | 'idleSince' | 'why'>;
}

/** A warning given: for which deadline of which rule, and when. */
export interface WarnedMemory {
  key: string;
  at: number;
}

export interface LifecycleDecision {
  action: 'none' | 'warn' | 'stop' | 'remove';
  rule?: LifecycleRule;
  /** Why, for the event log and the report. */
  reason: string;
  /** When the stop or removal is (or was) due. */
  due?: number;
  /** The warning to remember for the next run (undefined: none to keep). */
  warned?: WarnedMemory;
  /** For `warn`: the message for the owner. */
  message?: string;
}

const RUNNING_STATES = new Set(['running', 'paused', 'restarting']);
const STOPPED_STATES = new Set(['created', 'exited', 'dead']);

interface Candidate {
  rule: LifecycleRule;
  action: 'stop' | 'remove';
  deadline: number;
  reason: string;
}

function candidates(c: LifecycleFacts, r: LifecycleRules, now: number): Candidate[] {
  const out: Candidate[] = [];
  if (RUNNING_STATES.has(c.state)) {
    if (r.maxRuntimeMs !== undefined && c.startedAt !== undefined) {
      out.push({ rule: 'maxRuntime', action: 'stop', deadline: c.startedAt + r.maxRuntimeMs, reason: `running since ${iso(c.startedAt)} (${formatSpan(now - c.startedAt)}; maxRuntime ${r.written.maxRuntime})` });
    }
    const a = c.activity;
    if (r.idleAfterMs !== undefined && a?.state === 'idle' && a.idleSince !== undefined) {
      out.push({ rule: 'idleAfter', action: 'stop', deadline: a.idleSince + r.idleAfterMs, reason: `idle since ${iso(a.idleSince)} (${formatSpan(now - a.idleSince)}; idleAfter ${r.written.idleAfter}): ${a.why}` });
    }
  } else if (STOPPED_STATES.has(c.state) && r.removeStoppedAfterMs !== undefined) {
    const since = c.state !== 'created' && c.finishedAt !== undefined ? c.finishedAt : c.createdAt;
    const what = c.state === 'created' ? 'created, never started,' : 'stopped';
    out.push({ rule: 'removeStoppedAfter', action: 'remove', deadline: since + r.removeStoppedAfterMs, reason: `${what} since ${iso(since)} (${formatSpan(now - since)}; removeStoppedAfter ${r.written.removeStoppedAfter})` });
  }
  return out.sort((a, b) => a.deadline - b.deadline);
}

/**
 * What to do with one container now. With `warnBefore` the owner is warned
 * that long before the deadline, and never acted on less than `warnBefore`
 * after the warning (a warning given late, because the reaper was not
 * running, moves the action later, not the notice shorter).
 */
export function decideLifecycle(c: LifecycleFacts, r: LifecycleRules, now: number, warned: WarnedMemory | undefined, name: string): LifecycleDecision {
  if (c.exempt) return { action: 'none', reason: 'exempt (lifecycle=exempt label set at create)' };
  const first = candidates(c, r, now)[0];
  if (!first) {
    const a = c.activity;
    return { action: 'none', reason: a ? `${a.state}: ${a.why}` : c.state };
  }
  const key = `${first.rule}@${first.deadline}`;
  const prior = warned?.key === key ? warned : undefined;
  const verb = first.action === 'stop' ? 'stopped' : 'removed';
  if (r.warnBeforeMs <= 0) {
    if (now >= first.deadline) return { action: first.action, rule: first.rule, reason: first.reason, due: first.deadline };
    return { action: 'none', rule: first.rule, reason: `to be ${verb} at ${iso(first.deadline)}: ${first.reason}`, due: first.deadline };
  }
  if (prior) {
    const due = Math.max(first.deadline, prior.at + r.warnBeforeMs);
    if (now >= due) return { action: first.action, rule: first.rule, reason: `${first.reason}; warned at ${iso(prior.at)}`, due, warned: prior };
    return { action: 'none', rule: first.rule, reason: `warned at ${iso(prior.at)}, to be ${verb} at ${iso(due)}: ${first.reason}`, due, warned: prior };
  }
  if (now >= first.deadline - r.warnBeforeMs) {
    const due = Math.max(first.deadline, now + r.warnBeforeMs);
    const then = `${iso(due)} (in ${formatSpan(due - now)})`;
    const message =
      first.action === 'stop'
        ? `your container ${name} will be stopped at ${then}: ${first.reason}. Use it or save your work; an admin can exempt it.`
        : `your stopped container ${name} will be removed at ${then}: ${first.reason}. Its named volumes are kept; start it again or remove it yourself.`;
    return { action: 'warn', rule: first.rule, reason: `to be ${verb} at ${iso(due)}: ${first.reason}`, due, warned: { key, at: now }, message };
  }
  return { action: 'none', rule: first.rule, reason: `to be ${verb} at ${iso(first.deadline)} (warning at ${iso(first.deadline - r.warnBeforeMs)}): ${first.reason}`, due: first.deadline };
}

// ---------------------------------------------------------------- host GPU processes

export interface HostProcessDecision {
  action: 'allow' | 'warn' | 'kill';
  reason: string;
}

/**
 * A GPU process outside any container, of unix user `who`: `gpu.hostProcesses`
 * decides, except for root (drivers, DCGM, admins at work) and the users in
 * `gpu.hostProcessUsers`, who are always allowed.
 */
export function decideHostProcess(policy: Policy, who: Pick<Identity, 'user' | 'uid' | 'unixGroups'>, conflictWith: readonly string[]): HostProcessDecision {
  const conflict = conflictWith.length ? `; its GPU is allocated to ${conflictWith.join(', ')}` : '';
  const mode = policy.gpu.hostProcesses;
  if (mode === 'allow') return { action: 'allow', reason: `gpu.hostProcesses is allow${conflict}` };
  if (who.uid === 0) return { action: 'allow', reason: `root's process${conflict}` };
  if (principalMatches(policy.gpu.hostProcessUsers, who)) return { action: 'allow', reason: `${who.user} is in gpu.hostProcessUsers${conflict}` };
  return { action: mode, reason: `GPU process of ${who.user || `uid ${who.uid}`} outside any container (gpu.hostProcesses ${mode})${conflict}` };
}

// ---------------------------------------------------------------- words

export function iso(ms: number): string {
  return new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');
}

/** 45s, 12m, 2h05m, 3d4h. */
export function formatSpan(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${s % 60 ? `${String(s % 60).padStart(2, '0')}s` : ''}`;
  if (s < 86400) return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
  return `${Math.floor(s / 86400)}d${Math.floor((s % 86400) / 3600)}h`;
}

function formatPercent(p: number): string {
  return `${p < 10 ? p.toFixed(1) : Math.round(p)}%`;
}
