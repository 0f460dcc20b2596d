/**
 * `create` / `run`: load the policy and the bundle's config.json once, ask
 * the policy what this container must get, apply that with the modifier
 * list, flush once, log one event, become the real runtime.
 *
 * Failures: a missing or malformed config.json is the real runtime's to
 * report (handed over untouched). A policy that cannot be loaded or applied
 * follows `runtime.onPolicyError`: `open` starts the container unmodified and
 * logs why; `closed` refuses through runc's --log (so `docker run` shows the
 * message) and exits non-zero; `mode: audit` never refuses.
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { realpathOf } from '../sys/fastfs.ts';
import { join } from 'node:path';
import { errorLine } from '../errors.ts';
import { appendEvent, type GpuguardEvent } from '../events/log.ts';
import { FileSpec, SpecUnreadable, type Spec } from '../oci/spec.ts';
import { aggregateFor, cgroupParentOf, type AggregateDecision } from '../policy/cgroup-aggregate.ts';
import { lookupUser, type Identity } from '../policy/identity.ts';
import type { LoadedPolicy } from '../policy/load.ts';
import { GPU_ENV, gpuEnvDecision, matchingRules, plannedMounts, ruleEnv, type ListDirs } from '../policy/runtime-rules.ts';
import type { Policy } from '../policy/schema.ts';
import type { RuncCall } from './args.ts';
import { detectCgroupLayout, type CgroupIo, type CgroupLayout } from './cgroups.ts';
import { containerFacts } from './facts.ts';
import { rroAvailable } from './features.ts';
import { handOver } from './handover.ts';
import { aggregateModifier } from './modifiers/aggregate.ts';
import { ruleEnvModifier } from './modifiers/env.ts';
import { gpuEnvModifier } from './modifiers/gpu-env.ts';
import { gpuDevicesModifier, nvidiaMajors } from './modifiers/gpu-devices.ts';
import { modifierList, type Change } from './modifiers/index.ts';
import { mountsModifier, type MountHost } from './modifiers/mounts.ts';
import { findRealRuntime } from './real-runtime.ts';
import { loadPolicyCached, policyPathOf } from '../policy/cache.ts';
import { rememberPolicyRealPath } from './real-runtime-cache.ts';
import { reportRuntimeError } from './runc-log.ts';

const DEFAULT_EVENTS_LOG = '/var/log/gpuguard/events.jsonl';

export const listDirs: ListDirs = (dir) => {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return undefined;
  }
  return names.filter((n) => {
    try {
      return statSync(join(dir, n)).isDirectory();
    } catch {
      return false;
    }
  });
};

export function hostMounts(real: string): MountHost {
  let rro: boolean | undefined;
  return {
    exists: (p) => existsSync(p),
    realpath: (p) => realpathOf(p) ?? p,
    get rro() {
      return (rro ??= rroAvailable(real));
    },
  };
}

export interface EditResult {
  rules: string[];
  changes: Change[];
  aggregate: AggregateDecision | undefined;
  namespace: string | undefined;
  /** The devices the container may see after the edit (NVIDIA_VISIBLE_DEVICES), when it may see any. */
  gpus: string[] | undefined;
  written: boolean;
}

/** The host facts and effects an edit uses, replaceable in tests. */
export interface EditHost {
  mounts: MountHost;
  lookup: (nameOrUid: string) => Identity;
  cgroupLayout: () => CgroupLayout;
  cgroupIo?: CgroupIo;
  listDirs: ListDirs;
  /** The host's NVIDIA character majors (195, and nvidia-uvm's, nvidia-caps' … from /proc/devices). */
  nvidiaMajors: () => ReadonlySet<number>;
}

export function hostFor(real: string): EditHost {
  return { mounts: hostMounts(real), lookup: lookupUser, cgroupLayout: () => detectCgroupLayout(), listDirs, nvidiaMajors: hostNvidiaMajors };
}

/** Read only when a container without a GPU grant has devices or device rules to look at. */
function hostNvidiaMajors(): ReadonlySet<number> {
  let text: string | undefined;
  try {
    text = readFileSync('/proc/devices', 'utf8');
  } catch {
    /* not Linux, or no /proc: 195 alone */
  }
  return nvidiaMajors(text);
}

/** The edit itself, on any Spec: decide with the policy, modify, flush. Throws on a policy failure (nothing flushed). */
export function editSpec(spec: Spec, call: RuncCall, policy: Policy, host: EditHost): EditResult {
  const facts = containerFacts(call, spec.config);
  const rules = matchingRules(policy, facts);
  const plan = plannedMounts(rules, host.listDirs);
  const parent = cgroupParentOf(spec.config.linux?.cgroupsPath, call.globals.systemdCgroup);
  const aggregate = parent ? aggregateFor(policy, parent.parent, host.lookup) : undefined;
  // One grant decision for both GPU hygiene modifiers: the env and the device nodes.
  const gpuGrant = gpuEnvDecision(policy, facts, rules);
  const changes = modifierList([
    ruleEnvModifier(ruleEnv(rules)),
    mountsModifier(plan.mounts, plan.skipped, host.mounts),
    gpuEnvModifier(gpuGrant),
    gpuDevicesModifier(gpuGrant, host.nvidiaMajors),
    aggregateModifier(aggregate, parent?.driver ?? 'cgroupfs', host.cgroupLayout, host.cgroupIo),
  ]).modify(spec);
  const written = spec.flush();
  // The NVIDIA hook reads the last value of the variable (docker appends --gpus' after any -e).
  const visible = spec.config.process?.env?.filter((e) => e.startsWith(`${GPU_ENV}=`)).at(-1)?.slice(GPU_ENV.length + 1);
  const gpus = visible && !['void', 'none', ''].includes(visible) ? visible.split(',') : undefined;
  return { rules: rules.map((r) => r.name), changes, aggregate, namespace: facts.namespace, gpus, written };
}

/**
 * What a policy that fails validation still says about failing: its raw
 * YAML's runtime.onPolicyError, mode and events.log (no schema), so that
 * `closed` holds for a typo elsewhere in the file. Unparseable YAML: open.
 */
async function fallbackSettings(env: NodeJS.ProcessEnv): Promise<{ closed: boolean; audit: boolean; log: string }> {
  const out = { closed: false, audit: false, log: DEFAULT_EVENTS_LOG };
  try {
    const { parse } = await import('yaml');
    const raw = parse(readFileSync(policyPathOf(env), 'utf8')) as {
      mode?: unknown;
      runtime?: { onPolicyError?: unknown };
      events?: { log?: unknown };
    } | null;
    out.closed = raw?.runtime?.onPolicyError === 'closed';
    out.audit = raw?.mode === 'audit';
    if (typeof raw?.events?.log === 'string' && raw.events.log.startsWith('/')) out.log = raw.events.log;
  } catch {
    /* defaults */
  }
  return out;
}

export async function create(call: RuncCall, args: string[], env: NodeJS.ProcessEnv): Promise<number> {
  const bundle = call.bundle!;
  let loaded: LoadedPolicy | undefined;
  let loadError: string | undefined;
  try {
    loaded = await loadPolicyCached(env);
  } catch (err) {
    loadError = errorLine(err);
  }
  const realPath = loaded?.policy.runtime.realPath;
  const real = findRealRuntime({ env, policyRealPath: realPath });
  if (loaded?.path) rememberPolicyRealPath(loaded.path, realPath);

  const base: GpuguardEvent = { face: 'runtime', decision: 'allow', uid: process.getuid?.(), argv: [call.command!, call.id ?? ''], container: call.id, bundle };
  const policyFailure = (reason: string, log: string, closed: boolean, audit: boolean, namespace?: string): Promise<number> | number => {
    if (closed && !audit) {
      appendEvent(log, { ...base, namespace, decision: 'deny', reasons: [reason, 'runtime.onPolicyError: closed'] });
      reportRuntimeError(call.globals, `refusing to create container ${call.id ?? ''}: ${reason} (runtime.onPolicyError: closed)`);
      return 1;
    }
    appendEvent(log, { ...base, namespace, decision: 'error', reasons: [reason, 'started unmodified (runtime.onPolicyError: open)'] });
    return handOver(real, args, call, env);
  };

  if (!loaded) {
    const fb = await fallbackSettings(env);
    return policyFailure(loadError ?? 'policy unreadable', fb.log, fb.closed, fb.audit);
  }
  const { policy } = loaded;
  const log = policy.events.log;
  const closed = policy.runtime.onPolicyError === 'closed';
  const audit = policy.mode === 'audit';

  let spec: FileSpec;
  try {
    spec = FileSpec.load(bundle);
  } catch (err) {
    if (!(err instanceof SpecUnreadable)) throw err;
    appendEvent(log, { ...base, reasons: [`${err.message}: handed to the real runtime untouched`] });
    return handOver(real, args, call, env);
  }

  let result: EditResult;
  try {
    result = editSpec(spec, call, policy, hostFor(real));
  } catch (err) {
    return policyFailure(errorLine(err), log, closed, audit);
  }
  const event: GpuguardEvent = {
    ...base,
    decision: result.written || result.aggregate ? 'rewrite' : 'allow',
    namespace: result.namespace,
    rules: result.rules,
    changes: result.changes.filter((c) => !c.warning).map((c) => c.what),
  };
  const warnings = result.changes.filter((c) => c.warning).map((c) => c.what);
  if (warnings.length) event.warnings = warnings;
  if (result.aggregate) event.user = result.aggregate.user;
  if (result.gpus) event.gpus = result.gpus;
  appendEvent(log, event);
  return handOver(real, args, call, env);
}
