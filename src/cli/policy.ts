/** `gpuguard policy check|schema|show`. */
import parse from 'yargs-parser';
import { readFileSync } from 'node:fs';
import { UsageError, PolicyError } from '../errors.ts';
import { loadPolicy, parsePolicy, policyPath } from '../policy/load.ts';
import { policyJsonSchema } from '../policy/schema.ts';
import { lookupUser } from '../policy/identity.ts';
import { resolveUser } from '../policy/effective.ts';
import { ownerLabels } from '../policy/labels.ts';
import { formatSize, parseSize } from '../policy/units.ts';
import { bindRoots } from '../policy/security.ts';
import type { EffectiveUser } from '../policy/effective.ts';
import type { Policy } from '../policy/schema.ts';

/** What this user's containers may ask for: the policy's security block, the bind roots filled in for them. */
function securityView(policy: Policy, who: EffectiveUser): Record<string, unknown> | null {
  const sec = policy.security;
  if (!sec) return null;
  const roots = bindRoots(sec, who).map((r) => (r.note ? `${r.written} (unusable: ${r.note})` : `${r.rendered === '/' && r.children ? '' : r.rendered}${r.children ? '/*' : ''}`));
  return { ...sec, binds: roots, neverRefused: who.isAdmin || who.uid === 0 };
}

function securityLine(v: Record<string, unknown> | null): string {
  if (!v) return 'no security key: nothing refused on these grounds';
  if (v.neverRefused) return 'admin: never refused (logged as override)';
  const no = (k: string, what: string) => (v[k] ? `${what} allowed` : `no ${what}`);
  const caps = v.capAdd as string[];
  return [
    `binds under ${(v.binds as string[]).join(', ') || 'nothing'}`,
    `cap-add ${caps.length ? caps.join(', ') : 'none'}`,
    no('privileged', 'privileged'),
    no('devices', 'devices'),
    no('hostNamespaces', 'host namespaces'),
    no('otherUsersContainers', "other users' containers"),
    no('unconfined', 'unconfined'),
  ].join('; ');
}

export async function run(args: string[]): Promise<number> {
  const [sub, ...rest] = args;
  switch (sub) {
    case 'check':
      return check(rest);
    case 'schema':
      console.log(JSON.stringify(policyJsonSchema(), null, 2));
      return 0;
    case 'show':
      return show(rest);
    default:
      throw new UsageError('usage: gpuguard policy check [FILE] | policy schema | policy show --user NAME [--json]');
  }
}

function check(args: string[]): number {
  const opts = parse(args, { configuration: { 'unknown-options-as-args': true } });
  const file = opts._[0] !== undefined ? String(opts._[0]) : policyPath();
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new PolicyError(`${file}: cannot read (${(err as NodeJS.ErrnoException).code}); give the path of a policy file`);
  }
  parsePolicy(text, file);
  console.log(`${file}: valid`);
  return 0;
}

function show(args: string[]): number {
  const opts = parse(args, { string: ['user'], boolean: ['json'] });
  if (!opts.user) throw new UsageError('usage: gpuguard policy show --user NAME [--json]');
  const { policy, path } = loadPolicy();
  const who = resolveUser(policy, lookupUser(opts.user));
  const labels = Object.fromEntries(ownerLabels(policy.labelPrefix, who, 'docker', new Date()));
  const finite = (n: number) => (Number.isFinite(n) ? n : null);
  const view = {
    policy: path ?? '(built-in defaults)',
    mode: policy.mode,
    user: who.user,
    uid: who.uid,
    group: who.group,
    groupFrom: who.groupFrom,
    admin: who.isAdmin,
    serviceUser: who.isServiceUser,
    limits: who.limits,
    aggregate: who.aggregate,
    gpus: { ...who.gpus, max: finite(who.gpus.max), maxEquivalents: finite(who.gpus.maxEquivalents), perContainer: finite(who.gpus.perContainer) },
    cgroupParent: who.cgroupParent ?? null,
    labels,
    security: securityView(policy, who),
  };
  if (opts.json) {
    console.log(JSON.stringify(view, null, 2));
    return 0;
  }
  const size = (v: string | number | undefined) => (v === undefined ? 'unlimited' : formatSize(parseSize(v) ?? 0));
  const num = (v: number | undefined | null) => (v === undefined || v === null ? 'unlimited' : String(v));
  const lines = [
    `policy:        ${view.policy} (mode ${policy.mode})`,
    `user:          ${who.user} (uid ${who.uid})${who.isAdmin ? ', admin' : ''}${who.isServiceUser ? ', service user' : ''}`,
    `group:         ${who.group} (from ${who.groupFrom})`,
    `per container: cpus ${num(who.limits.cpus)}, memory ${size(who.limits.memory)}, pids ${num(who.limits.pids)}, shm ${size(who.limits.shmSize)}`,
    `containers:    ${num(who.limits.containers)} at once`,
    `aggregate:     cpus ${num(who.aggregate.cpus)}, memory ${size(who.aggregate.memory)}, memory.high ${size(who.aggregate.memoryHigh)}, pids ${num(who.aggregate.pids)}`,
    `gpus:          max ${num(view.gpus.max)}, equivalents ${num(view.gpus.maxEquivalents)}, per container ${num(view.gpus.perContainer)}, full GPUs ${who.gpus.fullGpu ? 'allowed' : 'not allowed'}, priority ${who.gpus.priority}`,
    `cgroup parent: ${who.cgroupParent ?? '(docker default)'}`,
    `labels:        ${Object.entries(labels).map(([k, v]) => `${k}=${v}`).join(' ')}`,
    `security:      ${securityLine(view.security)}`,
  ];
  console.log(lines.join('\n'));
  return 0;
}
