/**
 * The policy file's schema: the single source of truth for its shape. The
 * JSON Schema printed by `gpuguard policy schema` is generated from this, and
 * the TypeScript types below are inferred from it. Keys are a contract with
 * the operators' files: add, never rename.
 */
import { z } from 'zod';

const SIZE_PATTERN = '^\\d+(\\.\\d+)?\\s*[kmgtpKMGTP]?([iI]?[bB])?$';
const DURATION_PATTERN = '^\\d+(\\.\\d+)?(ms|s|m|h|d)?$';

/** A docker size: bytes as a number, or "32g", "512m", "1.5GiB". */
export const Size = z.union([
  z.number().int().nonnegative(),
  z.string().regex(new RegExp(SIZE_PATTERN), { error: 'expected a size such as 512m or 32g' }),
], { error: 'expected a size such as 512m or 32g' });

/** A duration: seconds as a number, or "30m", "10s", "1h". */
export const Duration = z.union([
  z.number().nonnegative(),
  z.string().regex(new RegExp(DURATION_PATTERN), { error: 'expected a duration such as 10s, 30m or 1h' }),
], { error: 'expected a duration such as 10s, 30m or 1h' });

/**
 * A lifecycle duration: a whole number with a unit, `30s`, `20m`, `2h`, `7d`,
 * or `never` (a group turning off what the top level sets). No bare numbers:
 * `maxRuntime: 7` would be read as 7 seconds by someone who meant 7 days.
 */
const LIFECYCLE_DURATION = 'expected a whole number above 0 with a unit (s, m, h, d) such as 30s, 20m, 2h or 7d, or never';
export const LifecycleDuration = z.union([z.literal('never'), z.string().regex(/^[1-9]\d*(s|m|h|d)$/, { error: LIFECYCLE_DURATION })], { error: LIFECYCLE_DURATION });

/** The same grammar where zero makes sense (a warning or a grace period of none). */
const LIFECYCLE_SPAN = 'expected a whole number with a unit (s, m, h, d) such as 0s, 30s, 20m or 2h';
const LifecycleSpan = z.string({ error: LIFECYCLE_SPAN }).regex(/^(0|[1-9]\d*)(s|m|h|d)$/, { error: LIFECYCLE_SPAN });

const positive = () => z.number().positive({ error: 'expected a number greater than 0' });
const count = () => z.number().int({ error: 'expected a whole number' }).nonnegative({ error: 'expected a whole number, 0 or more' });

/** Per-container limits (`containers` is how many a user may have at once). */
export const Limits = z.strictObject({
  cpus: positive().optional(),
  memory: Size.optional(),
  pids: count().optional(),
  shmSize: Size.optional(),
  containers: count().optional(),
});

/** All of one user's containers together, enforced by the kernel on the user's parent cgroup. */
export const Aggregate = z.strictObject({
  cpus: positive().optional(),
  memory: Size.optional(),
  memoryHigh: Size.optional(),
  pids: count().optional(),
});

export const GpuQuotaSchema = z.strictObject({
  max: count().optional(),
  maxEquivalents: z.number().nonnegative({ error: 'expected a number, 0 or more' }).optional(),
  perContainer: count().optional(),
  fullGpu: z.boolean().optional(),
  priority: z.number().int().optional(),
});

/** A unix user name, or "@group" for every member of a unix group. */
const Principal = z.string().min(1);

/**
 * When `gpuguard reap` warns, stops and removes containers (top level and
 * per group; a group's keys win). A key left out is no rule.
 */
export const LifecycleRules = z.strictObject({
  /** No process on the container's GPUs and CPU under idleCpuPercent this long: stopped. */
  idleAfter: LifecycleDuration.optional(),
  /** Percent of one core under which a container counts as idle. */
  idleCpuPercent: z.number().positive({ error: 'expected a percentage of one core, above 0' }).max(100, { error: 'expected a percentage of one core, at most 100' }).optional(),
  /** Running longer than this: stopped. */
  maxRuntime: LifecycleDuration.optional(),
  /** Stopped longer than this: removed (volumes kept). */
  removeStoppedAfter: LifecycleDuration.optional(),
  /** The owner is warned this long before a stop or removal. */
  warnBefore: LifecycleSpan.optional(),
  /** How long a stop waits after SIGTERM before SIGKILL, for containers that set no --stop-timeout (Docker's default: 10s). */
  stopTimeout: LifecycleSpan.optional(),
});

const NOTIFY = 'expected the absolute path of a program, or a list [program, arg…] that starts with one';

/** The top-level `lifecycle`: the rules, and who is told about warnings. */
export const Lifecycle = LifecycleRules.extend({
  /** A program run for each warning as `PROGRAM… USER MESSAGE` (no shell): a path, or an argv list. */
  notify: z
    .union([z.string().startsWith('/', { error: NOTIFY }), z.array(z.string().min(1, { error: NOTIFY }), { error: NOTIFY }).min(1, { error: NOTIFY }).refine((a) => a[0]!.startsWith('/'), { error: NOTIFY })], { error: NOTIFY })
    .optional(),
});

export const Group = z.strictObject({
  members: z.array(Principal).default([]),
  limits: Limits.optional(),
  aggregate: Aggregate.optional(),
  gpus: GpuQuotaSchema.optional(),
  lifecycle: LifecycleRules.optional(),
});

export const UserOverride = z.strictObject({
  group: z.string().optional(),
  limits: Limits.optional(),
  aggregate: Aggregate.optional(),
  gpus: GpuQuotaSchema.optional(),
});

export const MountRule = z.strictObject({
  /** A host path, or "dir/*" for every directory directly under dir. */
  source: z.string().startsWith('/', { error: 'expected an absolute path' }),
  /** A container path; "{name}" is the matched directory's name for a "dir/*" source. */
  destination: z.string().startsWith('/', { error: 'expected an absolute path' }),
  readOnly: z.boolean().default(true),
  /** Skip (and log) instead of failing when the source is missing. */
  ifExists: z.boolean().default(true),
  /** With a "dir/*" source: directories whose name ends so are mounted writable. */
  writableSuffixes: z.array(z.string().min(1)).default([]),
});

export const RuleMatch = z.strictObject({
  /** containerd namespace(s): moby (dockerd), concourse, k8s.io, default … */
  namespace: z.union([z.string(), z.array(z.string())]).optional(),
  /** Every listed annotation must be present with this value ("*": any value). */
  annotations: z.record(z.string(), z.string()).optional(),
  /** Every listed process env variable must be set to this value ("*": any value). */
  env: z.record(z.string(), z.string()).optional(),
});

export const RuntimeRule = z.strictObject({
  name: z.string().min(1),
  match: RuleMatch.optional(),
  env: z.record(z.string(), z.string()).optional(),
  mounts: z.array(MountRule).optional(),
});

/** A host path a user may bind: absolute; `{home}` and `{user}` filled in per user; `dir/*` for everything below dir. */
const BindRoot = z
  .string()
  .regex(/^(?:\/|\{home\})(?:[^*{}]|\{home\}|\{user\})*(?:(?<=\/)\*)?$/, {
    error: 'expected an absolute path or one starting with {home}, with {home} and {user} as the only placeholders and "*" only as "dir/*"',
  });

/**
 * What a non-admin's container may ask for. Absent: nothing is refused on
 * these grounds (the seeds' behaviour). Present: every key left out takes
 * its safe value (false, no capabilities, binds only under {home}).
 */
export const SecuritySchema = z.strictObject({
  privileged: z.boolean().default(false),
  /** Capabilities a user may add (SYS_PTRACE or CAP_SYS_PTRACE; "ALL" for all). */
  capAdd: z.array(z.string().regex(/^(CAP_)?[A-Za-z_]+$/, { error: 'expected a capability name such as SYS_PTRACE' })).default([]),
  /** --device, --device-cgroup-rule (GPUs come from the allocator either way). */
  devices: z.boolean().default(false),
  /** --pid/--ipc/--network/--uts/--userns/--cgroupns host. */
  hostNamespaces: z.boolean().default(false),
  /** --volumes-from, --link, --network/--pid/--ipc container:<a container of another user>. */
  otherUsersContainers: z.boolean().default(false),
  /** --security-opt seccomp=/apparmor=/systempaths=unconfined, label=…, custom seccomp profiles. */
  unconfined: z.boolean().default(false),
  /** Host paths a user may mount, by any spelling of a bind; judged after resolving symlinks and "..". */
  binds: z.array(BindRoot).default(['{home}']),
});

/**
 * The API face (`gpuguard serve`, API mode): where it listens, where dockerd
 * listens behind it, and the listen socket's group and mode. The upstream
 * default is a root-only directory of its own (0700), not /run/gpuguard: that
 * one is 1777 for GPU reservations, so any user could put a socket at the
 * upstream path there before dockerd does.
 */
export const API_DEFAULTS = { listen: '/var/run/docker.sock', upstream: '/run/gpuguard-dockerd/docker.sock', group: 'docker', mode: '0660' } as const;
const OCTAL_MODE_RE = /^0?[0-7]{3}$/;
const OCTAL_MODE = 'expected an octal mode in quotes, such as "0660"';
export const ApiSchema = z.strictObject({
  listen: z.string().startsWith('/', { error: 'expected an absolute path' }).default(API_DEFAULTS.listen),
  upstream: z.string().startsWith('/', { error: 'expected an absolute path' }).default(API_DEFAULTS.upstream),
  group: z.string().min(1).default(API_DEFAULTS.group),
  /** A quoted string: YAML reads an unquoted 0660 as the decimal number 660. */
  mode: z.custom<string>((v) => typeof v === 'string' && OCTAL_MODE_RE.test(v), { error: OCTAL_MODE }).meta({ type: 'string', pattern: OCTAL_MODE_RE.source }).default(API_DEFAULTS.mode),
});

export const PolicySchema = z
  .strictObject({
    version: z.literal(1, { error: 'expected version: 1' }),
    mode: z.enum(['enforce', 'audit']).default('enforce'),
    labelPrefix: z
      .string()
      .regex(/^[a-z0-9]+([.-][a-z0-9]+)*$/, { error: 'expected a label prefix such as ds01 (lower case, digits, dots, dashes)' })
      .default('ds01'),
    admins: z.array(Principal).default([]),
    /** Accounts (CI workers, monitoring) that may act on every container, like admins, without admin rights over policy. */
    serviceUsers: z.array(Principal).default([]),
    defaults: z.strictObject({ group: z.string() }).optional(),
    groups: z.record(z.string(), Group).default({}),
    users: z.record(z.string(), UserOverride).default({}),
    cgroup: z.strictObject({ parent: z.string().min(1) }).optional(),
    docker: z
      .strictObject({
        realPath: z.string().startsWith('/', { error: 'expected an absolute path' }).optional(),
        psFilter: z.enum(['own', 'all']).default('own'),
        remote: z.enum(['passthrough', 'enforce']).default('passthrough'),
      })
      .default({ psFilter: 'own', remote: 'passthrough' }),
    gpu: z
      .strictObject({
        inventory: z.string().default('nvidia-smi'),
        holdAfterStop: Duration.default('0s'),
        wait: Duration.default('0s'),
        /** GPU processes outside containers: allow, warn (event + notify), or kill; applied by `gpuguard reap`. */
        hostProcesses: z.enum(['allow', 'warn', 'kill']).default('allow'),
        /** Users ("@group" too) whose host GPU processes are always allowed (root's always are). */
        hostProcessUsers: z.array(Principal).default([]),
      })
      .default({ inventory: 'nvidia-smi', holdAfterStop: '0s', wait: '0s', hostProcesses: 'allow', hostProcessUsers: [] }),
    runtime: z
      .strictObject({
        realPath: z.string().startsWith('/', { error: 'expected an absolute path' }).optional(),
        onPolicyError: z.enum(['open', 'closed']).default('open'),
        gpuEnv: z.enum(['sanitize', 'keep']).default('sanitize'),
        rules: z.array(RuntimeRule).optional(),
      })
      .default({ onPolicyError: 'open', gpuEnv: 'sanitize' }),
    security: SecuritySchema.optional(),
    events: z
      .strictObject({ log: z.string().startsWith('/', { error: 'expected an absolute path' }).default('/var/log/gpuguard/events.jsonl') })
      .default({ log: '/var/log/gpuguard/events.jsonl' }),
    lifecycle: Lifecycle.optional(),
    api: ApiSchema.default(API_DEFAULTS),
  })
  .superRefine((policy, ctx) => {
    const known = Object.keys(policy.groups);
    const unknownGroup = (group: string, path: (string | number)[]) =>
      ctx.addIssue({
        code: 'custom',
        path,
        message: `unknown group "${group}" (groups defined: ${known.length ? known.join(', ') : 'none'})`,
      });
    if (policy.defaults && !known.includes(policy.defaults.group)) unknownGroup(policy.defaults.group, ['defaults', 'group']);
    for (const [user, override] of Object.entries(policy.users)) {
      if (override.group !== undefined && !known.includes(override.group)) unknownGroup(override.group, ['users', user, 'group']);
    }
    if (policy.api.listen === policy.api.upstream) ctx.addIssue({ code: 'custom', path: ['api', 'upstream'], message: `the same path as api.listen (${policy.api.listen}): dockerd needs a socket of its own behind the face` });
    const names = new Set<string>();
    policy.runtime.rules?.forEach((rule, i) => {
      if (names.has(rule.name)) ctx.addIssue({ code: 'custom', path: ['runtime', 'rules', i, 'name'], message: `duplicate rule name "${rule.name}"` });
      names.add(rule.name);
    });
  });

export type Policy = z.output<typeof PolicySchema>;
export type PolicyInput = z.input<typeof PolicySchema>;
export type LimitsT = z.output<typeof Limits>;
export type AggregateT = z.output<typeof Aggregate>;
export type GpuQuotaT = z.output<typeof GpuQuotaSchema>;
export type RuntimeRuleT = z.output<typeof RuntimeRule>;
export type MountRuleT = z.output<typeof MountRule>;
export type LifecycleRulesT = z.output<typeof LifecycleRules>;
export type LifecycleT = z.output<typeof Lifecycle>;
export type SecurityT = z.output<typeof SecuritySchema>;
export type ApiT = z.output<typeof ApiSchema>;

/** The rules a host with no explicit `runtime.rules` gets (defined beside the rule matching, which must not load zod). */
export { DEFAULT_RUNTIME_RULES } from './runtime-rules.ts';

export function policyJsonSchema(): unknown {
  return z.toJSONSchema(PolicySchema, { io: 'input', unrepresentable: 'any' });
}
