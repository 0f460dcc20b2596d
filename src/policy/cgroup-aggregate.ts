/**
 * Per-user aggregate limits on the user's parent cgroup: which user a
 * container's cgroup parent belongs to (by matching the policy's
 * `cgroup.parent` template, the one the docker shim renders), and which
 * kernel limits that parent must carry. Pure but for the user lookup, which
 * the caller passes in.
 */
import type { Identity } from './identity.ts';
import { renderCgroupParent, resolveUser } from './effective.ts';
import type { AggregateT, Policy } from './schema.ts';
import { parseSize } from './units.ts';

export type CgroupDriver = 'cgroupfs' | 'systemd';

/**
 * The parent of a container's cgroup, from config.json's linux.cgroupsPath:
 * cgroupfs "/ds01/students/alice/<id>" → "/ds01/students/alice";
 * systemd "ds01-students-alice.slice:docker:<id>" → "ds01-students-alice.slice".
 */
export function cgroupParentOf(cgroupsPath: string | undefined, systemd: boolean): { parent: string; driver: CgroupDriver } | undefined {
  if (!cgroupsPath) return undefined;
  if (systemd) {
    const parts = cgroupsPath.split(':');
    if (parts.length !== 3 || !parts[0]) return undefined;
    return { parent: parts[0], driver: 'systemd' };
  }
  if (!cgroupsPath.startsWith('/')) return undefined;
  const cut = cgroupsPath.replace(/\/+$/, '').lastIndexOf('/');
  if (cut <= 0) return undefined;
  return { parent: cgroupsPath.slice(0, cut), driver: 'cgroupfs' };
}

type Placeholder = 'user' | 'group' | 'uid';

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

function systemdUnescape(s: string): string {
  const bytes: number[] = [];
  for (let i = 0; i < s.length; ) {
    const m = /^\\x([0-9a-fA-F]{2})/.exec(s.slice(i));
    if (m) {
      bytes.push(parseInt(m[1]!, 16));
      i += 4;
    } else {
      bytes.push(...Buffer.from(s[i]!, 'utf8'));
      i++;
    }
  }
  return Buffer.from(bytes).toString('utf8');
}

/**
 * The placeholders of the template recovered from a rendered parent, or
 * undefined when the parent is not of the template's shape. In a slice name
 * values are systemd-escaped (no "-" left in them), so they are unescaped.
 */
export function matchCgroupParent(template: string, parent: string): Partial<Record<Placeholder, string>> | undefined {
  const isSlice = template.endsWith('.slice');
  const names: Placeholder[] = [];
  const pattern = template
    .split(/(\{(?:user|group|uid)\})/)
    .map((part) => {
      const m = /^\{(user|group|uid)\}$/.exec(part);
      if (!m) return escapeRegExp(part);
      names.push(m[1] as Placeholder);
      return isSlice ? '([^/-]+)' : '([^/]+)';
    })
    .join('');
  const m = new RegExp(`^${pattern}$`).exec(parent);
  if (!m) return undefined;
  const out: Partial<Record<Placeholder, string>> = {};
  for (const [i, name] of names.entries()) {
    const value = isSlice ? systemdUnescape(m[i + 1]!) : m[i + 1]!;
    if (out[name] !== undefined && out[name] !== value) return undefined;
    out[name] = value;
  }
  return out;
}

/** Kernel values for an aggregate, in bytes, microseconds and tasks. */
export interface CgroupLimits {
  memoryMax?: number;
  memoryHigh?: number;
  /** CPU bandwidth: quota per period, both in microseconds. */
  cpuQuotaUs?: number;
  cpuPeriodUs?: number;
  pidsMax?: number;
}

export const CPU_PERIOD_US = 100_000;

export function cgroupLimits(aggregate: AggregateT): CgroupLimits {
  const out: CgroupLimits = {};
  if (aggregate.memory !== undefined) out.memoryMax = parseSize(aggregate.memory);
  if (aggregate.memoryHigh !== undefined) out.memoryHigh = parseSize(aggregate.memoryHigh);
  if (aggregate.cpus !== undefined) {
    out.cpuPeriodUs = CPU_PERIOD_US;
    out.cpuQuotaUs = Math.max(1000, Math.round(aggregate.cpus * CPU_PERIOD_US));
  }
  if (aggregate.pids !== undefined) out.pidsMax = aggregate.pids;
  return out;
}

export interface AggregateDecision {
  user: string;
  group: string;
  parent: string;
  limits: CgroupLimits;
  /** Set when the parent matches the template but is not the one the policy renders for this user. */
  note?: string;
}

/**
 * Whose parent this is and what it must carry; undefined when the policy has
 * no `cgroup.parent`, the parent is not of its shape, or the user has no
 * aggregate. `lookup` resolves a user name or uid (getent) and throws for an
 * unknown one.
 */
export function aggregateFor(policy: Policy, parent: string, lookup: (nameOrUid: string) => Identity): AggregateDecision | undefined {
  const template = policy.cgroup?.parent;
  if (!template) return undefined;
  const got = matchCgroupParent(template, parent);
  const key = got?.user ?? got?.uid;
  if (!got || key === undefined) return undefined;
  const who = resolveUser(policy, lookup(key));
  const limits = cgroupLimits(who.aggregate);
  if (!Object.keys(limits).length) return undefined;
  const expected = renderCgroupParent(template, { user: who.user, group: who.group, uid: who.uid });
  const decision: AggregateDecision = { user: who.user, group: who.group, parent, limits };
  if (expected !== parent) decision.note = `parent ${parent} is not ${who.user}'s parent ${expected} by the policy`;
  return decision;
}
