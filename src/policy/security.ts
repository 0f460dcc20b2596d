/**
 * The security policy: what a non-admin's container may ask for, so that no
 * container is a route to host root, to other users' data or to other
 * users' containers. Pure: every face (docker argv, compose services, the
 * Engine API's create body, `docker volume create`) translates its input
 * into a {@link SecurityRequest}, an I/O module (src/security/facts.ts)
 * gathers the {@link SecurityFacts} (bind sources resolved as dockerd will,
 * owners of referenced containers, existing volumes), and
 * {@link decideSecurity} answers with one decision per ask.
 *
 * With no `security` key in the policy nothing is decided here. Admins (and
 * root acting as itself) are never refused: what would be refused is an
 * `override`. Audit mode is the faces' `applyMode`, as for every decision.
 */
import { posix } from 'node:path';
import type { Decision } from './decide.ts';
import type { EffectiveUser } from './effective.ts';
import { mayActOn } from './ownership.ts';
import type { Policy, SecurityT } from './schema.ts';

/**
 * Where an ask came from, as the user spelled it ("-v /etc:/x",
 * "--cap-add SYS_ADMIN", "volumes: /etc:/x", "HostConfig.Privileged"), for
 * the refusal message; `at` is the face's own locator (compose: the service
 * key), copied into the decision.
 */
export interface Spelled {
  from: string;
  at?: string;
}

export type NamespaceKind = 'pid' | 'ipc' | 'network' | 'uts' | 'userns' | 'cgroupns';

/**
 * Every security-relevant ask of one container create, in the Engine API's
 * terms. A face lists what the user asked, nothing it has decided itself.
 * From a create body (`from` as the field: "HostConfig.Privileged" …):
 * - HostConfig.Privileged → privileged; CapAdd[] → capAdd;
 *   Devices[].PathOnHost → devices; DeviceCgroupRules[] → deviceCgroupRules
 * - PidMode, IpcMode, NetworkMode, UTSMode, UsernsMode, CgroupnsMode → namespaces
 * - SecurityOpt[] → securityOpt
 * - Binds[] → {@link parseBindSpec}: binds (host paths) or volumes (names)
 * - Mounts[]: Type bind → binds (Source); Type volume → volumes (Source, when
 *   named) and, through {@link localVolumeHostPath} of
 *   VolumeOptions.DriverConfig.Name/Options, binds
 * - VolumesFrom[] ("name[:mode]") and Links[] ("name:alias") → containers
 * `POST /volumes/create` is {@link volumeCreateRequest}(Driver, DriverOpts);
 * an exec with `Privileged: true` is a privileged ask (the shim's
 * `docker exec --privileged`).
 */
export interface SecurityRequest {
  /** Each ask for a privileged container that takes effect (`--privileged=false` is none). */
  privileged: Spelled[];
  /** Capabilities to add, as written (normalised here: `sys_admin`, `CAP_SYS_ADMIN`, `ALL`). */
  capAdd: (Spelled & { cap: string })[];
  /** Host devices (`--device`, HostConfig.Devices), GPU requests that the allocator handles left out. */
  devices: (Spelled & { device: string })[];
  deviceCgroupRules: (Spelled & { rule: string })[];
  /** Namespace modes: `host`, `container:<ref>`, `private`, a network name … */
  namespaces: (Spelled & { kind: NamespaceKind; mode: string })[];
  securityOpt: (Spelled & { opt: string })[];
  /**
   * Host paths that end up mounted, by any spelling: `-v /a:/b`, `--mount
   * type=bind`, Binds, Mounts[].Type bind, and the device of a local volume
   * whose driver options make it a bind ({@link localVolumeHostPath}).
   * Absolute (a face makes a relative one absolute the way its client does).
   * `readOnly`: mounted read-only (`:ro`, `readonly`, ReadOnly, a volume's `o=ro`).
   */
  binds: (Spelled & { source: string; readOnly?: boolean })[];
  /** Named volumes used: an existing one is judged by its own driver options (facts.volumes). */
  volumes: (Spelled & { name: string; readOnly?: boolean })[];
  /** Containers whose volumes or links are asked for (`--volumes-from`, `--link`, compose `external_links`). */
  containers: (Spelled & { container: string; how: 'volumes-from' | 'link' })[];
}

export function emptySecurityRequest(): SecurityRequest {
  return { privileged: [], capAdd: [], devices: [], deviceCgroupRules: [], namespaces: [], securityOpt: [], binds: [], volumes: [], containers: [] };
}

/** A path as dockerd will see it, or why it could not be resolved. */
export type PathFact =
  | {
      /** `..` and symlinks resolved; a part that does not exist yet appended as written. */
      resolved: string;
      /** The longest leading part that exists (the path itself when it exists). */
      existing: string;
      /**
       * What the user may do to `existing` on the host (read: list or read
       * it; write: change it, or create in it what does not exist yet). A
       * container gets no more than its owner has: judged only when set.
       */
      access?: { read: boolean; write: boolean };
    }
  | { error: string };

/** One entry of `security.binds`, filled in for the user and resolved. */
export interface BindRootFact {
  /** As the policy writes it: "{home}", "/srv/*". */
  written: string;
  /** Filled in, without a trailing "/*": "/home/alice", "/srv". */
  rendered: string;
  /** `dir/*`: what is below `rendered` is allowed, not `rendered` itself. */
  children: boolean;
  /** `rendered` resolved like a bind source; undefined when the root is unusable (see `note`). */
  resolved?: string;
  note?: string;
}

/** The owner of a referenced container, as the ownership module decided it. */
export type ContainerFact =
  | { user: string | undefined; method: string; evidence: string; name: string }
  | { missing: true }
  | { error: string };

/** An existing volume: its driver and options (null: no such volume). */
export type VolumeFact = { driver: string; options: Record<string, string> } | null | { error: string };

export interface SecurityFacts {
  /** Every path to judge (bind sources, devices of existing bind volumes), resolved, by the path as in the request. */
  paths: Record<string, PathFact>;
  /** The policy's bind roots for this user ({@link bindRoots}), resolved. */
  roots: BindRootFact[];
  /** Owners of referenced containers, by the reference as written. Absent: not looked up (someone who may use every container). */
  containers: Record<string, ContainerFact>;
  /** Existing named volumes, by name. Absent: not looked up. */
  volumes: Record<string, VolumeFact>;
}

// ---------------------------------------------------------------------------
// Helpers the faces share, so that no face reimplements a rule.

/** Docker's local volume names ([a-zA-Z0-9][a-zA-Z0-9_.-]+); a bind source is anything else. */
const VOLUME_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/;

/**
 * One `-v`/Binds/compose short-syntax entry, split the way dockerd does
 * (volume/mounts linux_parser ParseMountRaw: up to four ":"-separated parts,
 * the first is the source when there are two or more): a host path, a
 * named volume, or an anonymous volume. A source that is neither an
 * absolute path nor a valid volume name is reported as a relative path
 * (the CLI turns `./x` into an absolute path; anything else dockerd refuses,
 * so judging it as a path refuses nothing docker would create).
 */
export function parseBindSpec(spec: string): { kind: 'bind'; source: string; relative: boolean; readOnly: boolean } | { kind: 'volume'; name: string; readOnly: boolean } | { kind: 'anonymous' } {
  const parts = spec.split(':');
  if (parts.length < 2 || parts[0] === '') return { kind: 'anonymous' };
  const source = parts[0]!;
  // The mode (third part): "ro" among its comma-separated options (dockerd's ReadWrite).
  const readOnly = (parts[2] ?? '').split(',').includes('ro');
  if (source.startsWith('/')) return { kind: 'bind', source, relative: false, readOnly };
  if (VOLUME_NAME.test(source)) return { kind: 'volume', name: source, readOnly };
  return { kind: 'bind', source, relative: true, readOnly };
}

/** A local volume mounted read-only by its own options (`o=ro,bind`). */
export function localVolumeReadOnly(options: Readonly<Record<string, string>> | undefined): boolean {
  return (options?.o ?? '').split(',').map((x) => x.trim().toLowerCase()).includes('ro');
}

const NETWORK_FILESYSTEMS = new Set(['nfs', 'nfs4', 'cifs', 'smb', 'smb3', 'smbfs']);

/**
 * The host path a volume mounts, from its driver and options: for the
 * `local` driver (the default), `o` with `bind`/`rbind` makes `device` a
 * host path (relative to dockerd's working directory, /), and any other
 * absolute `device` (a block device such as /dev/sda1) is a host path too,
 * except for network file systems (nfs, cifs), whose device is a remote
 * address. Other drivers are plugins an admin installed: undefined.
 */
export function localVolumeHostPath(driver: string | undefined, options: Readonly<Record<string, string>> | undefined): string | undefined {
  if (driver !== undefined && driver !== '' && driver !== 'local') return undefined;
  const device = options?.device;
  if (device === undefined || device === '') return undefined;
  const o = (options?.o ?? '').split(',').map((x) => x.trim().toLowerCase());
  if (o.includes('bind') || o.includes('rbind')) return posix.join('/', device);
  const type = (options?.type ?? '').toLowerCase();
  if (device.startsWith('/') && !NETWORK_FILESYSTEMS.has(type)) return device;
  return undefined;
}

/** Docker's spelling of a capability (cli opts.NormalizeCapability): upper case, CAP_ prefix, ALL as is. */
export function normaliseCapability(cap: string): string {
  const c = cap.trim().toUpperCase();
  if (c === 'ALL') return c;
  return c.startsWith('CAP_') ? c : `CAP_${c}`;
}

/** The containers a request refers to (volumes-from, links, `container:` namespace modes), as written. */
export function containerRefs(req: SecurityRequest): string[] {
  const refs = req.containers.map((c) => c.container);
  for (const n of req.namespaces) {
    const ref = containerOfMode(n.mode);
    if (ref !== undefined) refs.push(ref);
  }
  return [...new Set(refs)];
}

/** `container:<ref>` → ref. */
export function containerOfMode(mode: string): string | undefined {
  return mode.toLowerCase().startsWith('container:') ? mode.slice('container:'.length) : undefined;
}

/**
 * The policy's bind roots for this user, filled in: `{home}` (the home the
 * user database gives; a root with `{home}` is unusable without one, or
 * when it is "/") and `{user}`.
 */
export function bindRoots(security: SecurityT, user: Pick<EffectiveUser, 'user' | 'home'>): BindRootFact[] {
  return security.binds.map((written) => {
    const children = written.endsWith('/*');
    const template = children ? written.slice(0, -2) || '/' : written;
    const base = { written, children };
    if (template.includes('{home}') && (!user.home || posix.normalize(user.home) === '/')) {
      return { ...base, rendered: template, note: user.home ? `the home of ${user.user} is /` : `${user.user} has no home directory in the user database` };
    }
    const rendered = posix.normalize(template.replaceAll('{home}', user.home ?? '').replaceAll('{user}', user.user));
    return { ...base, rendered: rendered.length > 1 ? rendered.replace(/\/+$/, '') : rendered };
  });
}

/** Whether a resolved path is inside a resolved root: by path components, never by string prefix. */
export function isWithinRoot(path: string, root: Pick<BindRootFact, 'resolved' | 'children'>): boolean {
  if (root.resolved === undefined) return false;
  const p = components(path);
  const r = components(root.resolved);
  if (p.length < r.length || r.some((c, i) => p[i] !== c)) return false;
  if (!root.children) return true;
  // dir/*: a directory directly in dir (not a hidden one, as a shell glob) and what is below it.
  return p.length > r.length && !p[r.length]!.startsWith('.');
}

function components(path: string): string[] {
  return posix.normalize(path).split('/').filter(Boolean);
}

// ---------------------------------------------------------------------------
// The decision.

export function decideSecurity(policy: Policy, user: EffectiveUser, req: SecurityRequest, facts: SecurityFacts): Decision[] {
  const sec = policy.security;
  if (!sec) return [];
  const out: Decision[] = [];
  const refuse = (ask: Spelled, rule: string, refusal: string, what: string): Decision => {
    const d = mayOverride(user)
      ? { rule, verdict: 'override' as const, reason: `${ask.from}: ${what}: allowed because ${user.user} is ${user.isAdmin ? 'an admin' : 'root'} (logged)` }
      : { rule, verdict: 'deny' as const, reason: `${ask.from}: ${refusal}` };
    return ask.at !== undefined ? { ...d, at: ask.at } : d;
  };
  const keep = (ask: Spelled, rule: string, why: string): Decision => ({ rule, verdict: 'keep', reason: `${ask.from}: ${why}`, ...(ask.at !== undefined ? { at: ask.at } : {}) });

  // privileged
  for (const ask of req.privileged) {
    if (sec.privileged) out.push(keep(ask, 'security.privileged', 'privileged containers are allowed (security.privileged: true)'));
    else out.push(refuse(ask, 'security.privileged', `a privileged container is root on the host (security.privileged: false); remove it, and add only the capabilities you need with --cap-add (${capList(sec)})`, 'a privileged container'));
  }

  // capAdd
  const allowedCaps = new Set(sec.capAdd.map(normaliseCapability));
  for (const ask of req.capAdd) {
    for (const part of ask.cap.split(',')) {
      const cap = normaliseCapability(part);
      if (!cap || cap === 'CAP_') continue;
      if (allowedCaps.has('ALL') || allowedCaps.has(cap)) out.push(keep(ask, 'security.capAdd', `${cap} is allowed (security.capAdd)`));
      else out.push(refuse(ask, 'security.capAdd', `${cap === 'ALL' ? 'all capabilities' : `capability ${cap.slice(4)}`} may not be added (security.capAdd: ${capList(sec)}); remove it`, `capability ${cap}`));
    }
  }

  // devices
  for (const ask of req.devices) {
    if (sec.devices) out.push(keep(ask, 'security.devices', 'host devices are allowed (security.devices: true)'));
    else out.push(refuse(ask, 'security.devices', 'host devices may not be passed to a container (security.devices: false); remove it (GPUs come from --gpus, which gpuguard allocates)', `host device ${ask.device}`));
  }
  for (const ask of req.deviceCgroupRules) {
    if (sec.devices) out.push(keep(ask, 'security.devices', 'device cgroup rules are allowed (security.devices: true)'));
    else out.push(refuse(ask, 'security.devices', 'device cgroup rules may not be set (security.devices: false): they open host devices to the container; remove it (GPUs come from --gpus)', `device cgroup rule ${ask.rule}`));
  }

  // namespaces: host, and container:<another user's>
  for (const ask of req.namespaces) {
    if (ask.mode.toLowerCase() === 'host') {
      if (sec.hostNamespaces) out.push(keep(ask, 'security.hostNamespaces', `the host's ${NAMESPACE_WORDS[ask.kind]} is allowed (security.hostNamespaces: true)`));
      else out.push(refuse(ask, 'security.hostNamespaces', `the host's ${NAMESPACE_WORDS[ask.kind]} may not be shared (security.hostNamespaces: false); remove it${ask.kind === 'network' ? ' (publish ports with -p)' : ''}`, `the host's ${NAMESPACE_WORDS[ask.kind]}`));
      continue;
    }
    const ref = containerOfMode(ask.mode);
    if (ref !== undefined) out.push(containerDecision(ask, ref, `share the ${NAMESPACE_WORDS[ask.kind]} of`));
  }
  for (const ask of req.containers) out.push(containerDecision(ask, ask.container, ask.how === 'link' ? 'link to' : 'use the volumes of'));

  function containerDecision(ask: Spelled, ref: string, verb: string): Decision {
    const rule = 'security.otherUsersContainers';
    if (sec!.otherUsersContainers) return keep(ask, rule, `other users' containers are allowed (security.otherUsersContainers: true)`);
    const own = ` (security.otherUsersContainers: false); you may ${verb} your own containers only`;
    const fact = facts.containers[ref];
    if (fact === undefined) {
      // Not looked up: only for someone who may act on every container.
      if (mayActOn(user, { user: undefined, method: 'none' }).allow) return keep(ask, rule, `${user.user} may use every container`);
      return refuse(ask, rule, `the owner of container "${ref}" was not checked${own}`, `container ${ref}`);
    }
    if ('error' in fact) return refuse(ask, rule, `the owner of container "${ref}" could not be checked (${fact.error})${own}`, `container ${ref}`);
    if ('missing' in fact) return refuse(ask, rule, `there is no container "${ref}", so gpuguard cannot tell whose it is${own}`, `container ${ref}`);
    const d = mayActOn(user, { user: fact.user, method: fact.method });
    const shown = fact.name === ref ? `"${ref}"` : `"${ref}" (${fact.name})`;
    if (d.allow) return keep(ask, rule, d.why === 'owner' ? `container ${shown} is ${user.user}'s (${fact.method}: ${fact.evidence})` : `${user.user} may use every container (${d.why})`);
    const whose = fact.user === undefined ? `container ${shown} has no known owner (method: none)` : `container ${shown} belongs to ${fact.user} (method: ${fact.method}, ${fact.evidence})`;
    return refuse(ask, rule, `${whose}${own}`, `${whose}`);
  }

  // security options that loosen confinement
  for (const ask of req.securityOpt) {
    const loosens = loosening(ask.opt);
    if (!loosens) continue;
    if (sec.unconfined) out.push(keep(ask, 'security.unconfined', `${loosens} is allowed (security.unconfined: true)`));
    else {
      const hint = /^seccomp/.test(ask.opt.toLowerCase()) && allowedCaps.has('CAP_SYS_PTRACE') ? ' (debuggers need only --cap-add SYS_PTRACE: Docker\'s default seccomp profile then allows ptrace)' : '';
      out.push(refuse(ask, 'security.unconfined', `${loosens} (security.unconfined: false); remove it${hint}`, loosens));
    }
  }

  // binds: every spelling, judged by where it resolves, and by what the user may do there
  const roots = facts.roots;
  const judgeBind = (ask: Spelled, source: string, readOnly: boolean, via?: string) => {
    const rule = 'security.binds';
    const shownSource = via ? `${via} mounts ${source}` : source;
    const allowed = `you may mount paths under ${describeRoots(roots)}; for other data use a named volume`;
    const fact = facts.paths[source];
    if (fact === undefined) return out.push(refuse(ask, rule, `${shownSource} was not resolved, so gpuguard cannot tell where it points (security.binds); ${allowed}`, `host path ${source}`));
    if ('error' in fact) return out.push(refuse(ask, rule, `${shownSource} cannot be resolved (${fact.error}), so gpuguard cannot tell where it points (security.binds); ${allowed}`, `host path ${source}`));
    const root = roots.find((r) => isWithinRoot(fact.resolved, r));
    const resolvedNote = fact.resolved !== posix.normalize(source) ? ` (resolves to ${fact.resolved})` : '';
    const exists = fact.existing === fact.resolved;
    const missingNote = exists ? '' : ` (does not exist yet: judged by ${fact.existing})`;
    if (!root) return out.push(refuse(ask, rule, `${shownSource}${resolvedNote}${missingNote} is not a path you may mount${dangerOf(fact.resolved)} (security.binds); ${allowed}`, `host path ${fact.resolved}`));
    // Under an allowed root: the container (root inside) gets no more than the user has on the host.
    const hostRights = ' (security.binds: a container gets no more than you have on the host)';
    const a = fact.access;
    let lacking: string | undefined;
    if (!a) lacking = `gpuguard could not check what ${user.user} may do with ${fact.existing}${hostRights}`;
    else if (!exists && !a.write) lacking = `${fact.resolved} does not exist and ${user.user} cannot create it in ${fact.existing} (dockerd would, as root)${hostRights}`;
    else if (exists && !a.read) lacking = `${user.user} cannot read ${fact.resolved}${hostRights}`;
    else if (exists && !readOnly && !a.write) lacking = `${user.user} cannot write to ${fact.resolved}${hostRights}; mount it read-only (:ro)`;
    // The path is in the lacking line already; say how it was reached when that is not plain.
    const how = via || resolvedNote ? `${shownSource}${resolvedNote}: ` : '';
    if (lacking) return out.push(refuse(ask, rule, `${how}${lacking}`, `host path ${fact.resolved} beyond the user's own rights`));
    const filled = root.children ? `${root.rendered === '/' ? '' : root.rendered}/*` : root.rendered;
    const under = root.written === filled ? root.written : `${root.written} = ${filled}`;
    out.push(keep(ask, rule, `${shownSource}${resolvedNote} is under ${under}${readOnly ? ', read-only' : ''}`));
  };
  for (const ask of req.binds) judgeBind(ask, ask.source, ask.readOnly === true);
  for (const ask of req.volumes) {
    const v = facts.volumes[ask.name];
    if (v === undefined || v === null) continue; // not looked up (admins), or a new plain volume
    if ('error' in v) {
      out.push(refuse(ask, 'security.binds', `volume ${ask.name} could not be inspected (${v.error}), so gpuguard cannot tell what it mounts (security.binds)`, `volume ${ask.name}`));
      continue;
    }
    const host = localVolumeHostPath(v.driver, v.options);
    if (host !== undefined) judgeBind(ask, host, ask.readOnly === true || localVolumeReadOnly(v.options), `volume ${ask.name}`);
  }
  return out;
}

/** Admins are never refused, nor is root acting as itself (it owns the socket anyway). */
function mayOverride(user: Pick<EffectiveUser, 'isAdmin' | 'uid'>): boolean {
  return user.isAdmin || user.uid === 0;
}

const NAMESPACE_WORDS: Record<NamespaceKind, string> = {
  pid: 'process (pid) namespace',
  ipc: 'IPC namespace',
  network: 'network namespace',
  uts: 'UTS (hostname) namespace',
  userns: 'user namespace',
  cgroupns: 'cgroup namespace',
};

function capList(sec: SecurityT): string {
  return sec.capAdd.length ? `allowed: ${sec.capAdd.map((c) => normaliseCapability(c).replace(/^CAP_/, '')).join(', ')}` : 'none allowed';
}

function describeRoots(roots: readonly BindRootFact[]): string {
  const usable = roots.filter((r) => r.resolved !== undefined).map((r) => (r.children ? `${r.rendered === '/' ? '' : r.rendered}/*` : r.rendered));
  if (!usable.length) return 'nothing (security.binds allows no path for you)';
  return usable.length === 1 ? usable[0]! : `${usable.slice(0, -1).join(', ')} or ${usable.at(-1)}`;
}

/** Why a path is worse than just "not yours", for the message. */
function dangerOf(resolved: string): string {
  if (/(^|\/)(docker|containerd)\.sock$/.test(resolved)) return ': it is the Docker daemon\'s socket, which is root on the host';
  if (resolved === '/') return ': it is the host\'s root file system';
  return '';
}

/**
 * What a `--security-opt` value turns off, or undefined for the ones that
 * only tighten (`no-new-privileges`) or pick a profile root loaded
 * (`apparmor=<profile>`). Both spellings count: `key=value` and the legacy
 * `key:value`. Anything gpuguard does not know counts as loosening.
 */
export function loosening(opt: string): string | undefined {
  const o = opt.trim();
  const sep = o.includes('=') ? '=' : o.includes(':') ? ':' : undefined;
  const key = (sep ? o.slice(0, o.indexOf(sep)) : o).toLowerCase();
  const value = sep ? o.slice(o.indexOf(sep) + 1) : '';
  switch (key) {
    case 'no-new-privileges':
      return undefined;
    case 'apparmor':
      return value.toLowerCase() === 'unconfined' ? 'it turns off AppArmor' : undefined;
    case 'seccomp':
      return value.toLowerCase() === 'unconfined' ? 'it turns off seccomp' : 'a custom seccomp profile may allow any system call';
    case 'systempaths':
      return 'it unmasks /proc and /sys paths Docker hides';
    case 'label':
      return 'it changes or turns off SELinux labelling';
    case 'writable-cgroups':
      return value.toLowerCase() === 'false' ? undefined : 'it makes the cgroup file system writable';
    default:
      return `gpuguard does not know this option (allowed: no-new-privileges, apparmor=<profile>)`;
  }
}

/**
 * `docker volume create` / `POST /volumes/create`: a local volume whose
 * options make it a bind (or mount a block device) is judged like a bind of
 * that path. Build the request with this, gather facts, then decideSecurity.
 */
export function volumeCreateRequest(driver: string | undefined, options: Readonly<Record<string, string>>, from: string): SecurityRequest {
  const req = emptySecurityRequest();
  const host = localVolumeHostPath(driver, options);
  if (host !== undefined) req.binds.push({ source: host, from, readOnly: localVolumeReadOnly(options) });
  return req;
}
