/**
 * doctor `bind-mounts`: can root in a user's container leave a program that
 * runs as root on the host? A container runs as host root unless dockerd
 * remaps user namespaces, so in a writable bind of the user's own directory
 * it can create a setuid-root file or a device node; the user then runs or
 * opens it on the host, unless the file system is mounted nosuid,nodev.
 * security.binds decides which directories a user may bind; this checks the
 * mounts they live on. Live host only: mountinfo describes this machine.
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { realpathOf } from '../sys/fastfs.ts';
import { bindRoots } from '../policy/security.ts';
import type { SecurityT } from '../policy/schema.ts';

export interface MountEntry {
  mountPoint: string;
  /** Per-mount options (mountinfo's sixth field): nosuid and nodev live here. */
  options: string[];
}

/** /proc/self/mountinfo (man 5 proc): mount point is the fifth field, with \040-style escapes. */
export function parseMountinfo(text: string): MountEntry[] {
  const out: MountEntry[] = [];
  for (const line of text.split('\n')) {
    const f = line.split(' ');
    if (f.length < 6) continue;
    out.push({ mountPoint: f[4]!.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8))), options: f[5]!.split(',') });
  }
  return out;
}

/** The mount a resolved path is on: the last-mounted of the longest mount points containing it, by components. */
export function mountOf(path: string, mounts: readonly MountEntry[]): MountEntry | undefined {
  let best: MountEntry | undefined;
  for (const m of mounts) {
    const inside = m.mountPoint === '/' || path === m.mountPoint || path.startsWith(`${m.mountPoint}/`);
    if (inside && (!best || m.mountPoint.length >= best.mountPoint.length)) best = m;
  }
  return best;
}

export interface BindRootMount {
  /** The root as the policy writes it. */
  written: string;
  /** The root for this user (`{home}` and `{user}` filled in). */
  rendered: string;
  /** The existing directory it was judged by (the root itself, or its nearest existing parent). */
  path: string;
  mount?: MountEntry;
}

export type BindMountsVerdict = { status: 'ok' | 'warn' | 'fail'; message: string; fix?: string };

/** The verdict over the policy's roots as rendered for one user, on this host's mounts. */
export function judgeBindMounts(roots: readonly BindRootMount[], usernsRemap: boolean): BindMountsVerdict {
  if (usernsRemap) return { status: 'ok', message: 'dockerd remaps user namespaces (userns-remap): root in a container is not root on the host' };
  if (!roots.length) return { status: 'ok', message: 'security.binds allows no host directory' };
  const open = roots.filter((r) => !r.mount || !r.mount.options.includes('nosuid') || !r.mount.options.includes('nodev'));
  if (!open.length) return { status: 'ok', message: `every root in security.binds is on a nosuid,nodev mount (${roots.map((r) => `${r.written}: ${r.mount!.mountPoint}`).join(', ')})` };
  const where = open.map((r) => (r.mount ? `${r.written} (${r.path} on ${r.mount.mountPoint}, mounted ${r.mount.options.join(',')})` : `${r.written} (${r.path}: no mount found)`)).join('; ');
  return {
    status: 'fail',
    message: `security.binds lets users bind ${where}: root in their container can leave a setuid-root program or a device node there and use it on the host`,
    fix: `mount ${[...new Set(open.map(toMount))].join(', ')} nosuid,nodev (its own file system, or \`DIR DIR none bind,nosuid,nodev 0 0\` in /etc/fstab), or run dockerd with userns-remap (docs/policy.md, "security")`,
  };
}

/** What to mount nosuid,nodev for a root: its own mount point, or for one on / its top directory (/home, not /). */
function toMount(r: BindRootMount): string {
  const point = r.mount?.mountPoint;
  if (point && point !== '/') return point;
  const top = r.rendered.split('/').filter(Boolean)[0];
  return top ? `/${top}` : '/';
}

/** The policy's roots for `user` (their home from the user database), each with the mount it is on. */
export function bindRootMounts(security: SecurityT, user: { user: string; home?: string }, mountinfo = '/proc/self/mountinfo'): BindRootMount[] {
  const mounts = parseMountinfo(readFileSync(mountinfo, 'utf8'));
  return bindRoots(security, user).flatMap((root) => {
    if (!root.rendered.startsWith('/') || root.rendered.includes('{')) return []; // {home} of a user without one: nothing to bind
    // A root that does not exist yet (/scratch/{user}) lands on its nearest existing parent's file system.
    let path = root.rendered;
    while (path !== '/' && !existsSync(path)) path = dirname(path);
    const resolved = realpathOf(path) ?? path;
    const mount = mountOf(resolved, mounts);
    return [{ written: root.written, rendered: root.rendered, path: resolved, ...(mount ? { mount } : {}) }];
  });
}
