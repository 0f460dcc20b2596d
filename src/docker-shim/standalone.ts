/**
 * Security decisions on docker commands that create no container but can
 * still be a way out: `docker volume create` (a local volume with `-o
 * type=none -o o=bind -o device=PATH`, or a block device, mounts a host path
 * into every container that uses it: judged like a bind of that path) and
 * `docker exec --privileged` (every capability for a process in the
 * container: judged like --privileged). A command that asks for neither is
 * handed over reading nothing.
 */
import { PolicyDenied } from '../errors.ts';
import type { Decision } from '../policy/decide.ts';
import type { EffectiveUser } from '../policy/effective.ts';
import type { Policy } from '../policy/schema.ts';
import type { SecurityRequest } from '../policy/security.ts';
import type { GlobalScan, LocalTarget } from './globals.ts';
import { volumeCreateRequestOf } from './security.ts';

export interface Judged {
  kind: 'pass' | 'decide';
  why?: string;
  policy?: Policy;
  user?: EffectiveUser;
  decisions?: Decision[];
  refusal?: Decision;
}

/** Decide a request that stands alone (no create to rewrite): the same decideSecurity, facts gathered the same way. */
export async function judge(request: SecurityRequest, target: LocalTarget, env: NodeJS.ProcessEnv): Promise<Judged> {
  const [{ loadPolicyCached }, { currentIdentity }, { resolveUser }, { applyMode, firstRefusal }, { decideSecurity }, { gatherSecurityFacts }] = await Promise.all([
    import('../policy/cache.ts'),
    import('../policy/identity.ts'),
    import('../policy/effective.ts'),
    import('../policy/decide.ts'),
    import('../policy/security.ts'),
    import('../security/facts.ts'),
  ]);
  const { policy } = await loadPolicyCached(env);
  if (!target.local && policy.docker.remote !== 'enforce') return { kind: 'pass', why: `another daemon (${target.why}); docker.remote is passthrough` };
  if (!policy.security) return { kind: 'pass', why: 'the policy has no security key', policy };
  const user = resolveUser(policy, currentIdentity(env));
  const facts = await gatherSecurityFacts(policy, user, request, { local: target.local });
  const decisions = applyMode(decideSecurity(policy, user, request, facts), policy.mode);
  const refusal = firstRefusal(decisions);
  return { kind: 'decide', policy, user, decisions, ...(refusal ? { refusal } : {}) };
}

export async function prepareVolumeCreate(args: string[], globals: GlobalScan, flagsFrom: number, target: LocalTarget, env: NodeJS.ProcessEnv): Promise<Judged> {
  const { request, help } = volumeCreateRequestOf(args, flagsFrom);
  if (help) return { kind: 'pass', why: '--help creates nothing' };
  if (!request.binds.length) return { kind: 'pass', why: 'the volume mounts no host path' };
  return judge(request, target, env);
}

/** Log the decision; refuse (exit 125) or warn (audit). Returns when the command may go ahead. */
export async function enforce(j: Judged, args: string[]): Promise<void> {
  if (j.kind === 'pass') return;
  const { policy, user, decisions } = j as Required<Judged>;
  const { appendEvent } = await import('../events/log.ts');
  const { overallDecision } = await import('../policy/decide.ts');
  appendEvent(policy.events.log, {
    face: 'docker',
    decision: overallDecision(decisions),
    user: user.user,
    uid: user.uid,
    argv: ['docker', ...args].slice(0, 64),
    reasons: decisions.map((d) => `${d.verdict} ${d.rule}: ${d.reason}`),
    ...(policy.mode === 'audit' ? { mode: 'audit' } : {}),
  });
  if (j.refusal) throw new PolicyDenied(j.refusal.reason, j.refusal.rule);
  for (const d of decisions) if (d.verdict === 'warn') process.stderr.write(`gpuguard: warning: ${d.reason}\n`);
}

export async function runVolumeCreate(args: string[], globals: GlobalScan, flagsFrom: number, target: LocalTarget, env: NodeJS.ProcessEnv): Promise<number> {
  await enforce(await prepareVolumeCreate(args, globals, flagsFrom, target, env), args);
  const [{ passThrough }, { processCaller }] = await Promise.all([import('./index.ts'), import('./caller.ts')]);
  return passThrough(args, { ...processCaller(), env });
}
