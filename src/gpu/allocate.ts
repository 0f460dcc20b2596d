/**
 * The GPU decision: which devices a request gets, or which quota refuses it.
 * Pure: inventory, who holds what (from Docker and live reservations), the
 * user and their quota in; devices or a refusal out. The shim and
 * `gpuguard explain` ask; neither reimplements any of it.
 *
 * Order of preference: with `fullGpu: false` only MIG slices can be had;
 * with `fullGpu: true` whole GPUs come first, then slices. Among slices the
 * smallest first (a `1g` before a `3g`), then nvidia-smi order, so big
 * slices stay free for those who need them and `maxEquivalents` is met.
 */
import type { GpuQuota } from '../policy/effective.ts';
import { formatEquivalents, type GpuDevice, type Inventory } from './inventory.ts';
import { describeRequest, type GpuRequest } from './request.ts';

export interface Holder {
  kind: 'container' | 'reservation';
  /** Container id, or the reservation's file name. */
  id: string;
  /** Container name (no leading slash), or `pid N` for a reservation. */
  name: string;
  /** The owner as far as known (the `<p>.user` label; the file owner for a reservation); undefined: unknown. */
  user?: string;
  uid?: number;
  /** running, created, paused, restarting, exited, reserved. */
  state: string;
  /** ISO time the device was taken (allocated_at label, else the container's creation). */
  since?: string;
  /** For a stopped container: when its hold ends (ISO). */
  until?: string;
}

/** One device held by one holder. A device may have several holders (raw docker lets anyone share). */
export interface Holding {
  uuid: string;
  holder: Holder;
}

export interface Requester {
  user: string;
  uid: number;
  quota: GpuQuota;
}

export type RefusalRule = 'max' | 'maxEquivalents' | 'perContainer' | 'fullGpu' | 'busy' | 'held' | 'unknown-device' | 'no-gpus';

export type Allocation =
  | { ok: true; devices: GpuDevice[] }
  | {
      ok: false;
      rule: RefusalRule;
      message: string;
      /** A refusal that waiting could turn into a grant (devices busy, not a quota). */
      retryable: boolean;
    };

const EPS = 1e-9;

export function isMine(h: Holder, who: Pick<Requester, 'user' | 'uid'>): boolean {
  if (h.uid !== undefined) return h.uid === who.uid;
  return h.user !== undefined && h.user === who.user;
}

/** The devices (by UUID) a user holds now, with where. */
export function heldBy(holdings: readonly Holding[], inventory: Inventory, who: Pick<Requester, 'user' | 'uid'>): { device: GpuDevice; holders: Holder[] }[] {
  const out = new Map<string, { device: GpuDevice; holders: Holder[] }>();
  for (const h of holdings) {
    if (!isMine(h.holder, who)) continue;
    const device = inventory.devices.find((d) => d.uuid === h.uuid);
    if (!device) continue;
    const entry = out.get(h.uuid) ?? { device, holders: [] };
    entry.holders.push(h.holder);
    out.set(h.uuid, entry);
  }
  return [...out.values()];
}

/**
 * Resolve the ids a request or a container names (index `1`, slot `1.2`,
 * `1:2`, GPU or MIG UUID) to devices of the inventory. A whole GPU that is
 * split into slices stands for all its slices. Unknown ids are returned apart.
 */
export function resolveIds(ids: readonly string[], inventory: Inventory): { devices: GpuDevice[]; unknown: string[]; splitGpus: string[] } {
  const devices: GpuDevice[] = [];
  const unknown: string[] = [];
  const splitGpus: string[] = [];
  const add = (d: GpuDevice) => devices.includes(d) || devices.push(d);
  for (const raw of ids) {
    const id = raw.trim();
    if (id === 'all') {
      inventory.devices.forEach(add);
      continue;
    }
    const slot = id.replace(':', '.');
    const direct = inventory.devices.find((d) => d.uuid === id || d.slot === slot);
    if (direct) {
      add(direct);
      continue;
    }
    const gpu = inventory.gpus.find((g) => g.uuid === id || String(g.index) === id);
    if (gpu?.mig) {
      splitGpus.push(id);
      inventory.devices.filter((d) => d.gpu === gpu.index).forEach(add);
      continue;
    }
    unknown.push(id);
  }
  return { devices, unknown, splitGpus };
}

function holdersOf(uuid: string, holdings: readonly Holding[]): Holder[] {
  return holdings.filter((h) => h.uuid === uuid).map((h) => h.holder);
}

function describeHolder(h: Holder): string {
  return h.kind === 'container' ? `container "${h.name}"` : `a container being created (${h.name})`;
}

function sumEq(devs: readonly GpuDevice[]): number {
  return devs.reduce((s, d) => s + d.equivalents, 0);
}

function holdingText(mine: { device: GpuDevice; holders: Holder[] }[]): string {
  if (!mine.length) return 'you hold none';
  const items = mine.map(({ device, holders }) => `${device.slot} (${device.profile}) in ${holders.map((h) => (h.kind === 'container' ? h.name : 'a container being created')).join(', ')}`);
  return `you hold ${mine.length} (${formatEquivalents(sumEq(mine.map((m) => m.device)))} GPU): ${items.join('; ')}`;
}

/** Free devices this user may be given, most preferred first. */
export function candidates(inventory: Inventory, holdings: readonly Holding[], quota: Pick<GpuQuota, 'fullGpu'>): GpuDevice[] {
  const held = new Set(holdings.map((h) => h.uuid));
  const free = inventory.devices.filter((d) => !held.has(d.uuid) && (quota.fullGpu || d.kind === 'mig'));
  const order = inventory.devices;
  return free.sort((a, b) => {
    if (a.kind !== b.kind) return a.kind === 'gpu' ? -1 : 1;
    if (a.equivalents !== b.equivalents) return a.equivalents - b.equivalents;
    return order.indexOf(a) - order.indexOf(b);
  });
}

export interface AllocateOptions {
  /** Devices set aside for requests queued ahead of this one (gpu.wait). */
  aheadDemand?: number;
}

export function allocate(request: GpuRequest, inventory: Inventory, holdings: readonly Holding[], who: Requester, opts: AllocateOptions = {}): Allocation {
  if (request.kind === 'none') return { ok: true, devices: [] };
  const q = who.quota;
  const what = describeRequest(request);
  const refuse = (rule: RefusalRule, message: string, retryable = false): Allocation => ({ ok: false, rule, message, retryable });
  if (!inventory.devices.length) {
    return refuse('no-gpus', `${what} asked for, but this host has no GPU device to give (${inventory.unavailable ?? `${inventory.source} lists none`})`);
  }
  const mine = heldBy(holdings, inventory, who);
  const mineEq = sumEq(mine.map((m) => m.device));
  const holds = holdingText(mine);

  if (request.kind === 'devices') {
    const { devices, unknown, splitGpus } = resolveIds(request.devices!, inventory);
    if (unknown.length) return refuse('unknown-device', `GPU device ${unknown.map((u) => `"${u}"`).join(', ')} is not on this host; \`gpuguard gpus\` lists the devices`);
    if (splitGpus.length) return refuse('unknown-device', `GPU ${splitGpus.join(', ')} is split into MIG slices; name a slice (such as ${inventory.devices.find((d) => d.kind === 'mig')?.slot}) or ask for a count (--gpus 1)`);
    if (!q.fullGpu) {
      const full = devices.find((d) => d.kind === 'gpu');
      if (full) return refuse('fullGpu', `GPU ${full.slot} is a whole GPU and your group (gpus.fullGpu: false) may use MIG slices only; ask for --gpus 1`);
    }
    if (devices.length > q.perContainer) return refuse('perContainer', `${what} is ${devices.length} devices; gpus.perContainer allows ${q.perContainer} in one container`);
    for (const d of devices) {
      const others = holdersOf(d.uuid, holdings).filter((h) => !isMine(h, who));
      if (others.length) return refuse('held', `GPU ${d.slot} (${d.uuid}) is held by ${describeHolder(others[0]!)}; ask for --gpus 1 to get a free one`, true);
    }
    const added = devices.filter((d) => !mine.some((m) => m.device.uuid === d.uuid));
    if (mine.length + added.length > q.max) return refuse('max', `GPU quota gpus.max (${q.max}) reached: ${holds}; ${what} would add ${added.length}. Remove a container first (docker rm)`);
    if (mineEq + sumEq(added) > q.maxEquivalents + EPS) return refuse('maxEquivalents', `GPU quota gpus.maxEquivalents (${formatEquivalents(q.maxEquivalents)} GPU) reached: ${holds}; ${what} would add ${formatEquivalents(sumEq(added))}`);
    return { ok: true, devices };
  }

  // count or all
  const room = q.max - mine.length;
  let need: number;
  if (request.kind === 'count') {
    need = request.count!;
    if (need > q.perContainer) return refuse('perContainer', `${what} asked for; gpus.perContainer allows ${q.perContainer} in one container`);
    if (need > room) return refuse('max', `GPU quota gpus.max (${q.max}) reached: ${holds}; ${what} asked for. Remove a container first (docker rm)`);
  } else {
    need = Math.min(room, q.perContainer);
    if (need <= 0) {
      if (room <= 0) return refuse('max', `GPU quota gpus.max (${q.max}) reached: ${holds}; --gpus all gets nothing more. Remove a container first (docker rm)`);
      return refuse('perContainer', `gpus.perContainer is ${q.perContainer}: no GPU in a container`);
    }
  }
  const free = candidates(inventory, holdings, q);
  const usable = free.slice(0, Math.max(0, free.length - (opts.aheadDemand ?? 0)));
  const picked: GpuDevice[] = [];
  let eq = mineEq;
  let skippedForEq = false;
  for (const d of usable) {
    if (picked.length >= (Number.isFinite(need) ? need : Infinity)) break;
    if (eq + d.equivalents > q.maxEquivalents + EPS) {
      skippedForEq = true;
      continue;
    }
    picked.push(d);
    eq += d.equivalents;
  }
  const enough = request.kind === 'count' ? picked.length === need : picked.length > 0;
  if (enough) return { ok: true, devices: picked };
  if (skippedForEq && !(request.kind === 'all' && picked.length)) {
    const smallest = Math.min(...usable.map((d) => d.equivalents));
    return refuse('maxEquivalents', `GPU quota gpus.maxEquivalents (${formatEquivalents(q.maxEquivalents)} GPU) reached: ${holds}; the smallest free device is ${formatEquivalents(smallest)} GPU and does not fit`);
  }
  const total = inventory.devices.filter((d) => q.fullGpu || d.kind === 'mig').length;
  const queued = opts.aheadDemand ? `, ${opts.aheadDemand} set aside for requests queued before yours` : '';
  return refuse('busy', `no free GPU device for ${what}: ${free.length} of the ${total} you may use ${free.length === 1 ? 'is' : 'are'} free${queued} (${holds}); try again later`, true);
}

/** Every device's holders, for `gpuguard gpus` and start checks. */
export function holdersByDevice(holdings: readonly Holding[]): Map<string, Holder[]> {
  const m = new Map<string, Holder[]>();
  for (const h of holdings) m.set(h.uuid, [...(m.get(h.uuid) ?? []), h.holder]);
  return m;
}

/** What a start would give back to a stopped container: its devices, or why not. */
export type StartDecision = { ok: true; devices: GpuDevice[] } | { ok: false; rule: 'vanished' | 'taken' | 'max' | 'maxEquivalents'; message: string };

const GPU_UUID = /^(GPU|MIG)-/;

/**
 * `docker start` of a stopped container that was given GPUs (pure; the
 * shim and the API face both ask this). It keeps the devices it was created
 * with, so refuse when one no longer exists (MIG slices re-created), when
 * another user's holder has it now (`gpu.holdAfterStop` passed), or when
 * starting it would put its owner over their GPU quota (the owner created
 * other GPU containers while it was stopped). `holdings` must leave this
 * container out; `owner` undefined (no known owner) skips the quota.
 */
export function decideStart(
  c: { name: string; ids: readonly string[]; labels: Readonly<Record<string, string>> },
  inventory: Inventory,
  holdings: readonly Holding[],
  owner: Requester | undefined,
  labelPrefix: string,
  holdAfterStop: string | number,
): StartDecision {
  const slots = (c.labels[`${labelPrefix}.gpu.allocated`] ?? '').split(',');
  const uuids = (c.labels[`${labelPrefix}.gpu.uuid`] ?? '').split(',');
  const slotOf = (id: string) => {
    const i = uuids.indexOf(id);
    return i >= 0 && slots[i] ? ` (slot ${slots[i]} when it was created)` : '';
  };
  const vanished = c.ids.filter((id) => GPU_UUID.test(id) && !inventory.devices.some((d) => d.uuid === id) && !inventory.gpus.some((g) => g.uuid === id));
  if (vanished.length) {
    return {
      ok: false,
      rule: 'vanished',
      message: `container "${c.name}" was given GPU device ${vanished[0]}${slotOf(vanished[0]!)}, which no longer exists on this host (MIG slices re-created?); recreate it: docker rm ${c.name}, then docker run/create --gpus 1 … again (data in volumes is kept)`,
    };
  }
  const devices = inventory.devices.filter((d) => c.ids.includes(d.uuid) || c.ids.includes(d.slot));
  const labelled = { user: c.labels[`${labelPrefix}.user`] ?? '', uid: /^\d+$/.test(c.labels[`${labelPrefix}.uid`] ?? '') ? Number(c.labels[`${labelPrefix}.uid`]) : -1 };
  const self = owner ?? labelled;
  for (const d of devices) {
    const other = holdings.find((h) => h.uuid === d.uuid && !(self.user && isMine(h.holder, self)));
    if (other) {
      return {
        ok: false,
        rule: 'taken',
        message: `GPU ${d.slot} (${d.uuid}) of container "${c.name}" has been taken by ${other.holder.kind === 'container' ? `container "${other.holder.name}"` : 'a container being created'} since it stopped (gpu.holdAfterStop ${holdAfterStop} passed); recreate it to get a free device: docker rm ${c.name}, then docker run/create --gpus 1 … again`,
      };
    }
  }
  if (owner) {
    const mine = heldBy(holdings, inventory, owner);
    const added = devices.filter((d) => !mine.some((m) => m.device.uuid === d.uuid));
    const holds = holdingText(mine);
    if (mine.length + added.length > owner.quota.max) {
      return { ok: false, rule: 'max', message: `starting "${c.name}" would give ${owner.user} ${mine.length + added.length} GPU devices and gpus.max is ${owner.quota.max}: ${holds}; stop or remove one of them first` };
    }
    const eq = sumEq(mine.map((m) => m.device)) + sumEq(added);
    if (eq > owner.quota.maxEquivalents + EPS) {
      return { ok: false, rule: 'maxEquivalents', message: `starting "${c.name}" would give ${owner.user} ${formatEquivalents(eq)} GPU and gpus.maxEquivalents is ${formatEquivalents(owner.quota.maxEquivalents)}: ${holds}; stop or remove one of them first` };
    }
  }
  return { ok: true, devices };
}
