/**
 * The compose faces: `docker-compose …` (v1, argv0 docker-compose) and
 * `docker compose …` (v2 plugin, through the docker shim). Commands that
 * create containers (up, run, create, scale) get one more `-f`: an override
 * file with the owner labels, cgroup parent, limits and GPU devices the
 * policy decides for each service, after the user's own files, which are
 * named explicitly exactly as compose would have chosen them. Everything
 * else is handed to the real binary by execve, reading nothing.
 */
import { closeSync, fsyncSync, lstatSync, mkdirSync, openSync, readFileSync, renameSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { GpuguardError, PolicyDenied } from '../errors.ts';
import { findRealCompose } from '../docker/real.ts';
import { execve } from '../sys/exec.ts';
import { createsContainers, scanComposeArgv, type ComposeArgv, type ComposeDialect } from '../compose/argv.ts';
import { targetsLocalDaemon, type GlobalScan } from './globals.ts';

/** argv0 docker-compose. */
export async function composeMain(args: string[]): Promise<number> {
  const env = process.env;
  const scan = scanComposeArgv(args, 'v1');
  if (!createsContainers(scan)) return execve(findRealCompose(env), [process.argv0, ...args], env);
  const target = targetsLocalDaemon({ options: [], commandIndex: 0, hosts: scan.hosts, context: scan.context }, env, () => undefined);
  const p = await prepareCompose(scan, { real: findRealCompose(env), prefix: [] }, target, env);
  return runPrepared(p, args, env);
}

/** `docker [globals] compose …` from the docker shim; `composeIndex` is where `compose` stands. */
export async function composeFromDocker(args: string[], globals: GlobalScan, target: { local: boolean; why: string }, env: NodeJS.ProcessEnv): Promise<number> {
  const composeArgs = args.slice(globals.commandIndex + 1);
  const scan = scanComposeArgv(composeArgs, 'v2');
  const prefix = [...args.slice(0, globals.commandIndex), 'compose'];
  if (!createsContainers(scan)) return (await import('./index.ts')).realDockerCli(env).then((real) => execve(real, [process.argv0, ...args], env));
  const real = await (await import('./index.ts')).realDockerCli(env);
  const p = await prepareCompose(scan, { real, prefix }, target, env);
  return runPrepared(p, args, env);
}

export interface ComposeExec {
  /** The real binary: docker-compose (v1) or the docker CLI (v2). */
  real: string;
  /** Words before compose's own globals: [] for v1, [docker globals…, 'compose'] for v2. */
  prefix: string[];
}

export interface ComposePrepared {
  kind: 'pass' | 'rewrite';
  why?: string;
  exec: ComposeExec;
  argv?: string[];
  overridePath?: string;
  overrideText?: string;
  plan?: import('../compose/plan.ts').ComposePlan;
}

export async function prepareCompose(scan: ComposeArgv, exec: ComposeExec, target: { local: boolean; why: string }, env: NodeJS.ProcessEnv, opts: { write?: boolean } = {}): Promise<ComposePrepared> {
  const [{ loadPolicyCached }, { currentIdentity }, { resolveUser }, { labelKeys }, { planCompose }] = await Promise.all([
    import('../policy/cache.ts'),
    import('../policy/identity.ts'),
    import('../policy/effective.ts'),
    import('../policy/labels.ts'),
    import('../compose/plan.ts'),
  ]);
  const { policy } = await loadPolicyCached(env);
  if (!target.local && policy.docker.remote !== 'enforce') return { kind: 'pass', why: `another daemon (${target.why}); docker.remote is passthrough`, exec };
  const user = resolveUser(policy, currentIdentity(env));
  const dir = overrideDir(process.getuid?.() ?? user.uid, env);
  const fileOf = (project: string) => join(dir, `${project}.override.yml`);
  const plan = await planCompose(scan, exec, policy, user, env, {
    ...(opts.write === false ? { dryRun: true } : {}),
    previousFile: fileOf,
    local: target.local,
  });
  const overridePath = fileOf(plan.project);
  const k = labelKeys(policy.labelPrefix);
  const override = reuseUnchanged(overridePath, plan.overrideText, [k.createdAt, k.gpuAllocatedAt]);
  // A GPU project's document is the whole merged configuration: it replaces the user's files (same project name and directory).
  const selection = plan.merged
    ? ['-p', plan.project, '--project-directory', plan.projectDir, '-f', overridePath]
    : [...plan.files.flatMap((f) => ['-f', f]), '-f', overridePath, ...scan.projectArgs];
  const argv = [...exec.prefix, ...selection, ...scan.globals, scan.command!, ...scan.rest];
  if (opts.write !== false && !plan.refusal && override.changed) writeAtomically(overridePath, override.text);
  return { kind: 'rewrite', exec, argv, overridePath, overrideText: override.text, plan };
}

/**
 * Compose recreates a container whenever its configuration hash changes, and
 * the created_at (and gpu.allocated_at) labels would change it on every
 * `up`. So a document that differs from the one on disk only in those is
 * not rewritten: the labels keep the time of the first `up`.
 */
function reuseUnchanged(path: string, fresh: string, timeKeys: string[]): { text: string; changed: boolean } {
  let old: string;
  try {
    old = readFileSync(path, 'utf8');
  } catch {
    return { text: fresh, changed: true };
  }
  const strip = (t: string) => t.split('\n').filter((l) => !timeKeys.some((key) => l.trimStart().startsWith(`${key}:`))).join('\n');
  return strip(old) === strip(fresh) ? { text: old, changed: false } : { text: fresh, changed: true };
}

async function runPrepared(p: ComposePrepared, args: string[], env: NodeJS.ProcessEnv): Promise<number> {
  if (p.kind === 'pass') return execve(p.exec.real, [process.argv0, ...p.exec.prefix, ...args.slice(p.exec.prefix.length)], env);
  const plan = p.plan!;
  const { appendEvent } = await import('../events/log.ts');
  appendEvent(plan.eventLog, {
    face: 'compose',
    decision: plan.decision,
    user: plan.user,
    uid: plan.uid,
    argv: [process.argv0, ...args].slice(0, 64),
    project: plan.project,
    files: plan.files,
    reasons: plan.reasons,
  });
  if (plan.refusal) throw new PolicyDenied(plan.refusal.message, plan.refusal.rule);
  for (const w of plan.warnings) process.stderr.write(`gpuguard: warning: ${w}\n`);
  return execve(p.exec.real, [process.argv0, ...p.argv!], env);
}

/**
 * Where override files live: $XDG_RUNTIME_DIR/gpuguard, else
 * /tmp/gpuguard-<uid>; a directory the user owns and nobody else can write,
 * one file per compose project, rewritten on each call (never piling up).
 */
export function overrideDir(uid: number, env: NodeJS.ProcessEnv): string {
  const dir = env.XDG_RUNTIME_DIR ? join(env.XDG_RUNTIME_DIR, 'gpuguard') : `/tmp/gpuguard-${uid}`;
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const st = lstatSync(dir);
  if (!st.isDirectory() || st.uid !== uid || (st.mode & 0o022) !== 0) {
    throw new GpuguardError(`${dir} is not a private directory of uid ${uid} (it belongs to uid ${st.uid}, mode ${(st.mode & 0o777).toString(8)}); remove it and try again`);
  }
  return dir;
}

function writeAtomically(path: string, text: string): void {
  const tmp = `${path}.${process.pid}.tmp`;
  const fd = openSync(tmp, 'w', 0o600);
  try {
    writeSync(fd, text);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, path);
}

export type { ComposeDialect };

/**
 * For `gpuguard explain -- docker-compose …` / `-- docker compose …`: what
 * would run, the override file and each decision; writes nothing (the
 * merged configuration is read with the real compose `config`).
 */
export async function explainCompose(dialect: ComposeDialect, args: string[], env: NodeJS.ProcessEnv): Promise<{ object: Record<string, unknown>; lines: string[] }> {
  const { shellJoin } = await import('./quote.ts');
  let scan: ComposeArgv;
  let exec: ComposeExec;
  let target: { local: boolean; why: string };
  let shown: string;
  if (dialect === 'v1') {
    scan = scanComposeArgv(args, 'v1');
    exec = { real: findRealCompose(env), prefix: [] };
    target = targetsLocalDaemon({ options: [], commandIndex: 0, hosts: scan.hosts, context: scan.context }, env, () => undefined);
    shown = 'docker-compose';
  } else {
    const { scanGlobals } = await import('./globals.ts');
    const { currentContext } = await import('./index.ts');
    const globals = scanGlobals(args);
    scan = scanComposeArgv(args.slice(globals.commandIndex + 1), 'v2');
    exec = { real: await (await import('./index.ts')).realDockerCli(env), prefix: [...args.slice(0, globals.commandIndex), 'compose'] };
    target = targetsLocalDaemon(globals, env, () => currentContext(globals, env));
    shown = 'docker';
  }
  const original = [shown, ...args];
  if (!createsContainers(scan)) {
    const why = `compose ${scan.command ?? ''} creates no container: passed to the real binary unchanged`.replace('  ', ' ');
    return { object: { argv: original, passthrough: why }, lines: [shellJoin(original), `  pass     ${why}`] };
  }
  const p = await prepareCompose(scan, exec, target, env, { write: false });
  if (p.kind === 'pass') return { object: { argv: original, passthrough: p.why }, lines: [shellJoin(original), `  pass     ${p.why}`] };
  const plan = p.plan!;
  const argv = [shown, ...p.argv!];
  return {
    object: { argv: plan.refusal ? null : argv, decision: plan.decision, user: plan.user, project: plan.project, files: plan.files, override: { path: p.overridePath, content: p.overrideText }, reasons: plan.reasons, ...(plan.refusal ? { refusal: plan.refusal } : {}) },
    lines: [
      plan.refusal ? `# refused (exit 125), nothing would run: ${plan.refusal.message}` : shellJoin(argv),
      ...plan.reasons.map((r) => `  ${r}`),
      `# override file ${p.overridePath}:`,
      ...p.overrideText!.trimEnd().split('\n').map((l) => `#   ${l}`),
    ],
  };
}
