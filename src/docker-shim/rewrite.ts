/**
 * The rewrite of `docker run`/`docker create`, a pure translator:
 * argv + policy + facts → argv + decisions. No I/O: the runner (index.ts)
 * reads the label files, counts containers and execs; explain.ts prints.
 * Additions go before the image (before a `--` that precedes it); nothing
 * the user wrote is reordered or re-quoted.
 */
import type { EffectiveUser } from '../policy/effective.ts';
import { interfaceOfLabels, type Interface } from '../policy/labels.ts';
import type { Policy } from '../policy/schema.ts';
import { applyMode, decideCreate, firstRefusal, overallDecision, type CreateRequest, type Decision, type Setting } from '../policy/decide.ts';
import { decideSecurity, type SecurityFacts, type SecurityRequest } from '../policy/security.ts';
import { lastValue, type RunScan } from './argv.ts';

/**
 * The GPU allocator's answer (src/gpu plugs in here): words of the user's
 * argv to drop (their `--gpus …`, by the scanner's positions), words to
 * insert before the image (explicit device requests), labels, and its
 * decisions. A `deny` among its decisions refuses like any other.
 */
export interface GpuPlan {
  drop?: { start: number; end: number }[];
  insert?: string[];
  labels?: [string, string][];
  decisions?: Decision[];
}

export interface RewriteFacts {
  now: Date;
  /** Contents of each --label-file, by the path as written (unreadable ones absent: docker reports them). */
  labelFiles: Record<string, string>;
  containerCount?: number;
  countError?: string;
  /** The face: docker, or compose for the compose face; devcontainer is detected from the labels. */
  iface?: Interface;
  gpu?: GpuPlan;
  /** The security asks of this line and their facts (policies with a `security` key). */
  security?: { request: SecurityRequest; facts: SecurityFacts };
}

export interface Rewrite {
  argv: string[];
  decisions: Decision[];
  /** The refusal when there is one (enforce mode): exit 125, nothing created. */
  refusal?: Decision;
  decision: 'allow' | 'rewrite' | 'deny' | 'warn';
}

/** Label keys of a label file, docker's rules (opts/file.go): trim left, skip blank and #, `key[=value]`. */
export function parseLabelFile(text: string): { key: string; value: string }[] {
  return text
    .replace(/^\uFEFF/, '')
    .split('\n')
    .map((l) => l.replace(/\r$/, '').trimStart())
    .filter((l) => l && !l.startsWith('#'))
    .map((l) => {
      const eq = l.indexOf('=');
      return eq < 0 ? { key: l, value: '' } : { key: l.slice(0, eq), value: l.slice(eq + 1) };
    });
}

/** What the user asked for, read from the scan: label files first, then -l/--label, as docker applies them. */
export function createRequest(scan: RunScan, labelFiles: Record<string, string>): CreateRequest {
  const labels: CreateRequest['labels'] = [];
  for (const f of scan.flags) {
    if (f.name === 'label-file' && f.value !== undefined && labelFiles[f.value] !== undefined) {
      for (const l of parseLabelFile(labelFiles[f.value]!)) labels.push({ ...l, from: `--label-file ${f.value}` });
    }
  }
  for (const f of scan.flags) {
    if (f.name === 'label' && f.value !== undefined) {
      const eq = f.value.indexOf('=');
      labels.push({ key: eq < 0 ? f.value : f.value.slice(0, eq), value: eq < 0 ? '' : f.value.slice(eq + 1), from: f.spelled });
    }
  }
  const opt = (name: string) => lastValue(scan, name);
  return {
    labels,
    ...defined({
      cgroupParent: opt('cgroup-parent'),
      cpus: opt('cpus'),
      cpuQuota: opt('cpu-quota'),
      cpuPeriod: opt('cpu-period'),
      memory: opt('memory'),
      pidsLimit: opt('pids-limit'),
      shmSize: opt('shm-size'),
      runtime: opt('runtime'),
    }),
  };
}

export function interfaceOf(req: CreateRequest, face: Interface = 'docker'): Interface {
  return interfaceOfLabels(req.labels.map((l) => l.key), face);
}

const FLAG_OF: Record<Exclude<Setting['kind'], 'label'>, string> = {
  cgroupParent: '--cgroup-parent',
  cpus: '--cpus',
  cpuQuota: '--cpu-quota',
  memory: '--memory',
  pidsLimit: '--pids-limit',
  shmSize: '--shm-size',
};

export function settingArgs(s: Setting): string[] {
  return s.kind === 'label' ? ['--label', `${s.key}=${s.value}`] : [FLAG_OF[s.kind], s.value];
}

/** argv (without argv0) + scan + policy + user + facts → the argv to exec and the decisions. */
export function rewriteCreate(argv: readonly string[], scan: RunScan, policy: Policy, user: EffectiveUser, facts: RewriteFacts): Rewrite {
  const req = createRequest(scan, facts.labelFiles);
  const iface = interfaceOf(req, facts.iface);
  const decisions = applyMode(
    [
      ...decideCreate(policy, user, req, { now: facts.now, iface, ...defined({ containerCount: facts.containerCount, countError: facts.countError }) }),
      ...(facts.security ? decideSecurity(policy, user, facts.security.request, facts.security.facts) : []),
      ...(facts.gpu?.decisions ?? []),
    ],
    policy.mode,
  );
  const refusal = firstRefusal(decisions);
  const insert = [
    ...decisions.flatMap((d) => (d.verdict === 'deny' ? [] : (d.add ?? []).flatMap(settingArgs))),
    ...(facts.gpu?.labels ?? []).flatMap(([k, v]) => ['--label', `${k}=${v}`]),
    ...(facts.gpu?.insert ?? []),
  ];
  const drop = new Set<number>();
  for (const span of facts.gpu?.drop ?? []) for (let i = span.start; i < span.end; i++) drop.add(i);
  const keep = (from: number, to: number) => argv.slice(from, to).filter((_, j) => !drop.has(from + j));
  const out = [...keep(0, scan.insertAt), ...insert, ...keep(scan.insertAt, argv.length)];
  return { argv: out, decisions, ...(refusal ? { refusal } : {}), decision: overallDecision(decisions) };
}

function defined<T extends Record<string, unknown>>(o: T): { [K in keyof T]?: Exclude<T[K], undefined> } {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as { [K in keyof T]?: Exclude<T[K], undefined> };
}
