/**
 * The decider's copy of dockerd's container list, for `docker ps`: the
 * ownership rules need every container (owner evidence is in labels,
 * names, mounts and images), and with a few hundred containers dockerd
 * takes longer to list them than the real CLI takes to run. The evidence of
 * a container never changes after it is created but for its name, so the
 * list stays good until a container is created, destroyed or renamed.
 *
 * The copy is used only while an event subscription (those three actions)
 * has been open since before the copy was taken and no such event has come
 * since; and each use first asks dockerd for those events from the copy's
 * time until now (`/events?since&until`, answered from dockerd's own event
 * log, which holds every event published before the request), so that an
 * event dockerd published before this call but has not yet streamed to us
 * (a `docker create` that just returned) still counts. Anything in doubt —
 * no subscription, an event, an error — means a fresh list.
 */
import { apiGet } from '../docker/api.ts';
import { engineFailure, imageLabelsOn, listContainersOn, type ContainerSummary } from '../docker/lists.ts';

declare const Bun: unknown;

const ACTIONS = ['create', 'destroy', 'rename'];
const FILTERS = encodeURIComponent(JSON.stringify({ type: { container: true }, event: Object.fromEntries(ACTIONS.map((a) => [a, true])) }));
/** Event times are dockerd's clock, this is ours (the same host); the margin only costs an extra list. */
const CLOCK_MARGIN_MS = 50;
const RESUBSCRIBE_MS = 1000;
const MAX_IMAGES = 10_000;

/** Seconds since the epoch as dockerd's `since`/`until` take them. */
const stamp = (ms: number) => (ms / 1000).toFixed(3);

export class ContainerListCache {
  private list: ContainerSummary[] | undefined;
  /** Bumped by every event and every break of the subscription. */
  private generation = 0;
  /** When the copy was asked for (an event after this may be missing from it). */
  private listedAt = 0;
  /** Since when the subscription has been open without a break; undefined while it is not. */
  private subscribedSince: number | undefined;
  private stopped = false;
  private abort: AbortController | undefined;

  /** Image labels by id: an image id is the digest of its config, labels included, so they never change. */
  private images = new Map<string, Record<string, string>>();

  constructor(readonly socket: string) {}

  /** Image labels for these ids, dockerd asked only for ids not seen before. */
  async imageLabels(ids: string[]): Promise<Map<string, Record<string, string>>> {
    const missing = ids.filter((id) => !this.images.has(id));
    if (missing.length) {
      const got = await imageLabelsOn(this.socket, missing);
      if (this.images.size + got.size > MAX_IMAGES) this.images.clear();
      for (const [id, labels] of got) this.images.set(id, labels);
    }
    const out = new Map<string, Record<string, string>>();
    for (const id of ids) {
      const labels = this.images.get(id);
      if (labels) out.set(id, labels);
    }
    return out;
  }

  /** Subscribe (and re-subscribe after a break) until stop(). */
  start(): void {
    void this.subscribe();
  }

  stop(): void {
    this.stopped = true;
    this.abort?.abort();
  }

  private invalidate(): void {
    this.list = undefined;
    this.generation++;
  }

  private async subscribe(): Promise<void> {
    while (!this.stopped) {
      this.abort = new AbortController();
      try {
        if (typeof Bun === 'undefined') throw new Error('the event subscription needs the compiled binary (Bun fetch over a unix socket)');
        const res = await fetch(`http://docker/events?filters=${FILTERS}`, { unix: this.socket, signal: this.abort.signal } as RequestInit);
        if (res.status !== 200 || !res.body) throw new Error(`events: HTTP ${res.status}`);
        // dockerd sends the headers once the subscription is in place: from now on every event reaches us.
        this.subscribedSince = Date.now();
        const reader = res.body.getReader();
        for (;;) {
          const { done, value } = await reader.read();
          if (done) break;
          if (value && value.some((b) => b > 0x20)) this.invalidate();
        }
      } catch {
        /* below: no copy without a subscription */
      }
      this.subscribedSince = undefined;
      this.invalidate();
      if (!this.stopped) await new Promise((r) => setTimeout(r, RESUBSCRIBE_MS));
    }
  }

  /** Every container, from the copy when it is provably current, else from dockerd. */
  async all(): Promise<ContainerSummary[]> {
    if (this.list && this.subscribedSince !== undefined && this.subscribedSince <= this.listedAt && (await this.quietSince(this.listedAt))) return this.list;
    const at = Date.now();
    const generation = this.generation;
    const list = await listContainersOn(this.socket);
    // Kept only if nothing came meanwhile (an event still on its way is the next use's check).
    if (generation === this.generation) {
      this.list = list;
      this.listedAt = at;
    }
    return list;
  }

  /** No create/destroy/rename in dockerd's event log from `since` until now. */
  private async quietSince(since: number): Promise<boolean> {
    try {
      const r = await apiGet(this.socket, `/events?since=${stamp(since - CLOCK_MARGIN_MS)}&until=${stamp(Date.now())}&filters=${FILTERS}`);
      if (r.status !== 200) throw engineFailure('reading events', r);
      return r.body === '';
    } catch {
      return false;
    }
  }
}
