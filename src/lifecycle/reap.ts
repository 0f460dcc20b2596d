/**
 * `gpuguard reap [--dry-run] [--json] [--state FILE]` (root; a systemd timer
 * runs it every 5 minutes): every container on the host, gpuguard's or not,
 * is warned, stopped or removed as the policy's `lifecycle` says, and GPU
 * processes outside containers are handled as `gpu.hostProcesses` says.
 * This module gathers the facts (facts.ts), asks src/policy/lifecycle.ts,
 * applies the answers and writes one event per action (`"face":"reap"`).
 */
import { execFile } from 'node:child_process';
import { readFileSync, statSync } from 'node:fs';
import { GpuguardError, UsageError } from '../errors.ts';
import { appendEvent, type GpuguardEvent } from '../events/log.ts';
import { engineSocket, summaryOfInspect, type ContainerDetails } from '../docker/gateway.ts';
import type { ContainerRecord } from '../docker/disk.ts';
import { isZeroTime } from '../docker/disk.ts';
import { resolveIds } from '../gpu/allocate.ts';
import { attributeProcesses, hostProc, type GpuProcess } from '../gpu/processes.ts';
import { containerGpus, gpuIdsOf, holdingsFromContainers } from '../gpu/state.ts';
import type { Owner } from '../ownership/detect.ts';
import { ownersOfList } from '../ownership/facts.ts';
import { resolveUser } from '../policy/effective.ts';
import { lookupUser, type Identity } from '../policy/identity.ts';
import {
  decideHostProcess, decideLifecycle, iso, lifecycleFor, reaperNeeded, trackActivity,
  type Activity, type HostProcessDecision, type LifecycleDecision, type LifecycleRules,
} from '../policy/lifecycle.ts';
import { loadPolicy } from '../policy/load.ts';
import type { Policy } from '../policy/schema.ts';
import { parseDuration } from '../policy/units.ts';
import { cgroupCpuNs } from '../sys/cgroup.ts';
import { Engine, messageOf, readDockerFacts, readGpuFacts, type DockerFacts } from './facts.ts';
import { DEFAULT_REAP_STATE, lockReaper, readReapState, writeReapState, type ReapState } from './state.ts';

const USAGE = 'usage: gpuguard reap [--dry-run] [--json] [--state FILE]';
/** Stops and removals at once (each stop may wait its container's stop timeout). */
const PARALLEL_ACTIONS = 8;
/** After SIGTERM, a host GPU process has this long before SIGKILL. */
const KILL_GRACE_MS = 5000;

interface Options {
  dryRun: boolean;
  json: boolean;
  statePath: string;
}

function parseArgs(args: string[]): Options {
  const o: Options = { dryRun: false, json: false, statePath: DEFAULT_REAP_STATE };
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a === '--dry-run' || a === '-n') o.dryRun = true;
    else if (a === '--json') o.json = true;
    else if (a === '--state' || a.startsWith('--state=')) {
      const v = a.includes('=') ? a.slice(a.indexOf('=') + 1) : args[++i];
      if (!v || !v.startsWith('/')) throw new UsageError(`--state needs an absolute file path\n${USAGE}`);
      o.statePath = v;
    } else if (a === '-h' || a === '--help') throw new UsageError(USAGE, 0);
    else throw new UsageError(`reap: unknown argument "${a}"\n${USAGE}`);
  }
  return o;
}

/** One container's outcome, as `--json` prints it. */
export interface ContainerReport {
  id: string;
  name: string;
  owner: string | null;
  ownerMethod: Owner['method'];
  group: string;
  state: string;
  action: LifecycleDecision['action'];
  rule: string | null;
  reason: string;
  due: string | null;
  activity: { state: Activity['state']; cpuPercent: number | null; gpuProcesses: number | null; idleSince: string | null } | null;
  /** GPU devices it holds (UUIDs, or ids Docker was given). */
  gpus: string[];
  /** Done (false in a dry run, in audit mode, or when it failed). */
  applied: boolean;
  error: string | null;
}

export interface ProcessReport {
  pid: number;
  gpu: string;
  user: string | null;
  action: HostProcessDecision['action'];
  reason: string;
  applied: boolean;
  error: string | null;
}

export interface ReapReport {
  at: string;
  dryRun: boolean;
  audit: boolean;
  containers: ContainerReport[];
  hostProcesses: ProcessReport[];
  /** Why GPU processes are unknown, when they are. */
  gpuProcesses: string | null;
  /** Docker API calls to read the facts (independent of the number of containers), and in all (with the stops and removals). */
  dockerApiCallsToRead: number;
  dockerApiCalls: number;
  recordsFromDisk: number;
  recordsFromApi: number;
  warnings: string[];
}

export async function run(args: string[]): Promise<number> {
  const o = parseArgs(args);
  if (process.getuid?.() !== 0) {
    throw new GpuguardError("gpuguard reap stops other users' containers and reads dockerd's data and every container's cgroup: run it as root (install.sh installs a systemd timer that does)", 1);
  }
  const lock = o.dryRun ? { release() {} } : lockReaper(o.statePath);
  if (!lock) {
    process.stderr.write(`gpuguard: reap: another reap holds the lock on ${o.statePath}'s directory; nothing done\n`);
    return 0;
  }
  const started = Date.now();
  const { state, warning } = readReapState(o.statePath);
  const warnings = warning ? [warning] : [];
  try {
    const report = await reap(o, state, warnings);
    if (!o.dryRun) {
      state.lastRun = {
        at: new Date(started).toISOString(),
        ok: report.containers.every((c) => !c.error) && report.hostProcesses.every((p) => !p.error),
        ...(report.containers.some((c) => c.error) ? { error: report.containers.find((c) => c.error)!.error! } : {}),
        durationMs: Date.now() - started,
        containers: report.containers.length,
        acted: report.containers.filter((c) => c.applied).length + report.hostProcesses.filter((p) => p.applied).length,
      };
      writeReapState(o.statePath, state);
    }
    print(report, o.json);
    return report.containers.some((c) => c.error) || report.hostProcesses.some((p) => p.error) ? 1 : 0;
  } catch (err) {
    if (!o.dryRun) {
      state.lastRun = { at: new Date(started).toISOString(), ok: false, error: err instanceof Error ? err.message : String(err), durationMs: Date.now() - started, containers: 0, acted: 0 };
      try {
        writeReapState(o.statePath, state);
      } catch {
        /* the error below says what matters */
      }
    }
    throw err;
  } finally {
    lock.release();
  }
}

async function reap(o: Options, state: ReapState, warnings: string[]): Promise<ReapReport> {
  const env = process.env;
  const { policy } = loadPolicy(env);
  const now = Date.now();
  const audit = policy.mode === 'audit';
  const empty: ReapReport = { at: new Date(now).toISOString(), dryRun: o.dryRun, audit, containers: [], hostProcesses: [], gpuProcesses: null, dockerApiCallsToRead: 0, dockerApiCalls: 0, recordsFromDisk: 0, recordsFromApi: 0, warnings };
  if (!reaperNeeded(policy)) {
    warnings.push('the policy sets no lifecycle rules and gpu.hostProcesses is allow: nothing to do');
    return empty;
  }
  const socket = daemonSocket(env, policy.api.upstream);
  if (!socket) throw new GpuguardError('gpuguard reap works on the local Docker daemon: unset DOCKER_HOST/DOCKER_CONTEXT or point DOCKER_HOST at a unix:// socket', 1);
  const engine = new Engine(socket);
  const [docker, gpu] = await Promise.all([readDockerFacts(engine), readGpuFacts(env, policy.gpu.inventory)]);
  const readCalls = engine.calls;
  const prefix = policy.labelPrefix;

  const owners = await ownersOf(docker, prefix);
  const holdAfterStopMs = parseDuration(policy.gpu.holdAfterStop) ?? 0;
  const holdings = holdingsFromContainers(docker.containers.map((r) => containerGpus(r.details)), gpu.inventory, { labelPrefix: prefix, holdAfterStopMs, now: new Date(now) });
  const known = new Map(docker.containers.map((r) => [r.details.Id, { name: nameOf(r.details), user: owners.get(r.details.Id)!.user, uid: owners.get(r.details.Id)!.uid }]));
  const identities = new IdentityCache();
  const attributed =
    'apps' in gpu.apps
      ? attributeProcesses(gpu.apps.apps, { proc: hostProc, containers: known, userByUid: (uid) => identities.byUid(uid)?.user, inventory: gpu.inventory, holdings })
      : undefined;
  if (!attributed && 'unavailable' in gpu.apps) warnings.push(`GPU processes unknown (${gpu.apps.unavailable}): no GPU container is taken for idle`);

  // ---- decide, container by container
  const plans: { r: ContainerRecord; report: ContainerReport; decision: LifecycleDecision; rules: LifecycleRules; quiet: boolean }[] = [];
  const liveIds = new Set<string>();
  for (const r of docker.containers) {
    const c = r.details;
    liveIds.add(c.Id);
    const owner = owners.get(c.Id)!;
    const group = owner.user ? resolveUser(policy, identities.byName(owner.user, owner.uid)).group : resolveUser(policy, NOBODY).group;
    const rules = lifecycleFor(policy, group);
    const memory = (state.containers[c.Id] ??= {});
    const gpuIds = gpuIdsOf(c);
    const gpuProcesses = attributed ? attributed.processes.filter((p) => p.id === c.Id).length : undefined;
    let activity: Activity | undefined;
    if (RUNNING.has(c.State.Status) && c.State.StartedAt) {
      activity = trackActivity(
        memory.activity,
        {
          startedAt: c.State.StartedAt,
          at: now,
          cpuNs: r.pid > 0 ? cgroupCpuNs(r.pid) : undefined,
          gpuProcesses,
          hasGpu: gpuIds.length > 0,
        },
        rules.idleCpuPercent,
      );
      if (activity.memory) memory.activity = activity.memory;
      else delete memory.activity;
    } else delete memory.activity;
    const labels = c.Config.Labels ?? {};
    const exemptKey = `${prefix}.lifecycle`;
    // Set at create by an admin, not carried by the image (anyone can build an image with any label).
    const exempt = labels[exemptKey] === 'exempt' && docker.images.get(c.Image)?.[exemptKey] !== 'exempt';
    const decision = decideLifecycle(
      {
        state: c.State.Status,
        createdAt: Date.parse(c.Created),
        ...(c.State.StartedAt && !isZeroTime(c.State.StartedAt) ? { startedAt: Date.parse(c.State.StartedAt) } : {}),
        ...(c.State.FinishedAt && !isZeroTime(c.State.FinishedAt) ? { finishedAt: Date.parse(c.State.FinishedAt) } : {}),
        exempt,
        ...(activity ? { activity } : {}),
      },
      rules,
      now,
      memory.warned,
      nameOf(c),
    );
    if (decision.warned) memory.warned = decision.warned;
    else delete memory.warned;
    // mode audit acts on nothing, so the same stop or removal is due at every run: logged once.
    let quiet = false;
    if (audit && (decision.action === 'stop' || decision.action === 'remove')) {
      const key = `${decision.rule}@${decision.due}`;
      quiet = memory.audited === key;
      memory.audited = key;
    } else delete memory.audited;
    const { devices, unknown } = resolveIds(gpuIds, gpu.inventory);
    plans.push({
      r,
      rules,
      decision,
      quiet,
      report: {
        id: c.Id,
        name: nameOf(c),
        owner: owner.user ?? null,
        ownerMethod: owner.method,
        group,
        state: c.State.Status,
        action: decision.action,
        rule: decision.rule ?? null,
        reason: decision.reason,
        due: decision.due !== undefined ? iso(decision.due) : null,
        activity: activity
          ? { state: activity.state, cpuPercent: activity.cpuPercent ?? null, gpuProcesses: gpuProcesses ?? null, idleSince: activity.idleSince !== undefined ? iso(activity.idleSince) : null }
          : null,
        gpus: [...devices.map((d) => d.uuid), ...unknown],
        applied: false,
        error: null,
      },
    });
  }
  for (const [id, m] of Object.entries(state.containers)) if (!liveIds.has(id) || (!m.activity && !m.warned && !m.audited)) delete state.containers[id];

  // ---- host GPU processes
  const processPlans: { p: GpuProcess; decision: HostProcessDecision; report: ProcessReport; key: string }[] = [];
  const liveProcs = new Set<string>();
  for (const p of attributed?.processes ?? []) {
    if (p.where !== 'host') continue;
    const key = `${p.pid}:${p.startTime ?? ''}`;
    liveProcs.add(key);
    const who = p.uid !== null ? identities.byUid(p.uid) : undefined;
    const decision = decideHostProcess(policy, who ?? { user: p.user ?? '', uid: p.uid ?? -1, unixGroups: [] }, p.conflictWith);
    // A warning is given once per process, not every five minutes.
    if (decision.action === 'warn' && state.hostProcesses[key]) continue;
    processPlans.push({ p, decision, key, report: { pid: p.pid, gpu: p.gpu, user: p.user, action: decision.action, reason: decision.reason, applied: false, error: null } });
  }
  for (const key of Object.keys(state.hostProcesses)) if (!liveProcs.has(key)) delete state.hostProcesses[key];

  // ---- apply
  const act = !o.dryRun && !audit;
  const log = (e: Pick<GpuguardEvent, 'decision'> & Partial<GpuguardEvent>) => {
    if (!o.dryRun) appendEvent(policy.events.log, { face: 'reap', ...e, ...(audit ? { audit: true } : {}) });
  };
  await inParallel(
    plans.filter((x) => x.decision.action !== 'none' && !x.quiet),
    PARALLEL_ACTIONS,
    async ({ r, decision, report, rules }) => {
      const c = r.details;
      const owner = owners.get(c.Id)!;
      const base = {
        user: owner.user ?? 'unknown',
        ...(owner.uid !== undefined ? { uid: owner.uid } : {}),
        container: nameOf(c),
        containerId: c.Id,
        rule: `lifecycle.${decision.rule}`,
        reasons: [decision.reason],
        ...(report.gpus.length ? { gpus: report.gpus } : {}),
      };
      try {
        if (decision.action === 'warn') {
          if (act && owner.user && policy.lifecycle?.notify && decision.message) {
            const notified = await notify(policy.lifecycle.notify, owner.user, decision.message, c);
            log({ ...base, decision: 'warn', due: report.due, notified: notified.ok, ...(notified.error ? { notifyError: notified.error } : {}) });
          } else log({ ...base, decision: 'warn', due: report.due });
          report.applied = act;
        } else if (decision.action === 'stop') {
          if (act) await stopContainer(engine, c.Id, r.stopTimeout ?? rules.stopTimeoutS);
          const freeAt = report.gpus.length ? new Date(Date.now() + holdAfterStopMs).toISOString() : undefined;
          log({ ...base, decision: 'stop', ...(freeAt ? { gpuReleased: report.gpus, gpuFreeAt: freeAt } : {}) });
          report.applied = act;
        } else if (decision.action === 'remove') {
          if (act) await removeContainer(engine, c.Id);
          log({ ...base, decision: 'remove', ...(report.gpus.length ? { gpuReleased: report.gpus } : {}) });
          report.applied = act;
        }
      } catch (err) {
        report.error = (err as Error).message;
        log({ ...base, decision: 'error', reasons: [`${decision.action} failed: ${report.error}`, decision.reason] });
      }
    },
  );
  for (const { p, decision, report, key } of processPlans) {
    if (decision.action === 'allow') continue;
    const base = { user: p.user ?? `uid ${p.uid}`, ...(p.uid !== null ? { uid: p.uid } : {}), pid: p.pid, rule: 'gpu.hostProcesses', reasons: [decision.reason], gpus: [p.gpu], ...(p.conflict ? { conflictWith: p.conflictWith } : {}) };
    try {
      if (decision.action === 'warn') {
        const message = `your process ${p.pid} uses GPU ${p.slot ?? p.gpu} outside a container; GPUs on this host are for containers (docker run --gpus 1 …)${p.conflict ? `, and this one is allocated to ${p.conflictWith.join(', ')}` : ''}.`;
        const notified = act && p.user && policy.lifecycle?.notify ? await notify(policy.lifecycle.notify, p.user, message) : undefined;
        log({ ...base, decision: 'warn', ...(notified ? { notified: notified.ok, ...(notified.error ? { notifyError: notified.error } : {}) } : {}) });
        if (act) state.hostProcesses[key] = { warnedAt: now };
        report.applied = act;
      } else if (decision.action === 'kill') {
        if (act) await killProcess(p);
        log({ ...base, decision: 'kill' });
        report.applied = act;
      }
    } catch (err) {
      report.error = (err as Error).message;
      log({ ...base, decision: 'error', reasons: [`${decision.action} failed: ${report.error}`, decision.reason] });
    }
  }

  return {
    ...empty,
    containers: plans.map((x) => x.report),
    hostProcesses: processPlans.map((x) => x.report),
    gpuProcesses: attributed ? null : 'unavailable' in gpu.apps ? gpu.apps.unavailable : null,
    dockerApiCallsToRead: readCalls,
    dockerApiCalls: engine.calls,
    recordsFromDisk: docker.fromDisk,
    recordsFromApi: docker.fromApi,
  };
}

/**
 * The reaper talks to dockerd itself: DOCKER_HOST when set; else, in API
 * mode (the upstream socket exists), dockerd's own socket rather than the
 * face in front of it; else the socket the docker CLI would use.
 */
function daemonSocket(env: NodeJS.ProcessEnv, upstream: string): string | undefined {
  if (env.DOCKER_HOST) return engineSocket(env);
  try {
    if (statSync(upstream).isSocket()) return upstream;
  } catch {
    /* not API mode */
  }
  return engineSocket(env);
}

const RUNNING = new Set(['running', 'paused', 'restarting']);
/** Who an unowned container counts as: named nowhere, so `defaults.group`. */
const NOBODY: Identity = { user: '', uid: -1, unixGroups: [] };

function nameOf(c: ContainerDetails): string {
  return c.Name.replace(/^\//, '');
}

/**
 * Owners as `docker ps` decides them (ownership/facts.ts ownersOfList: the
 * list's rows and the image labels, read once above), by container id. A
 * container the list did not have (none: records come from the list) falls
 * back to its record.
 */
async function ownersOf(docker: DockerFacts, prefix: string): Promise<Map<string, Owner>> {
  const images = { imageLabels: async (ids: string[]) => new Map(ids.filter((id) => docker.images.has(id)).map((id) => [id, docker.images.get(id)!])) };
  const rows = docker.containers.map((r) => docker.rows.get(r.details.Id) ?? summaryOfInspect(r.details));
  const { owners } = await ownersOfList(images, rows, prefix);
  return new Map(rows.map((row, i) => [row.Id, owners[i]!]));
}

/** Users looked up once per run (getent, id). A user gone from the database keeps the name the evidence gave. */
class IdentityCache {
  private readonly names = new Map<string, Identity>();
  private readonly uids = new Map<number, Identity | undefined>();
  byName(user: string, uid: number | undefined): Identity {
    let who = this.names.get(user);
    if (!who) {
      try {
        who = lookupUser(user);
      } catch {
        who = { user, uid: uid ?? -1, unixGroups: [] };
      }
      this.names.set(user, who);
    }
    return who;
  }
  byUid(uid: number): Identity | undefined {
    if (!this.uids.has(uid)) {
      let who: Identity | undefined;
      try {
        who = lookupUser(String(uid));
      } catch {
        who = undefined;
      }
      this.uids.set(uid, who);
    }
    return this.uids.get(uid);
  }
}

async function inParallel<T>(items: T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(limit, items.length) }, async () => {
      while (next < items.length) await fn(items[next++]!);
    }),
  );
}

/** `docker stop` semantics: the container's stop signal, then SIGKILL after the timeout (its own --stop-timeout, else lifecycle.stopTimeout, else Docker's). */
async function stopContainer(engine: Engine, id: string, timeoutS: number | undefined): Promise<void> {
  const q = timeoutS !== undefined ? `?t=${timeoutS}` : '';
  const r = await engine.request('POST', `/containers/${id}/stop${q}`, ((timeoutS ?? 10) + 60) * 1000);
  // 304: already stopped; 404: removed meanwhile. Either way it no longer runs.
  if (r.status !== 204 && r.status !== 304 && r.status !== 404) throw new GpuguardError(`docker stop answered ${r.status}: ${messageOf(r.body)}`);
}

/** `docker rm` without -v or -f: volumes stay, and a container started again meanwhile is refused by dockerd. */
async function removeContainer(engine: Engine, id: string): Promise<void> {
  const r = await engine.request('DELETE', `/containers/${id}`);
  if (r.status !== 204 && r.status !== 404) throw new GpuguardError(`docker rm answered ${r.status}: ${messageOf(r.body)}`);
}

/** SIGTERM, then SIGKILL after a grace period; only while the pid is still the process that was attributed (same start time and uid, not yet a zombie). */
async function killProcess(p: GpuProcess): Promise<void> {
  const same = () => p.startTime !== null && hostProc.startTime(p.pid) === p.startTime && hostProc.uid(p.pid) === (p.uid ?? undefined) && !isZombie(p.pid);
  if (!same()) return;
  const signal = (sig: NodeJS.Signals) => {
    try {
      process.kill(p.pid, sig);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ESRCH') throw err; // gone already
    }
  };
  signal('SIGTERM');
  const deadline = Date.now() + KILL_GRACE_MS;
  while (Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 100));
    if (!same()) return;
  }
  if (same()) signal('SIGKILL');
}

function isZombie(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) === 'Z';
  } catch {
    return true;
  }
}

/** Run `lifecycle.notify` as `PROGRAM… USER MESSAGE` (no shell), with the facts in the environment too. */
function notify(command: string | string[], user: string, message: string, c?: ContainerDetails): Promise<{ ok: boolean; error?: string }> {
  const [program, ...fixed] = typeof command === 'string' ? [command] : command;
  const env = {
    PATH: process.env.PATH ?? '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
    GPUGUARD_NOTIFY_USER: user,
    GPUGUARD_NOTIFY_MESSAGE: message,
    ...(c ? { GPUGUARD_NOTIFY_CONTAINER: nameOf(c), GPUGUARD_NOTIFY_CONTAINER_ID: c.Id } : {}),
  };
  return new Promise((resolve) => {
    const child = execFile(program!, [...fixed, user, message], { env, timeout: 10_000, encoding: 'utf8' }, (err, _out, stderr) => {
      if (!err) return resolve({ ok: true });
      resolve({ ok: false, error: `${program}: ${(stderr || err.message).trim().split('\n')[0]}` });
    });
    child.stdin?.end();
  });
}

function print(report: ReapReport, json: boolean): void {
  if (json) {
    console.log(JSON.stringify(report, null, 2));
    return;
  }
  const would = report.dryRun ? 'would ' : report.audit ? 'audit: would ' : '';
  for (const w of report.warnings) console.error(`gpuguard: reap: ${w}`);
  for (const c of report.containers) {
    if (c.action === 'none') continue;
    const verb = c.error ? `failed to ${c.action}` : c.applied ? { warn: 'warned', stop: 'stopped', remove: 'removed' }[c.action] : `${would}${c.action}`;
    console.log(`reap: ${verb} ${c.name} (${c.id.slice(0, 12)}, ${c.owner ?? 'owner unknown'}): ${c.reason}${c.error ? `: ${c.error}` : ''}`);
  }
  for (const p of report.hostProcesses) {
    if (p.action === 'allow') continue;
    const verb = p.error ? `failed to ${p.action}` : p.applied ? { warn: 'warned', kill: 'killed' }[p.action] : `${would}${p.action}`;
    console.log(`reap: ${verb} host process ${p.pid} on ${p.gpu} (${p.user ?? 'unknown user'}): ${p.reason}${p.error ? `: ${p.error}` : ''}`);
  }
  const n = (f: (c: ContainerReport) => boolean) => report.containers.filter(f).length;
  const done = (a: string) => n((c) => c.action === a && c.applied);
  const pending = (a: string) => n((c) => c.action === a && !c.applied);
  const parts = report.dryRun || report.audit
    ? [`${pending('stop')} to stop`, `${pending('remove')} to remove`, `${pending('warn')} to warn`]
    : [`${done('stop')} stopped`, `${done('remove')} removed`, `${done('warn')} warned`, ...(n((c) => !!c.error) ? [`${n((c) => !!c.error)} failed`] : [])];
  console.log(
    `reap: ${report.containers.length} container(s): ${parts.join(', ')}, ${n((c) => c.action === 'none')} left alone` +
      `${report.dryRun ? ' (dry run: nothing changed)' : report.audit ? ' (mode audit: nothing changed)' : ''}; ${report.dockerApiCallsToRead} Docker API calls to read`,
  );
}

