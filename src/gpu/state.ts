/**
 * Who holds which GPU, read from Docker and nothing else (seed 004): every
 * container's `HostConfig.DeviceRequests`, and for containers on an NVIDIA
 * runtime their `NVIDIA_VISIBLE_DEVICES`. Containers count while running,
 * created, paused or restarting, and for `gpu.holdAfterStop` after they
 * stopped (`State.FinishedAt`). Labels only describe (owner, allocation
 * time); device requests decide, so containers made with the raw docker CLI
 * count the same.
 */
import {
  engineSocket,
  inspectAllContainers,
  inspectContainersAPI,
  listContainersAPI,
  type ContainerDetails,
} from '../docker/gateway.ts';
import { resolveIds, type Holder, type Holding } from './allocate.ts';
import type { Inventory } from './inventory.ts';
import { isNvidiaRuntime, parseVisibleDevices } from './request.ts';

/** One container that asks for GPUs, as Docker has it. */
export interface ContainerGpus {
  id: string;
  name: string;
  state: string;
  /** Device ids as the daemon will pass them (UUIDs, indices, `all`). */
  ids: string[];
  labels: Record<string, string>;
  created: string;
  finishedAt?: string;
}

/** States in which a container keeps its devices regardless of time. */
const HOLDING_STATES = new Set(['running', 'created', 'paused', 'restarting']);

/**
 * The GPU ids a container is given, the way dockerd's NVIDIA support hands
 * them to the hook: device ids as written; a count N as indices 0…N-1; a
 * count of -1 as `all`. On an NVIDIA runtime the container's
 * NVIDIA_VISIBLE_DEVICES (image ENV included) decides as well.
 */
export function gpuIdsOf(c: ContainerDetails): string[] {
  const ids: string[] = [];
  for (const req of c.HostConfig.DeviceRequests ?? []) {
    const isGpu = req.Driver === 'nvidia' || (req.Capabilities ?? []).some((set) => set.includes('gpu'));
    if (!isGpu) continue;
    if (req.DeviceIDs?.length) ids.push(...req.DeviceIDs);
    else if ((req.Count ?? 0) < 0) ids.push('all');
    else for (let i = 0; i < (req.Count ?? 0); i++) ids.push(String(i));
  }
  if (isNvidiaRuntime(c.HostConfig.Runtime)) {
    let value: string | undefined;
    for (const e of c.Config.Env ?? []) if (e.startsWith('NVIDIA_VISIBLE_DEVICES=')) value = e.slice('NVIDIA_VISIBLE_DEVICES='.length);
    if (value !== undefined) {
      try {
        const r = parseVisibleDevices(value, 'NVIDIA_VISIBLE_DEVICES');
        if (r.kind === 'all') ids.push('all');
        if (r.kind === 'devices') ids.push(...r.devices!);
      } catch {
        /* an unreadable value exposes nothing */
      }
    }
  }
  return [...new Set(ids)];
}

export function containerGpus(c: ContainerDetails): ContainerGpus {
  return {
    id: c.Id,
    name: c.Name.replace(/^\//, ''),
    state: c.State.Status,
    ids: gpuIdsOf(c),
    labels: c.Config.Labels ?? {},
    created: c.Created,
    ...(c.State.FinishedAt ? { finishedAt: c.State.FinishedAt } : {}),
  };
}

/** Until when a container holds its devices: undefined = indefinitely, null = not at all. */
export function holdUntil(c: Pick<ContainerGpus, 'state' | 'finishedAt'>, holdAfterStopMs: number): Date | undefined | null {
  if (HOLDING_STATES.has(c.state)) return undefined;
  if (c.state !== 'exited' || !c.finishedAt || holdAfterStopMs <= 0) return null;
  const finished = Date.parse(c.finishedAt);
  if (!Number.isFinite(finished) || finished <= 0) return null;
  return new Date(finished + holdAfterStopMs);
}

/** Containers → holdings (pure). `exceptId` leaves one container out (for `docker start` checks), `except` any it matches (compose: the project's own, which it recreates or reuses). */
export function holdingsFromContainers(
  containers: readonly ContainerGpus[],
  inventory: Inventory,
  opts: { labelPrefix: string; holdAfterStopMs: number; now: Date; exceptId?: string; except?: (c: ContainerGpus) => boolean },
): Holding[] {
  const out: Holding[] = [];
  for (const c of containers) {
    if (!c.ids.length || c.id === opts.exceptId || opts.except?.(c)) continue;
    const until = holdUntil(c, opts.holdAfterStopMs);
    if (until === null || (until && until <= opts.now)) continue;
    const uid = c.labels[`${opts.labelPrefix}.uid`];
    const holder: Holder = {
      kind: 'container',
      id: c.id,
      name: c.name,
      state: c.state,
      since: c.labels[`${opts.labelPrefix}.gpu.allocated_at`] ?? c.created,
      ...(c.labels[`${opts.labelPrefix}.user`] ? { user: c.labels[`${opts.labelPrefix}.user`] } : {}),
      ...(uid && /^\d+$/.test(uid) ? { uid: Number(uid) } : {}),
      ...(until ? { until: until.toISOString() } : {}),
    };
    const { devices, unknown } = resolveIds(c.ids, inventory);
    for (const d of devices) out.push({ uuid: d.uuid, holder });
    // Ids no longer in the inventory (a vanished MIG slice) still belong to the container.
    for (const u of unknown) out.push({ uuid: u, holder });
  }
  return out;
}

/**
 * What the cache keeps per container id: its GPU ids. They cannot change
 * while the container exists (device requests, runtime and env are fixed at
 * create; `docker update` touches none of them) and ids are never reused, so
 * an entry is right for as long as the container lives.
 */
export type GpuIdCache = Record<string, string[]>;

export interface CacheStore {
  load(): GpuIdCache;
  save(cache: GpuIdCache): void;
}

/**
 * Every container that may hold a GPU now. Over the Engine API socket when
 * the CLI would use a local one: one list, then inspect only the containers
 * the cache does not know yet (and stopped GPU containers, for their
 * FinishedAt), in parallel. Otherwise through the real CLI.
 */
export async function readGpuContainers(opts: { env: NodeJS.ProcessEnv; realDocker?: string; holdAfterStopMs: number; cache?: CacheStore }): Promise<ContainerGpus[]> {
  const socket = engineSocket(opts.env);
  if (!socket) {
    if (!opts.realDocker) throw new Error('readGpuContainers: no local socket and no docker CLI');
    return (await inspectAllContainers(opts.realDocker, opts.env)).map(containerGpus).filter((c) => c.ids.length > 0);
  }
  const list = await listContainersAPI(socket);
  const cache = opts.cache?.load() ?? {};
  const out: ContainerGpus[] = [];
  const inspect: string[] = [];
  for (const c of list) {
    const state = c.State ?? '';
    const holds = HOLDING_STATES.has(state);
    const mayHold = holds || (state === 'exited' && opts.holdAfterStopMs > 0);
    if (!mayHold) continue;
    const known = cache[c.Id];
    if (known === undefined) inspect.push(c.Id);
    else if (!known.length) continue;
    else if (!holds) inspect.push(c.Id); // stopped: its FinishedAt decides
    else {
      out.push({
        id: c.Id,
        name: (c.Names?.[0] ?? c.Id.slice(0, 12)).replace(/^\//, ''),
        state,
        ids: known,
        labels: c.Labels ?? {},
        created: new Date((c.Created ?? 0) * 1000).toISOString(),
      });
    }
  }
  const details = (await inspectContainersAPI(socket, inspect)).map(containerGpus);
  if (opts.cache) {
    const live = new Set(list.map((c) => c.Id));
    const next: GpuIdCache = {};
    for (const [id, ids] of Object.entries(cache)) if (live.has(id)) next[id] = ids;
    for (const c of details) next[c.id] = c.ids;
    if (details.some((c) => cache[c.id] === undefined) || Object.keys(next).length !== Object.keys(cache).length) opts.cache.save(next);
  }
  return [...out, ...details.filter((c) => c.ids.length > 0)];
}
