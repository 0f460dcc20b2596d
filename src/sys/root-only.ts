/**
 * Is a socket's place root's alone? Two questions, asked by `install --api`
 * before it puts dockerd's socket somewhere and by `doctor` afterwards:
 *  - can anyone but root put something at that path first (squat it), or
 *    swap a directory on the way? (`squattable`)
 *  - can anyone but root connect to the socket there? (`reachableByOthers`)
 * Both read only file metadata (lstat), never follow a link they did not
 * check, and name the first place that fails.
 */
import { lstatSync, type Stats } from 'node:fs';
import { dirname, join, relative, sep } from 'node:path';

function lstat(p: string): Stats | undefined {
  try {
    return lstatSync(p);
  } catch {
    return undefined;
  }
}

const octal = (mode: number) => (mode & 0o7777).toString(8).padStart(4, '0');

/**
 * Why someone other than root could put something at `path` (or in place of
 * a directory on its way), or undefined when nobody can. Every directory
 * from `top` down must be root's and writable by root only — except a sticky
 * one such as /tmp, and only where the next step down already exists and is
 * root's (the sticky bit keeps others from renaming or removing it). The
 * path itself, when it exists, must be root's. Symlinks on the way are
 * refused: a socket place is named by its real path.
 */
export function squattable(path: string, top = '/'): string | undefined {
  const rel = relative(top, path);
  if (rel.startsWith('..')) return `${path} is outside ${top}`;
  const parts = rel ? rel.split(sep) : [];
  let dir = top;
  for (let i = 0; i <= parts.length; i++) {
    const st = lstat(dir);
    if (!st) return undefined; // from here down nothing exists yet, and the parent checked above is root's alone
    const last = i === parts.length;
    if (st.isSymbolicLink()) return `${dir} is a symlink: name the socket by its real path`;
    if (st.uid !== 0) return `${dir} belongs to uid ${st.uid}, not root`;
    if (last) return undefined;
    if (!st.isDirectory()) return `${dir} is not a directory`;
    if ((st.mode & 0o022) !== 0) {
      const next = join(dir, parts[i]!);
      const child = lstat(next);
      const sticky = (st.mode & 0o1000) !== 0;
      if (!sticky) return `${dir} is mode ${octal(st.mode)}: others may write to it, so they could replace ${next}`;
      if (!child) return `${dir} is mode ${octal(st.mode)} (writable by all): anyone could create ${next} first`;
      if (child.uid !== 0) return `${next} belongs to uid ${child.uid}, not root (${dir} is writable by all)`;
    }
    dir = join(dir, parts[i]!);
  }
  return undefined;
}

/**
 * Who other than root can connect to the socket at `path`: a description
 * ("everyone", "group 998") or undefined when only root can. Connecting
 * needs search (x) on every directory from `top` down and write on the
 * socket. Group 0 counts as root's own.
 */
export function reachableByOthers(path: string, top = '/'): string | undefined {
  const sock = lstat(path);
  if (!sock) return undefined;
  const dirs: Stats[] = [];
  for (let d = dirname(path); ; d = dirname(d)) {
    const st = lstat(d);
    if (st) dirs.push(st);
    if (d === top || d === dirname(d) || !d.startsWith(top === '/' ? '/' : `${top}`)) break;
  }
  // A user who is neither the owner nor in the group: the "other" bits all the way.
  if ((sock.mode & 0o002) && dirs.every((d) => d.mode & 0o001)) return `everyone (socket mode ${octal(sock.mode)})`;
  // A member of the socket's group (unless it is root's group): group bits where the group matches, else other bits.
  if (sock.gid !== 0 && sock.mode & 0o020 && dirs.every((d) => (d.uid === 0 && d.gid === sock.gid ? d.mode & 0o010 : d.mode & 0o001))) return `group ${sock.gid} (socket mode ${octal(sock.mode)})`;
  // A non-root owner of the socket itself.
  if (sock.uid !== 0) return `uid ${sock.uid}, its owner`;
  return undefined;
}
