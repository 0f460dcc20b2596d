/**
 * The seam between the docker shim and GPU allocation: from the scanner's
 * flag occurrences to a plan the shim's pure rewrite applies — words of the
 * user's argv to drop (their `--gpus`, an NVIDIA `--runtime`, CDI / device
 * node `--device`), words to insert before the image (one explicit
 * `--gpus device=<uuid>[,<uuid>]`, capabilities kept), labels, and one
 * decision. A refusal is a `deny` decision (exit 125; a warning in audit
 * mode, where the user's flags are left as they were).
 */
import { readFileSync } from 'node:fs';
import { GpuguardError, PolicyDenied } from '../errors.ts';
import type { EffectiveUser } from '../policy/effective.ts';
import type { Policy } from '../policy/schema.ts';
// The allocator (./index.ts: inventory, Docker state, reservations) is loaded only for a GPU request:
// every docker create asks this module whether there is one.
import type { Prefetched } from './index.ts';
import { describeRequest, isNvidiaRuntime, normaliseGpuRequest, parseDeviceFlag, GpuRequestError, type GpuRequest } from './request.ts';

/** The parts of the scanner's FlagOccurrence this needs. */
export interface FlagAt {
  name: string;
  value?: string;
  start: number;
  end: number;
  cluster: boolean;
}

export interface GpuDecision {
  rule: string;
  verdict: 'add' | 'deny';
  reason: string;
}

export interface GpuPlanOut {
  drop?: { start: number; end: number }[];
  insert?: string[];
  labels?: [string, string][];
  decisions?: GpuDecision[];
}

/**
 * Docker's --env-file grammar (opts/file.go): trim left, skip blank and `#`
 * lines, `KEY=VALUE` or a bare `KEY` (taken from the caller's environment).
 * An unreadable file is left to docker to report.
 */
export function envFileEntries(text: string): string[] {
  return text
    .replace(/^\uFEFF/, '')
    .split('\n')
    .map((l) => l.replace(/\r$/, '').trimStart())
    .filter((l) => l && !l.startsWith('#'));
}

/**
 * The environment whose DOCKER_HOST names the daemon the command goes to
 * (the shim resolves `-H`, DOCKER_HOST, contexts to a local socket), so the
 * allocation reads the same daemon the create will reach.
 */
export function envForSocket(env: NodeJS.ProcessEnv, socket: string | undefined): NodeJS.ProcessEnv {
  return socket === undefined ? env : { ...env, DOCKER_HOST: `unix://${socket}` };
}

/** The normalised request of one run/create (pure but for reading --env-file files). */
export function requestFromFlags(flags: readonly FlagAt[], callerEnv: NodeJS.ProcessEnv, readFile: (p: string) => string = (p) => readFileSync(p, 'utf8')): GpuRequest {
  const vals = (name: string) => flags.filter((f) => f.name === name && f.value !== undefined).map((f) => f.value!);
  const env: string[] = [];
  for (const path of vals('env-file')) {
    try {
      env.push(...envFileEntries(readFile(path)));
    } catch {
      /* docker reports it */
    }
  }
  env.push(...vals('env'));
  const runtime = vals('runtime').at(-1);
  return normaliseGpuRequest({ gpus: vals('gpus'), env, ...(runtime !== undefined ? { runtime } : {}), devices: vals('device') }, callerEnv);
}

type PlanOpts = { dryRun?: boolean; realDocker?: string; socket?: string };
type Who = Pick<EffectiveUser, 'user' | 'uid' | 'gpus'>;

export async function planGpus(flags: readonly FlagAt[], policy: Policy, user: Who, env: NodeJS.ProcessEnv, opts: PlanOpts = {}): Promise<GpuPlanOut | undefined> {
  return startGpuPlan(flags, policy, env, opts).finish(user);
}

/**
 * The plan in two steps, for the shim: `startGpuPlan` reads the request
 * and, when there is one, takes the GPU lock and sends the Docker query at
 * once (synchronously when the lock is free); `finish(user)` decides once
 * the user is known. The shim looks the user up (`getent`, `id`) in between,
 * so the two overlap.
 */
export function startGpuPlan(flags: readonly FlagAt[], policy: Policy, env: NodeJS.ProcessEnv, opts: PlanOpts = {}): { finish(user: Who): Promise<GpuPlanOut | undefined> } {
  env = envForSocket(env, opts.socket);
  let request: GpuRequest;
  try {
    request = requestFromFlags(flags, env);
  } catch (err) {
    if (err instanceof GpuRequestError) {
      const reason = err.message;
      return { finish: async () => ({ decisions: [{ rule: 'gpus.malformed', verdict: 'deny', reason }] }) };
    }
    throw err;
  }
  if (request.kind === 'none') return { finish: async () => undefined };
  const allocator = import('./index.ts');
  const prefetched = opts.dryRun ? undefined : allocator.then((m) => m.prefetchGpuState({ policy, env, ...(opts.realDocker ? { realDocker: opts.realDocker } : {}) }));
  prefetched?.catch(() => {}); // awaited in finishPlan
  return { finish: (user) => finishPlan(flags, request, policy, user, env, opts, prefetched) };
}

async function finishPlan(
  flags: readonly FlagAt[],
  request: GpuRequest,
  policy: Policy,
  user: Who,
  env: NodeJS.ProcessEnv,
  opts: PlanOpts,
  prefetched: Promise<Prefetched> | undefined,
): Promise<GpuPlanOut | undefined> {
  let grant;
  try {
    grant = await (await import('./index.ts')).grantGpus({
      request,
      policy,
      user,
      env,
      ...(opts.dryRun ? { dryRun: true } : {}),
      ...(opts.realDocker ? { realDocker: opts.realDocker } : {}),
      ...(prefetched ? { prefetched } : {}),
    });
  } catch (err) {
    if (err instanceof PolicyDenied) return { decisions: [{ rule: err.rule, verdict: 'deny', reason: err.message }] };
    if (err instanceof GpuguardError) return { decisions: [{ rule: 'gpus.error', verdict: 'deny', reason: `GPU allocation failed: ${err.message}` }] };
    throw err;
  }
  if (!grant) return undefined;
  const drop = flags
    .filter((f) => f.name === 'gpus' || (f.name === 'runtime' && isNvidiaRuntime(f.value)) || (f.name === 'device' && f.value !== undefined && parseDeviceFlag(f.value)))
    .map((f) => ({ start: f.start, end: f.end }));
  const insert = ['--gpus', grant.gpusValue];
  // An NVIDIA_VISIBLE_DEVICES the user set (-e, --env-file, or the image's) must agree with the grant: set it last, so it wins.
  if (flags.some((f) => f.name === 'env' || f.name === 'env-file') && request.sources.some((s) => s.includes('NVIDIA_VISIBLE_DEVICES'))) {
    insert.push('-e', `NVIDIA_VISIBLE_DEVICES=${grant.devices.map((d) => d.uuid).join(',')}`);
  }
  const slots = grant.devices.map((d) => d.slot).join(',');
  return {
    drop,
    insert,
    labels: grant.labels,
    decisions: [
      {
        rule: 'gpus',
        verdict: 'add',
        reason: `${describeRequest(request)} (${request.sources.join(' ')}) → GPU ${slots} (${grant.devices.map((d) => `${d.profile} ${d.uuid}`).join(', ')})`,
      },
    ],
  };
}
