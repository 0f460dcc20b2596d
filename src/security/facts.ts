/**
 * The facts the security decision needs, gathered in one place for every
 * face: bind sources (and the policy's bind roots) resolved the way dockerd
 * will resolve them as root, the owners of referenced containers (the
 * ownership module's evidence rules), and existing volumes' options.
 * The decision itself is src/policy/security.ts.
 */
import { execFileSync } from 'node:child_process';
import { accessSync, constants, lstatSync, readlinkSync, statSync } from 'node:fs';
import { posix } from 'node:path';
import type { DockerReader, VolumeDetails } from '../docker/gateway.ts';
import type { EffectiveUser } from '../policy/effective.ts';
import { mayActOn } from '../policy/ownership.ts';
import type { Policy } from '../policy/schema.ts';
import {
  bindRoots,
  containerRefs,
  localVolumeHostPath,
  type ContainerFact,
  type PathFact,
  type SecurityFacts,
  type SecurityRequest,
  type VolumeFact,
} from '../policy/security.ts';

/** The two file-system questions path resolution asks, replaceable in tests. */
export interface PathIo {
  /** What is at this path, not following a final symlink; throws an errno error (ENOENT, EACCES …). */
  lstat(path: string): 'dir' | 'link' | 'other';
  readlink(path: string): string;
}

export const hostPathIo: PathIo = {
  lstat(path) {
    const st = lstatSync(path);
    return st.isSymbolicLink() ? 'link' : st.isDirectory() ? 'dir' : 'other';
  },
  readlink: (path) => readlinkSync(path, 'utf8'),
};

/** Linux's limit on symlinks followed in one lookup (MAXSYMLINKS). */
const MAX_LINKS = 40;

/**
 * A host path as dockerd will mount it: cleaned lexically first (dockerd's
 * path.Clean on the source, so `a/link/..` is `a`), then each component
 * looked up with symlinks followed, as the kernel does when runc mounts it.
 * A part that does not exist yet (dockerd creates `-v` sources) is judged
 * by its nearest existing parent: the rest is appended as written. Anything
 * that cannot be looked up (permission, a loop) is an error: fail closed.
 * Paths through /proc are refused: /proc/self and /proc/thread-self name
 * another process for dockerd than for whoever resolves them here.
 */
export function resolveLikeDaemon(path: string, io: PathIo = hostPathIo): PathFact {
  if (!path.startsWith('/')) return { error: 'not an absolute path' };
  let done = '/';
  let todo = posix.normalize(path).split('/').filter(Boolean);
  let links = 0;
  while (todo.length) {
    const c = todo.shift()!;
    if (c === '.') continue;
    if (c === '..') {
      done = posix.dirname(done);
      continue;
    }
    const next = posix.join(done, c);
    if (next === '/proc' || next.startsWith('/proc/')) return { error: `${next} is in /proc, whose per-process links point elsewhere for dockerd` };
    let kind: 'dir' | 'link' | 'other';
    try {
      kind = io.lstat(next);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') return { resolved: posix.join(next, ...todo), existing: done };
      return { error: `${code ?? String(err)} at ${next}` };
    }
    if (kind === 'link') {
      if (++links > MAX_LINKS) return { error: `too many symbolic links at ${next}` };
      let target: string;
      try {
        target = io.readlink(next);
      } catch (err) {
        return { error: `${(err as NodeJS.ErrnoException).code ?? String(err)} reading the link ${next}` };
      }
      if (target.startsWith('/')) done = '/';
      todo = [...target.split('/').filter(Boolean), ...todo];
      continue;
    }
    done = next;
    // A file with more components after it: the kernel fails the lookup (ENOTDIR); judge the path as written.
    if (kind === 'other' && todo.length) return { resolved: posix.join(done, ...todo), existing: done };
  }
  return { resolved: done, existing: done };
}

export interface GatherOptions {
  /** The daemon runs on this host: its paths are this host's. A remote daemon's paths cannot be resolved here. */
  local: boolean;
  /** Reads the daemon the create goes to; called only when a container or volume must be looked up. */
  docker?: () => Promise<DockerLookups>;
  io?: PathIo;
  /** What the user may do to an existing path on the host; default {@link accessOf}. */
  access?: (path: string) => Access;
}

export interface Access {
  read: boolean;
  write: boolean;
}

/**
 * What `user` may do to an existing path on this host. Run as that user
 * (the shim): access(2), which knows ACLs. Run as someone else (root: the
 * API face, or the shim under sudo or GPUGUARD_USER): the mode bits for the
 * user's uid and groups. A directory needs x with r (to read what is in
 * it) and with w (to change it); root may do everything.
 */
export function accessOf(user: Pick<EffectiveUser, 'user' | 'uid'>): (path: string) => Access {
  const dirBits = (path: string) => {
    try {
      return statSync(path).isDirectory();
    } catch {
      return false;
    }
  };
  if (user.uid === 0) return () => ({ read: true, write: true });
  if (process.getuid?.() === user.uid) {
    const can = (path: string, mode: number) => {
      try {
        accessSync(path, mode);
        return true;
      } catch {
        return false;
      }
    };
    return (path) => {
      const x = dirBits(path) ? constants.X_OK : 0;
      return { read: can(path, constants.R_OK | x), write: can(path, constants.W_OK | x) };
    };
  }
  let gids: number[] | undefined;
  const groups = () => (gids ??= groupIdsOf(user.user));
  return (path) => {
    let st;
    try {
      st = statSync(path);
    } catch {
      return { read: false, write: false };
    }
    const bits = st.uid === user.uid ? (st.mode >> 6) & 7 : groups().includes(st.gid) ? (st.mode >> 3) & 7 : st.mode & 7;
    const x = st.isDirectory() ? 1 : 0;
    return { read: (bits & 4) !== 0 && (bits & x) === x, write: (bits & 2) !== 0 && (bits & x) === x };
  };
}

/** The user's group ids (NSS, so LDAP groups count), once per user for the life of the process (the API face lives long). */
const groupIds = new Map<string, number[]>();
function groupIdsOf(user: string): number[] {
  let ids = groupIds.get(user);
  if (ids) return ids;
  try {
    ids = execFileSync('id', ['-G', '--', user], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    ids = [];
  }
  groupIds.set(user, ids);
  return ids;
}

/** What the gatherer asks the daemon (the shim and the API face each provide it). */
export interface DockerLookups {
  reader: DockerReader;
  inspectVolumes(names: string[]): Promise<Map<string, VolumeDetails | null>>;
}

export function noSecurityFacts(): SecurityFacts {
  return { paths: {}, roots: [], containers: {}, volumes: {} };
}

/**
 * Everything {@link decideSecurity} needs for this request, and nothing
 * more: no Docker query unless the request names containers (and the user
 * may not use every container) or named volumes (and the user is no admin).
 */
export async function gatherSecurityFacts(policy: Policy, user: EffectiveUser, req: SecurityRequest, opts: GatherOptions): Promise<SecurityFacts> {
  const facts = noSecurityFacts();
  const sec = policy.security;
  if (!sec) return facts;
  const io = opts.io ?? hostPathIo;
  const access = opts.access ?? accessOf(user);
  const resolve = (p: string): PathFact => {
    if (!opts.local) return { error: 'the daemon is on another host, whose paths gpuguard cannot see' };
    const r = resolveLikeDaemon(p, io);
    return 'error' in r ? r : { ...r, access: access(r.existing) };
  };

  const refs = containerRefs(req);
  const needsOwners = refs.length > 0 && !sec.otherUsersContainers && !mayActOn(user, { user: undefined, method: 'none' }).allow;
  const names = [...new Set(req.volumes.map((v) => v.name))];
  const needsVolumes = names.length > 0 && !user.isAdmin && user.uid !== 0;
  let lookups: Promise<DockerLookups> | undefined;
  const docker = () => {
    if (!opts.docker) throw new Error('no way to ask the Docker daemon');
    return (lookups ??= opts.docker());
  };

  const owners = needsOwners ? ownersOfRefs(policy.labelPrefix, refs, docker).catch((err: unknown) => errorFacts(refs, err)) : Promise.resolve({});
  const volumes = needsVolumes ? volumesByName(names, docker).catch((err: unknown) => Object.fromEntries(names.map((n) => [n, { error: messageOf(err) }]))) : Promise.resolve({});

  for (const b of req.binds) facts.paths[b.source] ??= resolve(b.source);
  for (const root of bindRoots(sec, user)) {
    if (root.note !== undefined) {
      facts.roots.push(root);
      continue;
    }
    const r = opts.local ? resolveLikeDaemon(root.rendered, io) : { error: 'the daemon is on another host' };
    facts.roots.push('error' in r ? { ...root, note: `cannot be resolved: ${r.error}` } : { ...root, resolved: r.resolved });
  }
  facts.containers = await owners;
  facts.volumes = await volumes;
  for (const v of Object.values(facts.volumes)) {
    if (!v || 'error' in v) continue;
    const host = localVolumeHostPath(v.driver, v.options);
    if (host !== undefined) facts.paths[host] ??= resolve(host);
  }
  return facts;
}

async function ownersOfRefs(prefix: string, refs: string[], docker: () => Promise<DockerLookups>): Promise<Record<string, ContainerFact>> {
  const { reader } = await docker();
  const { found, missing } = await reader.inspectContainers(refs);
  const out: Record<string, ContainerFact> = {};
  for (const ref of missing) out[ref] = { missing: true };
  const list = [...found.entries()];
  if (list.length) {
    const { ownersOf } = await import('../ownership/facts.ts');
    const { owners } = await ownersOf(reader, list.map(([, c]) => c), prefix);
    list.forEach(([ref, c], i) => {
      const o = owners[i]!;
      out[ref] = { user: o.user, method: o.method, evidence: o.evidence, name: c.Name.replace(/^\//, '') };
    });
  }
  return out;
}

async function volumesByName(names: string[], docker: () => Promise<DockerLookups>): Promise<Record<string, VolumeFact>> {
  const found = await (await docker()).inspectVolumes(names);
  return Object.fromEntries(names.map((n) => {
    const v = found.get(n);
    return [n, v ? { driver: v.Driver, options: v.Options ?? {} } : null];
  }));
}

function errorFacts(refs: string[], err: unknown): Record<string, ContainerFact> {
  return Object.fromEntries(refs.map((r) => [r, { error: messageOf(err) }]));
}

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
