/**
 * `gpuguard ps` and `gpuguard who`: every container with its owner and the
 * evidence, including containers gpuguard did not create.
 */
import { UsageError, GpuguardError } from '../errors.ts';
import type { ContainerDetails } from '../docker/gateway.ts';
import { gpusOf, interfaceOf, type Owner, type OwnerFacts } from './detect.ts';

export interface PsRow {
  id: string;
  name: string;
  /** The owner, or "unknown". */
  owner: string;
  uid: number | null;
  method: Owner['method'];
  evidence: string;
  rejected: string[];
  interface: string;
  gpus: string[];
  state: string;
  created: string;
  ageSeconds: number;
}

function parseArgs(args: string[], allowed: { user?: boolean; positional?: boolean }): { json: boolean; user?: string; positional: string[] } {
  const out: { json: boolean; user?: string; positional: string[] } = { json: false, positional: [] };
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a === '--json') out.json = true;
    else if (allowed.user && (a === '--user' || a === '-u')) {
      out.user = args[++i];
      if (!out.user) throw new UsageError(`${a} needs a user name`);
    } else if (allowed.user && a.startsWith('--user=')) out.user = a.slice('--user='.length);
    else if (allowed.positional && !a.startsWith('-')) out.positional.push(a);
    else throw new UsageError(`unknown option "${a}"; usage: ${allowed.user ? 'gpuguard ps [--json] [--user NAME]' : 'gpuguard who [--json] CONTAINER'}`);
  }
  return out;
}

async function context() {
  const { loadPolicyCached } = await import('../policy/cache.ts');
  const gw = await import('../docker/gateway.ts');
  const { policy } = await loadPolicyCached(process.env);
  // The real CLI is looked up only when the daemon is not on a local socket.
  const reader = await gw.dockerReader({ env: process.env, realDocker: () => gw.findRealDocker(process.env, policy.docker.realPath) });
  return { policy, reader };
}

function row(c: ContainerDetails, o: Owner, facts: OwnerFacts, prefix: string, now: number): PsRow {
  const created = Date.parse(c.Created);
  return {
    id: c.Id,
    name: c.Name.replace(/^\//, ''),
    owner: o.user ?? 'unknown',
    uid: o.uid ?? null,
    method: o.method,
    evidence: o.evidence,
    rejected: o.rejected,
    interface: interfaceOf(c, prefix, facts),
    gpus: gpusOf(c),
    state: c.State.Status,
    created: c.Created,
    ageSeconds: Number.isFinite(created) ? Math.max(0, Math.round((now - created) / 1000)) : 0,
  };
}

export async function rows(): Promise<PsRow[]> {
  const { policy, reader } = await context();
  const { ownersOf } = await import('./facts.ts');
  const ids = await reader.listContainerIds();
  const { found } = await reader.inspectContainers(ids);
  const containers = [...found.values()];
  const { owners, facts } = await ownersOf(reader, containers, policy.labelPrefix);
  const now = Date.now();
  return containers.map((c, i) => row(c, owners[i]!, facts, policy.labelPrefix, now)).sort((a, b) => a.created.localeCompare(b.created));
}

export function age(seconds: number): string {
  if (seconds < 60) return `${seconds}s`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)}m`;
  if (seconds < 86400) return `${Math.floor(seconds / 3600)}h`;
  return `${Math.floor(seconds / 86400)}d`;
}

export function table(list: PsRow[]): string {
  const head = ['CONTAINER', 'ID', 'OWNER', 'METHOD', 'INTERFACE', 'GPUS', 'STATE', 'AGE'];
  const body = list.map((r) => [r.name, r.id.slice(0, 12), r.owner, r.method, r.interface, r.gpus.join(',') || '-', r.state, age(r.ageSeconds)]);
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i]!.length)));
  return [head, ...body].map((cols) => cols.map((c, i) => (i === cols.length - 1 ? c : c.padEnd(widths[i]!))).join('  ')).join('\n');
}

export async function runPs(args: string[]): Promise<number> {
  const opts = parseArgs(args, { user: true });
  let list = await rows();
  if (opts.user !== undefined) list = list.filter((r) => r.owner === opts.user);
  if (opts.json) console.log(JSON.stringify(list, null, 2));
  else console.log(table(list));
  return 0;
}

export async function runWho(args: string[]): Promise<number> {
  const opts = parseArgs(args, { positional: true });
  if (opts.positional.length !== 1) throw new UsageError('usage: gpuguard who [--json] CONTAINER');
  const ref = opts.positional[0]!;
  const { policy, reader } = await context();
  const { ownersOf } = await import('./facts.ts');
  const { found } = await reader.inspectContainers([ref]);
  const c = found.get(ref);
  if (!c) throw new GpuguardError(`no such container: ${ref}`, 1);
  const { owners, facts } = await ownersOf(reader, [c], policy.labelPrefix);
  const r = row(c, owners[0]!, facts, policy.labelPrefix, Date.now());
  if (opts.json) {
    console.log(JSON.stringify(r, null, 2));
    return 0;
  }
  const lines = [
    `container: ${r.name} (${r.id.slice(0, 12)})`,
    `owner:     ${r.owner}${r.uid !== null ? ` (uid ${r.uid})` : ''}`,
    `method:    ${r.method}`,
    `evidence:  ${r.evidence}`,
    ...r.rejected.map((x) => `rejected:  ${x}`),
    `interface: ${r.interface}`,
    `gpus:      ${r.gpus.join(',') || '-'}`,
    `state:     ${r.state}, created ${r.created}`,
  ];
  console.log(lines.join('\n'));
  return 0;
}
