/**
 * The runner for `docker run`/`docker create`: reads the environment, the
 * policy and the facts (label files, the user's container count), calls the
 * pure translator, logs one event, and execs the real CLI with the result —
 * or refuses with exit 125 before anything exists.
 */
import { PolicyDenied } from '../errors.ts';
import { appendEvent } from '../events/log.ts';
import { countContainersOnSocket, countContainersWithLabel } from '../docker/count.ts';
import { findRealDocker } from '../docker/real.ts';
import type { ReaderOptions } from '../docker/gateway.ts';
import type { SecurityFacts, SecurityRequest } from '../policy/security.ts';
import type { DockerLookups } from '../security/facts.ts';
import { loadPolicyCached } from '../policy/cache.ts';
import { hasContainerQuota, resolveUser, type EffectiveUser } from '../policy/effective.ts';
import { currentIdentity } from '../policy/identity.ts';
import { labelKeys } from '../policy/labels.ts';
import type { Policy } from '../policy/schema.ts';
import { processCaller, type Caller } from './caller.ts';
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
  opts: {
    gpu?: (scan: RunScan, policy: Policy, user: EffectiveUser) => Promise<GpuPlan | undefined>;
    now?: Date;
    dryRun?: boolean;
    /** The decider's caller (src/decider); else this process. */
    caller?: Pick<Caller, 'uid' | 'cwd' | 'readUserFile' | 'vet' | 'identity'>;
  } = {},
): Promise<Prepared> {
  const scan = scanRunCreate(args, cmd.kind, cmd.flagsFrom, globals);
  if (scan.error) return { kind: 'pass', why: `docker rejects this line itself (${scan.error})`, scan };
  if (scan.help) return { kind: 'pass', why: '--help creates nothing', scan };
  if (scan.image === undefined) return { kind: 'pass', why: 'no image: docker reports the error', scan };
  const caller = opts.caller ?? processCaller();
  caller.vet?.('create', scan);
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
  const who = caller.identity ? await caller.identity() : currentIdentity(env, caller.uid);
  // The user's container count is asked for by name now, while the groups (and so the quota) are read.
  const countLabel = `${labelKeys(policy.labelPrefix).user}=${who.user}`;
  const counting = target.socket && hasContainerQuota(policy) ? countContainersOnSocket(target.socket, countLabel) : undefined;
  const user = resolveUser(policy, who);
  const gpuPlan = opts.gpu ? opts.gpu(scan, policy, user) : gpuStart!.finish(user);
  gpuPlan.catch(() => {}); // awaited below; not an unhandled rejection meanwhile
  // Security (policies with a `security` key): bind sources resolved here; Docker asked only for named containers and volumes.
  const security = policy.security ? securityOf(scan, policy, user, { args, globals, target, env, real, cwd: caller.cwd() }) : undefined;
  security?.catch(() => {});

  const labelFiles: Record<string, string> = {};
  for (const path of values(scan, 'label-file')) {
    try {
      labelFiles[path] = caller.readUserFile(path);
    } catch {
      /* docker, as the same user, reports it */
    }
  }
  let containerCount: number | undefined;
  let countError: string | undefined;
  if (user.limits.containers !== undefined) {
    try {
      containerCount = (counting ? await counting : undefined) ?? (await countContainersWithLabel(real, args.slice(0, globals.commandIndex), countLabel, env));
    } catch (err) {
      countError = (err as Error).message;
    }
  }
  const gpu = await gpuPlan;
  const sec = await security;
  const rewrite = rewriteCreate(args, scan, policy, user, {
    ...(sec ? { security: sec } : {}),
    now: opts.now ?? new Date(),
    labelFiles,
    ...(containerCount !== undefined ? { containerCount } : {}),
    ...(countError !== undefined ? { countError } : {}),
    ...(gpu ? { gpu } : {}),
  });
  return { kind: 'rewrite', real, policy, user, scan, rewrite };
}

/** The security asks of the line and their facts, asking the daemon the command goes to (and only when a container or volume is named). */
async function securityOf(
  scan: RunScan,
  policy: Policy,
  user: EffectiveUser,
  at: { args: string[]; globals: GlobalScan; target: LocalTarget; env: NodeJS.ProcessEnv; real: string; cwd: string },
): Promise<{ request: SecurityRequest; facts: SecurityFacts }> {
  const { securityRequestOf } = await import('./security.ts');
  const request = securityRequestOf(scan, at.cwd);
  const { gatherSecurityFacts } = await import('../security/facts.ts');
  const facts = await gatherSecurityFacts(policy, user, request, { local: at.target.local, docker: () => dockerLookups(at) });
  return { request, facts };
}

/** The shim's way to the daemon for security facts: its socket when local, else the real CLI with the user's global options. */
export async function dockerLookups(at: { args: string[]; globals: GlobalScan; target: LocalTarget; env: NodeJS.ProcessEnv; real: string }): Promise<DockerLookups> {
  const g = at.globals;
  const opts: ReaderOptions = {
    env: at.env,
    globalArgs: at.args.slice(0, g.commandIndex),
    ...(at.target.socket !== undefined ? { socket: at.target.socket } : {}),
    endpoint: { hosts: g.hosts, ...(g.context !== undefined ? { context: g.context } : {}), ...(g.config !== undefined ? { config: g.config } : {}) },
    realDocker: () => at.real,
  };
  // The gateway (zod) only when a container or volume is named: every create passes here.
  const { dockerReader, inspectVolumes } = await import('../docker/gateway.ts');
  return { reader: await dockerReader(opts), inspectVolumes: (names) => inspectVolumes(opts, names) };
}

export async function runCreate(
  args: string[],
  globals: GlobalScan,
  cmd: { kind: CreateKind; flagsFrom: number },
  target: LocalTarget,
  caller: Caller,
): Promise<number> {
  const p = await prepareCreate(args, globals, cmd, target, caller.env, { caller });
  if (p.kind === 'pass') return passThrough(args, caller);
  const { policy, user, rewrite, real } = p as Required<Prepared>;
  appendEvent(policy.events.log, {
    face: 'docker',
    decision: rewrite.decision,
    user: user.user,
    uid: user.uid,
    argv: ['docker', ...args].slice(0, 64),
    reasons: rewrite.decisions.map((d) => `${d.verdict} ${d.rule}: ${d.reason}`),
    ...(policy.mode === 'audit' ? { mode: 'audit' } : {}),
    pid: caller.pid,
  });
  if (rewrite.refusal) throw new PolicyDenied(rewrite.refusal.reason, rewrite.refusal.rule);
  for (const d of rewrite.decisions) if (d.verdict === 'warn') caller.warn(`gpuguard: warning: ${d.reason}\n`);
  return caller.handover(real, rewrite.argv);
}
