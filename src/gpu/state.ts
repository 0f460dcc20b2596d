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

/** Containers → holdings (pure). `exceptId` leaves one container out (for `docker start` checks). */
export function holdingsFromContainers(
  containers: readonly ContainerGpus[],
  inventory: Inventory,
  opts: { labelPrefix: string; holdAfterStopMs: number; now: Date; exceptId?: string },
): Holding[] {
  const out: Holding[] = [];
  for (const c of containers) {
    if (!c.ids.length || c.id === opts.exceptId) continue;
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
 * Every container that may hold a GPU now. Over the Engine API socket when
 * the CLI would use a local one (list, then inspect only the candidates, in
 * parallel); otherwise through the real CLI.
 */
export async function readGpuContainers(opts: { env: NodeJS.ProcessEnv; realDocker?: string; holdAfterStopMs: number }): Promise<ContainerGpus[]> {
  const socket = engineSocket(opts.env);
  let details: ContainerDetails[];
  if (socket) {
    const list = await listContainersAPI(socket);
    const wanted = list.filter((c) => HOLDING_STATES.has(c.State ?? '') || (c.State === 'exited' && opts.holdAfterStopMs > 0));
    details = await inspectContainersAPI(socket, wanted.map((c) => c.Id));
  } else {
    if (!opts.realDocker) throw new Error('readGpuContainers: no local socket and no docker CLI');
    details = await inspectAllContainers(opts.realDocker, opts.env);
  }
  return details.map(containerGpus).filter((c) => c.ids.length > 0);
}
