/**
 * `gpuguard doctor [--json]`: is this host enforced? One line per check
 * (ok / warn / fail, what was found, and the fix), exit 0 / 1 / 2. It reads
 * the install record (state.json) for the layout, the policy, daemon.json,
 * and — when dockerd answers (DOCKER_HOST is honoured) — `docker info` and
 * every container, to find the ones that went around gpuguard.
 */
import { execFileSync } from 'node:child_process';
import { accessSync, constants, lstatSync, readFileSync, readlinkSync, statSync } from 'node:fs';
import { readLink, realpathOf } from '../sys/fastfs.ts';
import { availableParallelism } from 'node:os';
import { delimiter, dirname, isAbsolute, join } from 'node:path';
import { UsageError } from '../errors.ts';
import { builtinPolicy, DEFAULT_POLICY_PATH, parsePolicy } from '../policy/load.ts';
import type { Policy } from '../policy/schema.ts';
import { FRONT_NAME, GPUGUARD_NAME } from '../front/identity.ts';
import { DEFAULTS, RUNTIME_NAME, underRoot, explicitLoc, type Loc } from '../install/layout.ts';
import { hostPath, readState, type InstallState } from '../install/state.ts';
import type { DaemonConfig } from '../install/daemon-json.ts';
import type { ContainerDetails, DaemonInfo } from '../docker/gateway.ts';
import { checkGpuDeviceFiles, checkReaper } from './lifecycle.ts';
import { bindRootMounts, judgeBindMounts } from './binds.ts';
import { passwdEntry } from '../sys/nss.ts';
import { listening } from '../sys/listen-path.ts';
import { DEFAULT_DECIDER_SOCKET } from '../decider/protocol.ts';
import { DECIDER_SERVICE } from '../install/decider.ts';
import type { ApiDoctorContext } from './api.ts';

export type Status = 'ok' | 'warn' | 'fail';
export interface CheckResult {
  check: string;
  status: Status;
  message: string;
  fix?: string;
}

const USAGE = 'usage: gpuguard doctor [--json] [--root DIR] [--state-dir DIR] [--policy FILE] [--daemon-json FILE] [--user NAME] [--path PATH]';

interface DoctorOptions {
  json: boolean;
  root: string;
  stateDir: Loc;
  policy?: string;
  daemonJson?: string;
  user?: string;
  path?: string;
}

function parseArgs(args: string[]): DoctorOptions {
  const o: Partial<DoctorOptions> & { json: boolean; root: string } = { json: false, root: '/' };
  let stateDir: string | undefined;
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    const value = () => {
      const v = args[++i];
      if (v === undefined) throw new UsageError(`${a} needs a value\n${USAGE}`);
      return v;
    };
    switch (a) {
      case '--json': o.json = true; break;
      case '--root': o.root = value(); break;
      case '--state-dir': stateDir = value(); break;
      case '--policy': o.policy = value(); break;
      case '--daemon-json': o.daemonJson = value(); break;
      case '--user': o.user = value(); break;
      case '--path': o.path = value(); break;
      case '-h': case '--help': throw new UsageError(USAGE, 0);
      default: throw new UsageError(`unknown option "${a}"\n${USAGE}`);
    }
  }
  return { ...o, stateDir: stateDir ? explicitLoc(stateDir) : underRoot(o.root, DEFAULTS.stateDir) };
}

/**
 * Follow symlinks of a path inside root: an absolute target is read inside
 * root (`map` turns it into a path here; explicit install locations map to
 * themselves).
 */
export function resolveIn(root: string, path: string, map: (abs: string) => string = (abs) => join(root, abs)): string | undefined {
  if (root === '/') return realpathOf(path);
  let cur = path;
  for (let i = 0; i < 40; i++) {
    let st;
    try {
      st = lstatSync(cur);
    } catch {
      return undefined;
    }
    if (!st.isSymbolicLink()) return cur;
    const target = readlinkSync(cur);
    cur = isAbsolute(target) ? map(target) : join(dirname(cur), target);
  }
  return undefined;
}

function executable(p: string): boolean {
  try {
    accessSync(p, constants.X_OK);
    return statSync(p).isFile();
  } catch {
    return false;
  }
}

class Doctor {
  readonly results: CheckResult[] = [];
  private readonly state: InstallState | undefined;
  private readonly lib: Loc;
  private readonly ours: string | undefined;
  /** The native front beside the binary (src/front): what the face names point at. */
  private readonly front: string | undefined;
  private policy: Policy = builtinPolicy();
  private daemon: DaemonConfig | undefined;
  private info: DaemonInfo | undefined;
  private infoError = '';
  private realDocker: string | undefined;
  private realDockerFrom = '';
  /** The real CLI used to ask dockerd (the configured one, or the first real one on PATH). */
  private asker: string | undefined;

  constructor(private readonly o: DoctorOptions) {
    this.state = readState(o.stateDir);
    this.lib = this.state?.lib ?? underRoot(o.root, DEFAULTS.lib);
    this.ours = this.resolve(join(this.lib.host, GPUGUARD_NAME));
    this.front = this.resolve(join(this.lib.host, FRONT_NAME));
  }

  private add(check: string, status: Status, message: string, fix?: string): void {
    this.results.push({ check, status, message, ...(fix && status !== 'ok' ? { fix } : {}) });
  }

  /** A view path (from the policy or daemon.json) as this process sees it. */
  private host(view: string): string {
    return hostPath({ root: this.o.root, explicit: this.state?.explicit }, view);
  }

  private resolve(hostPath: string): string | undefined {
    return resolveIn(this.o.root, hostPath, (abs) => this.host(abs));
  }

  private isOurs(hostPath: string): boolean {
    const r = this.resolve(hostPath);
    return r !== undefined && (r === this.ours || r === this.front);
  }

  async run(): Promise<void> {
    this.checkPolicy();
    this.findRealDocker();
    await this.queryDocker();
    if (this.state?.api) {
      this.checkShimOffPath();
    } else {
      this.checkShimOnPath();
      this.checkFront();
      this.checkUserPath();
      await this.checkDecider();
    }
    this.checkRealCli();
    this.checkRuntimes();
    this.checkConcourse();
    this.checkNvidiaSmi();
    this.checkEventLog();
    this.checkLifecycle();
    this.checkCgroupDriver();
    this.checkBindMounts();
    await this.checkBypasses();
    const { checkApi, checkTcp } = await import('./api.ts');
    const ctx = this.apiContext();
    if (this.state?.api) await checkApi(ctx);
    checkTcp(ctx);
  }

  /** Shim mode: the decider (src/decider) answering, so that docker run/create/ps pay no Bun start. */
  private async checkDecider(): Promise<void> {
    const socket = this.host(DEFAULT_DECIDER_SOCKET);
    const answers = await listening(socket);
    if (answers) this.add('decider', 'ok', `answering at ${DEFAULT_DECIDER_SOCKET}: docker run/create/ps are decided without a Bun start`);
    else
      this.add(
        'decider',
        'warn',
        `nothing answers at ${DEFAULT_DECIDER_SOCKET}: docker run/create/ps work, but each starts gpuguard itself (~15-25 ms more per call)`,
        `systemctl enable --now ${DECIDER_SERVICE} (install.sh installs it), or start \`gpuguard decider\` as root`,
      );
  }

  /** What the boundary checks (./api.ts) need of this doctor. */
  private apiContext(): ApiDoctorContext {
    return {
      root: this.o.root,
      policy: this.policy,
      api: this.state?.api,
      daemon: this.daemon,
      daemonFile: this.o.daemonJson ?? this.state?.daemonJson.host ?? underRoot(this.o.root, DEFAULTS.daemonJson).host,
      dockerdPid: this.state?.dockerdPid ?? (this.o.root === '/' ? DEFAULTS.dockerdPid : undefined),
      host: (view) => this.host(view),
      sampleUser: () => this.sampleUser(),
      realCli: () => this.asker ?? (this.realDocker && executable(this.realDocker) && !this.isOurs(this.realDocker) ? this.realDocker : undefined),
      add: (check, status, message, fix) => this.add(check, status, message, fix),
    };
  }

  /** API mode: the face decides, so the first docker must be the real CLI (a shim there would decide each request a second time). */
  private checkShimOffPath(): void {
    const first = this.pathDirs().map((d) => join(d, 'docker')).find((p) => this.resolve(p) && (this.o.root !== '/' || executable(p)));
    if (first && this.isOurs(first)) this.add('shim-on-path', 'fail', `root's first docker is ${first}, gpuguard's shim: in API mode every request would be decided twice (and the face refuses the shim's labels as reserved)`, 'install.sh --uninstall, then install.sh --api (API mode leaves the real CLI on PATH)');
    else this.add('shim-on-path', 'ok', `API mode: root's first docker is ${first ?? 'none'} (the real CLI); the face decides every request`);
  }

  private checkPolicy(): void {
    const file = this.o.policy ?? process.env.GPUGUARD_POLICY ?? this.state?.policy.host ?? underRoot(this.o.root, DEFAULT_POLICY_PATH).host;
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch {
      this.add('policy', 'warn', `no policy file at ${file}: built-in defaults (owner labels, datasets mount, GPU env hygiene, no quotas)`, 'run install.sh (writes a commented example) or create the file; docs/policy.md');
      return;
    }
    try {
      this.policy = parsePolicy(text, file);
      const perm = statSync(file).mode & 0o777;
      if ((perm & 0o004) === 0) this.add('policy', 'warn', `${file} is valid but mode ${perm.toString(8)}: the shim runs as the calling user and cannot read it`, `chmod 0644 ${file}`);
      else if (this.tooManyCpus()) this.add('policy', 'warn', `${file} is valid but ${this.tooManyCpus()} asks for more CPUs per container than this host has (${availableParallelism()}): dockerd refuses such a --cpus ("Range of CPUs is from 0.01 to ${availableParallelism()}.00")`, `lower limits.cpus to at most ${availableParallelism()}`);
      else this.add('policy', 'ok', `${file} is valid (mode ${this.policy.mode})`);
    } catch (err) {
      this.add('policy', 'fail', (err as Error).message, `fix the file, then: gpuguard policy check ${file}`);
    }
  }

  /** The first place where limits.cpus exceeds the host's CPUs, if any. */
  private tooManyCpus(): string | undefined {
    const n = availableParallelism();
    for (const [g, group] of Object.entries(this.policy.groups)) if ((group.limits?.cpus ?? 0) > n) return `groups.${g}.limits.cpus (${group.limits!.cpus})`;
    for (const [u, user] of Object.entries(this.policy.users)) if ((user.limits?.cpus ?? 0) > n) return `users.${u}.limits.cpus (${user.limits!.cpus})`;
    return undefined;
  }

  private findRealDocker(): void {
    const fromEnv = process.env.GPUGUARD_REAL_DOCKER;
    const view = fromEnv ?? this.policy.docker.realPath ?? this.state?.realDocker;
    this.realDocker = view ? (fromEnv ? view : this.host(view)) : this.pathDirs().map((d) => join(d, 'docker')).find((p) => executable(p) && !this.isOurs(p));
    this.realDockerFrom = fromEnv ? 'GPUGUARD_REAL_DOCKER' : this.policy.docker.realPath ? 'docker.realPath in the policy' : view ? 'the install record' : 'PATH';
  }

  /** Live facts only from a daemon we were pointed at: the host's, or DOCKER_HOST (never the host's from a --root check). */
  private async queryDocker(): Promise<void> {
    if (this.o.root !== '/' && !process.env.DOCKER_HOST) {
      this.infoError = 'not asked (--root without DOCKER_HOST)';
      return;
    }
    // Any working real CLI will do for asking: the configured one may be the broken thing.
    const usable = (p: string | undefined) => p !== undefined && executable(p) && !this.isOurs(p);
    const asker = usable(this.realDocker) ? this.realDocker : this.pathDirs().map((d) => join(d, 'docker')).find(usable);
    if (!asker) {
      this.infoError = 'no real docker CLI to ask';
      return;
    }
    this.asker = asker;
    const { dockerInfo } = await import('../docker/gateway.ts');
    try {
      this.info = await dockerInfo(asker);
    } catch (err) {
      this.infoError = (err as Error).message;
    }
  }

  private pathDirs(): string[] {
    const path = this.o.path ?? process.env.PATH ?? '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';
    return path.split(delimiter).filter(Boolean).map((d) => (this.o.root === '/' ? d : this.host(d)));
  }

  private checkShimOnPath(): void {
    let first: string | undefined;
    for (const dir of this.pathDirs()) {
      const p = join(dir, 'docker');
      if (this.resolve(p) && (this.o.root !== '/' || executable(p))) {
        first = p;
        break;
      }
    }
    const fix = 'run install.sh (it makes every docker in /usr/local/bin, /usr/bin … gpuguard), or put that directory first on PATH';
    if (!first) this.add('shim-on-path', 'fail', 'no docker on root\'s PATH', fix);
    else if (!this.isOurs(first)) this.add('shim-on-path', 'fail', `the first docker on root's PATH is ${first}, not gpuguard (${join(this.lib.view, 'gpuguard')})`, fix);
    else this.add('shim-on-path', 'ok', `root's first docker is ${first} → gpuguard`);
  }

  /** The face names should reach gpuguard through its native front (pass-through without Bun's start). */
  private checkFront(): void {
    const path = join(this.lib.host, FRONT_NAME);
    const fix = 'run install.sh again (it installs dist/gpuguard-front, built by npm run build with cc, and points the faces at it)';
    const first = this.pathDirs().map((d) => join(d, 'docker')).find((p) => this.resolve(p) !== undefined);
    const firstReal = first === undefined ? undefined : this.resolve(first);
    if (!this.front || !executable(this.front)) {
      // A face link to a missing front no longer resolves: look at the links themselves.
      const dangling = this.pathDirs().map((d) => join(d, 'docker')).find((p) => readLink(p) === join(this.lib.view, FRONT_NAME));
      if (dangling !== undefined) this.add('native-front', 'fail', `${dangling} is the native front ${path}, which is missing or not executable: docker cannot start`, fix);
      else this.add('native-front', 'warn', `no native front at ${path}: every docker and runtime call starts the Bun binary (~5 ms more)`, fix);
    } else if (firstReal !== undefined && firstReal === this.ours) {
      this.add('native-front', 'warn', `root's first docker ${first} points at the gpuguard binary, not at the native front ${path}: every docker call pays Bun's start`, fix);
    } else this.add('native-front', 'ok', `native front ${path} (gpuguard beside it decides; everything else goes straight to the real tool)`);
  }

  private sampleUser(): string | undefined {
    if (this.o.user) return this.o.user;
    if (this.o.root !== '/') return undefined;
    try {
      const passwd = execFileSync('getent', ['passwd'], { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024, timeout: 10_000 });
      for (const line of passwd.split('\n')) {
        const [name, , uid, , , , shell] = line.split(':');
        if (name && Number(uid) >= 1000 && Number(uid) < 60000 && shell && !/nologin|false$/.test(shell)) return name;
      }
    } catch {
      /* no getent: no sample */
    }
    return undefined;
  }

  /** A user's PATH, as their login shell sets it (or --path), checked through runuser with the user's own uid. */
  private checkUserPath(): void {
    const user = this.sampleUser();
    if (!user) {
      this.add('shim-on-path-user', 'warn', this.o.root === '/' ? 'no regular user (uid ≥ 1000) to check a user\'s PATH with' : 'user PATH not checked in a --root tree (name one with --user)', 'gpuguard doctor --user NAME');
      return;
    }
    const argv = this.o.path !== undefined
      ? ['-u', user, '--', 'env', `PATH=${this.o.path}`, '/bin/sh', '-c', 'command -v docker']
      : ['-l', user, '-s', '/bin/sh', '-c', 'command -v docker'];
    let found = '';
    try {
      found = execFileSync('runuser', argv, { encoding: 'utf8', timeout: 15_000, stdio: ['ignore', 'pipe', 'ignore'] }).trim().split('\n').pop() ?? '';
    } catch {
      /* none found */
    }
    const fix = `run install.sh; if ${user}'s shell profile puts another directory first, make it not do that (or install into it with --bin-dir)`;
    if (!found) this.add('shim-on-path-user', 'fail', `user ${user} finds no docker on their PATH`, fix);
    else if (!this.isOurs(this.o.root === '/' ? found : this.host(found))) this.add('shim-on-path-user', 'fail', `user ${user}'s first docker is ${found}, not gpuguard`, fix);
    else this.add('shim-on-path-user', 'ok', `user ${user}'s first docker is ${found} → gpuguard`);
  }

  private checkRealCli(): void {
    const fix = 'point docker.realPath in the policy at the real CLI (install.sh sets it: /usr/bin/docker.real or /usr/local/bin/docker.real)';
    if (!this.realDocker) this.add('real-cli', 'fail', 'the policy has no docker.realPath and no install record names the real docker CLI', fix);
    else if (!executable(this.realDocker)) this.add('real-cli', 'fail', `the real docker CLI ${this.realDocker} is missing or not executable`, `${fix}; or reinstall docker.io`);
    else if (this.isOurs(this.realDocker)) this.add('real-cli', 'fail', `the "real" docker CLI ${this.realDocker} is gpuguard itself (a loop)`, fix);
    else if (this.realDockerFrom === 'PATH') this.add('real-cli', 'warn', `no docker.realPath in the policy; the first docker on PATH that is not gpuguard is ${this.realDocker}`, fix);
    else this.add('real-cli', 'ok', `real docker CLI: ${this.realDocker} (from ${this.realDockerFrom})`);
  }

  private readDaemonJson(): string {
    const file = this.o.daemonJson ?? this.state?.daemonJson.host ?? underRoot(this.o.root, DEFAULTS.daemonJson).host;
    try {
      this.daemon = JSON.parse(readFileSync(file, 'utf8')) as DaemonConfig;
    } catch {
      this.daemon = undefined;
    }
    return file;
  }

  private checkRuntimes(): void {
    const file = this.readDaemonJson();
    const fix = 'run install.sh (merges daemon.json and reloads dockerd)';
    const runtimes = this.daemon?.runtimes ?? {};
    const ours = runtimes[RUNTIME_NAME];
    if (!this.daemon) this.add('runtime-registered', 'fail', `${file} is missing or not JSON: the runtime wrapper is not registered`, fix);
    else if (!ours || !this.isOurs(this.host(ours.path))) this.add('runtime-registered', 'fail', `${file} registers no runtime "${RUNTIME_NAME}" pointing at gpuguard`, fix);
    else if (this.info && !Object.keys(this.info.Runtimes ?? {}).includes(RUNTIME_NAME)) this.add('runtime-registered', 'fail', `${file} registers "${RUNTIME_NAME}" but the running dockerd does not list it`, 'reload dockerd: systemctl reload docker (or kill -HUP $(cat /var/run/docker.pid))');
    else this.add('runtime-registered', 'ok', `runtime "${RUNTIME_NAME}" → ${ours.path}${this.info ? ' (listed by docker info)' : ''}`);

    const def = this.info?.DefaultRuntime ?? this.daemon?.['default-runtime'] ?? 'runc';
    const where = this.info ? 'the running dockerd' : file;
    if (def !== RUNTIME_NAME) this.add('runtime-default', 'fail', `${where} uses default runtime "${def}", not "${RUNTIME_NAME}": containers started without --runtime skip the wrapper`, fix);
    else this.add('runtime-default', 'ok', `default runtime is "${RUNTIME_NAME}" (${where})`);

    // Every registered runtime goes through the wrapper (dockerd's built-in runc cannot be re-pointed: see bypasses).
    const live = Object.entries(this.info?.Runtimes ?? {}).filter(([n]) => !isBuiltinRuntime(n));
    const all = new Map<string, string>(Object.entries(runtimes).map(([n, r]) => [n, r.path]));
    for (const [n, r] of live) if (!all.has(n) && r.path) all.set(n, r.path);
    const unwrapped = [...all].filter(([, p]) => !this.isOurs(this.host(p))).map(([n, p]) => `${n} (${p})`);
    if (unwrapped.length) this.add('runtimes-wrapped', 'fail', `runtimes not going through gpuguard: ${unwrapped.join(', ')}: --runtime NAME goes around the policy`, fix);
    else this.add('runtimes-wrapped', 'ok', all.size ? `every registered runtime goes through gpuguard: ${[...all.keys()].join(', ')}` : 'no runtimes registered');

    const broken: string[] = [];
    const reals: string[] = [];
    for (const [n, p] of all) {
      if (!this.isOurs(this.host(p))) continue;
      const realLink = `${this.host(p)}.real`;
      const target = this.resolve(realLink);
      if (!target || !executable(target) || target === this.ours) broken.push(`${n} (${p}.real → ${readLink(realLink) ?? 'missing'})`);
      else reals.push(`${n} → ${readLink(realLink)}`);
    }
    const pr = this.policy.runtime.realPath;
    if (pr) {
      const t = this.resolve(this.host(pr));
      if (!t || !executable(t) || t === this.ours) broken.push(`runtime.realPath ${pr} in the policy`);
    }
    if (broken.length) this.add('real-runtime', 'fail', `real runtime missing or not executable: ${broken.join(', ')}`, 'reinstall the runtime (apt-get install runc / nvidia-container-toolkit), or run install.sh --uninstall then install.sh');
    else this.add('real-runtime', 'ok', reals.length ? `real runtimes: ${reals.join(', ')}` : 'no wrapped runtimes to chain to');
  }

  /** Only where install.sh took over Concourse's runc (seed 001's layout). */
  private checkConcourse(): void {
    const dir = this.state?.concourse;
    if (!dir) return;
    const runc = join(dir.host, 'runc');
    const real = `${runc}.real`;
    const fix = `run install.sh --concourse ${dir.view}`;
    const realResolved = this.resolve(real);
    if (!this.isOurs(runc)) this.add('concourse', 'fail', `${runc} is not gpuguard (a Concourse upgrade replaced it?): Concourse containers skip the policy`, `mv ${join(dir.view, 'runc')} ${join(dir.view, 'runc.real')} (the upgraded runc replaces the old one), then ${fix}`);
    else if (!realResolved || !executable(realResolved) || realResolved === this.ours) this.add('concourse', 'fail', `${real} (Concourse's own runc) is missing: every Concourse container fails`, `put Concourse's runc back as ${real}`);
    else this.add('concourse', 'ok', `${runc} → gpuguard → runc.real`);
  }

  private checkNvidiaSmi(): void {
    const inventory = this.policy.gpu.inventory;
    const bin = process.env.GPUGUARD_NVIDIA_SMI ?? (inventory.includes('/') ? inventory : findOnPath(inventory, this.pathDirs()));
    const fix = 'install the NVIDIA driver utilities (nvidia-smi), or set gpu.inventory / GPUGUARD_NVIDIA_SMI to its path';
    if (!bin) {
      this.add('nvidia-smi', 'fail', `${inventory} not found: GPU requests cannot be allocated`, fix);
      return;
    }
    let out: string;
    try {
      out = execFileSync(bin, ['-L'], { encoding: 'utf8', timeout: 15_000, stdio: ['ignore', 'pipe', 'pipe'] });
    } catch (err) {
      const e = err as { stderr?: string; message: string };
      this.add('nvidia-smi', 'fail', `${bin} -L failed: ${(e.stderr || e.message).trim().split('\n')[0]}`, 'check the driver: nvidia-smi on its own; a reboot after a driver upgrade is common');
      return;
    }
    const gpus = out.split('\n').filter((l) => /^GPU \d+:/.test(l)).length;
    const mig = out.split('\n').filter((l) => /^\s+MIG \S+\s+Device\s+\d+:/.test(l)).length;
    if (!gpus) this.add('nvidia-smi', 'fail', `${bin} -L lists no GPU`, fix);
    else this.add('nvidia-smi', 'ok', `${bin}: ${gpus} GPU(s), ${mig} MIG device(s)`);
  }

  private checkEventLog(): void {
    const view = this.policy.events.log;
    const file = this.host(view);
    const fix = `run install.sh, or: install -d -m 0755 ${dirname(view)} && install -m 0622 /dev/null ${view}`;
    let dirOk = false;
    try {
      dirOk = statSync(dirname(file)).isDirectory();
    } catch {
      /* missing */
    }
    if (!dirOk) {
      this.add('event-log', 'fail', `the event log directory ${dirname(file)} does not exist: no event is recorded`, fix);
      return;
    }
    let st;
    try {
      st = statSync(file);
    } catch {
      this.add('event-log', 'warn', `${file} does not exist yet: the first writer creates it with its own owner and mode 0640`, fix);
      return;
    }
    if ((st.mode & 0o022) !== 0o022) this.add('event-log', 'warn', `${file} has mode ${(st.mode & 0o777).toString(8)}: users' shim events cannot be appended`, `chmod 0622 ${view}`);
    else if (st.uid !== 0 && process.getuid?.() === 0) this.add('event-log', 'warn', `${file} is owned by uid ${st.uid}, who can truncate it`, `chown root:root ${view}`);
    else this.add('event-log', 'ok', `${file} (mode ${(st.mode & 0o777).toString(8)}: users append, root reads)`);
  }

  private checkLifecycle(): void {
    const ctx = { root: this.o.root, policy: this.policy, stateDir: this.o.stateDir.host, host: (v: string) => this.host(v) };
    for (const f of [checkReaper(ctx), checkGpuDeviceFiles(ctx)]) this.add(f.check, f.status, f.message, f.fix);
  }

  /** Can root in a user's container leave a setuid program in a bind the policy allows? (./binds.ts) */
  private checkBindMounts(): void {
    const security = this.policy.security;
    if (!security || this.o.root !== '/') return; // no security block: nothing restricts binds at all; another root: not this host's mounts
    const name = this.sampleUser();
    const home = name ? passwdEntry(name)?.home : undefined;
    const remap = this.daemon?.['userns-remap'];
    const options = (this.info as { SecurityOptions?: unknown } | undefined)?.SecurityOptions;
    const userns = (typeof remap === 'string' && remap !== '') || (Array.isArray(options) && options.some((o) => typeof o === 'string' && o.split(',').includes('name=userns')));
    let roots;
    try {
      roots = bindRootMounts(security, { user: name ?? 'nobody', ...(home ? { home } : {}) });
    } catch (err) {
      return this.add('bind-mounts', 'warn', `cannot read this host's mounts: ${(err as Error).message}`, 'run doctor as root on the host itself');
    }
    const v = judgeBindMounts(roots, userns);
    this.add('bind-mounts', v.status, `${v.message}${name ? ` (roots as ${name} gets them)` : ''}`, v.fix);
  }

  private checkCgroupDriver(): void {
    const parent = this.policy.cgroup?.parent;
    let driver = this.info?.CgroupDriver;
    let from = 'docker info';
    if (!driver) {
      const opts = Array.isArray(this.daemon?.['exec-opts']) ? (this.daemon!['exec-opts'] as unknown[]) : [];
      driver = opts.map((o) => (typeof o === 'string' ? /^native\.cgroupdriver=(\w+)$/.exec(o)?.[1] : undefined)).find(Boolean);
      from = 'daemon.json';
    }
    if (!parent) return this.add('cgroup-driver', 'ok', 'the policy sets no cgroup.parent (no per-user parent cgroup)');
    if (!driver) return this.add('cgroup-driver', 'warn', `cannot tell dockerd's cgroup driver (${this.infoError || 'no exec-opts in daemon.json'}); the policy's cgroup parent is "${parent}"`, 'run doctor where dockerd answers');
    const slice = parent.endsWith('.slice');
    if (driver === 'systemd' && !slice) this.add('cgroup-driver', 'fail', `dockerd uses the systemd cgroup driver (${from}) but cgroup.parent "${parent}" is not a .slice: every docker run with it fails`, 'set cgroup.parent to "gpuguard-{group}-{user}.slice"');
    else if (driver === 'cgroupfs' && slice) this.add('cgroup-driver', 'warn', `dockerd uses the cgroupfs driver (${from}) but cgroup.parent "${parent}" is a systemd slice name: it becomes a plain directory`, 'set cgroup.parent to "/gpuguard/{group}/{user}"');
    else this.add('cgroup-driver', 'ok', `${driver} driver (${from}) and cgroup parent "${parent}" agree`);
  }

  private async checkBypasses(): Promise<void> {
    if (!this.info || !this.asker) {
      const why = this.infoError || 'dockerd not reachable';
      for (const c of ['owner-labels', 'gpu-allocations', 'container-runtimes']) this.add(c, 'warn', `containers not checked: ${why}`, 'run doctor as root where dockerd answers (DOCKER_HOST is honoured)');
      return;
    }
    const { inspectAllContainers } = await import('../docker/gateway.ts');
    let containers: ContainerDetails[];
    try {
      containers = await inspectAllContainers(this.asker);
    } catch (err) {
      for (const c of ['owner-labels', 'gpu-allocations', 'container-runtimes']) this.add(c, 'warn', `containers not checked: ${(err as Error).message}`);
      return;
    }
    const p = this.policy.labelPrefix;
    const name = (c: ContainerDetails) => c.Name.replace(/^\//, '');
    const list = (cs: ContainerDetails[]) => `${cs.slice(0, 5).map(name).join(', ')}${cs.length > 5 ? ` and ${cs.length - 5} more` : ''}`;

    const unlabelled = containers.filter((c) => !c.Config.Labels?.[`${p}.user`]);
    if (unlabelled.length) this.add('owner-labels', 'warn', `${unlabelled.length} of ${containers.length} container(s) have no ${p}.user label (started before install, or around the shim): ${list(unlabelled)}`, 'gpuguard who CONTAINER shows what is known; remove or recreate them through docker');
    else this.add('owner-labels', 'ok', `all ${containers.length} container(s) carry owner labels`);

    const gpu = containers.filter((c) => hasGpuRequest(c) && !c.Config.Labels?.[`${p}.gpu.allocated`]);
    if (gpu.length) this.add('gpu-allocations', 'fail', `${gpu.length} container(s) hold GPUs without a ${p}.gpu.allocated label (allocated around gpuguard): ${list(gpu)}`, 'stop them (docker stop) and start them again through the shim');
    else this.add('gpu-allocations', 'ok', 'no GPU container without an allocation label');

    const wrapped = new Set(Object.entries(this.daemon?.runtimes ?? {}).filter(([, r]) => this.isOurs(this.host(r.path))).map(([n]) => n));
    const around = containers.filter((c) => {
      const rt = c.HostConfig.Runtime || this.info?.DefaultRuntime || 'runc';
      return !wrapped.has(rt);
    });
    if (around.length) this.add('container-runtimes', 'fail', `${around.length} container(s) run with a runtime that is not gpuguard (${[...new Set(around.map((c) => c.HostConfig.Runtime || 'default'))].join(', ')}): ${list(around)}`, 'recreate them without --runtime (the default is gpuguard); --runtime runc is dockerd\'s built-in and cannot be wrapped');
    else this.add('container-runtimes', 'ok', 'every container runs through the gpuguard runtime');
  }
}

function isBuiltinRuntime(name: string): boolean {
  return name === 'runc' || name.startsWith('io.containerd.');
}

function hasGpuRequest(c: ContainerDetails): boolean {
  if (c.HostConfig.Runtime === 'nvidia') return true;
  return (c.HostConfig.DeviceRequests ?? []).some((r) => r.Driver === 'nvidia' || (r.Capabilities ?? []).some((caps) => caps.includes('gpu')));
}

function findOnPath(cmd: string, dirs: string[]): string | undefined {
  for (const d of dirs) if (executable(join(d, cmd))) return join(d, cmd);
  return undefined;
}

export function formatLine(r: CheckResult): string {
  return `${r.status.padEnd(4)}  ${r.check.padEnd(18)}  ${r.message}${r.fix ? ` — fix: ${r.fix}` : ''}`;
}

export async function run(args: string[]): Promise<number> {
  const o = parseArgs(args);
  const d = new Doctor(o);
  await d.run();
  const fails = d.results.filter((r) => r.status === 'fail').length;
  const warns = d.results.filter((r) => r.status === 'warn').length;
  const code = fails ? 2 : warns ? 1 : 0;
  if (o.json) console.log(JSON.stringify({ checks: d.results, fail: fails, warn: warns, exit: code }, null, 2));
  else {
    for (const r of d.results) console.log(formatLine(r));
    console.log(fails ? `doctor: ${fails} failure(s), ${warns} warning(s)` : warns ? `doctor: ${warns} warning(s)` : 'doctor: all checks passed');
  }
  return code;
}
