/**
 * GPU allocation inside one long-running process (the API face): grants are
 * decided one at a time in this process, so no file lock and no reservation
 * file is needed on this path (shim mode keeps reserve.ts's scheme). State
 * is still Docker's: every decision reads the containers' device requests
 * afresh (state.ts, with an in-memory cache of each container's GPU ids),
 * plus the grants this process has given whose create has not answered yet.
 * A restarted face has no such grants, and Docker already shows every
 * container that was created, so nothing is lost or given twice.
 */
import { PolicyDenied } from '../errors.ts';
import type { Policy } from '../policy/schema.ts';
import { parseDuration } from '../policy/units.ts';
import { allocate, decideStart, type Holding, type Requester } from './allocate.ts';
import { gpuLabels } from './index.ts';
import { loadInventory, type GpuDevice } from './inventory.ts';
import { describeRequest, type GpuRequest } from './request.ts';
import { holdingsFromContainers, readGpuContainers, type ContainerGpus, type GpuIdCache } from './state.ts';

export interface SerialGrant {
  devices: GpuDevice[];
  labels: [string, string][];
  /** The request in words with the devices, for the event log and explain-like messages. */
  reason: string;
  /** Call once the create has been answered (its container then holds the devices in Docker's state). */
  release(): void;
}

interface Waiter {
  priority: number;
  arrival: number;
  need: number;
}

export class SerialAllocator {
  private chain: Promise<unknown> = Promise.resolve();
  private pending = new Map<number, Holding[]>();
  private next = 1;
  private cache: GpuIdCache = {};
  private waiters = new Set<Waiter>();

  /** `env` names dockerd (DOCKER_HOST=unix://upstream) and the inventory (GPUGUARD_NVIDIA_SMI). */
  constructor(private readonly env: NodeJS.ProcessEnv) {}

  /** Run `fn` after every decision before it: the one serialisation point. */
  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.chain.then(fn, fn);
    this.chain = run.catch(() => undefined);
    return run;
  }

  /**
   * Who holds what: the grants not yet answered, taken *before* Docker is
   * read (a grant whose create is answered while the list is read is either
   * still here or already in the list), then every container's devices.
   */
  private async holdings(policy: Policy, except?: (c: ContainerGpus) => boolean, exceptId?: string): Promise<Holding[]> {
    const pending = [...this.pending.values()].flat();
    const holdAfterStopMs = parseDuration(policy.gpu.holdAfterStop) ?? 0;
    const store = { load: () => this.cache, save: (c: GpuIdCache) => void (this.cache = c) };
    const containers = await readGpuContainers({ env: this.env, holdAfterStopMs, cache: store });
    return [
      ...holdingsFromContainers(containers, await this.inventoryOf(policy), { labelPrefix: policy.labelPrefix, holdAfterStopMs, now: new Date(), ...(except ? { except } : {}), ...(exceptId ? { exceptId } : {}) }),
      ...pending,
    ];
  }

  private inventoryPromise: { at: number; inv: ReturnType<typeof loadInventory> } | undefined;

  /** The inventory, read at most once a second (a burst of creates asks once). */
  private inventoryOf(policy: Policy): ReturnType<typeof loadInventory> {
    const now = Date.now();
    if (!this.inventoryPromise || now - this.inventoryPromise.at > 1000) this.inventoryPromise = { at: now, inv: loadInventory(this.env, policy.gpu.inventory) };
    return this.inventoryPromise.inv;
  }

  private hold(user: { user: string; uid: number }, devices: GpuDevice[]): () => void {
    const token = this.next++;
    const since = new Date().toISOString();
    this.pending.set(
      token,
      devices.map((d) => ({ uuid: d.uuid, holder: { kind: 'reservation' as const, id: `face-${token}`, name: `face grant ${token}`, user: user.user, uid: user.uid, state: 'reserved', since } })),
    );
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.pending.delete(token);
    };
  }

  /**
   * Devices for a create, or PolicyDenied. With `gpu.wait` a request that
   * only lacks free devices waits its turn (priority, then arrival).
   */
  async grant(request: GpuRequest, policy: Policy, user: Requester & { priority: number }): Promise<SerialGrant> {
    const waitMs = parseDuration(policy.gpu.wait) ?? 0;
    const me: Waiter = { priority: user.priority, arrival: Date.now(), need: request.kind === 'count' ? request.count! : request.kind === 'devices' ? request.devices!.length : 1 };
    try {
      for (;;) {
        const result = await this.serial(async () => {
          const inventory = await this.inventoryOf(policy);
          const holdings = await this.holdings(policy);
          const ahead = [...this.waiters].filter((w) => w !== me && (w.priority > me.priority || (w.priority === me.priority && w.arrival < me.arrival)));
          const aheadDemand = request.kind === 'devices' ? 0 : ahead.reduce((s, w) => s + w.need, 0);
          const a = allocate(request, inventory, holdings, user, { aheadDemand });
          if (!a.ok) return a;
          const release = this.hold(user, a.devices);
          return { ok: true as const, devices: a.devices, release };
        });
        if (result.ok) {
          return {
            devices: result.devices,
            labels: gpuLabels(policy.labelPrefix, result.devices, new Date(), user.priority),
            reason: `${describeRequest(request)} (${request.sources.join(' ')}) → GPU ${result.devices.map((d) => d.slot).join(',')} (${result.devices.map((d) => `${d.profile} ${d.uuid}`).join(', ')})`,
            release: result.release,
          };
        }
        const waited = Date.now() - me.arrival;
        if (!result.retryable || waitMs <= 0 || waited >= waitMs) {
          throw new PolicyDenied(`${result.message}${waited >= waitMs && waitMs > 0 ? ` (waited ${Math.round(waited / 1000)}s, gpu.wait)` : ''}`, `gpus.${result.rule}`);
        }
        this.waiters.add(me);
        await new Promise((r) => setTimeout(r, Math.min(250, Math.max(10, waitMs - waited))));
      }
    } finally {
      this.waiters.delete(me);
    }
  }

  /**
   * `docker start` of a stopped GPU container: decideStart over the current
   * holdings (this container left out). Returns a release for the hold on
   * its devices while the start runs, or throws PolicyDenied.
   */
  async start(c: ContainerGpus, policy: Policy, owner: Requester | undefined): Promise<() => void> {
    return this.serial(async () => {
      const inventory = await this.inventoryOf(policy);
      if (inventory.unavailable) return () => {};
      const holdings = await this.holdings(policy, undefined, c.id);
      const d = decideStart(c, inventory, holdings, owner, policy.labelPrefix, policy.gpu.holdAfterStop);
      if (!d.ok) throw new PolicyDenied(d.message, `gpus.${d.rule}`);
      return d.devices.length ? this.hold(owner ?? { user: 'unknown', uid: -1 }, d.devices) : () => {};
    });
  }
}
