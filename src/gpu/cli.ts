/**
 * `gpuguard gpus [--json]`: every device of the inventory with its holders
 * (containers from Docker, live reservations), free ones included, and the
 * processes running on it, each named (processes.ts): in which container
 * and whose, or whose host process, and whether a host process sits on a
 * device a container holds. The holder's user is the container's
 * `<p>.user` label, else `unknown` (a container made with the raw docker
 * CLI); a process's user comes from the ownership module.
 */
import { UsageError } from '../errors.ts';
import { findRealDocker } from '../docker/gateway.ts';
import { loadPolicy } from '../policy/load.ts';
import { parseDuration } from '../policy/units.ts';
import { holdersByDevice, type Holder } from './allocate.ts';
import { holdingsFromReservations } from './index.ts';
import { formatEquivalents, loadInventory, type Inventory } from './inventory.ts';
import { attributeProcesses, hostProc, placeProcesses, queryComputeApps, type GpuProcess, type KnownContainer, type ProcFacts } from './processes.ts';
import { readReservations, runDir } from './reserve.ts';
import { holdingsFromContainers, readGpuContainers } from './state.ts';
import { containerOfEntries, parseProcCgroup } from '../sys/cgroup.ts';
import type { Holding } from './allocate.ts';

export interface GpuRow {
  slot: string;
  uuid: string;
  profile: string;
  equivalents: number;
  /** free, or the holder's state (running, created, exited, reserved …). */
  state: string;
  user: string | null;
  container: string | null;
  containerId: string | null;
  since: string | null;
  /** A stopped container's hold ends then. */
  until: string | null;
}

/** One row per device and holder; a free device gets one row (pure). */
export function gpuRows(inventory: Inventory, holders: Map<string, Holder[]>): GpuRow[] {
  const rows: GpuRow[] = [];
  for (const d of inventory.devices) {
    const base = { slot: d.slot, uuid: d.uuid, profile: d.profile, equivalents: d.equivalents };
    const hs = holders.get(d.uuid) ?? [];
    if (!hs.length) rows.push({ ...base, state: 'free', user: null, container: null, containerId: null, since: null, until: null });
    for (const h of hs) {
      rows.push({
        ...base,
        state: h.state,
        user: h.user ?? 'unknown',
        container: h.kind === 'container' ? h.name : `(being created, ${h.name})`,
        containerId: h.kind === 'container' ? h.id.slice(0, 12) : null,
        since: h.since ?? null,
        until: h.until ?? null,
      });
    }
  }
  return rows;
}

function age(iso: string | null, now: Date): string {
  if (!iso) return '';
  const ms = now.getTime() - Date.parse(iso);
  if (!Number.isFinite(ms)) return '';
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m`;
  if (s < 86400) return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
  return `${Math.floor(s / 86400)}d`;
}

/** The table, aligned columns, one line per row, each device's processes below its rows (pure). */
export function formatGpuTable(rows: readonly GpuRow[], now: Date, processes: ReadonlyMap<string, GpuProcess[]> = new Map()): string {
  const header = ['SLOT', 'UUID', 'PROFILE', 'USER', 'CONTAINER', 'STATE', 'HELD SINCE'];
  const body = rows.map((r) => [
    r.slot,
    r.uuid,
    r.profile,
    r.user ?? '-',
    r.container ?? '-',
    r.until ? `${r.state}, held until ${r.until.replace(/\.\d{3}Z$/, 'Z')}` : r.state,
    r.since ? `${r.since.replace(/\.\d+Z$/, 'Z')} (${age(r.since, now)})` : '-',
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...body.map((b) => b[i]!.length)));
  const line = (cols: string[]) => cols.map((c, i) => (i === cols.length - 1 ? c : c.padEnd(widths[i]!))).join('  ');
  const out = [line(header)];
  rows.forEach((r, i) => {
    out.push(line(body[i]!));
    const last = rows[i + 1]?.uuid !== r.uuid;
    if (last) for (const p of processes.get(r.uuid) ?? []) out.push(processLine(p));
    // Processes nvidia-smi could place only on a MIG GPU, not on one of its slices: after the GPU's last slice.
    const gpu = r.slot.split('.')[0];
    if (last && r.slot.includes('.') && rows[i + 1]?.slot.split('.')[0] !== gpu) {
      for (const p of processes.get(`gpu:${gpu}`) ?? []) out.push(processLine(p, `GPU ${gpu}, slice unknown`));
    }
  });
  for (const p of processes.get('unknown') ?? []) out.push(processLine(p, 'not in the inventory'));
  return out.join('\n');
}

function processLine(p: GpuProcess, where?: string): string {
  const mem = p.usedMiB === null ? 'memory n/a' : `${p.usedMiB} MiB`;
  const place = p.where === 'container' ? `container ${p.name ?? `${p.id!.slice(0, 12)} (not this dockerd's)`}` : 'host process';
  const conflict = p.conflict ? `  CONFLICT: the GPU is allocated to ${p.conflictWith.join(', ')}` : '';
  return `  └ pid ${p.pid}  ${p.user ?? 'unknown'}  ${place}  ${mem}${where ? `  (${where}: ${p.gpu})` : ''}${conflict}`;
}

/**
 * Name every GPU process: the containers they run in are inspected (only
 * those: nvidia-smi lists few processes) and their owners decided by the
 * ownership module.
 */
async function namedProcesses(o: { env: NodeJS.ProcessEnv; policy: { labelPrefix: string; docker: { realPath?: string | undefined }; gpu: { inventory: string } }; inventory: Inventory; holdings: readonly Holding[]; proc?: ProcFacts }): Promise<{ processes: GpuProcess[]; exited: number[] } | { unavailable: string }> {
  // A failing process query leaves the device table standing: it says why below it.
  const q = await queryComputeApps(o.env, o.policy.gpu.inventory).catch((err: Error) => ({ unavailable: err.message }));
  if ('unavailable' in q) return { unavailable: q.unavailable };
  const proc = o.proc ?? hostProc;
  const ids = new Set<string>();
  for (const app of q.apps) {
    const text = proc.cgroup(app.pid);
    const c = text === undefined ? undefined : containerOfEntries(parseProcCgroup(text));
    if (c) ids.add(c.id);
  }
  const containers = new Map<string, KnownContainer>();
  if (ids.size) {
    const gw = await import('../docker/gateway.ts');
    const { ownersOf } = await import('../ownership/facts.ts');
    const reader = await gw.dockerReader({ env: o.env, realDocker: () => gw.findRealDocker(o.env, o.policy.docker.realPath) });
    const { found } = await reader.inspectContainers([...ids]);
    const list = [...found.values()];
    const { owners } = await ownersOf(reader, list, o.policy.labelPrefix);
    list.forEach((c, i) => containers.set(c.Id, { name: c.Name.replace(/^\//, ''), user: owners[i]!.user, uid: owners[i]!.uid }));
  }
  const { userByUidAsync } = await import('../ownership/facts.ts');
  const uids = [...new Set(q.apps.map((a) => proc.uid(a.pid)).filter((u): u is number => u !== undefined))];
  const names = new Map(await Promise.all(uids.map(async (uid) => [uid, (await userByUidAsync(uid))?.user] as const)));
  const userByUid = (uid: number) => names.get(uid);
  const r = attributeProcesses(q.apps, { proc, containers, userByUid, inventory: o.inventory, holdings: o.holdings });
  return { processes: r.processes, exited: r.exited.map((a) => a.pid) };
}

export async function run(args: string[]): Promise<number> {
  let json = false;
  for (const a of args) {
    if (a === '--json') json = true;
    else throw new UsageError(`gpus: unknown argument "${a}"; usage: gpuguard gpus [--json]`);
  }
  const env = process.env;
  const { policy } = loadPolicy(env);
  const holdAfterStopMs = parseDuration(policy.gpu.holdAfterStop) ?? 0;
  let realDocker: string | undefined;
  try {
    realDocker = findRealDocker(env, policy.docker.realPath);
  } catch {
    realDocker = undefined;
  }
  const [inventory, containers] = await Promise.all([
    loadInventory(env, policy.gpu.inventory),
    readGpuContainers({ env, holdAfterStopMs, ...(realDocker ? { realDocker } : {}) }),
  ]);
  const now = new Date();
  const reservations = readReservations(runDir(env));
  const holdings = [...holdingsFromContainers(containers, inventory, { labelPrefix: policy.labelPrefix, holdAfterStopMs, now }), ...holdingsFromReservations(reservations)];
  const rows = gpuRows(inventory, holdersByDevice(holdings));
  const named = inventory.unavailable ? { unavailable: inventory.unavailable } : await namedProcesses({ env, policy, inventory, holdings });
  const processes = 'processes' in named ? named.processes : [];
  if (json) {
    console.log(
      JSON.stringify(
        {
          source: inventory.source,
          ...(inventory.unavailable ? { unavailable: inventory.unavailable } : {}),
          devices: rows,
          processes,
          ...('unavailable' in named ? { processesUnavailable: named.unavailable } : { exited: named.exited }),
        },
        null,
        2,
      ),
    );
    return 0;
  }
  if (!inventory.devices.length) {
    console.log(`no GPU devices (${inventory.unavailable ?? `${inventory.source} lists none`})`);
    return 0;
  }
  console.log(formatGpuTable(rows, now, placeProcesses(processes, inventory, holdings)));
  const free = rows.filter((r) => r.state === 'free').length;
  const eq = inventory.devices.filter((d) => !holdings.some((h) => h.uuid === d.uuid)).reduce((s, d) => s + d.equivalents, 0);
  console.log(`\n${free} of ${inventory.devices.length} devices free (${formatEquivalents(eq)} GPU)`);
  const conflicts = processes.filter((p) => p.conflict).length;
  const where = 'unavailable' in named ? `GPU processes unknown: ${named.unavailable}` : `${processes.length} GPU process(es)${conflicts ? `, ${conflicts} host process(es) on a GPU a container holds` : ''}${named.exited.length ? `; ${named.exited.length} exited before they could be named` : ''}`;
  console.log(where);
  return 0;
}
