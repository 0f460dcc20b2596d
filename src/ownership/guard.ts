/**
 * Isolation in the docker shim: a user acts only on their own containers.
 * The shim asks `isGuarded` (commands.ts: pure, no imports) for every command; only the
 * commands that name containers, and `docker ps`, pay for a Docker query.
 * The decision itself is the policy's (`mayActOn`); this file gathers the
 * facts, asks, and either refuses (exit 1, before anything happens) or
 * returns the argv to hand over (rewritten only for `docker ps`).
 */
import { GpuguardError } from '../errors.ts';
import type { Endpoint } from '../docker/api.ts';
import { PS, classify, commandWords, psIdFilters, rewritePs, scan, targetsOf, type Classified, type ShimGlobals } from './commands.ts';
import type { Caller } from '../docker-shim/caller.ts';

/** `docker stats` with no container names: every running container. */
function isStatsOfAll(what: Classified, args: readonly string[]): boolean {
  return what.kind === 'containers' && what.name === 'stats' && targetsOf(what.spec, args).length === 0 && !scan(what.spec, args).help;
}

/** `docker ps`, or `docker stats` without names: a list filtered to the user's own. */
function isListing(what: Classified, args: readonly string[]): boolean {
  return what.kind === 'ps' || isStatsOfAll(what, args);
}

/** The daemon-side filter of a listing: the user's own `id` filters (ps), running containers (stats without -a). */
function listingFilters(what: Classified, args: readonly string[]): Record<string, string[]> | undefined {
  if (what.kind === 'ps') {
    const wanted = psIdFilters(args);
    return wanted.length ? { id: wanted } : undefined;
  }
  const all = what.kind === 'containers' && scan(what.spec, args).flags.some((f) => f.name === '-a' || f.name === '--all');
  return all ? undefined : { status: ['running'] };
}

/** Whether there is anything to decide: containers named, or a listing (not `--help`). */
function hasWork(what: Classified, args: readonly string[]): boolean {
  if (what.kind === 'other') return false;
  if (what.kind === 'ps') return !scan(PS, args).help;
  if (what.kind === 'prune') return !args.includes('--help') && !args.includes('-h');
  return targetsOf(what.spec, args).length > 0 || isStatsOfAll(what, args);
}

/** A refusal: another user's container (docker's own exit code for a failed command: 1). */
export class OwnershipDenied extends GpuguardError {
  override name = 'OwnershipDenied';
  constructor(message: string) {
    super(message, 1);
  }
}

export interface GuardRequest {
  /** Subcommand words: ["stop"], ["container", "rm"], ["ps"]. */
  command: readonly string[];
  /** The words after the subcommand. */
  args: readonly string[];
  /** Global options as typed (before the subcommand), replayed when the CLI has to be asked. */
  globalArgs?: readonly string[];
  /** The daemon's unix socket, when known (else derived from `endpoint`). */
  socket?: string;
  endpoint?: Endpoint;
  env?: NodeJS.ProcessEnv;
  /** The caller's real uid (the decider's caller); else this process's. */
  uid?: number;
  /** The decider's remembered answers (src/docker-shim/caller.ts); else asked here. */
  identity?: () => Promise<import('../policy/identity.ts').Identity>;
  imageLabels?: (ids: string[]) => Promise<Map<string, Record<string, string>>>;
  /** Already loaded by the caller, if it has them. */
  policy?: import('../policy/schema.ts').Policy;
  actor?: import('../policy/effective.ts').EffectiveUser;
  /** The real CLI, for daemons not reachable on a local socket. */
  realDocker: () => string;
  /** A listing's container list, already asked for on `socket` (guardShimCommand starts it early). */
  listed?: Promise<import('../docker/lists.ts').ContainerSummary[]>;
}

export interface GuardResult {
  /** Who asked (absent when the command needed no decision). */
  actor?: import('../policy/effective.ts').EffectiveUser;
  policy?: import('../policy/schema.ts').Policy;
  /** The words after the subcommand to hand over (unchanged except for `docker ps`). */
  args: string[];
  /** What was decided, for the event log. */
  decision: 'allow' | 'rewrite' | 'deny' | 'warn';
  reasons: string[];
}

/**
 * Decide; never throws a refusal (the caller logs it first, then refuses
 * with {@link OwnershipDenied}). `decision: 'deny'` carries one reason per
 * refused container.
 */
export async function guard(req: GuardRequest): Promise<GuardResult> {
  const env = req.env ?? process.env;
  const what = classify(req.command);
  let pass: GuardResult = { args: [...req.args], decision: 'allow', reasons: [] };
  if (what.kind === 'other' || !hasWork(what, req.args)) return pass;
  const targets = what.kind === 'containers' ? targetsOf(what.spec, req.args) : [];
  const listing = isListing(what, req.args);

  // The policy modules this needs, not policy/index.ts (which loads yaml and zod).
  const [{ currentIdentity }, { resolveUser }, { mayActOn, listsOnlyOwn }] = await Promise.all([
    import('../policy/identity.ts'),
    import('../policy/effective.ts'),
    import('../policy/ownership.ts'),
  ]);
  const policy = req.policy ?? (await (await import('../policy/cache.ts')).loadPolicyCached(env)).policy;
  const actor = req.actor ?? resolveUser(policy, req.identity ? await req.identity() : currentIdentity(env, req.uid));
  pass = { ...pass, actor, policy };
  // Audit mode changes nothing the user sees: listings stay whole (refusals become warnings below).
  if (listing && (!listsOnlyOwn(actor, policy.docker.psFilter) || policy.mode === 'audit')) return pass;
  // Anyone who may act on every container (admins, service users, root) pays for no query.
  const actsOnAll = mayActOn(actor, { user: undefined, method: 'none' }).allow;
  if ((what.kind === 'containers' || what.kind === 'prune') && actsOnAll) return pass;
  if (what.kind === 'prune') return prune(what.scope, req.args, actor, policy, pass);

  const prefix = policy.labelPrefix;
  const { ownersOf, ownersOfList } = await import('./facts.ts');

  if (listing) {
    // One list with labels, names and mounts, one image read: no inspect per container.
    // On a local socket without the gateway (zod): a listing runs on every `docker ps`.
    const filters = listingFilters(what, req.args);
    const lists = req.socket !== undefined ? await import('../docker/lists.ts') : undefined;
    const reader = lists && req.socket !== undefined ? { imageLabels: req.imageLabels ?? ((ids: string[]) => lists.imageLabelsOn(req.socket!, ids)) } : await gatewayReader(req, env);
    const containers = await (req.listed ?? (lists && req.socket !== undefined ? lists.listContainersOn(req.socket, filters) : (reader as import('../docker/gateway.ts').DockerReader).listContainers(filters)));
    const { owners } = await ownersOfList(reader, containers, prefix);
    const own = containers.filter((_, i) => mayActOn(actor, owners[i]!).allow).map((c) => c.Id);
    if (what.kind === 'ps') return { actor, policy, args: rewritePs(req.args, own), decision: 'rewrite', reasons: [`docker ps lists the ${own.length} container(s) of ${actor.user}`] };
    // `docker stats` with no names shows every running container: name the user's own instead.
    const all = filters === undefined;
    if (!own.length) return { ...pass, decision: 'deny', reasons: [`${actor.user} has no ${all ? '' : 'running '}containers; docker stats without names would show other users' containers`] };
    return { ...pass, args: [...req.args, ...own.map((id) => id.slice(0, 12))], decision: 'rewrite', reasons: [`docker stats shows the ${own.length} container(s) of ${actor.user}`] };
  }

  if (what.kind !== 'containers') return pass; // (ps is a listing, above)
  const reader = await gatewayReader(req, env);
  const { found } = await reader.inspectContainers(targets);
  const refs = [...found.keys()];
  const containers = [...found.values()];
  const { owners } = await ownersOf(reader, containers, prefix);
  const refused: string[] = [];
  containers.forEach((c, i) => {
    const owner = owners[i]!;
    const d = mayActOn(actor, owner);
    if (d.allow) return;
    const name = refs[i]!;
    const shown = c.Name.replace(/^\//, '') === name ? `"${name}"` : `"${name}" (${c.Name.replace(/^\//, '')})`;
    refused.push(
      owner.user === undefined
        ? `container ${shown} has no known owner (method: none); only an admin may ${what.name} it`
        : `container ${shown} belongs to ${owner.user} (method: ${owner.method}, ${owner.evidence}); only ${owner.user} or an admin may ${what.name} it`,
    );
  });
  if (!refused.length) return { ...pass, actor, policy, reasons: [`${actor.user} may act on ${refs.join(', ')}`] };
  if (policy.mode === 'audit') return { ...pass, actor, policy, decision: 'warn', reasons: refused };
  return { ...pass, actor, policy, decision: 'deny', reasons: refused };
}

/** The gateway's reader (zod-typed inspects; the real CLI for a daemon not on a local socket). */
async function gatewayReader(req: GuardRequest, env: NodeJS.ProcessEnv): Promise<import('../docker/gateway.ts').DockerReader> {
  const { dockerReader } = await import('../docker/gateway.ts');
  return dockerReader({ env, globalArgs: [...(req.globalArgs ?? [])], ...(req.socket !== undefined ? { socket: req.socket } : {}), endpoint: req.endpoint, realDocker: req.realDocker });
}

/**
 * `container prune` would remove every user's stopped containers: for a
 * user it prunes only those labelled as theirs (docker ANDs label filters,
 * so the user's own filters still apply). `system prune` prunes containers
 * with no way to narrow them apart from the images and networks, so a user
 * is pointed at the commands that do.
 */
function prune(scope: 'container' | 'system', args: readonly string[], actor: import('../policy/effective.ts').EffectiveUser, policy: import('../policy/schema.ts').Policy, pass: GuardResult): GuardResult {
  const label = `label=${policy.labelPrefix}.user=${actor.user}`;
  if (scope === 'container') return { ...pass, args: [...args, '--filter', label], decision: 'rewrite', reasons: [`docker container prune removes only the stopped containers of ${actor.user} (${label})`] };
  const reason = `docker system prune would remove other users' stopped containers; use docker container prune (yours only), docker image prune and docker network prune, or ask an admin`;
  return { ...pass, decision: policy.mode === 'audit' ? 'warn' : 'deny', reasons: [reason] };
}

/**
 * The shim's entry for guarded commands: decide, log a refusal or an audit
 * warning, refuse (exit 1) or return the argv to hand over.
 */
export async function guardShimCommand(args: readonly string[], g: ShimGlobals, target: { local: boolean; why: string; socket?: string }, caller: Caller): Promise<string[]> {
  const env = caller.env;
  const cw = commandWords(args, g);
  if (!cw) return [...args];
  const what = classify(cw.words);
  const rest = args.slice(cw.rest);
  if (what.kind === 'other' || !hasWork(what, rest)) return [...args];
  const listing = isListing(what, rest);
  // A listing on a local socket: ask dockerd for the list now, while the policy and the user are read
  // (an admin, who may see everything, leaves the answer unread; root never asks).
  const socket = target.local && caller.uid !== 0 ? target.socket : undefined;
  const filters = listing ? listingFilters(what, rest) : undefined;
  const listed =
    listing && socket !== undefined
      ? filters === undefined && caller.listAllContainers
        ? caller.listAllContainers(socket)
        : import('../docker/lists.ts').then((m) => m.listContainersOn(socket, filters))
      : undefined;
  listed?.catch(() => {}); // awaited in guard(), or not needed
  // One-shot validation of inspects: zod's compiled (JIT) parsers cost more to build than they save here.
  if (!listing) (await import('zod')).config({ jitless: true });
  if (what.kind === 'containers' && target.local && (await ownsAll(targetsOf(what.spec, rest), g, target.socket, env, caller.uid))) return [...args];
  // Root keeps a validated copy of the policy (policy/cache.ts): no YAML, no zod on a hit.
  let policy: import('../policy/schema.ts').Policy;
  try {
    policy = (await (await import('../policy/cache.ts')).loadPolicyCached(env)).policy;
  } catch (err) {
    // A broken policy does not block docker (as for the GPU start check): skipped, said once.
    const { PolicyError } = await import('../errors.ts');
    if (!(err instanceof PolicyError)) throw err;
    caller.warn(`gpuguard: warning: ownership check skipped: ${err.message}\n`);
    return [...args];
  }
  if (!target.local && policy.docker.remote !== 'enforce') return [...args];
  const [{ findRealDocker }, { DaemonUnreachable }] = await Promise.all([import('../docker/real.ts'), import('../docker/cli.ts')]);
  const r = await guard({
    command: cw.words,
    args: rest,
    globalArgs: args.slice(0, g.commandIndex),
    ...(target.socket !== undefined ? { socket: target.socket } : {}),
    endpoint: { hosts: g.hosts, ...(g.context !== undefined ? { context: g.context } : {}), ...(g.config !== undefined ? { config: g.config } : {}) },
    env,
    uid: caller.uid,
    ...(caller.identity ? { identity: caller.identity } : {}),
    ...(caller.imageLabels && target.socket !== undefined ? { imageLabels: (ids: string[]) => caller.imageLabels!(target.socket!, ids) } : {}),
    policy,
    realDocker: () => findRealDocker(env, policy.docker.realPath),
    ...(listed ? { listed } : {}),
  }).catch((err: unknown) => {
    // No daemon to ask is no daemon to act on: the real CLI reports it in its own words.
    if (err instanceof DaemonUnreachable) return undefined;
    throw err;
  });
  if (!r) return [...args];
  if ((r.decision === 'deny' || r.decision === 'warn') && r.actor) {
    const { appendEvent } = await import('../events/log.ts');
    appendEvent(policy.events.log, {
      face: 'docker',
      decision: r.decision,
      user: r.actor.user,
      uid: r.actor.uid,
      argv: ['docker', ...args].slice(0, 64),
      reasons: r.reasons,
      ...(policy.mode === 'audit' ? { mode: 'audit' } : {}),
      pid: caller.pid,
    });
  }
  if (r.decision === 'deny') throw new OwnershipDenied(r.reasons.join('; '));
  if (r.decision === 'warn') for (const reason of r.reasons) caller.warn(`gpuguard: warning (audit mode): ${reason}\n`);
  return [...args.slice(0, cw.rest), ...r.args];
}

/**
 * The common case, decided without loading the policy: a user (not root)
 * acting on containers that are all theirs. Needs only the label prefix
 * (peek.ts), the user's name and the containers; the rule is still the
 * policy's (`mayActOn` answering "owner"). Anything else, or any doubt
 * (an error, a remote daemon, root), answers false and the full guard runs.
 */
async function ownsAll(refs: readonly string[], g: ShimGlobals, socket: string | undefined, env: NodeJS.ProcessEnv, uid: number): Promise<boolean> {
  if (uid === 0 || refs.length === 0) return false;
  try {
    // Three independent facts, fetched concurrently: the containers (socket),
    // the user's name (/etc/passwd, else getent) and the label prefix (YAML).
    const inspected = (async () => {
      const { dockerReader } = await import('../docker/gateway.ts');
      const reader = await dockerReader({
        env,
        ...(socket !== undefined ? { socket } : {}),
        endpoint: { hosts: g.hosts, ...(g.context !== undefined ? { context: g.context } : {}), ...(g.config !== undefined ? { config: g.config } : {}) },
        realDocker: () => {
          throw new GpuguardError('not a local daemon');
        },
      });
      return { reader, ...(await reader.inspectContainers([...refs])) };
    })();
    inspected.catch(() => undefined); // awaited below; no unhandled rejection meanwhile
    const facts = await import('./facts.ts');
    const name = facts.userByUidAsync(uid);
    const prefix = await (await import('../policy/peek.ts')).peekLabelPrefix(env);
    const [{ reader, found }, me, { mayActOn }] = await Promise.all([inspected, name, import('../policy/ownership.ts')]);
    if (!prefix || !me) return false;
    const { owners } = await facts.ownersOf(reader, [...found.values()], prefix);
    const actor = { user: me.user, uid: me.uid, isAdmin: false, isServiceUser: false };
    return owners.every((o) => mayActOn(actor, o).allow);
  } catch {
    return false;
  }
}
