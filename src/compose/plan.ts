/**
 * Planning a compose command that creates containers: the user's files as
 * compose selects them, the merged configuration from the real compose
 * (`config`), one policy question per service (the same decideCreate as
 * `docker run`), and the override document that applies the answers.
 */
import { readFileSync } from 'node:fs';
import { parse as parseYaml, stringify as stringifyYaml } from 'yaml';
import { GpuguardError } from '../errors.ts';
import { dockerCLI, findRealDocker } from '../docker/gateway.ts';
import { applyMode, decideCreate, overallDecision, type CreateRequest, type Decision } from '../policy/decide.ts';
import type { EffectiveUser } from '../policy/effective.ts';
import { labelKeys, type Interface } from '../policy/labels.ts';
import type { Policy } from '../policy/schema.ts';
import type { ComposeArgv } from './argv.ts';
import { projectNameOf, selectComposeFiles } from './files.ts';
import { fileSetting, overrideDocument, servicesOf, type ServiceAnswer, type ServiceAsk } from './service.ts';

export interface ComposePlan {
  project: string;
  files: string[];
  overrideText: string;
  decision: 'allow' | 'rewrite' | 'deny' | 'warn';
  /** One line per decision: `<service>: <verdict> <rule>: <reason>`. */
  reasons: string[];
  warnings: string[];
  refusal?: { message: string; rule: string };
  eventLog: string;
  user: string;
  uid: number;
}

export class ComposeConfigError extends GpuguardError {
  override name = 'ComposeConfigError';
}

/** Compose's words for the docker flags decideCreate speaks of. */
const COMPOSE_WORDS: [RegExp, string][] = [
  [/--memory\b/g, 'mem_limit'],
  [/--cpus\b/g, 'cpus'],
  [/--pids-limit\b/g, 'pids_limit'],
  [/--shm-size\b/g, 'shm_size'],
  [/--cgroup-parent\b/g, 'cgroup_parent'],
  [/remove it from the command/g, 'remove it from the compose file'],
  [/drop cgroup_parent \(gpuguard sets it\)/g, 'remove cgroup_parent from the compose file (gpuguard sets it)'],
];
const composeWords = (s: string) => COMPOSE_WORDS.reduce((acc, [re, w]) => acc.replace(re, w), s);

export async function planCompose(scan: ComposeArgv, exec: { real: string; prefix: string[] }, policy: Policy, user: EffectiveUser, env: NodeJS.ProcessEnv, now = new Date()): Promise<ComposePlan> {
  const sel = selectComposeFiles({ dialect: scan.dialect, cwd: process.cwd(), files: scan.files, projectDirectory: scan.projectDirectory, envFile: scan.envFile, env });
  const project = projectNameOf(sel, scan.projectName, env);
  const fileFlags = sel.files.flatMap((f) => ['-f', f]);
  const config = await dockerCLI(exec.real, [...exec.prefix, ...fileFlags, ...scan.globals, 'config'], env);
  if (config.code !== 0) {
    throw new ComposeConfigError(`compose could not read the project (${sel.files.join(', ')}): ${config.stderr.trim().split('\n').at(-1) ?? `exit ${config.code}`}`, config.code || 1);
  }
  const merged = parseYaml(config.stdout) as unknown;
  // The user's files are read only to name the file in a refusal. Compose's
  // YAML reader (PyYAML) accepts files a strict YAML 1.2 parser rejects (the
  // Dev Containers CLI writes such multi-line flow scalars): those count as
  // silent on every key, the merged configuration above is what decides.
  const userDocs = sel.files.map((path) => ({ path, doc: parseLenient(path) }));
  const mainVersion = (userDocs[0]?.doc as { version?: unknown } | null)?.version;

  const services = servicesOf(merged);
  const runLabels = scan.command === 'run' ? runLabelFlags(scan.rest) : [];
  let count: number | undefined;
  let countError: string | undefined;
  if (user.limits.containers !== undefined) {
    try {
      count = await containersOutsideProject(policy, user, project, env);
    } catch (err) {
      countError = (err as Error).message;
    }
  }

  const answers: ServiceAnswer[] = [];
  const reasons: string[] = [];
  const warnings: string[] = [];
  let refusal: ComposePlan['refusal'];
  const all: Decision[] = [];
  services.forEach((ask, i) => {
    const where = (key: string) => fileSetting(userDocs, ask.service, key) ?? sel.files[0]!;
    const req = createRequestOf(ask, where, runLabels);
    const iface: Interface = 'devcontainer.local_folder' in ask.labels || 'devcontainer.config_file' in ask.labels ? 'devcontainer' : 'compose';
    const decisions = applyMode(
      decideCreate(policy, user, req, { now, iface, ...(count !== undefined ? { containerCount: count + i } : {}), ...(countError ? { countError } : {}) }),
      policy.mode,
    );
    all.push(...decisions);
    for (const d of decisions) {
      reasons.push(`${ask.service}: ${d.verdict} ${d.rule}: ${composeWords(d.reason)}`);
      if (d.verdict === 'warn') warnings.push(`service ${ask.service}: ${composeWords(d.reason)}`);
      if (d.verdict === 'deny' && !refusal) {
        const file = d.rule === 'labels.reserved' ? where('labels') : d.rule === 'cgroup.parent' ? where('cgroup_parent') : where(ruleKey(d.rule));
        refusal = { message: `${file}: service ${ask.service}: ${composeWords(d.reason)}`, rule: d.rule };
      }
    }
    answers.push(answerOf(ask.service, decisions));
  });
  const doc = overrideDocument(answers, typeof mainVersion === 'string' || typeof mainVersion === 'number' ? String(mainVersion) : undefined);
  const overrideText = `# Written by gpuguard for compose project ${project} (${user.user}); rewritten on every up/run/create.\n${stringifyYaml(doc, { defaultStringType: 'QUOTE_DOUBLE', defaultKeyType: 'PLAIN' })}`;
  return {
    project,
    files: sel.files,
    overrideText,
    decision: overallDecision(all),
    reasons,
    warnings,
    ...(refusal ? { refusal } : {}),
    eventLog: policy.events.log,
    user: user.user,
    uid: user.uid,
  };
}

function parseLenient(path: string): unknown {
  try {
    return parseYaml(readFileSync(path, 'utf8')) as unknown;
  } catch {
    return undefined;
  }
}

function ruleKey(rule: string): string {
  return ({ 'limits.memory': 'mem_limit', 'limits.cpus': 'cpus', 'limits.pids': 'pids_limit', 'limits.shmSize': 'shm_size' } as Record<string, string>)[rule] ?? 'image';
}

/** `docker-compose run -l KEY=VAL` labels (v1 and v2 both have -l/--label on run). */
function runLabelFlags(rest: string[]): { key: string; value: string }[] {
  const out: { key: string; value: string }[] = [];
  for (let i = 0; i < rest.length; i++) {
    const a = rest[i]!;
    if (!a.startsWith('-')) break; // the service name: what follows is the command
    let v: string | undefined;
    if (a === '-l' || a === '--label') v = rest[++i];
    else if (a.startsWith('--label=')) v = a.slice(8);
    else if (a.startsWith('-l') && a.length > 2) v = a.slice(2);
    else if (['-e', '--name', '--entrypoint', '-u', '--user', '-p', '--publish', '-v', '--volume', '-w', '--workdir'].includes(a)) i++;
    if (v !== undefined) {
      const eq = v.indexOf('=');
      out.push({ key: eq < 0 ? v : v.slice(0, eq), value: eq < 0 ? '' : v.slice(eq + 1) });
    }
  }
  return out;
}

function createRequestOf(ask: ServiceAsk, where: (key: string) => string, runLabels: { key: string; value: string }[]): CreateRequest {
  const req: CreateRequest = {
    labels: [
      ...Object.entries(ask.labels).map(([key, value]) => ({ key, value, from: `${where('labels')}, service ${ask.service}` })),
      ...runLabels.map((l) => ({ ...l, from: 'run -l' })),
    ],
  };
  const set = <K extends keyof CreateRequest>(k: K, v: CreateRequest[K] | undefined) => {
    if (v !== undefined) req[k] = v;
  };
  set('cgroupParent', ask.cgroupParent);
  set('cpus', ask.limits.cpus);
  set('memory', ask.limits.memory);
  set('pidsLimit', ask.limits.pids);
  set('shmSize', ask.limits.shmSize);
  return req;
}

function answerOf(service: string, decisions: Decision[]): ServiceAnswer {
  const a: ServiceAnswer = { service, labels: [], inject: {} };
  for (const s of decisions.flatMap((d) => d.add ?? [])) {
    switch (s.kind) {
      case 'label':
        a.labels.push([s.key, s.value]);
        break;
      case 'cgroupParent':
        a.cgroupParent = s.value;
        break;
      case 'cpus':
        a.inject.cpus = Number(s.value);
        break;
      case 'memory':
        a.inject.memory = s.value;
        break;
      case 'pidsLimit':
        a.inject.pids = Number(s.value);
        break;
      case 'shmSize':
        a.inject.shmSize = s.value;
        break;
      case 'cpuQuota':
        break; // only with --cpu-period, which compose files do not pass through decideCreate
    }
  }
  return a;
}

/** The user's containers that this project will not reuse (compose recreates its own). */
async function containersOutsideProject(policy: Policy, user: EffectiveUser, project: string, env: NodeJS.ProcessEnv): Promise<number> {
  const real = findRealDocker(env, policy.docker.realPath);
  const r = await dockerCLI(real, ['ps', '-a', '--filter', `label=${labelKeys(policy.labelPrefix).user}=${user.user}`, '--format', '{{.Label "com.docker.compose.project"}}'], env);
  if (r.code !== 0) throw new GpuguardError(`docker ps failed: ${r.stderr.trim()}`);
  // One line per container: its compose project, empty for a container compose did not make.
  const lines = r.stdout === '' ? [] : r.stdout.replace(/\n$/, '').split('\n');
  return lines.filter((p) => p !== project).length;
}
