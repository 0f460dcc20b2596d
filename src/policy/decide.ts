/**
 * The policy's decisions on a container create, whoever asks (the docker
 * shim, the compose face): owner labels, reserved labels, the cgroup parent,
 * per-container limits, the number of containers. Pure: what the user asked
 * and the facts in, a list of decisions with reasons out. Faces translate
 * their input into a {@link CreateRequest} and apply the decisions.
 */
import type { EffectiveUser } from './effective.ts';
import { isReservedLabel, labelKeys, ownerLabels, type Interface } from './labels.ts';
import type { Policy } from './schema.ts';
import { formatSize, parseSize } from './units.ts';

/** What the user asked for, in the face's own terms already parsed. */
export interface CreateRequest {
  /** Labels in the order docker applies them (label files first, then -l/--label); the last duplicate wins. */
  labels: { key: string; value: string; from: string }[];
  cgroupParent?: string;
  cpus?: string;
  cpuQuota?: string;
  cpuPeriod?: string;
  memory?: string;
  pidsLimit?: string;
  shmSize?: string;
  /** --runtime (compose: runtime), the last one. */
  runtime?: string;
}

export interface CreateFacts {
  now: Date;
  iface: Interface;
  /** The user's current containers; undefined with `countError` when they could not be counted. */
  containerCount?: number;
  countError?: string;
}

export type Verdict =
  /** gpuguard adds something (a label, a limit, the cgroup parent). */
  | 'add'
  /** The user's value stays: within policy. */
  | 'keep'
  /** Refused: nothing is created. */
  | 'deny'
  /** Would be refused, allowed because the user is an admin (logged). */
  | 'override'
  /** Would be refused, allowed because the policy is in audit mode, or not checkable (logged, warned). */
  | 'warn';

/** A setting gpuguard adds; faces map it to their syntax (`--label k=v`, `--cpus 2`). */
export type Setting =
  | { kind: 'label'; key: string; value: string }
  | { kind: 'cgroupParent' | 'cpus' | 'cpuQuota' | 'memory' | 'pidsLimit' | 'shmSize'; value: string };

export interface Decision {
  rule: string;
  verdict: Verdict;
  /** One line: what was asked, what is allowed, what to do. */
  reason: string;
  add?: Setting[];
  /** Where in the face's input the ask came from, when the face said (compose: the service key that sets it). */
  at?: string;
}

const DEFAULT_CPU_PERIOD = 100_000;
/** Docker's /dev/shm when --shm-size is 0 or absent. */
const DOCKER_DEFAULT_SHM = 64 * 1024 ** 2;

export function decideCreate(policy: Policy, user: EffectiveUser, req: CreateRequest, facts: CreateFacts): Decision[] {
  return [
    ...decideReservedLabels(policy, user, req),
    decideOwnerLabels(policy, user, req, facts),
    ...decideCgroupParent(user, req),
    ...decideLimits(user, req),
    ...decideContainerCount(policy, user, facts),
    ...decideRuntime(user, req),
  ];
}

/**
 * dockerd's built-in runtime names, which daemon.json cannot re-point at the
 * runtime wrapper: a container started with one of them skips the wrapper's
 * read-only datasets and GPU env hygiene. Every other registered runtime
 * (nvidia, …) goes through the wrapper (install.sh).
 */
export const UNWRAPPABLE_RUNTIMES = ['runc', 'io.containerd.runc.v2', 'io.containerd.runtime.v1.linux'];

export function decideRuntime(user: EffectiveUser, req: CreateRequest): Decision[] {
  if (req.runtime === undefined || !UNWRAPPABLE_RUNTIMES.includes(req.runtime)) return [];
  return [
    adminOnly(
      user,
      'runtime.builtin',
      `--runtime ${req.runtime} would start the container without gpuguard's runtime wrapper (dockerd's built-in name cannot be wrapped); leave --runtime out: the default runtime is runc behind the wrapper`,
      `--runtime ${req.runtime} bypasses the runtime wrapper`,
    ),
  ];
}

/** `mode: audit`: every refusal becomes a warning; the command goes ahead with the other additions. */
export function applyMode(decisions: Decision[], mode: Policy['mode']): Decision[] {
  if (mode !== 'audit') return decisions;
  return decisions.map((d) => (d.verdict === 'deny' ? { ...d, verdict: 'warn', reason: `audit mode, not refused: ${d.reason}` } : d));
}

export function firstRefusal(decisions: Decision[]): Decision | undefined {
  return decisions.find((d) => d.verdict === 'deny');
}

/** The event log's summary of a create: deny if anything is refused, rewrite if anything is added, else allow. */
export function overallDecision(decisions: Decision[]): 'allow' | 'rewrite' | 'deny' | 'warn' {
  if (decisions.some((d) => d.verdict === 'deny')) return 'deny';
  if (decisions.some((d) => d.verdict === 'warn')) return 'warn';
  if (decisions.some((d) => d.add?.length)) return 'rewrite';
  return 'allow';
}

/** Refuse or override: the verdict for something only admins may do. */
function adminOnly(user: EffectiveUser, rule: string, refusal: string, what: string): Decision {
  return user.isAdmin
    ? { rule, verdict: 'override', reason: `${what}: allowed because ${user.user} is an admin (logged)` }
    : { rule, verdict: 'deny', reason: refusal };
}

export function decideReservedLabels(policy: Policy, user: EffectiveUser, req: CreateRequest): Decision[] {
  const p = policy.labelPrefix;
  return req.labels
    .filter((l) => isReservedLabel(p, l.key))
    .map((l) =>
      adminOnly(
        user,
        'labels.reserved',
        `label ${l.key} (from ${l.from}) is reserved: gpuguard sets the ${p}.* labels that say who owns a container; remove it from the command`,
        `reserved label ${l.key}=${l.value} (from ${l.from})`,
      ),
    );
}

/** Owner labels. An admin's own value for an owner key is left in place (the admin override). */
export function decideOwnerLabels(policy: Policy, user: EffectiveUser, req: CreateRequest, facts: CreateFacts): Decision {
  const p = policy.labelPrefix;
  const byAdmin = new Set(user.isAdmin ? req.labels.filter((l) => isReservedLabel(p, l.key)).map((l) => l.key) : []);
  const labels = ownerLabels(p, user, facts.iface, facts.now).filter(([k]) => !byAdmin.has(k));
  const kept = byAdmin.size ? `; the admin's own ${[...byAdmin].join(', ')} kept` : '';
  return {
    rule: 'labels.owner',
    verdict: 'add',
    reason: `owner labels: ${labelKeys(p).user}=${user.user}, group ${user.group}, interface ${facts.iface}${kept}`,
    add: labels.map(([key, value]) => ({ kind: 'label', key, value })),
  };
}

export function decideCgroupParent(user: EffectiveUser, req: CreateRequest): Decision[] {
  const own = user.cgroupParent;
  if (own === undefined) return [];
  if (req.cgroupParent === undefined) {
    return [{ rule: 'cgroup.parent', verdict: 'add', reason: `cgroup parent ${own}: every container of ${user.user} goes under it (aggregate limits)`, add: [{ kind: 'cgroupParent', value: own }] }];
  }
  const norm = (s: string) => s.replace(/\/+$/, '').replace(/^\/*/, '/');
  if (req.cgroupParent === own || norm(req.cgroupParent) === norm(own)) return [{ rule: 'cgroup.parent', verdict: 'keep', reason: `--cgroup-parent ${req.cgroupParent} is the user's own` }];
  return [
    adminOnly(
      user,
      'cgroup.parent',
      `--cgroup-parent ${req.cgroupParent} is not yours: containers of ${user.user} go under ${own}; drop --cgroup-parent (gpuguard sets it)`,
      `foreign --cgroup-parent ${req.cgroupParent} (the user's own is ${own})`,
    ),
  ];
}

interface LimitSpec {
  rule: string;
  flag: string;
  kind: 'cpus' | 'memory' | 'pidsLimit' | 'shmSize';
  policyKey: 'cpus' | 'memory' | 'pids' | 'shmSize';
  /** The asked value as a number; Infinity for "unlimited"; undefined for malformed (docker rejects it). */
  parse: (v: string) => number | undefined;
  show: (n: number) => string;
}

const LIMITS: LimitSpec[] = [
  { rule: 'limits.cpus', flag: '--cpus', kind: 'cpus', policyKey: 'cpus', parse: (v) => unlimitedIfZero(Number(v)), show: (n) => String(n) },
  { rule: 'limits.memory', flag: '--memory', kind: 'memory', policyKey: 'memory', parse: (v) => unlimitedIfZero(v.trim() === '-1' ? 0 : parseSize(v)), show: formatSize },
  { rule: 'limits.pids', flag: '--pids-limit', kind: 'pidsLimit', policyKey: 'pids', parse: (v) => unlimitedIfZero(/^-?\d+$/.test(v.trim()) ? Math.max(0, Number(v)) : undefined), show: String },
  {
    rule: 'limits.shmSize',
    flag: '--shm-size',
    kind: 'shmSize',
    policyKey: 'shmSize',
    parse: (v) => {
      const n = parseSize(v);
      return n === 0 ? DOCKER_DEFAULT_SHM : n;
    },
    show: formatSize,
  },
];

function unlimitedIfZero(n: number | undefined): number | undefined {
  if (n === undefined || Number.isNaN(n)) return undefined;
  return n <= 0 ? Number.POSITIVE_INFINITY : n;
}

export function decideLimits(user: EffectiveUser, req: CreateRequest): Decision[] {
  const out: Decision[] = [];
  const group = `group ${user.group}`;
  for (const spec of LIMITS) {
    const raw = user.limits[spec.policyKey];
    if (raw === undefined) continue;
    const limit = spec.kind === 'cpus' ? Number(raw) : parseSize(raw as string | number)!;
    const limitText = spec.show(limit);
    let asked: string | undefined = req[spec.kind];
    let askedFlag = spec.flag;
    let askedValue: number | undefined;
    if (spec.kind === 'cpus' && asked === undefined && req.cpuQuota !== undefined) {
      // --cpu-quota/--cpu-period instead of --cpus: docker refuses both at once, so compare and never inject --cpus.
      const period = req.cpuPeriod !== undefined ? Number(req.cpuPeriod) : DEFAULT_CPU_PERIOD;
      const quota = Number(req.cpuQuota);
      asked = req.cpuQuota;
      askedFlag = '--cpu-quota';
      askedValue = Number.isFinite(quota) && period > 0 ? (quota <= 0 ? Number.POSITIVE_INFINITY : quota / period) : undefined;
    } else if (asked !== undefined) {
      askedValue = spec.parse(asked);
    }
    if (asked === undefined) {
      if (spec.kind === 'cpus' && req.cpuPeriod !== undefined) {
        const period = Number(req.cpuPeriod);
        const quota = String(Math.round(limit * (period > 0 ? period : DEFAULT_CPU_PERIOD)));
        out.push({ rule: spec.rule, verdict: 'add', reason: `--cpu-period given without a quota: --cpu-quota ${quota} (${limitText} CPUs), the per-container limit of ${group}`, add: [{ kind: 'cpuQuota', value: quota }] });
        continue;
      }
      const value = spec.kind === 'cpus' ? String(limit) : String(raw);
      out.push({ rule: spec.rule, verdict: 'add', reason: `no ${spec.flag} given: ${spec.flag} ${value}, the per-container limit of ${group}`, add: [{ kind: spec.kind, value }] });
      continue;
    }
    if (askedValue === undefined) {
      out.push({ rule: spec.rule, verdict: 'keep', reason: `${askedFlag} ${asked} is not a value gpuguard can read; docker checks it` });
    } else if (askedValue <= limit) {
      out.push({ rule: spec.rule, verdict: 'keep', reason: `${askedFlag} ${asked} is within the per-container limit of ${group} (${limitText})` });
    } else {
      const wanted = askedValue === Number.POSITIVE_INFINITY ? 'no limit' : `more than the ${limitText}`;
      out.push(
        adminOnly(
          user,
          spec.rule,
          `${askedFlag} ${asked} asks for ${wanted} allowed per container to ${group}; use ${spec.flag} ${spec.kind === 'cpus' ? limitText : String(raw)} or less, or ask an admin to raise limits.${spec.policyKey}`,
          `${askedFlag} ${asked} is above the per-container limit of ${group} (${limitText})`,
        ),
      );
    }
  }
  return out;
}

export function decideContainerCount(policy: Policy, user: EffectiveUser, facts: CreateFacts): Decision[] {
  const max = user.limits.containers;
  if (max === undefined) return [];
  const rule = 'limits.containers';
  if (facts.containerCount === undefined) {
    return [{ rule, verdict: 'warn', reason: `could not count the containers of ${user.user} (${facts.countError ?? 'unknown error'}); limit of ${max} not checked` }];
  }
  const n = facts.containerCount;
  if (n < max) return [{ rule, verdict: 'keep', reason: `${user.user} has ${n} container${n === 1 ? '' : 's'}, group ${user.group} allows ${max}` }];
  const filter = `docker ps -a --filter label=${labelKeys(policy.labelPrefix).user}=${user.user}`;
  return [
    adminOnly(
      user,
      rule,
      `${user.user} already has ${n} container${n === 1 ? '' : 's'} (running or stopped) and group ${user.group} allows ${max}; remove one with docker rm (list them: ${filter})`,
      `${n} containers, at or above the limit of ${max} for group ${user.group}`,
    ),
  ];
}
