/**
 * Every process on a GPU, with a name: from
 * `nvidia-smi --query-compute-apps=pid,gpu_uuid,used_gpu_memory --format=csv,noheader,nounits`
 * (through `gpu.inventory` / GPUGUARD_NVIDIA_SMI, like `-L`), each pid
 * attributed through /proc/<pid>/cgroup to the Docker container it runs in
 * and that container's owner, or else to the unix user who runs it on the
 * host. A host process on a GPU that a container holds is a conflict.
 *
 * On a MIG-enabled GPU nvidia-smi names the physical GPU's UUID, not the
 * slice's (the query has no GPU-instance field): such a process is placed on
 * the GPU, and a host process there conflicts with every container holding
 * a slice of it. A driver that names the slice's MIG UUID is understood too.
 *
 * `parseComputeApps`, `attributeProcesses` and `placeProcesses` are pure;
 * the /proc reads come in through `ProcFacts`.
 */
import { readFileSync } from 'node:fs';
import { containerOfEntries, parseProcCgroup } from '../sys/cgroup.ts';
import type { Holding } from './allocate.ts';
import { InventoryError, inventorySource, runNvidiaSmi, type Inventory } from './inventory.ts';

export const COMPUTE_APPS_ARGS = ['--query-compute-apps=pid,gpu_uuid,used_gpu_memory', '--format=csv,noheader,nounits'];

/** One line of the query. */
export interface ComputeApp {
  pid: number;
  /** As nvidia-smi names it: a GPU-… UUID (MIG: the physical GPU's), or a MIG-… UUID. */
  gpuUuid: string;
  /** Memory in MiB; null where nvidia-smi says [N/A] (MIG, older drivers) or similar. */
  usedMiB: number | null;
}

const NOT_AVAILABLE = /^\[[^\]]*\]$|^N\/A$/; // [N/A], [Not Supported], [Insufficient Permissions], N/A

/** Parse the CSV; `source` names it in errors, which also give the line. */
export function parseComputeApps(text: string, source = 'nvidia-smi --query-compute-apps'): ComputeApp[] {
  const out: ComputeApp[] = [];
  text.split('\n').forEach((raw, i) => {
    const line = raw.replace(/\r$/, '').trim();
    if (!line || /^No running (compute )?processes found/i.test(line)) return;
    const where = `${source}: line ${i + 1}`;
    const fields = line.split(',').map((f) => f.trim());
    if (fields.length !== 3) throw new InventoryError(`${where}: expected "pid, gpu_uuid, used_gpu_memory", got "${line}"`);
    const [pid, uuid, mem] = fields as [string, string, string];
    if (!/^\d+$/.test(pid) || Number(pid) === 0) throw new InventoryError(`${where}: "${pid}" is not a process id`);
    if (!/^(GPU|MIG)-[0-9A-Za-z/-]+$/.test(uuid)) throw new InventoryError(`${where}: "${uuid}" is not a GPU or MIG UUID`);
    let usedMiB: number | null = null;
    if (/^\d+$/.test(mem)) usedMiB = Number(mem);
    else if (!NOT_AVAILABLE.test(mem)) throw new InventoryError(`${where}: "${mem}" is not a memory figure in MiB`);
    out.push({ pid: Number(pid), gpuUuid: uuid, usedMiB });
  });
  return out;
}

/** The query, run like `-L`; `unavailable` when there is no nvidia-smi or no GPU. */
export async function queryComputeApps(env: NodeJS.ProcessEnv, policyInventory?: string): Promise<{ apps: ComputeApp[]; source: string } | { unavailable: string; source: string }> {
  const bin = inventorySource(env, policyInventory);
  const source = `${bin} ${COMPUTE_APPS_ARGS[0]}`;
  const r = await runNvidiaSmi(bin, COMPUTE_APPS_ARGS, env);
  if ('unavailable' in r) return { unavailable: r.unavailable, source };
  return { apps: parseComputeApps(r.stdout, source), source };
}

/** What attribution reads of a process; undefined: it has exited (or cannot be seen). */
export interface ProcFacts {
  cgroup(pid: number): string | undefined;
  uid(pid: number): number | undefined;
  /** Start time (field 22 of /proc/<pid>/stat), so a later signal can check it is still the same process. */
  startTime(pid: number): string | undefined;
}

function read(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
}

export const hostProc: ProcFacts = {
  cgroup: (pid) => read(`/proc/${pid}/cgroup`),
  uid: (pid) => {
    const m = /^Uid:\s+(\d+)/m.exec(read(`/proc/${pid}/status`) ?? '');
    return m ? Number(m[1]) : undefined;
  },
  startTime: (pid) => {
    const stat = read(`/proc/${pid}/stat`);
    return stat === undefined ? undefined : stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
  },
};

/** A container this host's dockerd knows: its name and owner. */
export interface KnownContainer {
  name: string;
  user: string | undefined;
  uid: number | undefined;
}

/** One GPU process, named (the JSON shape of `gpuguard gpus --json`). */
export interface GpuProcess {
  pid: number;
  /** The UUID nvidia-smi reported. */
  gpu: string;
  /** The inventory slot of that UUID (`0`, `1.2`), or the GPU index for a MIG-enabled GPU's own UUID; null if not in the inventory. */
  slot: string | null;
  usedMiB: number | null;
  /** The container's owner, or the host process's unix user; null when not known. */
  user: string | null;
  uid: number | null;
  where: 'container' | 'host';
  /** The container's id and name (null for host processes; name null for a container of another engine). */
  id: string | null;
  name: string | null;
  /** Host processes: the containers holding the GPU it runs on. */
  conflict: boolean;
  conflictWith: string[];
  /** /proc start time, to recognise the process later. */
  startTime: string | null;
}

/**
 * Attribute each app to a container (by the cgroup its pid is in) or to the
 * host. Processes that exited between the query and the /proc read are
 * returned apart in `exited`.
 */
export function attributeProcesses(
  apps: readonly ComputeApp[],
  o: {
    proc: ProcFacts;
    containers: ReadonlyMap<string, KnownContainer>;
    userByUid: (uid: number) => string | undefined;
    inventory: Inventory;
    holdings: readonly Holding[];
  },
): { processes: GpuProcess[]; exited: ComputeApp[] } {
  const processes: GpuProcess[] = [];
  const exited: ComputeApp[] = [];
  for (const app of apps) {
    const cgroupText = o.proc.cgroup(app.pid);
    const uid = o.proc.uid(app.pid);
    if (cgroupText === undefined || uid === undefined) {
      exited.push(app);
      continue;
    }
    const base = { pid: app.pid, gpu: app.gpuUuid, slot: slotOf(app.gpuUuid, o.inventory), usedMiB: app.usedMiB, startTime: o.proc.startTime(app.pid) ?? null };
    const inContainer = containerOfEntries(parseProcCgroup(cgroupText));
    if (inContainer) {
      const known = o.containers.get(inContainer.id);
      processes.push({
        ...base,
        user: known ? (known.user ?? null) : (o.userByUid(uid) ?? null),
        uid: known ? (known.uid ?? null) : uid,
        where: 'container',
        id: inContainer.id,
        name: known?.name ?? null,
        conflict: false,
        conflictWith: [],
      });
      continue;
    }
    const conflictWith = holdersOn(app.gpuUuid, o.inventory, o.holdings);
    processes.push({ ...base, user: o.userByUid(uid) ?? null, uid, where: 'host', id: null, name: null, conflict: conflictWith.length > 0, conflictWith });
  }
  return { processes, exited };
}

function slotOf(uuid: string, inventory: Inventory): string | null {
  const d = inventory.devices.find((x) => x.uuid === uuid);
  if (d) return d.slot;
  const g = inventory.gpus.find((x) => x.uuid === uuid);
  return g ? String(g.index) : null;
}

/** Names of the containers holding the device with this UUID, or (a MIG GPU's own UUID) any slice of it. */
export function holdersOn(uuid: string, inventory: Inventory, holdings: readonly Holding[]): string[] {
  const gpu = inventory.gpus.find((g) => g.uuid === uuid);
  const uuids = new Set([uuid, ...(gpu ? inventory.devices.filter((d) => d.gpu === gpu.index).map((d) => d.uuid) : [])]);
  const names = holdings.filter((h) => uuids.has(h.uuid) && h.holder.kind === 'container').map((h) => h.holder.name);
  return [...new Set(names)];
}

/**
 * Where each process shows in the device table: under its device (a full
 * GPU or a slice by its UUID); a MIG GPU's own UUID under the slices of it
 * that its container holds, else under the GPU (`gpu:<index>`).
 */
export function placeProcesses(processes: readonly GpuProcess[], inventory: Inventory, holdings: readonly Holding[]): Map<string, GpuProcess[]> {
  const out = new Map<string, GpuProcess[]>();
  const add = (key: string, p: GpuProcess) => out.set(key, [...(out.get(key) ?? []), p]);
  for (const p of processes) {
    if (inventory.devices.some((d) => d.uuid === p.gpu)) {
      add(p.gpu, p);
      continue;
    }
    const gpu = inventory.gpus.find((g) => g.uuid === p.gpu);
    if (!gpu) {
      add('unknown', p);
      continue;
    }
    const slices = inventory.devices.filter((d) => d.gpu === gpu.index).map((d) => d.uuid);
    const own = p.id ? holdings.filter((h) => h.holder.kind === 'container' && h.holder.id === p.id && slices.includes(h.uuid)).map((h) => h.uuid) : [];
    if (own.length) for (const u of new Set(own)) add(u, p);
    else add(`gpu:${gpu.index}`, p);
  }
  return out;
}
