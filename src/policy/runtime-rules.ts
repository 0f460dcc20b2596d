/**
 * Which runtime rules apply to a container, and what they ask for: the
 * policy's answer to "this container (namespace, annotations, env, GPU
 * hook) is about to be created: what must it get?". Pure: facts in,
 * decisions out; the one piece of I/O (listing a directory for a `dir/*`
 * mount source) is a function the caller passes in.
 */
import { posix } from 'node:path';
import { PolicyError } from '../errors.ts';
import type { MountRuleT, Policy, RuntimeRuleT } from './schema.ts';

/**
 * The rules a host with no explicit `runtime.rules` gets: the seeds' read-only
 * datasets mount. Here rather than in schema.ts so that the runtime wrapper's
 * create path (which reads a cached, already validated policy) never loads zod.
 */
export const DEFAULT_RUNTIME_RULES: RuntimeRuleT[] = [
  {
    name: 'datasets',
    mounts: [{ source: '/srv/datasets', destination: '/srv/datasets', readOnly: true, ifExists: true, writableSuffixes: [] }],
  },
];

export interface ContainerFacts {
  /** containerd namespace: moby (dockerd), concourse, k8s.io, default … */
  namespace: string | undefined;
  annotations: Readonly<Record<string, string>>;
  /** The container's process env (first value of each name). */
  env: Readonly<Record<string, string>>;
  /** dockerd's NVIDIA prestart hook is present (what `--gpus` adds). */
  nvidiaHook: boolean;
}

export function runtimeRules(policy: Policy): RuntimeRuleT[] {
  return policy.runtime.rules ?? DEFAULT_RUNTIME_RULES;
}

function valueMatches(want: string, have: string | undefined): boolean {
  return have !== undefined && (want === '*' || want === have);
}

/** A rule without `match` applies to every container; each listed condition must hold. */
export function ruleMatches(rule: RuntimeRuleT, facts: ContainerFacts): boolean {
  const m = rule.match;
  if (!m) return true;
  if (m.namespace !== undefined) {
    const wanted = Array.isArray(m.namespace) ? m.namespace : [m.namespace];
    if (facts.namespace === undefined || !wanted.includes(facts.namespace)) return false;
  }
  for (const [k, v] of Object.entries(m.annotations ?? {})) if (!valueMatches(v, facts.annotations[k])) return false;
  for (const [k, v] of Object.entries(m.env ?? {})) if (!valueMatches(v, facts.env[k])) return false;
  return true;
}

export function matchingRules(policy: Policy, facts: ContainerFacts): RuntimeRuleT[] {
  return runtimeRules(policy).filter((r) => ruleMatches(r, facts));
}

/** Env the matching rules set, later rules winning; with the rule that set each name. */
export function ruleEnv(rules: readonly RuntimeRuleT[]): Map<string, { value: string; rule: string }> {
  const out = new Map<string, { value: string; rule: string }>();
  for (const rule of rules) for (const [k, v] of Object.entries(rule.env ?? {})) out.set(k, { value: v, rule: rule.name });
  return out;
}

export const GPU_ENV = 'NVIDIA_VISIBLE_DEVICES';

export type GpuEnvDecision =
  | { action: 'keep'; reason: string }
  | { action: 'void'; reason: string };

/**
 * GPU env hygiene: with `gpuEnv: sanitize`, a container with no GPU grant
 * gets NVIDIA_VISIBLE_DEVICES=void, so an image's `ENV NVIDIA_VISIBLE_DEVICES=all`
 * or `-e NVIDIA_VISIBLE_DEVICES=all` exposes nothing. A grant is dockerd's
 * NVIDIA prestart hook (`--gpus`, which the docker shim allocated) or a
 * matching rule that sets the variable.
 */
export function gpuEnvDecision(policy: Policy, facts: ContainerFacts, rules: readonly RuntimeRuleT[]): GpuEnvDecision {
  if (policy.runtime.gpuEnv === 'keep') return { action: 'keep', reason: 'gpuEnv: keep' };
  const byRule = rules.find((r) => r.env && GPU_ENV in r.env);
  if (byRule) return { action: 'keep', reason: `GPU granted by rule ${byRule.name}` };
  if (facts.nvidiaHook) return { action: 'keep', reason: 'GPU granted by the NVIDIA prestart hook (--gpus)' };
  return { action: 'void', reason: 'no GPU grant (no --gpus hook, no rule)' };
}

/** One mount a rule asks for, after `dir/*` expansion. */
export interface PlannedMount {
  source: string;
  destination: string;
  readOnly: boolean;
  ifExists: boolean;
  rule: string;
}

export interface SkippedMount {
  rule: string;
  source: string;
  reason: string;
}

/** Lists the names of the directories directly in `dir` (symlinks followed), or undefined when `dir` is missing. */
export type ListDirs = (dir: string) => string[] | undefined;

function isGlob(source: string): boolean {
  return source.endsWith('/*');
}

/**
 * The mounts the matching rules ask for. A source `dir/*` stands for every
 * directory directly in `dir` (names starting with "." excluded, as a shell
 * glob does), mounted at the destination with `{name}` filled in, read-only
 * unless the name ends with one of `writableSuffixes`. Two rules asking for
 * one destination give one mount, read-only if either asks for that.
 */
export function plannedMounts(rules: readonly RuntimeRuleT[], listDirs: ListDirs): { mounts: PlannedMount[]; skipped: SkippedMount[] } {
  const byDest = new Map<string, PlannedMount>();
  const skipped: SkippedMount[] = [];
  const add = (m: PlannedMount) => {
    const key = normaliseDestination(m.destination);
    const prev = byDest.get(key);
    if (prev) prev.readOnly ||= m.readOnly;
    else byDest.set(key, { ...m, destination: key });
  };
  for (const rule of rules) {
    for (const m of rule.mounts ?? []) {
      if (!isGlob(m.source)) {
        add({ source: m.source, destination: m.destination, readOnly: m.readOnly, ifExists: m.ifExists, rule: rule.name });
        continue;
      }
      const parent = m.source.slice(0, -2) || '/';
      const names = listDirs(parent);
      if (names === undefined) {
        if (!m.ifExists) throw new PolicyError(`runtime rule ${rule.name}: mount source ${m.source}: ${parent} does not exist (ifExists: false)`);
        skipped.push({ rule: rule.name, source: m.source, reason: `${parent} does not exist` });
        continue;
      }
      for (const name of names.filter((n) => !n.startsWith('.')).sort()) add(expandGlob(m, parent, name, rule.name));
    }
  }
  return { mounts: [...byDest.values()], skipped };
}

function expandGlob(m: MountRuleT, parent: string, name: string, rule: string): PlannedMount {
  const writable = m.writableSuffixes.some((s) => name.endsWith(s));
  return {
    source: posix.join(parent, name),
    destination: m.destination.replaceAll('{name}', name),
    readOnly: m.readOnly && !writable,
    ifExists: m.ifExists,
    rule,
  };
}

export function normaliseDestination(path: string): string {
  const n = posix.normalize(path);
  return n.length > 1 && n.endsWith('/') ? n.slice(0, -1) : n;
}
