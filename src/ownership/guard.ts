/**
 * Isolation in the docker shim: a user acts only on their own containers.
 * The shim asks `needsGuard` (pure, no imports) for every command; only the
 * commands that name containers, and `docker ps`, pay for a Docker query.
 * The decision itself is the policy's (`mayActOn`); this file gathers the
 * facts, asks, and either refuses (exit 1, before anything happens) or
 * returns the argv to hand over (rewritten only for `docker ps`).
 */
import { GpuguardError } from '../errors.ts';
import type { Endpoint } from '../docker/api.ts';
import { classify, psIdFilters, rewritePs, targetsOf } from './commands.ts';

/** A refusal: another user's container (docker's own exit code for a failed command: 1). */
export class OwnershipDenied extends GpuguardError {
  override name = 'OwnershipDenied';
  constructor(message: string) {
    super(message, 1);
  }
}

/** Cheap and pure: does this command need an ownership check at all? */
export function needsGuard(command: readonly string[]): boolean {
  return classify(command).kind !== 'other';
}

export interface GuardRequest {
  /** Subcommand words: ["stop"], ["container", "rm"], ["ps"]. */
  command: readonly string[];
  /** The words after the subcommand. */
  args: readonly string[];
  /** Global options as typed (before the subcommand), replayed when the CLI has to be asked. */
  globalArgs?: readonly string[];
  endpoint?: Endpoint;
  env?: NodeJS.ProcessEnv;
  /** Already loaded by the caller, if it has them. */
  policy?: import('../policy/schema.ts').Policy;
  actor?: import('../policy/effective.ts').EffectiveUser;
  /** The real CLI, for daemons not reachable on a local socket. */
  realDocker?: () => string;
}

export interface GuardResult {
  /** The words after the subcommand to hand over (unchanged except for `docker ps`). */
  args: string[];
  /** What was decided, for the event log. */
  decision: 'allow' | 'rewrite' | 'deny' | 'warn';
  reasons: string[];
}

export async function guard(req: GuardRequest): Promise<GuardResult> {
  const env = req.env ?? process.env;
  const what = classify(req.command);
  const pass: GuardResult = { args: [...req.args], decision: 'allow', reasons: [] };
  if (what.kind === 'other') return pass;
  const targets = what.kind === 'containers' ? targetsOf(what.spec, req.args) : [];
  if (what.kind === 'containers' && targets.length === 0) return pass;

  const { loadPolicy, currentIdentity, resolveUser, mayActOn, listsOnlyOwn } = await import('../policy/index.ts');
  const policy = req.policy ?? loadPolicy(env).policy;
  const actor = req.actor ?? resolveUser(policy, currentIdentity(env));
  if (what.kind === 'ps' && !listsOnlyOwn(actor, policy.docker.psFilter)) return pass;
  if (what.kind === 'containers' && (actor.isAdmin || actor.isServiceUser)) return pass;

  const { dockerReader } = await import('../docker/gateway.ts');
  const { ownersOf } = await import('./facts.ts');
  const reader = await dockerReader({ env, globalArgs: [...(req.globalArgs ?? [])], endpoint: req.endpoint, realDocker: req.realDocker });
  const prefix = policy.labelPrefix;

  if (what.kind === 'ps') {
    // Ids the user's own id filters select (the daemon decides how they match), else all.
    const wanted = psIdFilters(req.args);
    const ids = wanted.length ? await reader.listContainerIds({ id: wanted }) : await reader.listContainerIds();
    const { found } = await reader.inspectContainers(ids);
    const containers = [...found.values()];
    const { owners } = await ownersOf(reader, containers, prefix);
    const own = containers.filter((_, i) => mayActOn(actor, owners[i]!).allow).map((c) => c.Id);
    return { args: rewritePs(req.args, own), decision: 'rewrite', reasons: [`docker ps lists the ${own.length} container(s) of ${actor.user}`] };
  }

  const { found } = await reader.inspectContainers(targets);
  const refs = [...found.keys()];
  const containers = [...found.values()];
  const { owners } = await ownersOf(reader, containers, prefix);
  const refused: string[] = [];
  containers.forEach((c, i) => {
    const owner = owners[i]!;
    const d = mayActOn(actor, owner);
    if (d.allow) return;
    const name = refs[i]!;
    const shown = c.Name.replace(/^\//, '') === name ? `"${name}"` : `"${name}" (${c.Name.replace(/^\//, '')})`;
    refused.push(
      owner.user === undefined
        ? `container ${shown} has no known owner (method: none); only an admin may ${what.name} it`
        : `container ${shown} belongs to ${owner.user} (method: ${owner.method}, ${owner.evidence}); only ${owner.user} or an admin may ${what.name} it`,
    );
  });
  if (!refused.length) return { ...pass, reasons: [`${actor.user} owns ${refs.join(', ')}`] };
  if (policy.mode === 'audit') return { ...pass, decision: 'warn', reasons: refused };
  throw new OwnershipDenied(refused.join('; '));
}
