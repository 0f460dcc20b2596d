/**
 * `gpuguard install` / `gpuguard uninstall` (run by install.sh): puts the
 * binary in place, makes it the first `docker` and `docker-compose`, wraps
 * every runtime dockerd knows, optionally takes over Concourse's runc, writes
 * a policy when there is none, and records every change in state.json so
 * that uninstall can undo each one, byte for byte. Each step looks first and
 * changes only what is not already so: a second install changes nothing.
 */
import { createHash } from 'node:crypto';
import {
  chmodSync, chownSync, closeSync, existsSync, fsyncSync, linkSync, lstatSync, mkdirSync, openSync,
  readFileSync, realpathSync, renameSync, rmdirSync, statSync, symlinkSync, unlinkSync, writeFileSync, writeSync,
} from 'node:fs';
import { readLink } from '../sys/fastfs.ts';
import { availableParallelism } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { GpuguardError } from '../errors.ts';
import { DEFAULT_POLICY_PATH, parsePolicy } from '../policy/load.ts';
import { mergeApiHosts, mergeDaemonConfig, parseDaemonJson, formatDaemonJson, unmergeApiHosts, unmergeDaemonConfig, wrapperPath, type DaemonConfig } from './daemon-json.ts';
import { divert, listDiversions, owningPackage, undivert } from './dpkg.ts';
import { DEFAULTS, INSTALL_USAGE, parseInstallArgs, RUNTIME_NAME, type InstallOptions, type Loc } from './layout.ts';
import { ensureApiKey, ensurePolicyKeys, examplePolicy } from './policy-file.ts';
import { hostPath, lexists, readState, statePath, type Change, type InstallState } from './state.ts';
import { execFileSync } from 'node:child_process';
import { reloadDockerd, verifyRuntime, waitForInfo } from './dockerd.ts';
import { FRONT_NAME, GPUGUARD_NAME } from '../front/identity.ts';
import {
  cronLine, foreignDeviceFileOptions, groupId, MODPROBE_FILE, modprobeText, REAP_SERVICE, REAP_STATE_FILE, REAP_TIMER, reapService, reapTimer, SYSTEMD_DIR, TIMER_WANTS,
} from './reaper.ts';
import { DECIDER_SERVICE, DECIDER_WANTS, deciderCommand, deciderService } from './decider.ts';
import {
  applyApiLive, checkRestartIsSafe, dockerdEnv, dockerdLaunch, installApiFiles, liveSystemd, planApi, readApiSettings, removeUpstreamDir, uninstallApiAfter, uninstallApiBefore,
  type ApiFilesResult, type ApiState, type InstallSteps,
} from './api.ts';

export const BACKUP_SUFFIX = '.pre-gpuguard';

type Out = (line: string) => void;

export async function runInstall(args: string[], out: Out = (l) => console.log(l)): Promise<number> {
  if (args.includes('--help') || args.includes('-h')) return (console.log(INSTALL_USAGE), 0);
  const opts = parseInstallArgs(args);
  if (opts.uninstall) return uninstall(opts, out);
  // A silent dry run first: every refusal comes before the first change, so nothing is left half-done.
  if (!opts.dryRun) await new Installer({ ...opts, dryRun: true }, () => {}).install();
  return new Installer(opts, out).install();
}

export async function runUninstall(args: string[], out: Out = (l) => console.log(l)): Promise<number> {
  return uninstall(parseInstallArgs(['--uninstall', ...args]), out);
}

function requireRoot(opts: InstallOptions, verb: string): void {
  if (opts.root === '/' && !opts.dryRun && process.getuid?.() !== 0) {
    throw new GpuguardError(`${verb} changes /usr, /etc and dockerd: run it as root (sudo ./install.sh${verb === 'uninstall' ? ' --uninstall' : ''}), or see the plan with --dry-run`, 1);
  }
}

function sha256(p: string): string {
  return createHash('sha256').update(readFileSync(p)).digest('hex');
}

function sha256Text(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

/** Write a file whole: temp file beside it, fsync, rename. */
function writeAtomic(path: string, data: string | Buffer, mode: number, owner?: { uid: number; gid: number }): void {
  const tmp = join(dirname(path), `.${basename(path)}.gpuguard-tmp`);
  const fd = openSync(tmp, 'w', mode);
  try {
    const buf = typeof data === 'string' ? Buffer.from(data) : data;
    writeSync(fd, buf, 0, buf.length);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  chmodSync(tmp, mode);
  if (owner) chownSync(tmp, owner.uid, owner.gid);
  renameSync(tmp, path);
}

class Installer implements InstallSteps {
  private state: InstallState;
  private readonly fresh: boolean;
  private changed = false;
  /** Directories a dry run would have created (so each is reported once). */
  private readonly planned = new Set<string>();
  private daemonChanged = false;
  /** The installed binary was replaced: a long-running face must restart to run it. */
  private binaryChanged = false;
  /** daemon.json's `hosts` changed (API mode without socket activation): dockerd must restart. */
  private apiHostsChanged = false;
  /** The admin CLI's target: the gpuguard binary. */
  private readonly shimTarget: string;
  /** What the face names (docker, docker-compose, gpuguard-runc, runc) point at: the native front beside it. */
  private readonly faceTarget: string;

  constructor(
    readonly opts: InstallOptions,
    readonly out: Out,
  ) {
    const prior = readState(opts.stateDir);
    this.fresh = !prior;
    this.state = prior ?? {
      version: 1, root: opts.root, lib: opts.lib, binDirs: opts.binDirs, policy: opts.policy, daemonJson: opts.daemonJson,
      eventsLog: opts.eventsLog, concourse: opts.concourse, dockerdPid: opts.dockerdPid, runtimes: {}, stateDirsCreated: [], changes: [],
    };
    this.state.explicit = this.explicitPaths();
    this.shimTarget = `${opts.lib.view}/gpuguard`;
    this.faceTarget = `${opts.lib.view}/${FRONT_NAME}`;
  }

  act(what: string, fn: () => void): void {
    this.changed = true;
    if (this.opts.dryRun) {
      this.out(`install: would ${what}`);
      return;
    }
    fn();
    this.out(`install: ${what}`);
  }

  private record(change: Change): void {
    this.state.changes.push(change);
  }

  private explicitPaths(): string[] {
    if (this.opts.root === '/') return [];
    const o = this.opts;
    return [o.lib, o.policy, o.daemonJson, o.eventsLog, o.stateDir, ...o.binDirs, ...(o.realRuntime ? [o.realRuntime] : [])].filter((l) => l.host === l.view).map((l) => l.view);
  }

  /** The host path of a view path: under --root unless it is one of the explicit locations. */
  host(view: string): string {
    return hostPath({ root: this.opts.root, explicit: this.explicitPaths() }, view);
  }

  private isOurs(hostPath: string): boolean {
    const target = readLink(hostPath);
    if (target === this.shimTarget || target === this.faceTarget) return true;
    try {
      const real = realpathSync(hostPath);
      return [GPUGUARD_NAME, FRONT_NAME].some((name) => {
        try {
          return real === realpathSync(join(this.opts.lib.host, name));
        } catch {
          return false;
        }
      });
    } catch {
      return false;
    }
  }

  /** A face link made by an earlier install (pointing at the binary itself): now at the front. */
  private repointFace(path: string): void {
    if (readLink(path) === this.faceTarget) return;
    if (this.state.changes.some((c) => c.kind === 'created' && c.path === path)) this.ensureSymlink(path, this.faceTarget);
  }

  mkdirp(dir: string, mode = 0o755): void {
    const missing: string[] = [];
    for (let d = dir; !lexists(d) && !this.planned.has(d); d = dirname(d)) missing.unshift(d);
    if (this.opts.dryRun) for (const d of missing) this.planned.add(d);
    for (const d of missing) {
      this.act(`create directory ${d}`, () => {
        mkdirSync(d, { mode });
        chmodSync(d, mode);
        this.record({ kind: 'created', path: d, type: 'dir' });
      });
    }
  }

  ensureSymlink(path: string, target: string): void {
    const current = readLink(path);
    if (current === target) return;
    if (lexists(path)) {
      const ours = this.state.changes.some((c) => c.kind === 'created' && c.path === path);
      if (!ours) throw new GpuguardError(`${path} exists and was not made by install.sh; move it away, then run install.sh again`);
      this.act(`re-point ${path} → ${target} (was ${current ?? 'a file'})`, () => {
        unlinkSync(path);
        symlinkSync(target, path);
      });
      return;
    }
    this.mkdirp(dirname(path));
    this.act(`link ${path} → ${target}`, () => {
      symlinkSync(target, path);
      this.record({ kind: 'created', path, type: 'symlink' });
    });
  }

  /** Rewrite a file that existed before us, keeping the original (hard link) for uninstall. */
  private replaceFile(path: string, text: string, what: 'daemon.json' | 'policy', describe: string): void {
    const prior = this.state.changes.find((c): c is Extract<Change, { kind: 'replaced' }> => c.kind === 'replaced' && c.path === path);
    const st = statSync(path);
    const owner = { uid: st.uid, gid: st.gid };
    if (prior) {
      this.act(`${describe} (${path}; the original stays in ${prior.backup})`, () => {
        writeAtomic(path, text, st.mode & 0o7777, owner);
        prior.sha256 = sha256Text(text);
        prior.unmerge = true;
      });
      return;
    }
    const backup = `${path}${BACKUP_SUFFIX}`;
    if (lexists(backup)) throw new GpuguardError(`${backup} exists but state.json does not mention it (left from an earlier install?); compare it with ${path}, remove the one you do not want, then run install.sh again`);
    this.act(`${describe} (${path}; original kept as ${backup})`, () => {
      linkSync(path, backup);
      writeAtomic(path, text, st.mode & 0o7777, owner);
      this.record({ kind: 'replaced', path, backup, sha256: sha256Text(text), what });
    });
  }

  private createFile(path: string, text: string | Buffer, mode: number, describe: string, keepIfEdited = false): void {
    this.mkdirp(dirname(path));
    this.act(`${describe} (${path})`, () => {
      writeAtomic(path, text, mode);
      this.record({ kind: 'created', path, type: 'file', ...(keepIfEdited ? { sha256: createHash('sha256').update(text).digest('hex') } : {}) });
    });
  }

  /** A file install owns: created when missing, rewritten when it differs from what install writes now. */
  ensureFile(path: string, text: string, mode: number, describe: string): boolean {
    if (!lexists(path)) {
      this.createFile(path, text, mode, describe);
      return true;
    }
    if (readFileSync(path, 'utf8') === text && (statSync(path).mode & 0o7777) === mode) return false;
    if (!this.state.changes.some((c) => c.kind === 'created' && c.path === path)) throw new GpuguardError(`${path} exists and was not made by install.sh; move it away, then run install.sh again`);
    this.act(`update: ${describe} (${path})`, () => writeAtomic(path, text, mode));
    return true;
  }

  async install(): Promise<number> {
    requireRoot(this.opts, 'install');
    if (!existsSync(this.opts.binary)) throw new GpuguardError(`${this.opts.binary}: the gpuguard binary to install does not exist; run npm run build (install.sh does)`);
    const front = join(dirname(this.opts.binary), FRONT_NAME);
    if (!existsSync(front)) throw new GpuguardError(`${front}: the native front to install beside ${this.opts.binary} does not exist; run npm run build (it needs cc: apt-get install gcc libc6-dev)`);
    this.checkMode();
    this.installBinary();
    // API mode: the real CLI stays first on PATH (the face decides); shim mode: the shim takes its place.
    const realDocker = this.opts.api ? this.realCliOnPath() : this.takeOver('docker', true);
    const realCompose = this.opts.compose && !this.opts.api ? this.takeOver('docker-compose', false) : undefined;
    if (realDocker) this.state.realDocker = realDocker;
    if (realCompose) this.state.realCompose = realCompose;
    const api = this.opts.api ? this.planApi() : undefined;
    const cgroupDriver = this.wrapRuntimes(realDocker !== undefined, api);
    const concourseReal = this.opts.concourse ? this.takeOverConcourse(this.opts.concourse) : undefined;
    const realRuntime = this.state.runtimes[RUNTIME_NAME] ?? concourseReal;
    const eventsLog = this.writePolicy(realDocker, realRuntime, cgroupDriver, api);
    this.prepareEventLog(eventsLog);
    this.prepareRunDirs();
    this.installReaper();
    // API mode has no front under the name docker: the face decides every request.
    if (!this.opts.api) this.installDecider();
    if (this.opts.restrictHostGpu) this.restrictHostGpu(this.opts.restrictHostGpu);
    const apiFiles = api ? this.installApi(api) : undefined;
    if (!this.changed) {
      this.out('install: nothing to change: gpuguard is installed as recorded in ' + statePath(this.opts.stateDir));
      return 0;
    }
    const restarts = api && apiFiles && apiFiles.dockerMoved && liveSystemd(api, this.opts);
    if (restarts && this.opts.dryRun && this.state.realDocker) await checkRestartIsSafe(this.host(this.state.realDocker), dockerdEnv(this.state.api, (v) => this.host(v)));
    if (!this.opts.dryRun) this.saveState();
    // A restart (API mode with systemd) applies daemon.json as a reload would.
    if (this.daemonChanged && !restarts) await this.reload();
    if (api && apiFiles) await this.startApi(api, apiFiles, restarts === true);
    if (this.opts.dryRun) this.out('install: dry run: nothing was changed');
    else this.out(`install: done; check with: ${this.opts.lib.view}/gpuguard doctor`);
    return 0;
  }

  /** The binary and, beside it, its native front (src/front: what every face name points at). */
  /** One mode per host: switching between shim and API mode goes through --uninstall. */
  private checkMode(): void {
    if (this.fresh) return;
    if (this.opts.api && !this.state.api) {
      throw new GpuguardError(`gpuguard is installed in shim mode here (${statePath(this.opts.stateDir)}): in API mode the real docker CLI goes back on PATH and the face decides; run install.sh --uninstall, then install.sh --api`);
    }
    if (!this.opts.api && this.state.api) {
      throw new GpuguardError(`gpuguard is installed in API mode here (${statePath(this.opts.stateDir)}): run install.sh --api to update it, or install.sh --uninstall first to go back to shim mode`);
    }
  }

  /** API mode: the first docker on PATH must be the real CLI (a shim left there would decide every request a second time). */
  private realCliOnPath(): string | undefined {
    for (const dir of this.opts.binDirs) {
      const host = join(dir.host, 'docker');
      if (!lexists(host)) continue;
      if (this.isOurs(host)) throw new GpuguardError(`${host} is gpuguard's docker shim (left from a shim-mode install?): in API mode the real CLI must be there, or every request is decided twice; put the real docker back (install.sh --uninstall does), then run install.sh --api`);
      return join(dir.view, 'docker');
    }
    if (!this.opts.concourse) throw new GpuguardError(`no docker found in ${this.opts.binDirs.map((d) => d.host).join(', ')}; install the docker CLI (apt-get install docker.io) first`);
    return undefined;
  }

  private planApi(): ApiState {
    const settings = readApiSettings(this.opts.policy.host);
    const file = this.opts.daemonJson.host;
    const daemon = lexists(file) ? parseDaemonJson(readFileSync(file, 'utf8'), file) : {};
    // Our own daemon.json hosts (a second install) are not a foreign listener: judge the file as it was before.
    const before: DaemonConfig = this.state.api?.via === 'daemon.json' ? unmergeApiHosts(daemon, this.state.api.previousHosts) : daemon;
    const launch = dockerdLaunch(this.opts.root, (v) => this.host(v), this.opts.dockerdPid);
    const plan = planApi(settings, launch, before, file, (v) => this.host(v), this.opts.root);
    plan.createdDir = this.state.api?.createdDir;
    if (plan.via === 'daemon.json') plan.previousHosts = this.state.api ? this.state.api.previousHosts : before.hosts === undefined ? null : [...(before.hosts as string[])];
    return plan;
  }

  private policyEnv(): string | undefined {
    return this.opts.policy.view === DEFAULT_POLICY_PATH ? undefined : this.opts.policy.view;
  }

  private installApi(api: ApiState): ApiFilesResult {
    const result = installApiFiles(this, api, `${this.opts.lib.view}/gpuguard`, this.policyEnv(), this.apiHostsChanged);
    this.state.api = api;
    return { ...result, binaryChanged: this.binaryChanged };
  }

  private async startApi(api: ApiState, files: ApiFilesResult, restarted: boolean): Promise<void> {
    await applyApiLive(api, files, this.opts, this.out, `${this.opts.lib.view}/gpuguard`, this.policyEnv());
    if (restarted && !this.opts.dryRun && this.state.realDocker) {
      await verifyRuntime(this.host(this.state.realDocker), RUNTIME_NAME, true, dockerdEnv(api, (v) => this.host(v)));
      this.out(`install: docker info lists runtime "${RUNTIME_NAME}" as the default`);
    }
  }

  private installBinary(): void {
    this.mkdirp(this.opts.lib.host);
    const front = join(dirname(this.opts.binary), FRONT_NAME);
    for (const [from, name, what] of [[this.opts.binary, GPUGUARD_NAME, 'the binary'], [front, FRONT_NAME, 'the native front']] as const) {
      const dest = join(this.opts.lib.host, name);
      if (!lexists(dest)) {
        this.act(`install ${what} ${from} as ${dest}`, () => {
          writeAtomic(dest, readFileSync(from), 0o755);
          this.record({ kind: 'created', path: dest, type: 'file' });
        });
      } else if (statSync(dest).size !== statSync(from).size || sha256(dest) !== sha256(from)) {
        this.act(`upgrade ${dest} from ${from}`, () => writeAtomic(dest, readFileSync(from), 0o755));
        if (name === GPUGUARD_NAME) this.binaryChanged = true;
      }
    }
    this.ensureSymlink(join(this.opts.lib.host, 'gpuguard-runc'), this.faceTarget);
    // The admin CLI on PATH: /usr/local/bin/gpuguard (or in the first --bin-dir).
    const explicitBin = this.opts.binDirs[0] && this.opts.binDirs[0].host === this.opts.binDirs[0].view && this.opts.root !== '/';
    const admin = join(explicitBin ? this.opts.binDirs[0]!.host : this.host('/usr/local/bin'), 'gpuguard');
    if (lexists(admin) && !this.isOurs(admin)) this.out(`install: warning: ${admin} exists and is not gpuguard: left alone; the admin CLI is ${this.shimTarget}`);
    else this.ensureSymlink(admin, this.shimTarget);
  }

  /**
   * Make our binary `cmd` in every PATH directory that has one (so whatever
   * the PATH order, the first `cmd` is ours). Returns the real one's view
   * path (the first in PATH order), or undefined when none exists.
   */
  private takeOver(cmd: string, required: boolean): string | undefined {
    let first: string | undefined;
    const seen = new Set<string>();
    for (const dir of this.opts.binDirs) {
      let real: string;
      try {
        if (lstatSync(dir.host).isSymbolicLink()) continue; // /bin → usr/bin on merged-/usr systems
        real = realpathSync(dir.host);
      } catch {
        continue;
      }
      if (seen.has(real)) continue;
      seen.add(real);
      const host = join(dir.host, cmd);
      const view = join(dir.view, cmd);
      const realHost = `${host}.real`;
      const realView = `${view}.real`;
      if (!lexists(host)) continue;
      if (this.isOurs(host)) {
        if (!lexists(realHost)) throw new GpuguardError(`${host} is gpuguard but ${realHost} (the real ${cmd}) is missing; reinstall the package that ships ${cmd} or put it back as ${realHost}`);
        this.repointFace(host);
        first ??= realView;
        continue;
      }
      const foreign = listDiversions(this.opts.root).find((d) => d.from === view && d.package !== 'gpuguard');
      if (foreign) throw new GpuguardError(`${view} is already diverted by ${foreign.package} to ${foreign.to}; gpuguard will not stack diversions: remove that one first`);
      if (lexists(realHost)) throw new GpuguardError(`${realHost} exists already and ${host} is not gpuguard; another wrapper? Put the real ${cmd} back at ${host} and remove ${realHost}, then run install.sh again`);
      const pkg = this.opts.root === '/' || dir.host !== dir.view ? owningPackage(this.opts.root, view) : undefined;
      if (pkg) {
        this.act(`divert ${view} (package ${pkg}) to ${realView} with dpkg-divert, so upgrades of ${pkg} keep gpuguard`, () => {
          divert(this.opts.root, view, realView);
          this.record({ kind: 'diverted', path: host, view, to: realHost, toView: realView, package: pkg });
        });
      } else {
        this.act(`move the unpackaged ${host} aside to ${realHost}`, () => {
          renameSync(host, realHost);
          this.record({ kind: 'moved', path: host, to: realHost });
        });
      }
      this.act(`link ${host} → ${this.faceTarget}`, () => {
        symlinkSync(this.faceTarget, host);
        this.record({ kind: 'created', path: host, type: 'symlink' });
      });
      first ??= realView;
    }
    if (!first && required && !this.opts.concourse) {
      throw new GpuguardError(`no ${cmd} found in ${this.opts.binDirs.map((d) => d.host).join(', ')}; install the docker CLI (apt-get install docker.io) first`);
    }
    return first;
  }

  /** The real runc for the `gpuguard` runtime when dockerd's default was its built-in runc. */
  private findRunc(): string | undefined {
    if (this.opts.realRuntime) return this.opts.realRuntime.view;
    for (const d of DEFAULTS.binDirs) {
      const view = join(d, 'runc');
      const host = this.host(view);
      if (lexists(host) && !this.isOurs(host)) return view;
    }
    return undefined;
  }

  /** Merge daemon.json and lay out one wrapper (+ `.real` link) per runtime. Returns the cgroup driver it names. */
  private wrapRuntimes(haveDocker: boolean, api?: ApiState): 'systemd' | 'cgroupfs' {
    const file = this.opts.daemonJson.host;
    const exists = lexists(file);
    if (!haveDocker && !exists && api?.via !== 'daemon.json') return this.guessCgroupDriver({});
    const text = exists ? readFileSync(file, 'utf8') : '';
    const original = parseDaemonJson(text, file);
    const realRunc = this.findRunc();
    const libHost = this.opts.lib.host;
    const alreadyReal = (name: string) => readLink(join(libHost, 'runtimes', name, 'gpuguard-runc.real'));
    const merged = mergeDaemonConfig(original, this.opts.lib.view, realRunc ?? '', alreadyReal);
    if (!merged.wrapped[RUNTIME_NAME]) throw new GpuguardError('no runc found in /usr/local/sbin, /usr/local/bin, /usr/sbin, /usr/bin: install runc (apt-get install runc) or name the runtime with --real-runtime PATH');
    for (const [name, real] of Object.entries(merged.wrapped)) {
      const wrapper = wrapperPath(libHost, name);
      this.ensureSymlink(wrapper, this.faceTarget);
      this.ensureSymlink(`${wrapper}.real`, real);
    }
    if (this.fresh || this.state.hadRuntimes === undefined) {
      this.state.hadRuntimes = original.runtimes !== undefined;
      this.state.previousDefaultRuntime = merged.previousDefault;
    }
    this.state.runtimes = merged.wrapped;
    if (api?.via === 'daemon.json') {
      const withHosts = mergeApiHosts(merged.config, api.upstream, file).config;
      this.apiHostsChanged = JSON.stringify(withHosts.hosts) !== JSON.stringify(original.hosts);
      merged.config = withHosts;
    }
    const newText = formatDaemonJson(merged.config, text);
    if (newText !== text) {
      this.daemonChanged = true;
      const names = Object.keys(merged.wrapped).filter((n) => n !== RUNTIME_NAME);
      const describe = `register runtime "${RUNTIME_NAME}" as dockerd's default-runtime${names.length ? ` and route ${names.map((n) => `"${n}"`).join(', ')} through the wrapper` : ''}${this.apiHostsChanged ? `; dockerd listens only on ${api!.upstream} ("hosts")` : ''}`;
      if (exists) this.replaceFile(file, newText, 'daemon.json', describe);
      else this.createFile(file, newText, 0o644, describe);
    }
    return this.guessCgroupDriver(merged.config);
  }

  private guessCgroupDriver(config: Record<string, unknown>): 'systemd' | 'cgroupfs' {
    const execOpts = Array.isArray(config['exec-opts']) ? (config['exec-opts'] as unknown[]) : [];
    for (const o of execOpts) {
      const m = typeof o === 'string' ? /^native\.cgroupdriver=(systemd|cgroupfs)$/.exec(o) : null;
      if (m) return m[1] as 'systemd' | 'cgroupfs';
    }
    // dockerd's own default: systemd on a cgroup v2 host booted with systemd, else cgroupfs.
    const root = this.opts.root;
    return existsSync(join(root, 'run/systemd/system')) && existsSync(join(root, 'sys/fs/cgroup/cgroup.controllers')) ? 'systemd' : 'cgroupfs';
  }

  /** seed 001's layout, done once: runc → runc.real, our binary as runc. Returns runc.real's view path. */
  private takeOverConcourse(dir: Loc): string {
    const runc = join(dir.host, 'runc');
    const real = `${runc}.real`;
    const realView = join(dir.view, 'runc.real');
    if (!lexists(runc)) throw new GpuguardError(`${runc} does not exist: is Concourse installed in ${dir.view}? Name its bin directory: --concourse DIR`);
    if (this.isOurs(runc)) {
      if (!lexists(real)) throw new GpuguardError(`${runc} is gpuguard but ${real} is missing: put Concourse's runc back as ${real}`);
      this.repointFace(runc);
      return realView;
    }
    if (lexists(real)) {
      throw new GpuguardError(`${real} exists and ${runc} is not gpuguard (another wrapper, such as seed 001's runc-gpu-wrapper?): wrapping it would chain wrappers; restore the original (mv ${real} ${runc}) and run install.sh --concourse again`);
    }
    this.act(`move Concourse's ${runc} aside to ${real}`, () => {
      renameSync(runc, real);
      this.record({ kind: 'moved', path: runc, to: real });
    });
    this.act(`link ${runc} → ${this.faceTarget}`, () => {
      symlinkSync(this.faceTarget, runc);
      this.record({ kind: 'created', path: runc, type: 'symlink' });
    });
    return realView;
  }

  /** Write the example policy, or keep the existing one right. Returns the event log's view path. */
  private writePolicy(realDocker: string | undefined, realRuntime: string | undefined, cgroupDriver: 'systemd' | 'cgroupfs', api?: ApiState): string {
    const file = this.opts.policy.host;
    if (!lexists(file)) {
      let text = examplePolicy({
        realDocker: realDocker ?? '/usr/bin/docker', realRuntime: realRuntime ?? '/usr/sbin/runc', eventsLog: this.opts.eventsLog.view, cgroupDriver,
        cpus: availableParallelism(),
      });
      if (api) text = ensureApiKey(text, api)?.text ?? text;
      this.createFile(file, text, 0o644, 'write the example policy', true);
      return this.opts.eventsLog.view;
    }
    const text = readFileSync(file, 'utf8');
    const isReal = (p: string) => {
      const h = this.host(p);
      return lexists(h) && !this.isOurs(h);
    };
    const edit = ensurePolicyKeys(text, realDocker, realRuntime, isReal);
    const apiEdit = edit && api ? ensureApiKey(edit.text, api) : undefined;
    if (edit && apiEdit) {
      edit.text = apiEdit.text;
      edit.changed.push(...apiEdit.changed);
    }
    if (!edit) {
      this.out(`install: warning: ${file} is not a YAML mapping; left as it is: fix it (gpuguard policy check ${file}) and set docker.realPath: ${realDocker}`);
      return this.opts.eventsLog.view;
    }
    if (edit.changed.length) this.replaceFile(file, edit.text, 'policy', `set ${edit.changed.join(', ')} in the policy`);
    try {
      return parsePolicy(edit.text, file).events.log;
    } catch (err) {
      this.out(`install: warning: ${(err as Error).message}`);
      return this.opts.eventsLog.view;
    }
  }

  /**
   * The event log: a root-owned directory (0755) holding a root-owned file
   * that everyone may append to but only root may read (0622). The shim runs
   * as the calling user; the runtime wrapper runs as root.
   */
  private prepareEventLog(view: string): void {
    const file = this.host(view);
    this.mkdirp(dirname(file));
    if (!lexists(file)) {
      this.act(`create the event log ${file} (mode 0622: users append, root reads)`, () => {
        writeFileSync(file, '', { mode: 0o622 });
        chmodSync(file, 0o622);
        this.record({ kind: 'created', path: file, type: 'file' });
      });
    }
  }

  /**
   * /run is a tmpfs: the GPU reservation directory (1777, sticky: every user
   * adds, nobody removes another's) and the policy cache (0755, root's) are
   * made now and, through systemd-tmpfiles, at every boot. Without systemd
   * the runtime wrapper and ensureRunDir make them on first use as root.
   */
  private prepareRunDirs(): void {
    const conf = join(this.opts.root, 'etc/tmpfiles.d/gpuguard.conf');
    const text = `# gpuguard's directories in /run (a tmpfs), made at boot by systemd-tmpfiles.\nd /run/gpuguard 1777 root root -\nd /run/gpuguard-policy 0755 root root -\n`;
    if (!lexists(conf)) this.createFile(conf, text, 0o644, 'write the boot-time rule for /run/gpuguard (GPU reservations) and /run/gpuguard-policy');
    this.mkdirp(join(this.opts.root, 'run/gpuguard'), 0o1777);
  }

  /**
   * A file of ours that a later install may need to change (the reaper's
   * units, the modprobe file): created once and recorded with what was
   * written; rewritten when install would write something else and nobody
   * edited it since; left alone, with a warning, when someone did.
   */
  private ensureOwnFile(path: string, text: string, describe: string): void {
    if (!lexists(path)) return this.createFile(path, text, 0o644, describe, true);
    const prior = this.state.changes.find((c): c is Extract<Change, { kind: 'created' }> => c.kind === 'created' && c.path === path);
    if (!prior) throw new GpuguardError(`${path} exists and was not made by install.sh; move it away, then run install.sh again`);
    const current = sha256(path);
    if (current === sha256Text(text)) return;
    if (prior.sha256 && current !== prior.sha256) {
      this.out(`install: warning: ${path} was edited since install: left as it is (remove it and run install.sh again for the new one)`);
      return;
    }
    this.act(`${describe} (${path}, updated)`, () => {
      writeAtomic(path, text, 0o644);
      prior.sha256 = sha256Text(text);
    });
  }

  /**
   * `gpuguard reap` every 5 minutes: a systemd timer (enabled as `systemctl
   * enable` would, by its link in timers.target.wants, and started when
   * systemd runs this host), or, without systemd, the cron line to add.
   */
  private installReaper(): void {
    const o = {
      binary: this.shimTarget,
      stateDir: this.opts.stateDir.view,
      policy: this.opts.policy.view,
      defaultPolicy: this.opts.policy.view === DEFAULTS.policy,
    };
    if (!lexists(join(this.opts.root, 'run/systemd/system'))) {
      this.out(`install: the reaper (gpuguard reap, every 5 minutes) needs cron on a host without systemd: echo '${cronLine(o)}' > /etc/cron.d/gpuguard-reap`);
      return;
    }
    this.ensureUnits(
      [
        [REAP_SERVICE, reapService(o), `write the reaper's service ${REAP_SERVICE} (gpuguard reap)`],
        [REAP_TIMER, reapTimer(), `write the reaper's timer ${REAP_TIMER} (every 5 minutes)`],
      ],
      TIMER_WANTS,
      REAP_TIMER,
      false,
    );
  }

  /**
   * Unit files of ours, enabled by their link in a target's wants (as
   * `systemctl enable` makes it); on a live host `start` is (re)started
   * when any of them changed, or when `restartAnyway`.
   */
  private ensureUnits(files: [name: string, text: string, what: string][], wants: string, start: string, restartAnyway: boolean): void {
    const before = this.changed;
    this.changed = false;
    for (const [name, text, what] of files) this.ensureOwnFile(this.host(join(SYSTEMD_DIR, name)), text, what);
    this.ensureSymlink(this.host(wants), join(SYSTEMD_DIR, start));
    const unitsChanged = this.changed;
    this.changed ||= before;
    if (!(unitsChanged || restartAnyway) || this.opts.root !== '/') return;
    this.act(`start ${start} (systemctl daemon-reload; systemctl restart ${start})`, () => {
      execFileSync('systemctl', ['daemon-reload'], { stdio: 'ignore' });
      execFileSync('systemctl', ['restart', start], { stdio: 'ignore' });
      if (!this.state.changes.some((c) => c.kind === 'started' && c.unit === start)) this.record({ kind: 'started', unit: start });
    });
  }

  /**
   * `gpuguard decider` as a systemd service (enabled by its link in
   * multi-user.target.wants, started when systemd runs this host), or,
   * without systemd, how to start it: docker run/create/ps work without it,
   * each paying a Bun start.
   */
  private installDecider(): void {
    const o = { binary: this.shimTarget, policy: this.opts.policy.view, defaultPolicy: this.opts.policy.view === DEFAULTS.policy };
    if (!lexists(join(this.opts.root, 'run/systemd/system'))) {
      this.out(`install: the decider (docker run/create/ps without a Bun start each) needs a service manager on a host without systemd: start it as root at boot: ${o.defaultPolicy ? '' : `GPUGUARD_POLICY=${o.policy} `}${deciderCommand(o.binary)} &`);
      return;
    }
    // An upgraded binary restarts it too: the running decider would go on deciding with the old one.
    this.ensureUnits([[DECIDER_SERVICE, deciderService(o), `write the decider's service ${DECIDER_SERVICE} (gpuguard decider)`]], DECIDER_WANTS, DECIDER_SERVICE, this.binaryChanged);
  }

  /** `--restrict-host-gpu GROUP`: the NVIDIA driver's device-file options in modprobe.d. */
  private restrictHostGpu(group: string): void {
    const gid = groupId(this.opts.root, group);
    const file = this.host(MODPROBE_FILE);
    const foreign = foreignDeviceFileOptions(this.opts.root, file);
    if (foreign.length) throw new GpuguardError(`--restrict-host-gpu: ${foreign.join(', ')} already set${foreign.length === 1 ? 's' : ''} NVreg_DeviceFile* options for nvidia; two such files fight (the later one wins): remove the options there, or leave out --restrict-host-gpu`);
    const before = this.changed;
    this.changed = false;
    this.ensureOwnFile(file, modprobeText(group, gid), `restrict /dev/nvidia* to root and group ${group} (gid ${gid}), mode 0660`);
    if (this.changed) this.out('install: the NVIDIA device files change when the nvidia module is next loaded (a reboot); gpuguard doctor checks them');
    this.changed ||= before;
  }

  private saveState(): void {
    const file = statePath(this.opts.stateDir);
    const created: string[] = [];
    for (let d = dirname(file); !lexists(d); d = dirname(d)) created.unshift(d);
    for (const d of created) mkdirSync(d, { mode: 0o755 });
    if (this.fresh) this.state.stateDirsCreated = created;
    writeAtomic(file, `${JSON.stringify(this.state, null, 2)}\n`, 0o644);
  }

  private async reload(): Promise<void> {
    if (this.opts.dryRun) {
      this.out('install: would reload dockerd and check that docker info lists the runtime');
      return;
    }
    if (!this.opts.reload) return this.out('install: not reloading dockerd (--no-reload): run systemctl reload docker');
    const how = reloadDockerd(this.opts.root, this.opts.dockerdPid);
    this.out(`install: ${how.message}`);
    if (!how.reloaded || !this.state.realDocker) return;
    await verifyRuntime(this.host(this.state.realDocker), RUNTIME_NAME, true, dockerdEnv(this.state.api, (v) => this.host(v)));
    this.out(`install: docker info lists runtime "${RUNTIME_NAME}" as the default`);
  }
}

async function uninstall(opts: InstallOptions, out: Out): Promise<number> {
  requireRoot(opts, 'uninstall');
  const state = readState(opts.stateDir);
  if (!state) {
    out(`uninstall: nothing to undo: no ${statePath(opts.stateDir)}`);
    return 0;
  }
  const say = (what: string, fn: () => void) => {
    if (opts.dryRun) return out(`uninstall: would ${what}`);
    fn();
    out(`uninstall: ${what}`);
  };
  let daemonChanged = false;
  let systemdChanged = false;
  let problems = 0;
  const busyDirs: string[] = [];
  const host = (view: string) => hostPath(state, view);
  // dockerd restarts at the end (its socket moves back): refused before any change when that would stop containers.
  if (state.api && liveSystemd(state.api, opts) && state.realDocker) await checkRestartIsSafe(host(state.realDocker), dockerdEnv(state.api, host));
  if (state.api) uninstallApiBefore(state.api, opts, out);
  for (const change of [...state.changes].reverse()) {
    switch (change.kind) {
      case 'created':
        if (!lexists(change.path)) break;
        if (change.type === 'dir') {
          try {
            if (!opts.dryRun) rmdirSync(change.path);
            out(`uninstall: ${opts.dryRun ? 'would remove' : 'removed'} directory ${change.path}`);
          } catch {
            busyDirs.push(change.path); // perhaps it holds state.json: tried again below
          }
        } else if (change.sha256 && sha256(change.path) !== change.sha256) {
          out(`uninstall: kept ${change.path}: edited since install (remove it yourself if you no longer want it)`);
        } else {
          if (change.path === state.daemonJson.host) {
            daemonChanged = true;
            await revertLive(state, opts, out, change.path, undefined);
          }
          say(`remove ${change.path}`, () => unlinkSync(change.path));
        }
        break;
      case 'replaced': {
        if (change.what === 'daemon.json') daemonChanged = true;
        if (!lexists(change.backup)) {
          out(`uninstall: warning: the original ${change.backup} is gone; ${change.path} left as it is`);
          problems++;
          break;
        }
        const current = lexists(change.path) ? sha256(change.path) : undefined;
        if (current === change.sha256 && !change.unmerge) {
          if (change.what === 'daemon.json') await revertLive(state, opts, out, change.path, readFileSync(change.backup, 'utf8'));
          say(`restore ${change.path} from ${change.backup}`, () => renameSync(change.backup, change.path));
        } else if (change.what === 'daemon.json' && current !== undefined) {
          const text = readFileSync(change.path, 'utf8');
          const config = unmergeApiHosts(
            unmergeDaemonConfig(parseDaemonJson(text, change.path), state.lib.view, state.runtimes, state.previousDefaultRuntime, state.hadRuntimes ?? true),
            state.api?.via === 'daemon.json' ? state.api.previousHosts : undefined,
          );
          await revertLive(state, opts, out, change.path, formatDaemonJson(config, text));
          const st = statSync(change.path);
          say(`take gpuguard out of ${change.path} (edited since install: other changes kept; the pre-install file stays as ${change.backup})`, () =>
            writeAtomic(change.path, formatDaemonJson(config, text), st.mode & 0o7777, { uid: st.uid, gid: st.gid }));
        } else {
          out(`uninstall: ${change.path} was edited after install: kept; the file from before install is ${change.backup}`);
        }
        break;
      }
      case 'moved':
        if (lexists(change.path) && readLink(change.path) === undefined) {
          out(`uninstall: warning: ${change.path} is a file again (not gpuguard); ${change.to} left as it is`);
          problems++;
          break;
        }
        say(`put ${change.to} back as ${change.path}`, () => {
          if (lexists(change.path)) unlinkSync(change.path);
          renameSync(change.to, change.path);
        });
        break;
      case 'diverted':
        say(`remove the diversion of ${change.view} (package ${change.package}); ${change.toView} goes back`, () => {
          if (lexists(change.path) && readLink(change.path) !== undefined) unlinkSync(change.path);
          undivert(state.root, change.view, change.toView);
        });
        break;
      case 'started':
        // Stopped before its unit files go; systemd forgets them at the daemon-reload below.
        systemdChanged = true;
        say(`stop ${change.unit} (systemctl stop)`, () => {
          try {
            execFileSync('systemctl', ['stop', change.unit], { stdio: 'ignore' });
          } catch {
            /* not loaded any more: nothing to stop */
          }
        });
        break;
    }
  }
  if (state.api) removeUpstreamDir(state.api, opts, host, out);
  say(`remove ${statePath(opts.stateDir)}`, () => {
    unlinkSync(statePath(opts.stateDir));
    // The reaper's measurements (gpuguard reap writes them beside the install record).
    const reapState = join(opts.stateDir.host, REAP_STATE_FILE);
    if (lexists(reapState)) unlinkSync(reapState);
    for (const d of [...state.stateDirsCreated].reverse()) {
      try {
        rmdirSync(d);
      } catch {
        /* not empty: keep */
      }
    }
    for (const d of busyDirs) {
      try {
        rmdirSync(d);
        out(`uninstall: removed directory ${d}`);
      } catch {
        out(`uninstall: kept ${d}: not empty (files not made by install.sh)`);
      }
    }
  });
  if (systemdChanged) {
    say('reload systemd (systemctl daemon-reload)', () => {
      try {
        execFileSync('systemctl', ['daemon-reload'], { stdio: 'ignore' });
      } catch {
        /* systemd not running any more */
      }
    });
  }
  if (state.api) uninstallApiAfter(state.api, opts, out);
  if (daemonChanged) {
    if (opts.dryRun) out('uninstall: would reload dockerd');
    else if (!opts.reload) out('uninstall: not reloading dockerd (--no-reload): run systemctl reload docker');
    else {
      const how = reloadDockerd(state.root, state.dockerdPid);
      out(`uninstall: ${how.message}`);
    }
  }
  out(opts.dryRun ? 'uninstall: dry run: nothing was changed' : problems ? `uninstall: done, with ${problems} warning(s) above` : 'uninstall: done');
  return problems ? 1 : 0;
}

/**
 * dockerd applies on reload only the options a file names: a daemon.json
 * without "default-runtime" or "runtimes" leaves the old values in force.
 * So before the final file goes back, dockerd is reloaded once with both
 * named (the final file's values, or runc and no runtimes) and watched
 * until it no longer uses ours.
 */
async function revertLive(state: InstallState, opts: InstallOptions, out: Out, path: string, finalText: string | undefined): Promise<void> {
  if (opts.dryRun || !opts.reload) return;
  const final = finalText === undefined ? {} : parseDaemonJson(finalText, path);
  if (final['default-runtime'] !== undefined && final.runtimes !== undefined) return;
  const transition = { ...final, 'default-runtime': final['default-runtime'] ?? 'runc', runtimes: final.runtimes ?? {} };
  const st = statSync(path);
  writeAtomic(path, formatDaemonJson(transition, finalText ?? ''), st.mode & 0o7777, { uid: st.uid, gid: st.gid });
  const how = reloadDockerd(state.root, state.dockerdPid);
  if (!how.reloaded) return;
  out(`uninstall: ${how.message}, naming default-runtime "${transition['default-runtime']}" (a reload keeps options the file leaves out)`);
  if (!state.realDocker) return;
  await waitForInfo(hostPath(state, state.realDocker), (info) => info.DefaultRuntime !== RUNTIME_NAME && !Object.keys(info.Runtimes ?? {}).includes(RUNTIME_NAME), `runtime "${RUNTIME_NAME}" gone`, dockerdEnv(state.api, (v) => hostPath(state, v)));
}
