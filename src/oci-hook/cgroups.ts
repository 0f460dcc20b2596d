/**
 * Putting a user's aggregate limits on their parent cgroup before the real
 * runtime creates a container under it, so the kernel caps all of that
 * user's containers together.
 *
 *  - cgroup v1 (incl. hybrid, where runc uses v1), cgroupfs driver: the parent
 *    is created in the memory, cpu and pids hierarchies and gets
 *    memory.limit_in_bytes, memory.soft_limit_in_bytes (memoryHigh: v1 has no
 *    memory.high), cpu.cfs_period_us + cpu.cfs_quota_us, pids.max.
 *  - cgroup v2, cgroupfs driver: the controllers are enabled down the path
 *    (cgroup.subtree_control) and the parent gets memory.max, memory.high,
 *    cpu.max, pids.max.
 *  - systemd driver: the parent is a slice; its properties are set with
 *    `systemctl set-property --runtime` (MemoryMax/MemoryHigh on v2,
 *    MemoryLimit on v1, CPUQuota, TasksMax). Without a running systemd the
 *    systemd driver cannot work at all (runc talks to systemd), so that is an
 *    error here too.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { GpuguardError } from '../errors.ts';
import type { AggregateDecision, CgroupDriver, CgroupLimits } from '../policy/cgroup-aggregate.ts';

export type CgroupLayout = { kind: 'v1'; mounts: Record<string, string> } | { kind: 'v2'; root: string };

export class CgroupError extends GpuguardError {
  override name = 'CgroupError';
}

/** The host's cgroup layout as runc sees it: unified when /sys/fs/cgroup is cgroup2, else the v1 hierarchies. */
export function detectCgroupLayout(mountinfo = '/proc/self/mountinfo'): CgroupLayout {
  const mounts: Record<string, string> = {};
  let unifiedAtRoot: string | undefined;
  for (const line of readFileSync(mountinfo, 'utf8').split('\n')) {
    const [pre, post] = line.split(' - ');
    if (!pre || !post) continue;
    const mountPoint = pre.split(' ')[4]!;
    const [fstype, , superOpts = ''] = post.split(' ');
    if (fstype === 'cgroup2' && mountPoint === '/sys/fs/cgroup') unifiedAtRoot = mountPoint;
    if (fstype !== 'cgroup') continue;
    for (const opt of superOpts.split(',')) if (['memory', 'cpu', 'pids'].includes(opt)) mounts[opt] ??= mountPoint;
  }
  if (unifiedAtRoot) return { kind: 'v2', root: unifiedAtRoot };
  return { kind: 'v1', mounts };
}

export interface CgroupIo {
  mkdirp(path: string): void;
  write(path: string, value: string): void;
  read(path: string): string;
  systemctl(args: string[]): void;
  systemdRunning(): boolean;
}

export const hostCgroupIo: CgroupIo = {
  mkdirp: (p) => mkdirSync(p, { recursive: true }),
  write: (p, v) => writeFileSync(p, v),
  read: (p) => readFileSync(p, 'utf8'),
  systemctl: (args) => {
    execFileSync('systemctl', args, { stdio: ['ignore', 'ignore', 'pipe'], timeout: 10_000 });
  },
  systemdRunning: () => existsSync('/run/systemd/system'),
};

function writeAll(io: CgroupIo, files: [string, string][]): string[] {
  const done: string[] = [];
  for (const [file, value] of files) {
    try {
      io.write(file, value);
    } catch (err) {
      throw new CgroupError(`cannot set ${file} to ${value} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`, 1, { cause: err });
    }
    done.push(`${file}=${value}`);
  }
  return done;
}

function v1Files(layout: Extract<CgroupLayout, { kind: 'v1' }>, parent: string, l: CgroupLimits, io: CgroupIo): [string, string][] {
  const files: [string, string][] = [];
  const dirOf = (controller: string) => {
    const mount = layout.mounts[controller];
    if (!mount) throw new CgroupError(`no cgroup v1 ${controller} hierarchy is mounted; cannot apply the aggregate limit`);
    const dir = join(mount, parent);
    io.mkdirp(dir);
    return dir;
  };
  if (l.memoryMax !== undefined || l.memoryHigh !== undefined) {
    const dir = dirOf('memory');
    if (l.memoryMax !== undefined) files.push([join(dir, 'memory.limit_in_bytes'), String(l.memoryMax)]);
    if (l.memoryHigh !== undefined) files.push([join(dir, 'memory.soft_limit_in_bytes'), String(l.memoryHigh)]);
  }
  if (l.cpuQuotaUs !== undefined) {
    const dir = dirOf('cpu');
    files.push([join(dir, 'cpu.cfs_period_us'), String(l.cpuPeriodUs)], [join(dir, 'cpu.cfs_quota_us'), String(l.cpuQuotaUs)]);
  }
  if (l.pidsMax !== undefined) files.push([join(dirOf('pids'), 'pids.max'), String(l.pidsMax)]);
  return files;
}

function v2Files(root: string, parent: string, l: CgroupLimits, io: CgroupIo): [string, string][] {
  const want = [l.memoryMax ?? l.memoryHigh, l.cpuQuotaUs, l.pidsMax];
  const controllers = (['memory', 'cpu', 'pids'] as const).filter((_, i) => want[i] !== undefined);
  const parts = parent.split('/').filter(Boolean);
  // Enable the controllers in every ancestor's subtree_control, root first.
  let dir = root;
  for (const part of parts) {
    const available = io.read(join(dir, 'cgroup.controllers')).split(/\s+/);
    const enable = controllers.filter((c) => available.includes(c)).map((c) => `+${c}`);
    if (enable.length) writeAll(io, [[join(dir, 'cgroup.subtree_control'), enable.join(' ')]]);
    dir = join(dir, part);
    io.mkdirp(dir);
  }
  const files: [string, string][] = [];
  if (l.memoryMax !== undefined) files.push([join(dir, 'memory.max'), String(l.memoryMax)]);
  if (l.memoryHigh !== undefined) files.push([join(dir, 'memory.high'), String(l.memoryHigh)]);
  if (l.cpuQuotaUs !== undefined) files.push([join(dir, 'cpu.max'), `${l.cpuQuotaUs} ${l.cpuPeriodUs}`]);
  if (l.pidsMax !== undefined) files.push([join(dir, 'pids.max'), String(l.pidsMax)]);
  return files;
}

/** systemctl set-property arguments for a slice. */
export function systemdProperties(slice: string, l: CgroupLimits, v2: boolean): string[] {
  const props: string[] = [];
  if (l.memoryMax !== undefined) props.push(v2 ? `MemoryMax=${l.memoryMax}` : `MemoryLimit=${l.memoryMax}`);
  if (l.memoryHigh !== undefined && v2) props.push(`MemoryHigh=${l.memoryHigh}`);
  if (l.cpuQuotaUs !== undefined) props.push(`CPUQuota=${Math.round((l.cpuQuotaUs / (l.cpuPeriodUs ?? 100_000)) * 100)}%`);
  if (l.pidsMax !== undefined) props.push(`TasksMax=${l.pidsMax}`);
  return ['set-property', '--runtime', '--', slice, ...props];
}

/** Apply the decision; returns what was set ("file=value" or the systemctl properties). */
export function applyAggregate(decision: AggregateDecision, driver: CgroupDriver, layout: CgroupLayout, io: CgroupIo = hostCgroupIo): string[] {
  if (driver === 'systemd') {
    if (!io.systemdRunning()) {
      throw new CgroupError(`cgroup parent ${decision.parent} is a systemd slice but systemd is not running; use the cgroupfs driver`);
    }
    const args = systemdProperties(decision.parent, decision.limits, layout.kind === 'v2');
    try {
      io.systemctl(args);
    } catch (err) {
      throw new CgroupError(`systemctl ${args.join(' ')} failed (${(err as Error).message.split('\n')[0]})`, 1, { cause: err });
    }
    return args.slice(4);
  }
  const files = layout.kind === 'v1' ? v1Files(layout, decision.parent, decision.limits, io) : v2Files(layout.root, decision.parent, decision.limits, io);
  return writeAll(io, files);
}
