/**
 * The API face's decisions: each route of the table (routes.ts) translated
 * into the policy's questions, asked with the same functions the shim and
 * compose ask (decideCreate, mayActOn, listsOnlyOwn, the GPU allocator), and
 * the answers applied to the request or its response. Nothing here makes a
 * rule of its own; where the policy has no rule for something (an unknown
 * endpoint), the answer is no.
 */
import { GpuguardError, PolicyDenied } from '../errors.ts';
import { appendEvent, type Decision as EventDecision } from '../events/log.ts';
import { containerGpus } from '../gpu/state.ts';
import { GpuRequestError } from '../gpu/request.ts';
import type { Requester } from '../gpu/allocate.ts';
import type { SerialAllocator } from '../gpu/serial.ts';
import { applyMode, decideCreate, decideLimits, decideOwnerLabels, decideReservedLabels, firstRefusal, overallDecision, type CreateRequest, type Decision } from '../policy/decide.ts';
import { resolveUser, type EffectiveUser } from '../policy/effective.ts';
import { IdentityError } from '../policy/identity.ts';
import { labelKeys } from '../policy/labels.ts';
import { listsOnlyOwn, mayActOn } from '../policy/ownership.ts';
import type { Policy } from '../policy/schema.ts';
import type { Owner } from '../ownership/detect.ts';
import type { Action, RequestContext } from './conn.ts';
import { applyGpuGrant, applySettings, createRequestOf, gpuRequestOf, interfaceOfBody, namedRefs, readCreateBody, type VolumeRef } from './create.ts';
import { bodyAsDockerdReadsIt, createBodyAsDockerdReadsIt, HOST_CONFIG_FIELDS, isObj, parseJsonBody } from './gobody.ts';
import { HttpError } from './http.ts';
import { labelOwner, type Owners } from './owners.ts';
import { decideSecurityOf, securityOfCreate, securityOfExecCreate, securityOfVolumeCreate, securityRequestOfBuild } from './security.ts';
import { queryOne, withQuery, type Target } from './target.ts';
import type { Upstream } from './upstream.ts';
import { daemonMessage } from './upstream.ts';
import type { UserDb } from './users.ts';

/** Largest JSON body the face reads to decide (create bodies are a few KiB). */
export const MAX_JSON_BODY = 4 << 20;
/** API versions before 1.24 let `start` change a container's HostConfig after create. */
const OLDEST_API = [1, 24] as const;

export interface FaceState {
  policy: Policy;
  /** The file the policy came from (or would, for the built-in one). */
  policyPath: string;
  upstream: Upstream;
  users: UserDb;
  owners: Owners;
  gpus: SerialAllocator;
  version: string;
}

type Obj = Record<string, unknown>;

export function makeDecider(state: FaceState) {
  return async (req: RequestContext): Promise<Action> => {
    const r = req.route;
    if (r.kind === 'status') {
      return { kind: 'respond', status: 200, json: { gpuguard: state.version, pid: process.pid, upstream: state.upstream.path, policy: state.policyPath } };
    }
    if (r.kind === 'face-not-found') return { kind: 'respond', status: 404, json: { message: `gpuguard: no such endpoint ${req.target.path}` } };
    checkVersion(req.target);
    const policy = state.policy;
    let who: EffectiveUser;
    try {
      who = resolveUser(policy, await state.users.identity(req.caller.uid));
    } catch (err) {
      if (err instanceof IdentityError) return { kind: 'respond', status: 403, json: { message: `gpuguard: uid ${req.caller.uid} is not in the user database, so the policy cannot place it; ask an admin to add the account` } };
      throw err;
    }
    return new Request(state, policy, who, req).decide();
  };
}

function checkVersion(t: Target): void {
  if (!t.version) return;
  const [major, minor] = t.version.slice(2).split('.').map(Number);
  if (major === undefined || minor === undefined || Number.isNaN(major) || Number.isNaN(minor)) return; // dockerd refuses it itself
  if (major < OLDEST_API[0] || (major === OLDEST_API[0] && minor < OLDEST_API[1])) {
    throw new HttpError(400, `API version ${major}.${minor} is older than ${OLDEST_API.join('.')}, the oldest gpuguard serves (older versions let start change a container's settings); use a newer client`);
  }
}

/** One request being decided: who asks, under which policy, and the helpers every handler shares. */
class Request {
  private readonly prefix: string;
  private readonly keys: ReturnType<typeof labelKeys>;

  constructor(
    private readonly s: FaceState,
    private readonly policy: Policy,
    private readonly who: EffectiveUser,
    private readonly req: RequestContext,
  ) {
    this.prefix = policy.labelPrefix;
    this.keys = labelKeys(this.prefix);
  }

  private get up(): Upstream {
    return this.s.upstream;
  }

  /** Root, admins and the policy's service users act on every container. */
  private get actsOnAll(): boolean {
    return mayActOn(this.who, { user: undefined, method: 'none' }).allow;
  }

  private get isAdmin(): boolean {
    return this.who.uid === 0 || this.who.isAdmin;
  }

  private get reading(): boolean {
    return this.req.head.method === 'GET' || this.req.head.method === 'HEAD';
  }

  private log(decision: EventDecision, reasons: string[], extra: Record<string, unknown> = {}): void {
    appendEvent(this.policy.events.log, {
      face: 'api',
      decision,
      user: this.who.user,
      uid: this.who.uid,
      peerPid: this.req.caller.pid,
      request: `${this.req.head.method} ${this.req.target.path}`,
      reasons,
      ...(this.policy.mode === 'audit' ? { mode: 'audit' } : {}),
      ...extra,
    });
  }

  private forward(target: Target = this.req.target, more: Partial<Extract<Action, { kind: 'forward' }>> = {}): Action {
    return { kind: 'forward', target, ...more };
  }

  /** A refusal: 403 with the reason, or in audit mode a logged warning and the request goes ahead. */
  private refuse(reason: string, rule: string, extra: Record<string, unknown> = {}, ahead: () => Action = () => this.forward()): Action {
    if (this.policy.mode === 'audit') {
      this.log('warn', [`audit mode, not refused: ${rule}: ${reason}`], extra);
      return ahead();
    }
    this.log('deny', [`${rule}: ${reason}`], extra);
    return { kind: 'respond', status: 403, json: { message: `gpuguard: ${reason}` } };
  }

  /** dockerd's own answer (not found, ambiguous), passed on: nothing was forwarded. */
  private daemonSays(reply: { status: number; body: unknown; text: string }): Action {
    return { kind: 'respond', status: reply.status, json: isObj(reply.body) ? reply.body : { message: daemonMessage(reply) } };
  }

  async decide(): Promise<Action> {
    const r = this.req.route;
    switch (r.kind) {
      case 'allow':
        return this.forward(this.req.target, r.hijack ? { hijack: true } : {});
      case 'admin':
        if (this.isAdmin) {
          this.log('allow', [`${r.what}: ${this.who.user} is an admin`]);
          return this.forward();
        }
        return this.refuse(`${r.what}: only admins may do this; ask one`, 'api.admin-only');
      case 'unknown':
        return this.refuse(
          `${this.req.head.method} ${this.req.target.path} is not an Engine API request gpuguard knows, so it is refused; if a client needs it, ask an admin`,
          'api.unknown-endpoint',
        );
      case 'container':
        return this.container(r.ref, r.verb, r.hijack ?? false);
      case 'containers-create':
        return this.create();
      case 'containers-list':
        return this.containersList();
      case 'containers-prune':
        return this.prune('container');
      case 'exec':
        return this.exec(r.id, r.verb);
      case 'commit':
        return this.commit();
      case 'events':
        return this.events();
      case 'system-df':
        return this.systemDf();
      case 'build':
        return this.build();
      case 'volumes-list':
        return this.volumesList();
      case 'volumes-create':
        return this.createOwned('volume');
      case 'volumes-prune':
        return this.prune('volume');
      case 'volume':
        return this.volume(r.name, r.verb);
      case 'networks-list':
        return this.networksList();
      case 'networks-create':
        return this.createOwned('network');
      case 'networks-prune':
        return this.prune('network');
      case 'network':
        return this.network(r.id, r.verb);
      case 'status':
      case 'face-not-found':
        throw new Error('answered before');
    }
  }

  // ------------------------------------------------------------ containers

  /** Whether `owner`'s container may be acted on, with the refusal reason when not. */
  private ownerCheck(owner: Owner, name: string, verb: string): string | undefined {
    const d = mayActOn(this.who, owner);
    if (d.allow) return undefined;
    return owner.user === undefined
      ? `container "${name}" has no known owner (${owner.evidence}); only an admin may ${verb} it`
      : `container "${name}" belongs to another user; only its owner or an admin may ${verb} it`;
  }

  private async container(ref: string, verb: string, hijack: boolean): Promise<Action> {
    const t = this.req.target;
    if (verb === 'start' && (this.req.head.framing.kind !== 'none')) {
      const body = await this.req.readBody(MAX_JSON_BODY);
      if (body.length && body.toString('utf8').trim() !== '' && body.toString('utf8').trim() !== '{}' && body.toString('utf8').trim() !== 'null') {
        throw new HttpError(400, 'a body on start (HostConfig at start) is not accepted; set everything at create');
      }
    }
    // Admins and service users need no owner check; start still re-checks GPUs for everyone.
    if (this.actsOnAll && verb !== 'start') return this.forward(t, hijack ? { hijack } : {});
    const c = await this.s.owners.container(ref, this.prefix);
    if (!c.found) return this.daemonSays(c.reply);
    const name = c.value.Name.replace(/^\//, '');
    const refusal = this.ownerCheck(c.owner, ref === name ? name : `${ref}`, verbWord(verb));
    if (refusal) return this.refuse(refusal, 'ownership', { container: c.value.Id });
    // Forward with the full id: dockerd acts on exactly the container decided on.
    const target = { ...t, path: `/containers/${c.value.Id}${t.path.slice(`/containers/${ref}`.length)}` };
    const more: Partial<Extract<Action, { kind: 'forward' }>> = hijack ? { hijack } : {};
    if (verb === 'start') {
      const gpus = containerGpus(c.value);
      if (gpus.ids.length && gpus.state !== 'running') {
        let release: () => void;
        try {
          release = await this.s.gpus.start(gpus, this.policy, await this.requesterOf(c.owner));
        } catch (err) {
          if (err instanceof PolicyDenied) return this.refuse(err.message, err.rule, { container: c.value.Id });
          throw err;
        }
        more.done = () => release();
      }
    }
    if (verb === 'update') {
      const body = await this.updateBody();
      if ('refusal' in body) return this.refuse(body.refusal.reason, body.refusal.rule, { container: c.value.Id }, () => this.forward(target, { body: body.forward }));
      more.body = body.forward;
    }
    if (verb === 'exec') {
      const body = await this.execCreateBody();
      const refusal = firstRefusal(applyMode(await securityOfExecCreate(this.policy, this.who, body, this.up), this.policy.mode));
      if (refusal) return this.refuse(refusal.reason, refusal.rule, { container: c.value.Id });
      more.body = Buffer.from(JSON.stringify(body));
    }
    if (LOGGED_VERBS.has(verb)) this.log('allow', [`${this.who.user} may ${verbWord(verb)} ${name} (${c.owner.method === 'none' ? 'admin' : c.owner.evidence})`], { container: c.value.Id });
    return this.forward(target, more);
  }

  /** The owner of a GPU container as the allocator's requester (their quota), when the user database knows them. */
  private async requesterOf(owner: Owner): Promise<Requester | undefined> {
    if (!owner.user) return undefined;
    try {
      const u = resolveUser(this.policy, await this.s.users.identity(owner.uid ?? (await this.uidOf(owner.user))));
      return { user: u.user, uid: u.uid, quota: u.gpus };
    } catch {
      return undefined;
    }
  }

  private async uidOf(user: string): Promise<number> {
    const e = this.s.users.lookup(user);
    if (!e) throw new IdentityError(`user ${user} is not in the user database`);
    return e.uid;
  }

  /** `docker update`: limits are checked like at create (within the per-container limits, or refused); nothing is injected. */
  private async updateBody(): Promise<{ forward: Buffer } | { forward: Buffer; refusal: Decision }> {
    const raw = bodyAsDockerdReadsIt(parseJsonBody(await this.req.readBody(MAX_JSON_BODY), 'update body'), [...HOST_CONFIG_FIELDS, 'RestartPolicy'], 'update body');
    const forward = Buffer.from(JSON.stringify(raw));
    const read = readCreateBody({ HostConfig: raw });
    const asked = createRequestOf(read);
    const req: CreateRequest = { ...asked, labels: [] };
    const refusal = firstRefusal(applyMode(decideLimits(this.who, req).filter((d) => d.verdict !== 'add'), this.policy.mode));
    return refusal ? { forward, refusal } : { forward };
  }

  /** Exec create, with canonical field names (the security rules read Privileged). */
  private async execCreateBody(): Promise<Obj> {
    return bodyAsDockerdReadsIt(
      parseJsonBody(await this.req.readBody(MAX_JSON_BODY), 'exec body'),
      ['AttachStdin', 'AttachStdout', 'AttachStderr', 'ConsoleSize', 'DetachKeys', 'Tty', 'Env', 'Cmd', 'Privileged', 'User', 'WorkingDir'],
      'exec body',
    );
  }

  private async exec(id: string, verb: 'json' | 'start' | 'resize'): Promise<Action> {
    const t = this.req.target;
    if (this.actsOnAll) return this.forward(t, verb === 'start' ? { hijack: true } : {});
    const e = await this.up.get(`/exec/${encodeURIComponent(id)}/json`);
    if (e.status !== 200) return this.daemonSays(e);
    const info = e.body as { ID?: unknown; ContainerID?: unknown };
    if (typeof info.ID !== 'string' || typeof info.ContainerID !== 'string') throw new GpuguardError(`dockerd's exec inspect of ${id} has no ID or ContainerID`);
    const c = await this.s.owners.container(info.ContainerID, this.prefix);
    if (!c.found) return this.daemonSays(c.reply);
    const refusal = this.ownerCheck(c.owner, c.value.Name.replace(/^\//, ''), 'exec in');
    if (refusal) return this.refuse(refusal, 'ownership', { container: c.value.Id });
    const target = { ...t, path: `/exec/${info.ID}/${verb}` };
    if (verb === 'start') this.log('allow', [`${this.who.user} may exec in ${c.value.Name.replace(/^\//, '')}`], { container: c.value.Id });
    return this.forward(target, verb === 'start' ? { hijack: true } : {});
  }

  private async commit(): Promise<Action> {
    const ref = queryOne(this.req.target, 'container');
    if (!ref || this.actsOnAll) return this.forward();
    const c = await this.s.owners.container(ref, this.prefix);
    if (!c.found) return this.daemonSays(c.reply);
    const refusal = this.ownerCheck(c.owner, ref, 'commit');
    if (refusal) return this.refuse(refusal, 'ownership', { container: c.value.Id });
    this.log('allow', [`${this.who.user} may commit ${ref}`], { container: c.value.Id });
    return this.forward(withQuery(this.req.target, 'container', c.value.Id));
  }

  private async create(): Promise<Action> {
    const raw = createBodyAsDockerdReadsIt(parseJsonBody(await this.req.readBody(MAX_JSON_BODY), 'create body'));
    const read = readCreateBody(raw);
    const asked = createRequestOf(read);
    const iface = interfaceOfBody(read);
    let containerCount: number | undefined;
    let countError: string | undefined;
    if (this.who.limits.containers !== undefined) {
      try {
        containerCount = await this.countContainers();
      } catch (err) {
        countError = (err as Error).message;
      }
    }
    let gpuRequest;
    const gpuDecisions: Decision[] = [];
    try {
      gpuRequest = gpuRequestOf(read);
    } catch (err) {
      if (!(err instanceof GpuRequestError)) throw err;
      gpuDecisions.push({ rule: 'gpus.malformed', verdict: 'deny', reason: err.message });
    }
    const decisions = applyMode(
      [
        ...decideCreate(this.policy, this.who, asked, { now: new Date(), iface, ...(containerCount !== undefined ? { containerCount } : {}), ...(countError ? { countError } : {}) }),
        ...gpuDecisions,
        ...(await securityOfCreate(this.policy, this.who, raw, this.up)),
      ],
      this.policy.mode,
    );
    const reasons = decisions.map((d) => `${d.verdict} ${d.rule}: ${d.reason}`);
    const refusal = firstRefusal(decisions);
    if (refusal) {
      this.log('deny', reasons);
      return { kind: 'respond', status: 403, json: { message: `gpuguard: ${refusal.reason}` } };
    }
    applySettings(raw, decisions);
    // Named volumes and networks: another user's are not to be mounted or joined.
    const refs = namedRefs(raw);
    const missingVolumes = await this.checkNamedRefs(refs);
    if ('refusal' in missingVolumes) {
      const r = missingVolumes.refusal;
      if (this.policy.mode !== 'audit') {
        this.log('deny', [...reasons, `deny ${r.rule}: ${r.reason}`]);
        return { kind: 'respond', status: 403, json: { message: `gpuguard: ${r.reason}` } };
      }
      reasons.push(`warn ${r.rule}: audit mode, not refused: ${r.reason}`);
    }
    let release: (() => void) | undefined;
    let gpus: string[] | undefined;
    if (gpuRequest && gpuRequest.kind !== 'none') {
      try {
        const grant = await this.s.gpus.grant(gpuRequest, this.policy, { user: this.who.user, uid: this.who.uid, quota: this.who.gpus, priority: this.who.gpus.priority });
        applyGpuGrant(raw, grant.devices, grant.labels);
        release = grant.release;
        gpus = grant.devices.map((d) => d.uuid);
        reasons.push(`add gpus: ${grant.reason}`);
      } catch (err) {
        if (!(err instanceof PolicyDenied) && !(err instanceof GpuguardError)) throw err;
        const rule = err instanceof PolicyDenied ? err.rule : 'gpus.error';
        if (this.policy.mode === 'audit') reasons.push(`warn ${rule}: audit mode, not refused: ${err.message}`);
        else {
          reasons.push(`deny ${rule}: ${err.message}`);
          this.log('deny', reasons);
          return { kind: 'respond', status: 403, json: { message: `gpuguard: ${err.message}` } };
        }
      }
    }
    // Volumes dockerd would make on the fly are made here first, with their owner's labels.
    for (const v of 'create' in missingVolumes ? missingVolumes.create : []) {
      const made = await this.createVolumeFor(v);
      if (made) {
        release?.();
        this.log('deny', [...reasons, `volume ${v.name}: ${daemonMessage(made)}`]);
        return this.daemonSays(made);
      }
      reasons.push(`add volume ${v.name} (${v.from}) made with the owner labels of ${this.who.user}`);
    }
    const warned = decisions.some((d) => d.verdict === 'warn') || reasons.some((r) => r.startsWith('warn '));
    this.log(warned ? 'warn' : overallDecision(decisions) === 'allow' && !gpus ? 'allow' : 'rewrite', reasons, { interface: iface, ...(gpus ? { gpus } : {}) });
    return this.forward(this.req.target, { body: Buffer.from(JSON.stringify(raw)), ...(release ? { done: release } : {}) });
  }

  /** Named volumes and networks of a create: refused when another user's; volumes to make when missing. */
  private async checkNamedRefs(refs: ReturnType<typeof namedRefs>): Promise<{ create: VolumeRef[] } | { refusal: Decision }> {
    for (const n of refs.networks) {
      const r = await this.up.get(`/networks/${encodeURIComponent(n)}`);
      if (r.status === 200 && isObj(r.body) && !this.visibleNamed('network', r.body)) {
        return { refusal: { rule: 'ownership.network', verdict: 'deny', reason: `network "${n}" belongs to another user; use a network of your own (docker network create) or the default one` } };
      }
    }
    const create: VolumeRef[] = [];
    for (const v of refs.volumes) {
      const r = await this.up.get(`/volumes/${encodeURIComponent(v.name)}`);
      if (r.status === 200 && isObj(r.body)) {
        if (!this.visibleNamed('volume', r.body)) {
          return { refusal: { rule: 'ownership.volume', verdict: 'deny', reason: `volume "${v.name}" (${v.from}) belongs to another user; mount a volume of your own` } };
        }
      } else if (r.status === 404) {
        const reserved = firstRefusal(applyMode(decideReservedLabels(this.policy, this.who, { labels: Object.entries(v.labels ?? {}).map(([key, value]) => ({ key, value, from: `${v.from} VolumeOptions.Labels` })) }), this.policy.mode));
        if (reserved) return { refusal: reserved };
        if (!create.some((c) => c.name === v.name)) create.push(v);
      }
    }
    return { create };
  }

  /** Make a volume a create would make implicitly, with owner labels; dockerd's error reply if it fails. */
  private async createVolumeFor(v: VolumeRef): Promise<{ status: number; body: unknown; text: string } | undefined> {
    const owner = decideOwnerLabels(this.policy, this.who, { labels: [] }, { now: new Date(), iface: 'api' });
    const labels = { ...(v.labels ?? {}), ...Object.fromEntries((owner.add ?? []).flatMap((s) => (s.kind === 'label' ? [[s.key, s.value]] : []))) };
    const r = await this.up.json('POST', '/volumes/create', { Name: v.name, ...(v.driver ? { Driver: v.driver } : {}), ...(v.driverOpts ? { DriverOpts: v.driverOpts } : {}), Labels: labels });
    return r.status === 201 || r.status === 200 ? undefined : r;
  }

  private async countContainers(): Promise<number> {
    const filters = encodeURIComponent(JSON.stringify({ label: [`${this.keys.user}=${this.who.user}`] }));
    const r = await this.up.get(`/containers/json?all=1&filters=${filters}`);
    if (r.status !== 200 || !Array.isArray(r.body)) throw new GpuguardError(`counting containers failed: ${daemonMessage(r)}`);
    return r.body.length;
  }

  private get listsOwn(): boolean {
    return listsOnlyOwn(this.who, this.policy.docker.psFilter) && this.policy.mode !== 'audit';
  }

  private async containersList(): Promise<Action> {
    if (!this.listsOwn) return this.forward();
    // A limit counts the caller's containers, so it is applied after filtering (dockerd: a limit lists every state).
    const limitText = queryOne(this.req.target, 'limit');
    const limit = limitText !== undefined && /^-?\d+$/.test(limitText) ? Number(limitText) : -1;
    let target = withQuery(this.req.target, 'limit', undefined);
    if (limit > 0) target = withQuery(target, 'all', '1');
    return this.forward(target, {
      json: async (rows) => {
        if (!Array.isArray(rows)) throw new Error('container list is not a list');
        const own = await this.ownRows(rows);
        return limit > 0 ? own.slice(0, limit) : own;
      },
    });
  }

  private async ownRows(rows: unknown[]): Promise<unknown[]> {
    const owners = await this.s.owners.ofList(rows, this.prefix);
    return rows.filter((_, i) => mayActOn(this.who, owners[i]!).allow);
  }

  /** Prunes remove only what carries the caller's owner label (docker ANDs label filters, so the caller's own still apply). */
  private prune(kind: 'container' | 'volume' | 'network'): Action {
    if (this.actsOnAll) {
      this.log('allow', [`${kind} prune by ${this.who.user} (acts on all)`]);
      return this.forward();
    }
    const t = this.req.target;
    const label = `${this.keys.user}=${this.who.user}`;
    const raw = queryOne(t, 'filters');
    let filters: Record<string, unknown> = {};
    if (raw) {
      try {
        filters = JSON.parse(raw) as Record<string, unknown>;
      } catch {
        throw new HttpError(400, 'filters: not valid JSON');
      }
      if (!isObj(filters)) throw new HttpError(400, 'filters: expected a JSON object');
    }
    const existing = filters.label;
    const labels: Record<string, boolean> = Array.isArray(existing) ? Object.fromEntries(existing.map((l) => [String(l), true])) : isObj(existing) ? (existing as Record<string, boolean>) : {};
    filters = { ...filters, label: { ...labels, [label]: true } };
    this.log('rewrite', [`${kind} prune removes only what is labelled ${label}`]);
    return this.forward(withQuery(t, 'filters', JSON.stringify(filters)));
  }

  // ------------------------------------------------------------ events and df

  private async events(): Promise<Action> {
    if (!this.listsOwn) return this.forward();
    const mine = new Map<string, Promise<boolean>>();
    const containerIsMine = (id: string, attrs: Record<string, string>): Promise<boolean> => {
      let p = mine.get(id);
      if (!p) {
        p = this.s.owners.container(id, this.prefix).then(
          (c) => (c.found ? mayActOn(this.who, c.owner).allow : attrs[this.keys.user] === this.who.user),
          () => false,
        );
        mine.set(id, p);
      }
      return p;
    };
    return this.forward(this.req.target, {
      lines: async (ev) => {
        if (!isObj(ev)) return false;
        const type = typeof ev.Type === 'string' ? ev.Type : 'container';
        const actor = isObj(ev.Actor) ? ev.Actor : {};
        const id = typeof actor.ID === 'string' ? actor.ID : typeof ev.id === 'string' ? ev.id : '';
        const attrs = (isObj(actor.Attributes) ? actor.Attributes : {}) as Record<string, string>;
        switch (type) {
          case 'container':
            return id !== '' && containerIsMine(id, attrs);
          case 'network':
          case 'volume':
            if (attrs.container) return containerIsMine(attrs.container, {});
            return this.namedIsMine(type, type === 'volume' ? id : id);
          case 'image':
          case 'daemon':
          case 'builder':
            return true;
          default:
            return false;
        }
      },
    });
  }

  private async namedIsMine(kind: 'volume' | 'network', id: string): Promise<boolean> {
    const r = await this.up.get(`/${kind}s/${encodeURIComponent(id)}`);
    if (r.status !== 200 || !isObj(r.body)) return false;
    return this.visibleNamed(kind, r.body);
  }

  private async systemDf(): Promise<Action> {
    if (!this.listsOwn) return this.forward();
    return this.forward(this.req.target, {
      json: async (df) => {
        if (!isObj(df)) throw new Error('system df is not an object');
        const out: Obj = { ...df };
        if (Array.isArray(df.Containers)) out.Containers = await this.ownRows(df.Containers);
        if (Array.isArray(df.Volumes)) out.Volumes = df.Volumes.filter((v) => isObj(v) && this.visibleNamed('volume', v));
        return out;
      },
    });
  }

  private async build(): Promise<Action> {
    const t = this.req.target;
    const net = firstRefusal(applyMode(await decideSecurityOf(this.policy, this.who, securityRequestOfBuild(queryOne(t, 'networkmode')), this.up), this.policy.mode));
    if (net) return this.refuse(net.reason, net.rule);
    const parent = queryOne(t, 'cgroupparent');
    if (parent) {
      const refusal = applyMode([...decideCreate(this.policy, this.who, { labels: [], cgroupParent: parent }, { now: new Date(), iface: 'api' })].filter((d) => d.rule === 'cgroup.parent'), this.policy.mode).find(
        (d) => d.verdict === 'deny',
      );
      if (refusal) return this.refuse(refusal.reason.replace('--cgroup-parent', 'build cgroupparent'), refusal.rule);
    }
    return this.forward();
  }

  // ------------------------------------------------------------ volumes and networks

  /**
   * Who may see and use a volume or network: its owner (the `<p>.user`
   * label the face set at create), and anyone for one without an owner
   * (bridge, host, volumes from before the face) unless it is an anonymous
   * volume (a 64-hex name: the data of one container, shown to its admin).
   */
  private visibleNamed(kind: 'volume' | 'network', obj: Obj): boolean {
    if (this.actsOnAll) return true;
    const owner = labelOwner(isObj(obj.Labels) ? (obj.Labels as Record<string, string>) : undefined, this.prefix);
    if (owner.user !== undefined) return mayActOn(this.who, owner).allow;
    return !(kind === 'volume' && typeof obj.Name === 'string' && /^[0-9a-f]{64}$/.test(obj.Name));
  }

  private mayChange(obj: Obj): boolean {
    if (this.actsOnAll) return true;
    return mayActOn(this.who, labelOwner(isObj(obj.Labels) ? (obj.Labels as Record<string, string>) : undefined, this.prefix)).allow;
  }

  private volumesList(): Action {
    if (!this.listsOwn) return this.forward();
    return this.forward(this.req.target, {
      json: (body) => {
        if (!isObj(body)) throw new Error('volume list is not an object');
        return { ...body, Volumes: Array.isArray(body.Volumes) ? body.Volumes.filter((v) => isObj(v) && this.visibleNamed('volume', v)) : body.Volumes };
      },
    });
  }

  private async volume(name: string, verb: 'inspect' | 'remove' | 'update'): Promise<Action> {
    if (this.actsOnAll) return this.forward();
    const r = await this.up.get(`/volumes/${encodeURIComponent(name)}`);
    if (r.status !== 200 || !isObj(r.body)) return this.daemonSays(r);
    const allowed = verb === 'inspect' ? this.visibleNamed('volume', r.body) : this.mayChange(r.body);
    if (!allowed) return this.refuse(`volume "${name}" is not yours; only its owner or an admin may ${verb === 'inspect' ? 'inspect' : verb} it`, 'ownership.volume');
    if (verb !== 'inspect') this.log('allow', [`${this.who.user} may ${verb} volume ${name}`]);
    return this.forward();
  }

  private networksList(): Action {
    if (!this.listsOwn) return this.forward();
    return this.forward(this.req.target, {
      json: async (body) => {
        if (!Array.isArray(body)) throw new Error('network list is not a list');
        const visible = body.filter((n) => isObj(n) && this.visibleNamed('network', n));
        return Promise.all(visible.map((n) => this.ownEndpoints(n as Obj)));
      },
    });
  }

  /** A network's Containers map (when listed) with other users' containers left out. */
  private async ownEndpoints(n: Obj): Promise<Obj> {
    if (!isObj(n.Containers) || !Object.keys(n.Containers).length) return n;
    const all = await this.up.get('/containers/json?all=1');
    if (all.status !== 200 || !Array.isArray(all.body)) throw new Error(`container list failed: ${daemonMessage(all)}`);
    const own = new Set(((await this.ownRows(all.body)) as { Id: string }[]).map((c) => c.Id));
    return { ...n, Containers: Object.fromEntries(Object.entries(n.Containers).filter(([id]) => own.has(id))) };
  }

  private async network(id: string, verb: 'inspect' | 'remove' | 'connect' | 'disconnect'): Promise<Action> {
    if (this.actsOnAll) return this.forward();
    const r = await this.up.get(`/networks/${encodeURIComponent(id)}`);
    if (r.status !== 200 || !isObj(r.body)) return this.daemonSays(r);
    const net = r.body;
    const netId = typeof net.Id === 'string' ? net.Id : id;
    const t = { ...this.req.target, path: `/networks/${netId}${verb === 'connect' || verb === 'disconnect' ? `/${verb}` : ''}` };
    if (verb === 'inspect') {
      if (!this.visibleNamed('network', net)) return this.refuse(`network "${id}" is not yours; only its owner or an admin may inspect it`, 'ownership.network');
      return this.forward(t, { json: (body) => (isObj(body) ? this.ownEndpoints(body) : body) });
    }
    if (verb === 'remove') {
      if (!this.mayChange(net)) return this.refuse(`network "${id}" is not yours; only its owner or an admin may remove it`, 'ownership.network');
      this.log('allow', [`${this.who.user} may remove network ${id}`]);
      return this.forward(t);
    }
    // connect / disconnect: a network the caller may use, and a container of theirs.
    if (!this.visibleNamed('network', net)) return this.refuse(`network "${id}" belongs to another user; only its owner or an admin may ${verb} containers`, 'ownership.network');
    const body = bodyAsDockerdReadsIt(parseJsonBody(await this.req.readBody(MAX_JSON_BODY), `network ${verb} body`), ['Container', 'EndpointConfig', 'Force'], `network ${verb} body`);
    if (typeof body.Container !== 'string' || !body.Container) throw new HttpError(400, `network ${verb} body: Container is required`);
    const c = await this.s.owners.container(body.Container, this.prefix);
    if (!c.found) return this.daemonSays(c.reply);
    const refusal = this.ownerCheck(c.owner, body.Container, `${verb} to a network`);
    if (refusal) return this.refuse(refusal, 'ownership', { container: c.value.Id });
    this.log('allow', [`${this.who.user} may ${verb} ${body.Container} ${verb === 'connect' ? 'to' : 'from'} network ${id}`], { container: c.value.Id });
    return this.forward(t, { body: Buffer.from(JSON.stringify({ ...body, Container: c.value.Id })) });
  }

  /** Volume and network create: reserved labels refused, owner labels added (the same decisions as a container's). */
  private async createOwned(kind: 'volume' | 'network'): Promise<Action> {
    const fields =
      kind === 'volume'
        ? ['Name', 'Driver', 'DriverOpts', 'Labels', 'ClusterVolumeSpec']
        : ['Name', 'CheckDuplicate', 'Driver', 'Scope', 'EnableIPv6', 'IPAM', 'Internal', 'Attachable', 'Ingress', 'ConfigOnly', 'ConfigFrom', 'Options', 'Labels'];
    const body = bodyAsDockerdReadsIt(parseJsonBody(await this.req.readBody(MAX_JSON_BODY), `${kind} create body`), fields, `${kind} create body`);
    if (body.Labels !== undefined && body.Labels !== null && (!isObj(body.Labels) || Object.values(body.Labels).some((v) => typeof v !== 'string'))) {
      throw new HttpError(400, `${kind} create body: Labels must map names to strings`);
    }
    const labels = (body.Labels ?? {}) as Record<string, string>;
    const asked: CreateRequest = { labels: Object.entries(labels).map(([key, value]) => ({ key, value, from: `${kind} Labels` })) };
    const decisions = applyMode(
      [
        ...decideReservedLabels(this.policy, this.who, asked),
        decideOwnerLabels(this.policy, this.who, asked, { now: new Date(), iface: 'api' }),
        ...(kind === 'volume' ? await securityOfVolumeCreate(this.policy, this.who, body, this.up) : []),
      ],
      this.policy.mode,
    );
    const refusal = firstRefusal(decisions);
    const reasons = decisions.map((d) => `${d.verdict} ${d.rule}: ${d.reason}`);
    if (refusal) {
      this.log('deny', reasons);
      return { kind: 'respond', status: 403, json: { message: `gpuguard: ${refusal.reason.replace('remove it from the command', `remove it from the ${kind}'s labels`)}` } };
    }
    const added = Object.fromEntries(decisions.filter((d) => d.verdict !== 'deny').flatMap((d) => d.add ?? []).flatMap((s) => (s.kind === 'label' ? [[s.key, s.value]] : [])));
    this.log('rewrite', reasons, { [kind]: typeof body.Name === 'string' ? body.Name : '' });
    return this.forward(this.req.target, { body: Buffer.from(JSON.stringify({ ...body, Labels: { ...labels, ...added } })) });
  }
}

/** Container verbs that change something: an allowed one is logged (reads, waits and resizes are not). */
const LOGGED_VERBS = new Set(['start', 'stop', 'restart', 'kill', 'pause', 'unpause', 'update', 'rename', 'remove', 'exec', 'archive-put', 'checkpoints']);

/** The verb as a user would say it in a refusal. */
function verbWord(verb: string): string {
  return (
    {
      json: 'inspect',
      'archive-put': 'copy files into',
      archive: 'copy files from',
      remove: 'remove',
      exec: 'exec in',
      attach: 'attach to',
      logs: 'read the logs of',
      changes: 'diff',
      stats: 'read the stats of',
      top: 'list the processes of',
    } as Record<string, string>
  )[verb] ?? verb;
}

