/**
 * Which cgroup a process is in, which Docker container that cgroup belongs
 * to, and how much CPU time the cgroup has used: read from /proc and the
 * cgroup file systems, for cgroup v1 and v2 and for both of dockerd's
 * layouts (cgroupfs: `…/<parent>/<id>`; systemd: `…/<slice>/docker-<id>.scope`).
 * The parsers are pure; the readers take the paths from the kernel, never
 * from a guess about where dockerd put the container.
 */
import { readFileSync } from 'node:fs';

/** One line of /proc/<pid>/cgroup: `hierarchy:controllers:path`. */
export interface CgroupEntry {
  hierarchy: number;
  /** v1 controllers (`cpu`, `cpuacct`, `name=systemd` …); empty for the v2 line `0::`. */
  controllers: string[];
  path: string;
}

export function parseProcCgroup(text: string): CgroupEntry[] {
  const out: CgroupEntry[] = [];
  for (const line of text.split('\n')) {
    if (!line) continue;
    const a = line.indexOf(':');
    const b = line.indexOf(':', a + 1);
    if (a < 0 || b < 0) continue;
    const hierarchy = Number(line.slice(0, a));
    if (!Number.isInteger(hierarchy)) continue;
    out.push({ hierarchy, controllers: line.slice(a + 1, b).split(',').filter(Boolean), path: line.slice(b + 1) });
  }
  return out;
}

const BARE_ID = /^[0-9a-f]{64}$/;
const DOCKER_SCOPE = /^docker-([0-9a-f]{64})\.scope$/;
/** Other engines' 64-hex ids in a path component (cri-containerd-<id>.scope, libpod-<id>, /kubepods/…/<id>). */
const ANY_ID = /(?:^|[-_])([0-9a-f]{64})(?:\.scope)?$/;

/**
 * The container a cgroup path belongs to: the outermost component that is a
 * Docker container's cgroup (a bare id under the cgroupfs driver,
 * `docker-<id>.scope` under systemd). The outermost, because a container
 * may make cgroups of its own below (Docker in Docker, systemd inside).
 * `engine: 'other'` for an id in another engine's spelling.
 */
export function containerOfPath(path: string): { id: string; engine: 'docker' | 'other' } | undefined {
  let other: string | undefined;
  for (const part of path.split('/')) {
    if (!part) continue;
    if (BARE_ID.test(part)) return { id: part, engine: 'docker' };
    const scope = DOCKER_SCOPE.exec(part);
    if (scope) return { id: scope[1]!, engine: 'docker' };
    other ??= ANY_ID.exec(part)?.[1];
  }
  return other ? { id: other, engine: 'other' } : undefined;
}

/** The container of a process, from its cgroup lines: v2's `0::` line first, else any v1 hierarchy that names one. */
export function containerOfEntries(entries: readonly CgroupEntry[]): { id: string; engine: 'docker' | 'other'; path: string } | undefined {
  const ordered = [...entries.filter((e) => e.hierarchy === 0), ...entries.filter((e) => e.hierarchy !== 0)];
  for (const e of ordered) {
    const c = containerOfPath(e.path);
    if (c) return { ...c, path: e.path };
  }
  return undefined;
}

/** A mounted cgroup hierarchy, from /proc/self/mountinfo. */
export interface CgroupMount {
  version: 1 | 2;
  /** v1: the controllers it carries (`cpu`, `cpuacct`, `name=systemd`); v2: empty. */
  controllers: string[];
  mountPoint: string;
  /** The cgroup at the mount point (`/` unless mounted from inside a cgroup namespace or a bind). */
  root: string;
}

/** mountinfo escapes space, tab, newline and backslash as octal. */
const unescape = (s: string) => s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));

export function parseCgroupMounts(mountinfo: string): CgroupMount[] {
  const out: CgroupMount[] = [];
  for (const line of mountinfo.split('\n')) {
    const dash = line.indexOf(' - ');
    if (dash < 0) continue;
    const left = line.slice(0, dash).split(' ');
    const [fstype, , superOptions = ''] = line.slice(dash + 3).split(' ');
    if (fstype !== 'cgroup' && fstype !== 'cgroup2') continue;
    const root = unescape(left[3] ?? '/');
    const mountPoint = unescape(left[4] ?? '');
    if (fstype === 'cgroup2') out.push({ version: 2, controllers: [], mountPoint, root });
    else out.push({ version: 1, controllers: superOptions.split(',').filter((o) => o !== 'rw' && o !== 'ro'), mountPoint, root });
  }
  return out;
}

function under(mount: CgroupMount, path: string): string | undefined {
  if (mount.root === '/') return `${mount.mountPoint}${path === '/' ? '' : path}`;
  if (path === mount.root) return mount.mountPoint;
  if (path.startsWith(`${mount.root}/`)) return `${mount.mountPoint}${path.slice(mount.root.length)}`;
  return undefined;
}

/**
 * Where a cgroup's CPU counter is: v1 `cpuacct.usage` (ns) where a cpuacct
 * hierarchy is mounted, else v2 `cpu.stat` (`usage_usec`, present whether or
 * not the cpu controller is enabled).
 */
export function cpuCounterFile(entries: readonly CgroupEntry[], mounts: readonly CgroupMount[]): { file: string; kind: 'cpuacct.usage' | 'cpu.stat' } | undefined {
  const v1 = entries.find((e) => e.hierarchy !== 0 && e.controllers.includes('cpuacct'));
  const v1Mount = mounts.find((m) => m.version === 1 && m.controllers.includes('cpuacct'));
  if (v1 && v1Mount) {
    const dir = under(v1Mount, v1.path);
    if (dir) return { file: `${dir}/cpuacct.usage`, kind: 'cpuacct.usage' };
  }
  const v2 = entries.find((e) => e.hierarchy === 0);
  const v2Mount = mounts.find((m) => m.version === 2);
  if (v2 && v2Mount) {
    const dir = under(v2Mount, v2.path);
    if (dir) return { file: `${dir}/cpu.stat`, kind: 'cpu.stat' };
  }
  return undefined;
}

/** Nanoseconds of CPU time from a counter file's text. */
export function parseCpuCounter(text: string, kind: 'cpuacct.usage' | 'cpu.stat'): number | undefined {
  if (kind === 'cpuacct.usage') {
    const n = Number(text.trim());
    return Number.isFinite(n) && n >= 0 ? n : undefined;
  }
  const m = /^usage_usec (\d+)$/m.exec(text);
  return m ? Number(m[1]) * 1000 : undefined;
}

// ---------------------------------------------------------------- readers

function read(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
}

/** The cgroup lines of a process; undefined when it has exited (or /proc hides it). */
export function processCgroups(pid: number): CgroupEntry[] | undefined {
  const text = read(`/proc/${pid}/cgroup`);
  return text === undefined ? undefined : parseProcCgroup(text);
}

let mountsCache: CgroupMount[] | undefined;
export function cgroupMounts(): CgroupMount[] {
  mountsCache ??= parseCgroupMounts(read('/proc/self/mountinfo') ?? '');
  return mountsCache;
}

/** CPU time (ns) used by the cgroup of this process and everything below it; undefined when unreadable. */
export function cgroupCpuNs(pid: number, mounts: readonly CgroupMount[] = cgroupMounts()): number | undefined {
  const entries = processCgroups(pid);
  if (!entries) return undefined;
  const where = cpuCounterFile(entries, mounts);
  if (!where) return undefined;
  const text = read(where.file);
  return text === undefined ? undefined : parseCpuCounter(text, where.kind);
}
