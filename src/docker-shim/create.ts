/**
 * The runner for `docker run`/`docker create`: reads the environment, the
 * policy and the facts (label files, the user's container count), calls the
 * pure translator, logs one event, and execs the real CLI with the result —
 * or refuses with exit 125 before anything exists.
 */
import { readFileSync } from 'node:fs';
import { PolicyDenied } from '../errors.ts';
import { appendEvent } from '../events/log.ts';
import { countContainersOnSocket, countContainersWithLabel } from '../docker/count.ts';
import { findRealDocker } from '../docker/real.ts';
import { loadPolicyCached } from '../policy/cache.ts';
import { resolveUser, type EffectiveUser } from '../policy/effective.ts';
import { currentIdentity } from '../policy/identity.ts';
import { labelKeys } from '../policy/labels.ts';
import type { Policy } from '../policy/schema.ts';
import { execve } from '../sys/exec.ts';
import { scanRunCreate, values, type RunScan } from './argv.ts';
import type { CreateKind, GlobalScan, LocalTarget } from './globals.ts';
import { passThrough } from './index.ts';
import { rewriteCreate, type GpuPlan, type Rewrite } from './rewrite.ts';

export interface Prepared {
  kind: 'pass' | 'rewrite';
  /** Why it is passed through untouched (remote daemon, help, a line docker rejects). */
  why?: string;
  real?: string;
  policy?: Policy;
  user?: EffectiveUser;
  scan?: RunScan;
  rewrite?: Rewrite;
}

/**
 * Everything short of exec: shared by the shim and `gpuguard explain`.
 * `gpu` is where the GPU allocator plugs in (it gets the scan's
 * gpuRequestFacts and returns a plan).
 */
export async function prepareCreate(
  args: string[],
  globals: GlobalScan,
  cmd: { kind: CreateKind; flagsFrom: number },
  target: LocalTarget,
  env: NodeJS.ProcessEnv,
  opts: { gpu?: (scan: RunScan, policy: Policy, user: EffectiveUser) => Promise<GpuPlan | undefined>; now?: Date; dryRun?: boolean } = {},
): Promise<Prepared> {
  const scan = scanRunCreate(args, cmd.kind, cmd.flagsFrom, globals);
  if (scan.error) return { kind: 'pass', why: `docker rejects this line itself (${scan.error})`, scan };
  if (scan.help) return { kind: 'pass', why: '--help creates nothing', scan };
  if (scan.image === undefined) return { kind: 'pass', why: 'no image: docker reports the error', scan };
  let policy: Policy;
  try {
    policy = (await loadPolicyCached(env)).policy;
  } catch (err) {
    // Another daemon is not ours to police unless a readable policy says docker.remote: enforce.
    if (!target.local) return { kind: 'pass', why: `another daemon (${target.why}); the policy cannot be read`, scan };
    throw err;
  }
  if (!target.local && policy.docker.remote !== 'enforce') return { kind: 'pass', why: `another daemon (${target.why}); docker.remote is passthrough`, scan, policy };
  const real = findRealDocker(env, policy.docker.realPath);
  // GPU requests: src/gpu starts its locked Docker read before the user lookup and decides after it,
  // alongside the container count (dryRun for explain: decide only, no lock, no reservation).
  const gpuStart = opts.gpu
    ? undefined
    : (await import('../gpu/plan.ts')).startGpuPlan(scan.flags, policy, env, { realDocker: real, ...(target.socket ? { socket: target.socket } : {}), ...(opts.dryRun ? { dryRun: true } : {}) });
  const user = resolveUser(policy, currentIdentity(env));
  const gpuPlan = opts.gpu ? opts.gpu(scan, policy, user) : gpuStart!.finish(user);
  gpuPlan.catch(() => {}); // awaited below; not an unhandled rejection meanwhile

  const labelFiles: Record<string, string> = {};
  for (const path of values(scan, 'label-file')) {
    try {
      labelFiles[path] = readFileSync(path, 'utf8');
    } catch {
      /* docker, as the same user, reports it */
    }
  }
  let containerCount: number | undefined;
  let countError: string | undefined;
  if (user.limits.containers !== undefined) {
    const label = `${labelKeys(policy.labelPrefix).user}=${user.user}`;
    try {
      const socket = target.socket;
      containerCount = (socket ? await countContainersOnSocket(socket, label) : undefined) ?? (await countContainersWithLabel(real, args.slice(0, globals.commandIndex), label, env));
    } catch (err) {
      countError = (err as Error).message;
    }
  }
  const gpu = await gpuPlan;
  const rewrite = rewriteCreate(args, scan, policy, user, {
    now: opts.now ?? new Date(),
    labelFiles,
    ...(containerCount !== undefined ? { containerCount } : {}),
    ...(countError !== undefined ? { countError } : {}),
    ...(gpu ? { gpu } : {}),
  });
  return { kind: 'rewrite', real, policy, user, scan, rewrite };
}

export async function runCreate(
  args: string[],
  globals: GlobalScan,
  cmd: { kind: CreateKind; flagsFrom: number },
  target: LocalTarget,
  env: NodeJS.ProcessEnv,
): Promise<number> {
  const p = await prepareCreate(args, globals, cmd, target, env);
  if (p.kind === 'pass') return passThrough(args, env);
  const { policy, user, rewrite, real } = p as Required<Prepared>;
  appendEvent(policy.events.log, {
    face: 'docker',
    decision: rewrite.decision,
    user: user.user,
    uid: user.uid,
    argv: ['docker', ...args].slice(0, 64),
    reasons: rewrite.decisions.map((d) => `${d.verdict} ${d.rule}: ${d.reason}`),
    ...(policy.mode === 'audit' ? { mode: 'audit' } : {}),
  });
  if (rewrite.refusal) throw new PolicyDenied(rewrite.refusal.reason, rewrite.refusal.rule);
  for (const d of rewrite.decisions) if (d.verdict === 'warn') process.stderr.write(`gpuguard: warning: ${d.reason}\n`);
  return execve(real, [process.argv0, ...rewrite.argv], env);
}
