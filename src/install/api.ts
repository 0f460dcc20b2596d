/**
 * API mode (`install.sh --api`): `gpuguard serve` owns the socket users
 * reach and dockerd moves behind it to a root-only socket (DESIGN.md, "The
 * API face"). What listens where afterwards:
 *
 *   api.listen   (/var/run/docker.sock, group docker, 0660)  the face; with
 *                systemd its socket unit gpuguard-api.socket holds it
 *   api.upstream (/run/gpuguard-dockerd/docker.sock)        dockerd, in a
 *                root-only 0700 directory of its own
 *
 * How dockerd is moved depends on how it is started, and is done in exactly
 * one place (dockerd refuses to start with `hosts` in daemon.json and `-H`
 * on its command line):
 *  - socket-activated (`-H fd://`, Debian's docker.service + docker.socket):
 *    a docker.socket drop-in replaces its ListenStream with the upstream;
 *    docker.service is left as packaged.
 *  - no `-H` at all (sysvinit's /etc/init.d/docker, a plain dockerd):
 *    daemon.json `hosts`.
 *  - any other `-H`: refused, naming where it is set.
 *
 * The docker shim is not installed in this mode: the real CLI stays first on
 * PATH and the face decides every request, so no request is decided twice
 * (the shim's labels would even be refused by the face as reserved). That is
 * simpler than a shim that has to learn, on every call, that it must step
 * aside. The runtime wrapper stays: it sees every container of every client.
 */
import { execFileSync } from 'node:child_process';
import { chmodSync, existsSync, lstatSync, mkdirSync, readFileSync, rmdirSync, unlinkSync } from 'node:fs';
import { dirname } from 'node:path';
import { GpuguardError } from '../errors.ts';
import { parsePolicy } from '../policy/load.ts';
import { API_DEFAULTS, type ApiT } from '../policy/schema.ts';
import { squattable } from '../sys/root-only.ts';
import { dockerdFlags, parseHost, parseListenStream, samePath, type DockerdFlags } from './dockerd-hosts.ts';
import type { DaemonConfig } from './daemon-json.ts';
import type { InstallOptions } from './layout.ts';
import { lexists } from './state.ts';
import { execArgv, listSetting, loadUnit, parseEnvironmentFile, serviceEnvironment, splitCommand, type LoadedUnit } from './systemd-units.ts';

/** The face's systemd units: FACE_UNIT.socket and FACE_UNIT.service. */
export const FACE_UNIT = 'gpuguard-api';
export const SYSTEMD_DIR = '/etc/systemd/system';
export const DOCKER_SOCKET_DROP_IN = `${SYSTEMD_DIR}/docker.socket.d/${FACE_UNIT}.conf`;
export const API_TMPFILES = `/etc/tmpfiles.d/${FACE_UNIT}.conf`;
const WANTS_LINK = `${SYSTEMD_DIR}/sockets.target.wants/${FACE_UNIT}.socket`;

/** What state.json remembers of API mode. */
export interface ApiState {
  listen: string;
  upstream: string;
  group: string;
  mode: string;
  /** How dockerd was moved behind the face. */
  via: 'docker.socket' | 'daemon.json';
  /** The host runs systemd (units written, started with systemctl). */
  systemd: boolean;
  /** daemon.json `hosts` before install (null: no such key); only with via daemon.json. */
  previousHosts?: string[] | null;
  /**
   * install made the upstream's directory. It goes last on uninstall, after
   * dockerd was last asked there (it listens there until it restarts).
   */
  createdDir?: boolean;
}

/** What the installer offers the API steps (a subset of its own helpers). */
export interface InstallSteps {
  readonly opts: InstallOptions;
  act(what: string, fn: () => void): void;
  host(view: string): string;
  out(line: string): void;
  mkdirp(dir: string, mode?: number): void;
  /** Create a file, or rewrite one install created earlier; true when it (would have) changed. */
  ensureFile(path: string, text: string, mode: number, describe: string): boolean;
  ensureSymlink(path: string, target: string): void;
}

/** The `api` settings of the policy at `file`, or the defaults when there is none. A broken policy is refused: the paths come from it. */
export function readApiSettings(file: string): ApiT {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    return { ...API_DEFAULTS };
  }
  try {
    return parsePolicy(text, file).api;
  } catch (err) {
    throw new GpuguardError(`${(err as Error).message} — API mode reads api.listen and api.upstream from the policy: fix it (gpuguard policy check ${file}), then run install.sh --api again`, 1, { cause: err });
  }
}

function readProcArgv(pid: number): string[] | undefined {
  try {
    const raw = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
    return raw.split('\0').filter((_, i, a) => i < a.length - 1 || a[i] !== '');
  } catch {
    return undefined;
  }
}

/** The command line of the running dockerd, from its pidfile. */
export function liveDockerdArgv(pidfile: string | undefined): { pid: number; argv: string[] } | undefined {
  if (!pidfile) return undefined;
  let pid: number;
  try {
    pid = Number.parseInt(readFileSync(pidfile, 'utf8').trim(), 10);
  } catch {
    return undefined;
  }
  const argv = Number.isFinite(pid) && pid > 0 ? readProcArgv(pid) : undefined;
  return argv ? { pid, argv } : undefined;
}

export interface DockerdLaunch {
  /** Flags from each place that starts dockerd, with where they were read. */
  sources: { from: string; flags: DockerdFlags }[];
  systemd: boolean;
  service?: LoadedUnit;
  socket?: LoadedUnit;
}

/** How dockerd is started here: docker.service's ExecStart (systemd) or /etc/default/docker (sysvinit), and the live command line. */
export function dockerdLaunch(root: string, host: (view: string) => string, pidfile: string | undefined): DockerdLaunch {
  const systemd = lexists(host('/run/systemd/system'));
  const sources: DockerdLaunch['sources'] = [];
  const service = systemd ? loadUnit('docker.service', host) : undefined;
  const socket = systemd ? loadUnit('docker.socket', host) : undefined;
  if (service) {
    const exec = listSetting(service.settings, 'Service', 'ExecStart').at(-1);
    if (exec) {
      // Flags written in the unit, and those that come in through its variables ($DOCKER_OPTS from /etc/default/docker), named apart.
      const own = dockerdFlags(execArgv(exec.value));
      const all = dockerdFlags(execArgv(exec.value, serviceEnvironment(service, host)));
      sources.push({ from: exec.file, flags: own });
      const viaEnv = all.hosts.filter((h) => !own.hosts.includes(h));
      if (viaEnv.length || (all.tlsverify && !own.tlsverify)) {
        const vars = [...exec.value.matchAll(/\$\{?(\w+)\}?/g)].map((m) => `$${m[1]}`);
        const files = listSetting(service.settings, 'Service', 'EnvironmentFile').map((f) => f.value.replace(/^-/, ''));
        sources.push({ from: `${vars.join(' ')} from ${files.join(', ') || 'Environment='}, in ${exec.file}'s ExecStart`, flags: { hosts: viaEnv, tlsverify: all.tlsverify } });
      }
    }
  } else if (!systemd) {
    // sysvinit: /etc/init.d/docker runs dockerd -p /var/run/docker.pid $DOCKER_OPTS from /etc/default/docker.
    try {
      const opts = parseEnvironmentFile(readFileSync(host('/etc/default/docker'), 'utf8')).DOCKER_OPTS ?? '';
      if (opts.trim()) sources.push({ from: '/etc/default/docker (DOCKER_OPTS)', flags: dockerdFlags(['dockerd', ...splitCommand(opts)]) });
    } catch {
      /* no defaults file */
    }
  }
  const live = root === '/' || pidfile ? liveDockerdArgv(pidfile) : undefined;
  if (live) sources.push({ from: `the running dockerd (pid ${live.pid})`, flags: dockerdFlags(live.argv) });
  return { sources, systemd, service, socket };
}


/**
 * Decide how dockerd moves behind the face, or refuse with the reason and the
 * fix. Nothing is changed here.
 */
export function planApi(api: ApiT, launch: DockerdLaunch, daemon: DaemonConfig, daemonFile: string, host: (view: string) => string, root: string): ApiState {
  const upstreamDir = dirname(api.upstream);
  const upstreamHost = host(api.upstream);
  const top = root !== '/' && upstreamHost.startsWith(`${root.replace(/\/$/, '')}/`) ? root : '/';
  const problem = squattable(upstreamHost, top);
  if (problem) {
    throw new GpuguardError(`api.upstream ${api.upstream} is not a place only root controls: ${problem}; a user could put a socket there before dockerd does. Set api.upstream in the policy to a path in a root-only directory, such as ${API_DEFAULTS.upstream}, then run install.sh --api again`);
  }
  try {
    const st = lstatSync(host(upstreamDir));
    if ((st.mode & 0o077) !== 0) throw new GpuguardError(`${upstreamDir} (for api.upstream) exists with mode ${(st.mode & 0o7777).toString(8).padStart(4, '0')}: dockerd's socket must be root's alone; chmod 0700 ${upstreamDir}, then run install.sh --api again`);
  } catch (err) {
    if (err instanceof GpuguardError) throw err;
  }
  if (samePath(api.listen, api.upstream)) throw new GpuguardError('api.listen and api.upstream are the same socket: dockerd needs one of its own behind the face');

  let fd: string | undefined;
  for (const { from, flags } of launch.sources) {
    for (const spec of flags.hosts) {
      const l = parseHost(spec);
      if (l.kind === 'fd') {
        fd ??= from;
        continue;
      }
      throw new GpuguardError(`dockerd is started with -H ${spec} (${from}): it would keep listening there, around the face; remove that -H (with systemd, docker.socket hands dockerd its socket; otherwise daemon.json "hosts" is where install.sh --api puts it), then run install.sh --api again`);
    }
  }
  const base: Omit<ApiState, 'via'> = { listen: api.listen, upstream: api.upstream, group: api.group, mode: api.mode, systemd: launch.systemd };
  if (fd) {
    if (!launch.systemd || !launch.socket) throw new GpuguardError(`dockerd is started with -H fd:// (${fd}) but there is no systemd docker.socket to move: install.sh --api cannot tell where its socket comes from`);
    if (daemon.hosts !== undefined) throw new GpuguardError(`${daemonFile} has "hosts" and dockerd is started with -H fd:// (${fd}): dockerd refuses to start with both; remove "hosts" from ${daemonFile}, then run install.sh --api again`);
    for (const s of listSetting(launch.socket.settings, 'Socket', 'ListenStream')) {
      if (s.file === DOCKER_SOCKET_DROP_IN) continue;
      const l = parseListenStream(s.value);
      if (s.file !== launch.socket.file) throw new GpuguardError(`docker.socket also gets ListenStream=${s.value} from ${s.file}: dockerd would keep listening there, around the face; remove that line, then run install.sh --api again`);
      if (l.kind === 'tcp') throw new GpuguardError(`docker.socket listens on ${s.value} (TCP, ${s.file}): dockerd would keep answering there without TLS, around the face; remove it with a drop-in, then run install.sh --api again`);
    }
    return { ...base, via: 'docker.socket' };
  }
  if (launch.systemd && launch.socket) {
    const held = listSetting(launch.socket.settings, 'Socket', 'ListenStream').find((s) => s.file !== DOCKER_SOCKET_DROP_IN && samePath(s.value, api.listen));
    if (held) throw new GpuguardError(`docker.socket holds ${held.value} (${held.file}) but docker.service does not take it (no -H fd://): the face could not listen there; disable docker.socket (systemctl disable --now docker.socket), then run install.sh --api again`);
  }
  return { ...base, via: 'daemon.json' };
}

/** docker.socket drop-in: dockerd's only listener is the upstream, root's alone. */
export function dockerSocketDropIn(s: ApiState): string {
  return `# Written by gpuguard install.sh --api; removed by install.sh --uninstall.
# API mode: dockerd listens only here, on a socket only root can reach.
# ${FACE_UNIT}.socket owns ${s.listen}, the socket users reach.
[Socket]
ListenStream=
ListenStream=${unitPath(s.upstream)}
SocketUser=root
SocketGroup=root
SocketMode=0600
DirectoryMode=0700
`;
}

/** systemd warns about socket paths under the legacy /var/run; it is /run. */
function unitPath(p: string): string {
  return p.replace(/^\/var\/run\//, '/run/');
}

export function faceSocketUnit(s: ApiState): string {
  return `# Written by gpuguard install.sh --api; removed by install.sh --uninstall.
# Change api.listen, api.group or api.mode in the policy and run install.sh --api again.
[Unit]
Description=gpuguard API face socket (the Docker socket users reach)

[Socket]
ListenStream=${unitPath(s.listen)}
SocketUser=root
SocketGroup=${s.group}
SocketMode=${s.mode.padStart(4, '0')}

[Install]
WantedBy=sockets.target
`;
}

export function faceServiceUnit(binary: string, policy: string | undefined): string {
  return `# Written by gpuguard install.sh --api; removed by install.sh --uninstall.
# Local changes: systemctl edit ${FACE_UNIT}.service (a drop-in survives reinstalls).
[Unit]
Description=gpuguard API face: every Docker API request decided by the site policy
Requires=${FACE_UNIT}.socket
After=${FACE_UNIT}.socket docker.socket docker.service

[Service]
Type=simple
ExecStart=${binary} serve
ExecReload=/bin/kill -HUP $MAINPID
${policy ? `Environment=GPUGUARD_POLICY=${policy}\n` : ''}Restart=always
RestartSec=1s
# SIGTERM: the face stops accepting and drains the requests in flight.
TimeoutStopSec=30s

[Install]
Also=${FACE_UNIT}.socket
`;
}

export interface ApiFilesResult {
  /** dockerd's listener changed: it must restart to move. */
  dockerMoved: boolean;
  /** The face's units changed. */
  faceChanged: boolean;
  /** The binary was upgraded: the running face still runs the old one. */
  binaryChanged?: boolean;
}

/**
 * The files of API mode: the upstream's root-only directory (now, and at
 * boot through tmpfiles.d), and with systemd the docker.socket drop-in and
 * the face's units, enabled by the sockets.target.wants link. daemon.json
 * `hosts` is merged with the runtimes (one write of that file).
 */
export function installApiFiles(steps: InstallSteps, s: ApiState, binary: string, policy: string | undefined, hostsChanged: boolean): ApiFilesResult {
  const h = (v: string) => steps.host(v);
  const dir = dirname(s.upstream);
  steps.mkdirp(dirname(h(dir)));
  if (!existsSync(h(dir))) {
    steps.act(`create directory ${h(dir)} (0700: dockerd's socket, root's alone)`, () => {
      mkdirSync(h(dir), { mode: 0o700 });
      chmodSync(h(dir), 0o700);
    });
    s.createdDir = true;
  }
  steps.ensureFile(h(API_TMPFILES), `# gpuguard API mode: dockerd's socket directory, root's alone (dockerd does not create it).\nd ${dir} 0700 root root -\n`, 0o644, `write the boot-time rule for ${dir} (dockerd's socket, root only)`);
  let dockerMoved = hostsChanged;
  let faceChanged = false;
  if (s.systemd) {
    if (s.via === 'docker.socket') {
      dockerMoved = steps.ensureFile(h(DOCKER_SOCKET_DROP_IN), dockerSocketDropIn(s), 0o644, `move docker.socket to ${s.upstream} (root only, 0600) with a drop-in`) || dockerMoved;
    }
    faceChanged = steps.ensureFile(h(`${SYSTEMD_DIR}/${FACE_UNIT}.socket`), faceSocketUnit(s), 0o644, `write ${FACE_UNIT}.socket: the face listens on ${s.listen} (group ${s.group}, mode ${s.mode})`) || faceChanged;
    faceChanged = steps.ensureFile(h(`${SYSTEMD_DIR}/${FACE_UNIT}.service`), faceServiceUnit(binary, policy), 0o644, `write ${FACE_UNIT}.service: ${binary} serve`) || faceChanged;
    steps.ensureSymlink(h(WANTS_LINK), `${SYSTEMD_DIR}/${FACE_UNIT}.socket`);
  }
  return { dockerMoved, faceChanged };
}

/** Exactly how to start things on a host without systemd (printed by install, and in docs/operations.md). */
export function manualSteps(s: ApiState, binary: string, policy: string | undefined, root: string, haveInitScript: boolean): string[] {
  const env = policy ? `GPUGUARD_POLICY=${policy} ` : '';
  const restart = haveInitScript ? 'restart dockerd (service docker restart)' : 'restart dockerd (however this host starts it)';
  return [
    `no systemd here: restart dockerd and start the face yourself, now and at every boot, in this order:`,
    `  1. install -d -m 0700 -o root -g root ${dirname(s.upstream)}   (dockerd does not create it, and /run is emptied at boot)`,
    s.via === 'daemon.json'
      ? `  2. ${restart}: dockerd reads "hosts" only when it starts; it then listens on ${s.upstream} only`
      : `  2. ${restart}`,
    `  3. as root, keep running: ${env}${binary} serve   (listens on ${s.listen}, group ${s.group}, mode ${s.mode}; logs to stderr; SIGHUP reloads the policy, SIGTERM drains)`,
    `  then check: ${binary} doctor${root !== '/' ? ` --root ${root}` : ''}`,
  ];
}

function systemctl(args: string[]): void {
  try {
    execFileSync('systemctl', args, { stdio: ['ignore', 'ignore', 'pipe'] });
  } catch (err) {
    const why = String((err as { stderr?: Buffer }).stderr ?? err).trim().split('\n')[0];
    throw new GpuguardError(`systemctl ${args.join(' ')} failed: ${why}; see journalctl -u ${args.at(-1)}`, 1, { cause: err });
  }
}

/** The systemctl calls that move dockerd (restart on its new socket) and (re)start the face, in order. */
export function systemdStartPlan(s: ApiState, flags: ApiFilesResult): string[][] {
  const plan: string[][] = [['daemon-reload']];
  const dockerUnits = s.via === 'docker.socket' ? ['docker.service', 'docker.socket'] : ['docker.service'];
  if (flags.dockerMoved) {
    // Stop first, so that the face's socket unit can take the path dockerd's side held.
    plan.push(['stop', `${FACE_UNIT}.service`, `${FACE_UNIT}.socket`, ...dockerUnits]);
    plan.push(['start', ...[...dockerUnits].reverse()]);
    plan.push(['start', `${FACE_UNIT}.socket`, `${FACE_UNIT}.service`]);
  } else if (flags.faceChanged) {
    plan.push(['stop', `${FACE_UNIT}.service`, `${FACE_UNIT}.socket`]);
    plan.push(['start', `${FACE_UNIT}.socket`, `${FACE_UNIT}.service`]);
  } else if (flags.binaryChanged) {
    // The socket stays with systemd: clients wait for the new face instead of being refused.
    plan.push(['restart', `${FACE_UNIT}.service`]);
  }
  return plan;
}

/** The systemctl calls of uninstall: the face stops before its files go; dockerd restarts on its old socket after. */
export function systemdStopPlan(s: ApiState): { before: string[][]; after: string[][] } {
  const dockerUnits = s.via === 'docker.socket' ? ['docker.service', 'docker.socket'] : ['docker.service'];
  return {
    before: [['stop', `${FACE_UNIT}.service`, `${FACE_UNIT}.socket`]],
    after: [['daemon-reload'], ['stop', ...dockerUnits], ['start', ...[...dockerUnits].reverse()]],
  };
}

/** Live changes happen only on the real host with systemd running; anything else is told what to do. */
export function liveSystemd(s: ApiState, opts: InstallOptions): boolean {
  return s.systemd && opts.root === '/' && existsSync('/run/systemd/system');
}

/**
 * Before dockerd restarts on its new socket: running containers stop with it
 * unless live-restore is on. Refused rather than done behind the operator's back.
 */
export async function checkRestartIsSafe(realDocker: string, env: NodeJS.ProcessEnv): Promise<void> {
  const { dockerInfo } = await import('../docker/gateway.ts');
  let info;
  try {
    info = await dockerInfo(realDocker, env);
  } catch {
    return; // dockerd is not running: nothing to stop
  }
  const running = info.ContainersRunning ?? 0;
  if (running > 0 && !info.LiveRestoreEnabled) {
    throw new GpuguardError(`dockerd must restart to move its socket, and ${running} container(s) are running without live-restore: they would stop. Stop them first, or set "live-restore": true in daemon.json and systemctl reload docker, then run it again`);
  }
}

/** Run the live part of install: restart dockerd and start the face with systemd, or say exactly how without it. */
export async function applyApiLive(s: ApiState, flags: ApiFilesResult, opts: InstallOptions, out: (l: string) => void, binary: string, policy: string | undefined): Promise<void> {
  if (!flags.dockerMoved && !flags.faceChanged && !flags.binaryChanged) return;
  if (opts.dryRun) {
    if (s.systemd) for (const c of systemdStartPlan(s, flags)) out(`install: would run systemctl ${c.join(' ')}`);
    return;
  }
  if (!s.systemd && !flags.dockerMoved && !flags.faceChanged) {
    out(`install: restart the face so that it runs the new binary: SIGTERM to gpuguard serve (it drains), then start it again as before`);
    return;
  }
  if (!s.systemd || !liveSystemd(s, opts)) {
    if (s.systemd) {
      out(`install: not restarting dockerd or starting the face (--root ${opts.root}): on that host run systemctl daemon-reload, then systemctl restart ${s.via === 'docker.socket' ? 'docker.socket docker.service' : 'docker.service'} and systemctl start ${FACE_UNIT}.socket`);
      return;
    }
    for (const line of manualSteps(s, binary, policy, opts.root, existsSync(`${opts.root.replace(/\/$/, '')}/etc/init.d/docker`))) out(`install: ${line}`);
    return;
  }
  for (const c of systemdStartPlan(s, flags)) {
    systemctl(c);
    out(`install: systemctl ${c.join(' ')}`);
  }
  const { apiGet } = await import('../docker/api.ts');
  const deadline = Date.now() + 10_000;
  for (;;) {
    try {
      const r = await apiGet(s.listen, '/_gpuguard/status');
      if (r.status === 200) return out(`install: the face answers on ${s.listen}`);
    } catch {
      /* not yet */
    }
    if (Date.now() > deadline) throw new GpuguardError(`the face does not answer on ${s.listen} after starting: journalctl -u ${FACE_UNIT}.service says why`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** Uninstall, before files go: stop the face (its socket is about to be dockerd's again). */
export function uninstallApiBefore(s: ApiState, opts: InstallOptions, out: (l: string) => void): void {
  if (opts.dryRun) {
    if (liveSystemd(s, opts)) for (const c of systemdStopPlan(s).before) out(`uninstall: would run systemctl ${c.join(' ')}`);
    return;
  }
  if (liveSystemd(s, opts)) {
    for (const c of systemdStopPlan(s).before) {
      systemctl(c);
      out(`uninstall: systemctl ${c.join(' ')}`);
    }
  } else if (!s.systemd) out(`uninstall: stop the face (${opts.lib.view}/gpuguard serve) now: its socket ${s.listen} is about to be dockerd's again`);
}

/** Uninstall, after files went back: dockerd restarts on its old socket (or the operator is told how). */
export function uninstallApiAfter(s: ApiState, opts: InstallOptions, out: (l: string) => void): void {
  if (opts.dryRun) {
    if (liveSystemd(s, opts)) for (const c of systemdStopPlan(s).after) out(`uninstall: would run systemctl ${c.join(' ')}`);
    return;
  }
  if (liveSystemd(s, opts)) {
    for (const c of systemdStopPlan(s).after) {
      systemctl(c);
      out(`uninstall: systemctl ${c.join(' ')}`);
    }
    return;
  }
  const how = s.systemd ? `systemctl daemon-reload && systemctl restart ${s.via === 'docker.socket' ? 'docker.socket docker.service' : 'docker.service'}` : existsSync(`${opts.root.replace(/\/$/, '')}/etc/init.d/docker`) ? 'service docker restart' : 'however this host starts it';
  out(`uninstall: now restart dockerd (${how}): it listens where it did before install once it starts again`);
}

/**
 * Uninstall, after dockerd was last asked on it: the upstream's directory,
 * with dockerd's socket in it (a root-owned socket; anything else keeps the
 * directory). dockerd, until it restarts, keeps listening on a socket nobody
 * can name any more.
 */
export function removeUpstreamDir(s: ApiState, opts: InstallOptions, host: (view: string) => string, out: (l: string) => void): void {
  if (!s.createdDir) return;
  const dir = host(dirname(s.upstream));
  const sock = host(s.upstream);
  if (opts.dryRun) return out(`uninstall: would remove directory ${dir} (dockerd's upstream socket)`);
  try {
    const st = lstatSync(sock);
    if (st.isSocket() && st.uid === 0) unlinkSync(sock);
  } catch {
    /* gone with dockerd */
  }
  try {
    rmdirSync(dir);
    out(`uninstall: removed directory ${dir} (dockerd's upstream socket)`);
  } catch {
    if (existsSync(dir)) out(`uninstall: kept ${dir}: not empty (files not made by install.sh)`);
  }
}

/** Where root reaches dockerd now: its upstream socket once it listens there, else the client's default. */
export function dockerdEnv(s: ApiState | undefined, host: (view: string) => string): NodeJS.ProcessEnv {
  if (!s) return process.env;
  try {
    if (lstatSync(host(s.upstream)).isSocket()) return { ...process.env, DOCKER_HOST: `unix://${host(s.upstream)}` };
  } catch {
    /* not moved yet */
  }
  return process.env;
}
