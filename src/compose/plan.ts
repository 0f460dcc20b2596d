/**
 * Planning a compose command that creates containers: the user's files as
 * compose selects them, the merged configuration from the real compose
 * (`config`), one policy question per service (the same decideCreate as
 * `docker run`), and the override document that applies the answers.
 */
import { readFileSync } from 'node:fs';
import { posix } from 'node:path';
import { parse as parseYaml, stringify as stringifyYaml } from 'yaml';
import { GpuguardError, PolicyDenied } from '../errors.ts';
import { dockerCLI, findRealDocker } from '../docker/gateway.ts';
import { applyMode, decideCreate, overallDecision, type CreateRequest, type Decision } from '../policy/decide.ts';
import type { EffectiveUser } from '../policy/effective.ts';
import { interfaceOfLabels, labelKeys } from '../policy/labels.ts';
import type { Policy } from '../policy/schema.ts';
import type { ComposeArgv } from './argv.ts';
import { projectNameOf, selectComposeFiles } from './files.ts';
import { applyAnswers, asksForGpu, fileSetting, gpuRequestOf, overrideDocument, servicesOf, type ServiceAnswer, type ServiceAsk } from './service.ts';
import { describeRequest, type GpuRequest } from '../gpu/request.ts';

export interface ComposePlan {
  project: string;
  projectDir: string;
  /** The document is the whole merged configuration (GPU projects), used alone instead of the user's files plus an override. */
  merged: boolean;
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
  [/--runtime\b/g, 'runtime:'],
  [/leave runtime: out/g, 'remove runtime from the compose file'],
  [/remove it from the command/g, 'remove it from the compose file'],
  [/drop cgroup_parent \(gpuguard sets it\)/g, 'remove cgroup_parent from the compose file (gpuguard sets it)'],
  [/--cap-add\b/g, 'cap_add'],
  [/publish ports with -p/g, 'publish ports with ports:'],
  [/GPUs come from --gpus, which gpuguard allocates/g, 'GPUs come from deploy.resources.reservations.devices, which gpuguard allocates'],
  [/GPUs come from --gpus/g, 'GPUs come from deploy.resources.reservations.devices'],
];
const composeWords = (s: string) => COMPOSE_WORDS.reduce((acc, [re, w]) => acc.replace(re, w), s);

export interface PlanOptions {
  now?: Date;
  /** Decide only: no GPU reservation (gpuguard explain). */
  dryRun?: boolean;
  /** Where gpuguard wrote this project's document last time: GPU services keep their devices. */
  previousFile?: (project: string) => string;
  /** The daemon runs on this host (default): bind sources are resolved here. */
  local?: boolean;
}

export async function planCompose(scan: ComposeArgv, exec: { real: string; prefix: string[] }, policy: Policy, user: EffectiveUser, env: NodeJS.ProcessEnv, opts: PlanOptions = {}): Promise<ComposePlan> {
  const now = opts.now ?? new Date();
  const sel = selectComposeFiles({ dialect: scan.dialect, cwd: process.cwd(), files: scan.files, projectDirectory: scan.projectDirectory, envFile: scan.envFile, env });
  const project = projectNameOf(sel, scan.projectName, env);
  const fileFlags = sel.files.flatMap((f) => ['-f', f]);
  const config = await dockerCLI(exec.real, [...exec.prefix, ...fileFlags, ...scan.projectArgs, ...scan.globals, 'config'], env);
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

  // Security (policies with a `security` key): the same decision as docker run, per service and for the project's own volumes.
  const security = policy.security ? await decideComposeSecurity(merged, project, scan, policy, user, env, opts.local ?? true) : undefined;

  const answers: ServiceAnswer[] = [];
  const reasons: string[] = [];
  const warnings: string[] = [];
  let refusal: ComposePlan['refusal'];
  const all: Decision[] = [];
  const refuse = (file: string, service: string, reason: string, rule: string) => {
    refusal ??= { message: `${file}: service ${service}: ${composeWords(reason)}`, rule };
  };
  services.forEach((ask, i) => {
    const where = (key: string) => fileSetting(userDocs, ask.service, key) ?? sel.files[0]!;
    const req = createRequestOf(ask, where, runLabels);
    const iface = interfaceOfLabels(Object.keys(ask.labels), 'compose');
    const decisions = applyMode(
      [
        ...decideCreate(policy, user, req, { now, iface, ...(count !== undefined ? { containerCount: count + i } : {}), ...(countError ? { countError } : {}) }),
        ...(security?.services.get(ask.service) ?? []),
      ],
      policy.mode,
    );
    all.push(...decisions);
    for (const d of decisions) {
      reasons.push(`${ask.service}: ${d.verdict} ${d.rule}: ${composeWords(d.reason)}`);
      if (d.verdict === 'warn') warnings.push(`service ${ask.service}: ${composeWords(d.reason)}`);
      if (d.verdict === 'deny') {
        const file = d.at !== undefined ? where(d.at) : d.rule === 'labels.reserved' ? where('labels') : d.rule === 'cgroup.parent' ? where('cgroup_parent') : where(ruleKey(d.rule));
        refuse(file, ask.service, d.reason, d.rule);
      }
    }
    answers.push(answerOf(ask.service, decisions));
  });
  for (const { key, decisions: raw } of security?.volumes ?? []) {
    const decisions = applyMode(raw, policy.mode);
    all.push(...decisions);
    for (const d of decisions) {
      reasons.push(`volume ${key}: ${d.verdict} ${d.rule}: ${composeWords(d.reason)}`);
      if (d.verdict === 'warn') warnings.push(`volume ${key}: ${composeWords(d.reason)}`);
      if (d.verdict === 'deny') refusal ??= { message: `${topLevelFile(userDocs, 'volumes', key) ?? sel.files[0]!}: volume ${key}: ${composeWords(d.reason)}`, rule: d.rule };
    }
  }

  // GPUs: after every other decision, so a refused project reserves nothing.
  const gpuServices = services.filter((ask) => asksForGpu(ask) && gpuRequestOf(ask).kind !== 'none');
  if (!refusal && gpuServices.length) {
    const { grantGpus } = await import('../gpu/index.ts');
    const k = labelKeys(policy.labelPrefix);
    // The project's own containers are recreated or reused by compose: their devices are not someone else's.
    const except = (c: { labels: Record<string, string> }) => c.labels['com.docker.compose.project'] === project && c.labels[k.user] === user.user;
    const previous = opts.previousFile ? parseLenient(opts.previousFile(project)) : undefined;
    const realDocker = findRealDocker(env, policy.docker.realPath);
    for (const ask of gpuServices) {
      const request = gpuRequestOf(ask);
      const before = previousDevices(previous, ask.service);
      const grant = async (r: GpuRequest) => grantGpus({ request: r, policy, user, env, realDocker, except, ...(opts.dryRun ? { dryRun: true } : {}) });
      let granted: Awaited<ReturnType<typeof grant>>;
      try {
        // Same devices as last time where the request still fits them: compose then has nothing to recreate.
        const sameAsBefore = before.length && request.kind !== 'devices' && (request.kind === 'all' || before.length === request.count);
        granted = sameAsBefore ? await grant({ ...request, kind: 'devices', devices: before }).catch(() => grant(request)) : await grant(request);
      } catch (err) {
        if (!(err instanceof PolicyDenied)) throw err;
        const verdict = policy.mode === 'audit' ? 'warn' : 'deny';
        reasons.push(`${ask.service}: ${verdict} ${err.rule}: ${err.message}`);
        all.push({ rule: err.rule, verdict, reason: err.message });
        if (verdict === 'deny') refuse(gpuAskFile(userDocs, sel.files, ask.service), ask.service, err.message, err.rule);
        else warnings.push(`service ${ask.service}: audit mode, not refused: ${err.message}`);
        continue;
      }
      if (!granted) continue;
      const answer = answers.find((a) => a.service === ask.service)!;
      answer.gpu = { deviceIds: granted.devices.map((d) => d.uuid), capabilities: request.capabilities ?? [] };
      answer.labels.push(...granted.labels);
      const decision: Decision = { rule: 'gpus', verdict: 'add', reason: `${describeRequest(request)} (${request.sources.join(', ')}): ${granted.devices.map((d) => `${d.slot} ${d.uuid}`).join(', ')}` };
      all.push(decision);
      reasons.push(`${ask.service}: add gpus: ${decision.reason}`);
    }
  }

  const withGpu = answers.some((a) => a.gpu);
  const doc = withGpu ? applyAnswers(merged, answers) : overrideDocument(answers, typeof mainVersion === 'string' || typeof mainVersion === 'number' ? String(mainVersion) : undefined);
  const header = withGpu
    ? `# Written by gpuguard for compose project ${project} (${user.user}): the project's merged configuration with the policy applied\n# (GPU device reservations can only be replaced, not overridden); rewritten on every up/run/create.\n`
    : `# Written by gpuguard for compose project ${project} (${user.user}); rewritten on every up/run/create.\n`;
  const overrideText = `${header}${stringifyYaml(doc, { defaultStringType: 'QUOTE_DOUBLE', defaultKeyType: 'PLAIN' })}`;
  return {
    project,
    projectDir: sel.projectDir,
    merged: withGpu,
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

/**
 * The security decisions of a project: each service's asks (with a
 * `docker-compose run`'s own -v and --cap-add on its service), and the
 * project's own volumes whose driver options mount a host path. Facts are
 * gathered once per request, through one connection to the daemon.
 */
async function decideComposeSecurity(
  merged: unknown,
  project: string,
  scan: ComposeArgv,
  policy: Policy,
  user: EffectiveUser,
  env: NodeJS.ProcessEnv,
  local: boolean,
): Promise<{ services: Map<string, Decision[]>; volumes: { key: string; decisions: Decision[] }[] }> {
  const [{ decideSecurity, parseBindSpec }, { gatherSecurityFacts }, { serviceSecurityRequest, projectVolumeRequests, runSecurityFlags }, gw] = await Promise.all([
    import('../policy/security.ts'),
    import('../security/facts.ts'),
    import('./security.ts'),
    import('../docker/gateway.ts'),
  ]);
  const readerOpts = { env, endpoint: { hosts: scan.hosts, ...(scan.context !== undefined ? { context: scan.context } : {}) }, realDocker: () => findRealDocker(env, policy.docker.realPath) };
  let lookups: Promise<import('../security/facts.ts').DockerLookups> | undefined;
  const docker = () => (lookups ??= (async () => ({ reader: await gw.dockerReader(readerOpts), inspectVolumes: (names: string[]) => gw.inspectVolumes(readerOpts, names) }))());
  const decide = async (request: import('../policy/security.ts').SecurityRequest) => decideSecurity(policy, user, request, await gatherSecurityFacts(policy, user, request, { local, docker }));

  const run = scan.command === 'run' ? runSecurityFlags(scan.rest) : undefined;
  const services = new Map<string, Decision[]>();
  for (const service of servicesOf(merged).map((s) => s.service)) {
    const request = serviceSecurityRequest(service, merged, project);
    if (run?.service === service) {
      for (const v of run.volumes) {
        const b = parseBindSpec(v);
        const from = `run -v ${v}`;
        if (b.kind === 'bind') request.binds.push({ source: b.relative ? posix.resolve(process.cwd(), b.source) : b.source, from, readOnly: b.readOnly });
        else if (b.kind === 'volume') request.volumes.push({ name: b.name, from, readOnly: b.readOnly });
      }
      for (const cap of run.capAdd) request.capAdd.push({ cap, from: `run --cap-add ${cap}` });
    }
    services.set(service, await decide(request));
  }
  const volumes = [];
  for (const { key, request } of projectVolumeRequests(merged)) volumes.push({ key, decisions: await decide(request) });
  return { services, volumes };
}

/** Which of the user's files sets the top-level `<section>.<key>` (the last one, as compose merges). */
function topLevelFile(files: { path: string; doc: unknown }[], section: string, key: string): string | undefined {
  let found: string | undefined;
  for (const f of files) {
    const s = (f.doc as Record<string, unknown> | null | undefined)?.[section];
    if (s && typeof s === 'object' && key in s) found = f.path;
  }
  return found;
}

/** The file that sets a GPU ask of a service: its device reservation, runtime or environment. */
function gpuAskFile(userDocs: { path: string; doc: unknown }[], files: string[], service: string): string {
  return fileSetting(userDocs, service, 'deploy') ?? fileSetting(userDocs, service, 'runtime') ?? fileSetting(userDocs, service, 'environment') ?? files[0]!;
}

/** device_ids of a service's NVIDIA reservation in the document gpuguard wrote last time. */
function previousDevices(doc: unknown, service: string): string[] {
  const s = (doc as { services?: Record<string, { deploy?: { resources?: { reservations?: { devices?: { driver?: string; device_ids?: unknown }[] } } } }> } | undefined)?.services?.[service];
  const d = s?.deploy?.resources?.reservations?.devices?.find((x) => x?.driver === 'nvidia');
  return Array.isArray(d?.device_ids) ? d.device_ids.map(String) : [];
}

function parseLenient(path: string): unknown {
  try {
    return parseYaml(readFileSync(path, 'utf8')) as unknown;
  } catch {
    return undefined;
  }
}

function ruleKey(rule: string): string {
  return ({ 'limits.memory': 'mem_limit', 'limits.cpus': 'cpus', 'limits.pids': 'pids_limit', 'limits.shmSize': 'shm_size', 'runtime.builtin': 'runtime' } as Record<string, string>)[rule] ?? 'image';
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
  set('runtime', ask.gpu.runtime);
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
