/**
 * What one user gets: their group, merged limits, GPU quota, admin status
 * and cgroup parent. Pure: identity facts in, decisions out.
 */
import type { Identity } from './identity.ts';
import type { AggregateT, GpuQuotaT, LimitsT, Policy } from './schema.ts';

/** The group of users the policy names nowhere, when it has no `defaults.group`. */
export const IMPLICIT_GROUP = 'default';

export interface GpuQuota {
  max: number;
  maxEquivalents: number;
  perContainer: number;
  fullGpu: boolean;
  priority: number;
}

export interface EffectiveUser {
  user: string;
  uid: number;
  group: string;
  /** How the group was chosen, for `policy show` and explain. */
  groupFrom: 'users' | 'members' | 'defaults' | 'implicit';
  isAdmin: boolean;
  isServiceUser: boolean;
  limits: LimitsT;
  aggregate: AggregateT;
  gpus: GpuQuota;
  /** Rendered cgroup parent, or undefined when the policy sets none. */
  cgroupParent: string | undefined;
  /** The home directory from the user database, when known (`{home}` in security.binds). */
  home?: string;
}

/** Without a policy quota the seeds' behaviour: no GPU limits. */
const UNLIMITED = Number.POSITIVE_INFINITY;

export function principalMatches(principals: readonly string[], who: Pick<Identity, 'user' | 'unixGroups'>): boolean {
  return principals.some((p) => (p.startsWith('@') ? who.unixGroups.includes(p.slice(1)) : p === who.user));
}

export function resolveUser(policy: Policy, who: Identity): EffectiveUser {
  const override = policy.users[who.user];
  let group: string;
  let groupFrom: EffectiveUser['groupFrom'];
  const byMembers = Object.entries(policy.groups).find(([, g]) => principalMatches(g.members, who))?.[0];
  if (override?.group) [group, groupFrom] = [override.group, 'users'];
  else if (byMembers) [group, groupFrom] = [byMembers, 'members'];
  else if (policy.defaults) [group, groupFrom] = [policy.defaults.group, 'defaults'];
  else [group, groupFrom] = [IMPLICIT_GROUP, 'implicit'];

  const base = policy.groups[group];
  const gpus: GpuQuotaT = { ...base?.gpus, ...override?.gpus };
  return {
    user: who.user,
    uid: who.uid,
    group,
    groupFrom,
    isAdmin: principalMatches(policy.admins, who),
    isServiceUser: principalMatches(policy.serviceUsers, who),
    limits: { ...base?.limits, ...override?.limits },
    aggregate: { ...base?.aggregate, ...override?.aggregate },
    gpus: {
      max: gpus.max ?? UNLIMITED,
      maxEquivalents: gpus.maxEquivalents ?? UNLIMITED,
      perContainer: gpus.perContainer ?? UNLIMITED,
      fullGpu: gpus.fullGpu ?? true,
      priority: gpus.priority ?? 0,
    },
    cgroupParent: policy.cgroup ? renderCgroupParent(policy.cgroup.parent, { user: who.user, group, uid: who.uid }) : undefined,
    ...(who.home !== undefined ? { home: who.home } : {}),
  };
}

/**
 * Fill a cgroup parent template. For a systemd slice ("….slice") each value
 * is escaped the way systemd-escape does it, because "-" in a slice name
 * means nesting: user "a-b" must not become a child slice of user "a".
 */
export function renderCgroupParent(template: string, values: { user: string; group: string; uid: number }): string {
  const isSlice = template.endsWith('.slice');
  return template.replace(/\{(user|group|uid)\}/g, (_, key: 'user' | 'group' | 'uid') => {
    const raw = String(values[key]);
    return isSlice ? systemdEscape(raw) : raw;
  });
}

export function systemdEscape(value: string): string {
  let out = '';
  for (const [i, ch] of [...value].entries()) {
    const keep = /[A-Za-z0-9:_]/.test(ch) || (ch === '.' && i > 0);
    out += keep ? ch : [...Buffer.from(ch, 'utf8')].map((b) => `\\x${b.toString(16).padStart(2, '0')}`).join('');
  }
  return out;
}
