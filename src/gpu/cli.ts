/**
 * `gpuguard gpus [--json]`: every device of the inventory with its holders
 * (containers from Docker, live reservations), free ones included. The
 * holder's user is the container's `<p>.user` label, else `unknown` (a
 * container made with the raw docker CLI).
 */
import { UsageError } from '../errors.ts';
import { findRealDocker } from '../docker/gateway.ts';
import { loadPolicy } from '../policy/load.ts';
import { parseDuration } from '../policy/units.ts';
import { holdersByDevice, type Holder } from './allocate.ts';
import { holdingsFromReservations } from './index.ts';
import { formatEquivalents, loadInventory, type Inventory } from './inventory.ts';
import { readReservations, runDir } from './reserve.ts';
import { holdingsFromContainers, readGpuContainers } from './state.ts';

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

/** The table, aligned columns, one line per row (pure). */
export function formatGpuTable(rows: readonly GpuRow[], now: Date): string {
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
  return [header, ...body].map((cols) => cols.map((c, i) => (i === cols.length - 1 ? c : c.padEnd(widths[i]!))).join('  ')).join('\n');
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
  if (json) {
    console.log(JSON.stringify({ source: inventory.source, ...(inventory.unavailable ? { unavailable: inventory.unavailable } : {}), devices: rows }, null, 2));
    return 0;
  }
  if (!inventory.devices.length) {
    console.log(`no GPU devices (${inventory.unavailable ?? `${inventory.source} lists none`})`);
    return 0;
  }
  console.log(formatGpuTable(rows, now));
  const free = rows.filter((r) => r.state === 'free').length;
  const eq = inventory.devices.filter((d) => !holdings.some((h) => h.uuid === d.uuid)).reduce((s, d) => s + d.equivalents, 0);
  console.log(`\n${free} of ${inventory.devices.length} devices free (${formatEquivalents(eq)} GPU)`);
  return 0;
}
