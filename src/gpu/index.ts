/**
 * GPU allocation for the docker shim: the impure runner around the pure
 * parts (request.ts normalises, allocate.ts decides, state.ts reads Docker,
 * reserve.ts makes it race-free). The shim hands over the normalised request
 * and gets back the devices, the `--gpus` value and the labels to put in
 * place of the user's GPU flags, or a PolicyDenied (exit 125).
 */
import { PolicyDenied } from '../errors.ts';
import { engineSocket, inspectContainers, inspectContainersAPI, type ContainerDetails } from '../docker/gateway.ts';
import type { EffectiveUser } from '../policy/effective.ts';
import { lookupUser } from '../policy/identity.ts';
import { isoSeconds, labelKeys } from '../policy/labels.ts';
import { resolveUser } from '../policy/effective.ts';
import type { Policy } from '../policy/schema.ts';
import { parseDuration } from '../policy/units.ts';
import { allocate, decideStart, type Allocation, type Holding, type Requester } from './allocate.ts';
import { loadInventory, type GpuDevice, type Inventory } from './inventory.ts';
import { describeRequest, type GpuRequest } from './request.ts';
import {
  cacheStore,
  gpuLock,
  tryGpuLock,
  type GpuLock,
  readReservations,
  readWaitTickets,
  removeRecord,
  runDir,
  withGpuLock,
  writeReservation,
  writeWaitTicket,
  type Reservation,
  type WaitTicket,
} from './reserve.ts';
import { containerGpus, holdingsFromContainers, readGpuContainers, type ContainerGpus } from './state.ts';

export interface GpuGrant {
  request: GpuRequest;
  devices: GpuDevice[];
  /** The value for the one `--gpus` flag that replaces the user's GPU flags. */
  gpusValue: string;
  /** `<p>.gpu.allocated`, `.uuid`, `.allocated_at`, `.priority`, in that order. */
  labels: [string, string][];
  /** The reservation file (live until this process, then the docker CLI, exits). */
  reservation?: string;
}

export interface GrantOptions {
  request: GpuRequest;
  policy: Policy;
  user: Pick<EffectiveUser, 'user' | 'uid' | 'gpus'>;
  env: NodeJS.ProcessEnv;
  realDocker?: string;
  /** Decide only: no lock, no reservation, no waiting (for `gpuguard explain`). */
  dryRun?: boolean;
  /** A locked read already under way ({@link prefetchGpuState}); used for the first attempt, then released. */
  prefetched?: Promise<Prefetched>;
  /** Where the one-line waiting status goes (default: stderr when it is a TTY). */
  status?: (line: string | undefined) => void;
  /** Containers whose devices do not count (compose: the project's own service containers, which it recreates or reuses). */
  except?: (c: ContainerGpus) => boolean;
}

/** Reservations → holdings (pure). */
export function holdingsFromReservations(list: readonly { path: string; record: Reservation }[]): Holding[] {
  return list.flatMap(({ path, record }) =>
    record.devices.map((uuid) => ({
      uuid,
      holder: { kind: 'reservation' as const, id: path.split('/').pop()!, name: `pid ${record.pid}`, user: record.user, uid: record.uid, state: 'reserved', since: record.at },
    })),
  );
}

/** `--gpus` value for these devices, docker's CSV quoting where a field has a comma. */
export function gpusFlagValue(devices: readonly GpuDevice[], capabilities?: readonly string[]): string {
  const fields = [`device=${devices.map((d) => d.uuid).join(',')}`];
  if (capabilities?.length) fields.push(`capabilities=${capabilities.join(',')}`);
  return fields.map((f) => (/[",]/.test(f) ? `"${f.replace(/"/g, '""')}"` : f)).join(',');
}

export function gpuLabels(prefix: string, devices: readonly GpuDevice[], at: Date, priority: number): [string, string][] {
  const k = labelKeys(prefix);
  return [
    [k.gpuAllocated, devices.map((d) => d.slot).join(',')],
    [k.gpuUuid, devices.map((d) => d.uuid).join(',')],
    [k.gpuAllocatedAt, isoSeconds(at)],
    [k.gpuPriority, String(priority)],
  ];
}

function durationMs(v: string | number, fallback = 0): number {
  return parseDuration(v) ?? fallback;
}

/** Waiting order: higher priority first, then earlier arrival. */
export function isAhead(t: Pick<WaitTicket, 'priority' | 'arrival'>, me: Pick<WaitTicket, 'priority' | 'arrival'>): boolean {
  return t.priority > me.priority || (t.priority === me.priority && t.arrival < me.arrival);
}

function defaultStatus(): (line: string | undefined) => void {
  if (!process.stderr.isTTY) return () => {};
  let shown = false;
  return (line) => {
    if (line === undefined) {
      if (shown) process.stderr.write('\r\x1b[K');
      shown = false;
      return;
    }
    process.stderr.write(`\r\x1b[Kgpuguard: ${line}`);
    shown = true;
  };
}

/** What the locked read collects: reservations first, then Docker (the order that makes it race-free). */
export interface LockedState {
  reservations: ReturnType<typeof readReservations>;
  containers: Promise<ContainerGpus[]>;
}

function readState(o: { dir: string; policy: Policy; env: NodeJS.ProcessEnv; realDocker?: string; cache?: boolean }): LockedState {
  const reservations = readReservations(o.dir);
  const containers = readGpuContainers({
    env: o.env,
    holdAfterStopMs: durationMs(o.policy.gpu.holdAfterStop),
    ...(o.realDocker ? { realDocker: o.realDocker } : {}),
    ...(o.cache ? { cache: cacheStore(o.dir) } : {}),
  });
  containers.catch(() => {}); // awaited by the caller
  return { reservations, containers };
}

async function holdingsOf(state: LockedState, o: { inventory: Inventory; policy: Policy; exceptId?: string; except?: (c: ContainerGpus) => boolean }): Promise<Holding[]> {
  const containers = await state.containers;
  return [
    ...holdingsFromContainers(containers, o.inventory, { labelPrefix: o.policy.labelPrefix, holdAfterStopMs: durationMs(o.policy.gpu.holdAfterStop), now: new Date(), ...(o.exceptId ? { exceptId: o.exceptId } : {}), ...(o.except ? { except: o.except } : {}) }),
    ...holdingsFromReservations(state.reservations),
  ];
}

async function currentHoldings(o: { dir: string; inventory: Inventory; policy: Policy; env: NodeJS.ProcessEnv; realDocker?: string; exceptId?: string; except?: (c: ContainerGpus) => boolean; cache?: boolean }): Promise<Holding[]> {
  return holdingsOf(readState(o), o);
}

/** A locked read started early (see {@link prefetchGpuState}). */
export interface Prefetched {
  lock: GpuLock;
  state: LockedState;
}

/**
 * Take the GPU lock and start reading the state now, before the caller
 * knows who is asking (the shim looks the user up meanwhile: `getent`,
 * `id`). When the lock is free it is taken synchronously and the Docker
 * request is on its way when this returns. The lock is released by
 * {@link grantGpus}, or when the process exits.
 */
export function prefetchGpuState(o: { policy: Policy; env: NodeJS.ProcessEnv; realDocker?: string }): Promise<Prefetched> {
  const dir = runDir(o.env);
  const start = (lock: GpuLock): Prefetched => {
    try {
      return { lock, state: readState({ dir, policy: o.policy, env: o.env, cache: true, ...(o.realDocker ? { realDocker: o.realDocker } : {}) }) };
    } catch (err) {
      lock.release();
      throw err;
    }
  };
  let p: Promise<Prefetched>;
  try {
    const lock = tryGpuLock(dir);
    p = lock ? Promise.resolve(start(lock)) : gpuLock(dir).then(start);
  } catch (err) {
    p = Promise.reject(err);
  }
  p.catch(() => {}); // awaited by grantGpus
  return p;
}

/**
 * Give a request its devices, or refuse. With `gpu.wait` a request that
 * only lacks free devices waits (priority, then arrival order) up to that
 * long. Returns undefined for kind `none`.
 */
export async function grantGpus(o: GrantOptions): Promise<GpuGrant | undefined> {
  const { request, policy, user, env } = o;
  if (request.kind === 'none') return undefined;
  const dir = runDir(env);
  const inventory = await loadInventory(env, policy.gpu.inventory);
  const requester = { user: user.user, uid: user.uid, quota: user.gpus };
  const priority = user.gpus.priority;
  const finish = (devices: GpuDevice[], reservation?: string): GpuGrant => {
    const at = new Date();
    return {
      request,
      devices,
      gpusValue: gpusFlagValue(devices, request.capabilities),
      labels: gpuLabels(policy.labelPrefix, devices, at, priority),
      ...(reservation ? { reservation } : {}),
    };
  };
  const refuse = (a: Extract<Allocation, { ok: false }>, waitedMs = 0) =>
    new PolicyDenied(`${a.message}${waitedMs ? ` (waited ${Math.round(waitedMs / 1000)}s, gpu.wait)` : ''}`, `gpus.${a.rule}`);

  if (o.dryRun) {
    const holdings = await currentHoldings({ dir, inventory, policy, env, ...(o.realDocker ? { realDocker: o.realDocker } : {}), ...(o.except ? { except: o.except } : {}) });
    const a = allocate(request, inventory, holdings, requester);
    if (!a.ok) throw refuse(a);
    return finish(a.devices);
  }

  const waitMs = durationMs(policy.gpu.wait);
  const started = Date.now();
  const arrival = started;
  const need = request.kind === 'count' ? request.count! : request.kind === 'devices' ? request.devices!.length : 1;
  const priorities = new Map<number, number>();
  const priorityOf = (t: WaitTicket): number => {
    // A ticket's priority is what the policy gives its owner, not what the file claims.
    if (!priorities.has(t.uid)) {
      try {
        priorities.set(t.uid, resolveUser(policy, lookupUser(String(t.uid))).gpus.priority);
      } catch {
        priorities.set(t.uid, 0);
      }
    }
    return priorities.get(t.uid)!;
  };
  const status = o.status ?? defaultStatus();
  let ticket: string | undefined;
  let prefetched = o.prefetched;
  try {
    for (;;) {
      let position = 0;
      const decideLocked = async (state: LockedState) => {
        const tickets = waitMs > 0 ? readWaitTickets(dir) : [];
        const holdings = await holdingsOf(state, { inventory, policy, ...(o.except ? { except: o.except } : {}) });
        const ahead = tickets.filter((t) => t.path !== ticket && isAhead({ priority: priorityOf(t.record), arrival: t.record.arrival }, { priority, arrival }));
        position = ahead.length;
        const aheadDemand = request.kind === 'devices' ? 0 : ahead.reduce((s, t) => s + t.record.need, 0);
        const decision = allocate(request, inventory, holdings, requester, { aheadDemand });
        if (decision.ok) {
          const path = writeReservation(dir, {
            uid: user.uid,
            user: user.user,
            devices: decision.devices.map((d) => d.uuid),
            slots: decision.devices.map((d) => d.slot),
            at: new Date().toISOString(),
            priority,
          });
          return { ...decision, path };
        }
        return decision;
      };
      let a: Awaited<ReturnType<typeof decideLocked>>;
      if (prefetched) {
        const p = await prefetched;
        prefetched = undefined;
        try {
          a = await decideLocked(p.state);
        } finally {
          p.lock.release();
        }
      } else {
        a = await withGpuLock(dir, async () => decideLocked(readState({ dir, policy, env, cache: true, ...(o.realDocker ? { realDocker: o.realDocker } : {}) })));
      }
      if (a.ok) return finish(a.devices, a.path);
      const waited = Date.now() - started;
      if (!a.retryable || waitMs <= 0) throw refuse(a);
      if (waited >= waitMs) throw refuse(a, waited);
      ticket ??= writeWaitTicket(dir, { uid: user.uid, user: user.user, priority, arrival, need });
      const left = Math.ceil((waitMs - waited) / 1000);
      status(`waiting for ${describeRequest(request)}${position ? `, ${position} request${position === 1 ? '' : 's'} ahead` : ''}; ${left}s left (gpu.wait)`);
      await new Promise((r) => setTimeout(r, Math.min(250, Math.max(10, waitMs - waited))));
    }
  } finally {
    if (prefetched) void prefetched.then((p) => p.lock.release(), () => {});
    if (ticket) removeRecord(ticket);
    status(undefined);
  }
}

/**
 * `docker start` in shim mode: a stopped container keeps the device it was
 * created with; src/gpu/allocate.ts decideStart says whether it may have
 * it back (vanished, taken, over its owner's quota). Under the GPU lock,
 * with a reservation for the devices while the start runs. Containers
 * already running, and ones without GPUs, pass.
 */
export async function checkStart(o: { refs: string[]; policy: Policy; env: NodeJS.ProcessEnv; realDocker?: string }): Promise<void> {
  const { policy, env } = o;
  const socket = engineSocket(env);
  let details: ContainerDetails[];
  if (socket) details = await inspectContainersAPI(socket, o.refs);
  else if (o.realDocker) details = await inspectContainers(o.realDocker, o.refs, env);
  else return;
  const targets = details.map(containerGpus).filter((c) => c.ids.length && c.state !== 'running');
  if (!targets.length) return;
  const dir = runDir(env);
  const inventory = await loadInventory(env, policy.gpu.inventory);
  // No inventory at all (nvidia-smi missing or failing): nothing to check against; the hook reports it.
  if (inventory.unavailable) return;
  const k = labelKeys(policy.labelPrefix);
  await withGpuLock(dir, async () => {
    for (const c of targets) {
      const holdings = await currentHoldings({ dir, inventory, policy, env, exceptId: c.id, ...(o.realDocker ? { realDocker: o.realDocker } : {}) });
      const owner = ownerRequester(policy, c.labels[k.user]);
      const d = decideStart(c, inventory, holdings, owner, policy.labelPrefix, policy.gpu.holdAfterStop);
      if (!d.ok) throw new PolicyDenied(d.message, `gpus.${d.rule}`);
      if (d.devices.length) {
        writeReservation(dir, {
          // The file is the caller's (an admin may start another user's container).
          uid: process.getuid?.() ?? 0,
          user: owner?.user ?? (c.labels[k.user] || 'unknown'),
          devices: d.devices.map((x) => x.uuid),
          slots: d.devices.map((x) => x.slot),
          at: new Date().toISOString(),
          priority: Number(c.labels[k.gpuPriority] ?? 0) || 0,
        });
      }
    }
  });
}

/** The owner named by a container's label as an allocator requester (with their quota), if the user database knows them. */
function ownerRequester(policy: Policy, user: string | undefined): Requester | undefined {
  if (!user) return undefined;
  try {
    const who = resolveUser(policy, lookupUser(user));
    return { user: who.user, uid: who.uid, quota: who.gpus };
  } catch {
    return undefined;
  }
}
