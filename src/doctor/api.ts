/**
 * doctor's checks of the boundary (API mode, DESIGN "The API face"): the
 * socket users reach is gpuguard's face, dockerd's own socket is root's
 * alone and dockerd listens nowhere else, the face answers (for root and for
 * a user), and — in every mode — no TCP listener of dockerd without TLS
 * client verification. Live facts come from the sockets themselves and
 * /proc (where dockerd really listens); configured ones from daemon.json,
 * dockerd's command line and the systemd units.
 */
import { execFileSync } from 'node:child_process';
import { lstatSync, readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { z } from 'zod';
import type { Policy } from '../policy/schema.ts';
import { reachableByOthers, squattable } from '../sys/root-only.ts';
import { dockerdLaunch, FACE_UNIT, type ApiState } from '../install/api.ts';
import { parseHost, parseListenStream, samePath, type Listener } from '../install/dockerd-hosts.ts';
import type { DaemonConfig } from '../install/daemon-json.ts';
import { listSetting } from '../install/systemd-units.ts';
import type { CheckResult, Status } from './index.ts';

export interface ApiDoctorContext {
  root: string;
  policy: Policy;
  /** API mode as install.sh recorded it (undefined: shim mode, or not installed). */
  api: ApiState | undefined;
  daemon: DaemonConfig | undefined;
  daemonFile: string;
  /** dockerd's pidfile, when known. */
  dockerdPid: string | undefined;
  host(view: string): string;
  /** A regular user to try the sockets as (runuser), when there is one. */
  sampleUser(): string | undefined;
  /** A real docker CLI, for trying the sockets as that user. */
  realCli(): string | undefined;
  add(check: string, status: Status, message: string, fix?: string): void;
}

/** GET /_gpuguard/status, as `gpuguard serve` answers it (validated here, at the edge). */
const FaceStatus = z.looseObject({ gpuguard: z.string(), pid: z.number().optional(), upstream: z.string().optional(), policy: z.string().optional() });

/** Sockets a live dockerd listens on, from /proc: unix paths and TCP addresses (ip:port). */
export function liveListeners(pid: number): { unix: string[]; tcp: string[] } | undefined {
  const inodes = new Set<string>();
  try {
    for (const fd of readdirSync(`/proc/${pid}/fd`)) {
      try {
        const m = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`));
        if (m) inodes.add(m[1]!);
      } catch {
        /* closed meanwhile */
      }
    }
  } catch {
    return undefined;
  }
  const unix: string[] = [];
  try {
    // Num RefCount Protocol Flags Type St Inode Path; Flags 00010000 = listening (__SO_ACCEPTCON)
    for (const line of readFileSync(`/proc/${pid}/net/unix`, 'utf8').split('\n').slice(1)) {
      const f = line.trim().split(/\s+/);
      if (f.length >= 8 && (Number.parseInt(f[3]!, 16) & 0x10000) !== 0 && inodes.has(f[6]!)) unix.push(f.slice(7).join(' '));
    }
  } catch {
    /* no procfs */
  }
  const tcp: string[] = [];
  for (const file of ['tcp', 'tcp6']) {
    try {
      for (const line of readFileSync(`/proc/${pid}/net/${file}`, 'utf8').split('\n').slice(1)) {
        const f = line.trim().split(/\s+/);
        if (f.length >= 10 && f[3] === '0A' && inodes.has(f[9]!)) tcp.push(hexAddress(f[1]!));
      }
    } catch {
      /* no IPv6 */
    }
  }
  return { unix, tcp };
}

/** /proc/net/tcp's "0100007F:0CEA" as 127.0.0.1:3306 (IPv6 shown in hex groups). */
function hexAddress(a: string): string {
  const [ip, port] = a.split(':');
  const p = Number.parseInt(port!, 16);
  if (ip!.length === 8) return `${[0, 1, 2, 3].map((i) => Number.parseInt(ip!.slice(6 - 2 * i, 8 - 2 * i), 16)).join('.')}:${p}`;
  return `[${ip}]:${p}`;
}

function dockerdPidOf(pidfile: string | undefined): number | undefined {
  if (!pidfile) return undefined;
  try {
    const pid = Number.parseInt(readFileSync(pidfile, 'utf8').trim(), 10);
    process.kill(pid, 0);
    return pid;
  } catch {
    return undefined;
  }
}

/** Where dockerd is configured to listen: daemon.json, its command line (unit, defaults file, live), docker.socket. */
function configuredListeners(c: ApiDoctorContext): { l: Listener; from: string }[] {
  const out: { l: Listener; from: string }[] = [];
  const hosts = Array.isArray(c.daemon?.hosts) ? (c.daemon!.hosts as unknown[]).filter((h): h is string => typeof h === 'string') : [];
  for (const h of hosts) out.push({ l: parseHost(h), from: `${c.daemonFile} "hosts"` });
  const launch = dockerdLaunch(c.root, c.host, c.dockerdPid);
  let fd = false;
  for (const s of launch.sources) {
    for (const h of s.flags.hosts) {
      const l = parseHost(h);
      if (l.kind === 'fd') fd = true;
      else out.push({ l, from: s.from });
    }
  }
  if (fd && launch.socket) for (const s of listSetting(launch.socket.settings, 'Socket', 'ListenStream')) out.push({ l: parseListenStream(s.value), from: `docker.socket (${s.file})` });
  // A dockerd started with no -H and no "hosts" listens on the default socket.
  if (!hosts.length && !launch.sources.some((s) => s.flags.hosts.length)) out.push({ l: parseHost('unix:///var/run/docker.sock'), from: 'dockerd\'s default (no -H, no "hosts")' });
  return out;
}

function tlsVerified(c: ApiDoctorContext): boolean {
  if (c.daemon?.tlsverify === true) return true;
  return dockerdLaunch(c.root, c.host, c.dockerdPid).sources.some((s) => s.flags.tlsverify === true);
}

/** No TCP listener without TLS client verification: in every mode, anyone reaching it is root. */
export function checkTcp(c: ApiDoctorContext): void {
  const configured = configuredListeners(c).filter((x) => x.l.kind === 'tcp');
  const pid = dockerdPidOf(c.dockerdPid);
  const live = pid ? (liveListeners(pid)?.tcp ?? []) : [];
  const found = [...configured.map((x) => `${x.l.spec} (${x.from})`), ...live.map((a) => `${a} (the running dockerd, pid ${pid})`)];
  if (!found.length) return c.add('dockerd-tcp', 'ok', `dockerd listens on no TCP port${pid ? ` (pid ${pid}, from /proc)` : ''}`);
  if (tlsVerified(c)) return c.add('dockerd-tcp', 'ok', `dockerd's TCP listeners require client certificates (tlsverify): ${found.join(', ')}`);
  c.add('dockerd-tcp', 'fail', `dockerd listens on TCP without TLS client verification: ${found.join(', ')}: anyone who reaches the port is root on this host, around gpuguard`, 'remove the TCP listener (daemon.json "hosts", -H in the unit or /etc/default/docker, ListenStream in docker.socket), or require client certificates only admins hold ("tlsverify": true)');
}

/** The face's socket: present, and answering as gpuguard (not dockerd itself). */
async function checkFaceSocket(c: ApiDoctorContext, api: Policy['api']): Promise<boolean> {
  const { apiGet } = await import('../docker/api.ts');
  const path = c.host(api.listen);
  const fix = c.api?.systemd ? `systemctl start ${FACE_UNIT}.socket; journalctl -u ${FACE_UNIT}.service` : `start the face as root: gpuguard serve (docs/operations.md, "API mode")`;
  let st;
  try {
    st = lstatSync(path);
  } catch {
    c.add('api-socket', 'fail', `nothing at ${api.listen}: users' clients reach no Docker socket`, fix);
    return false;
  }
  if (!st.isSocket()) {
    c.add('api-socket', 'fail', `${api.listen} is not a socket`, fix);
    return false;
  }
  let r;
  try {
    r = await apiGet(path, '/_gpuguard/status');
  } catch (err) {
    c.add('api-socket', 'fail', `nothing answers on ${api.listen} (${(err as Error).message})`, fix);
    return false;
  }
  const status = r.status === 200 ? FaceStatus.safeParse(r.body) : undefined;
  if (!status?.success) {
    const said = typeof r.body === 'object' && r.body && 'message' in r.body ? String((r.body as { message: unknown }).message) : String(r.body).slice(0, 80);
    c.add('api-socket', 'fail', `${api.listen} is answered by something that is not gpuguard (GET /_gpuguard/status: HTTP ${r.status} ${said}; dockerd itself?): users reach dockerd around the policy`, `dockerd must listen only on ${api.upstream}: run install.sh --api, then restart dockerd and the face`);
    return false;
  }
  const s = status.data;
  const wantMode = Number.parseInt(api.mode, 8);
  const mode = st.mode & 0o777;
  if (s.upstream !== undefined && !samePath(s.upstream, api.upstream)) {
    c.add('api-socket', 'warn', `the face on ${api.listen} (gpuguard ${s.gpuguard}) forwards to ${s.upstream}, not api.upstream ${api.upstream} from the policy`, `restart the face so it reads the policy again (${c.api?.systemd ? `systemctl restart ${FACE_UNIT}.service` : 'SIGTERM, then start gpuguard serve'}), or fix api.upstream`);
  } else if (mode !== wantMode) {
    c.add('api-socket', 'warn', `${api.listen} is gpuguard's face but has mode ${mode.toString(8).padStart(4, '0')}, not api.mode ${api.mode}`, c.api?.systemd ? `run install.sh --api (rewrites ${FACE_UNIT}.socket from the policy)` : `restart the face (it sets the mode when it listens)`);
  } else {
    c.add('api-socket', 'ok', `${api.listen} is gpuguard's face (gpuguard ${s.gpuguard}${s.pid ? `, pid ${s.pid}` : ''}), forwarding to ${s.upstream ?? api.upstream}`);
  }
  return true;
}

/** Run the real CLI as a user against one socket: did it get an answer? */
function asUser(user: string, cli: string, socket: string): { ok: boolean; said: string } {
  try {
    const out = execFileSync('runuser', ['-u', user, '--', cli, '-H', `unix://${socket}`, 'version', '--format', '{{.Server.Version}}'], { encoding: 'utf8', timeout: 20_000, stdio: ['ignore', 'pipe', 'pipe'], env: { PATH: '/usr/sbin:/usr/bin:/sbin:/bin', HOME: '/nonexistent' } });
    return { ok: true, said: out.trim() };
  } catch (err) {
    const e = err as { stderr?: string; message: string };
    return { ok: false, said: (e.stderr || e.message).trim().split('\n').pop() ?? '' };
  }
}

/** dockerd's socket: root's alone, where nobody can squat it, and dockerd listening nowhere users reach. */
function checkUpstream(c: ApiDoctorContext, api: Policy['api']): void {
  const path = c.host(api.upstream);
  const top = c.root !== '/' && path.startsWith(`${c.root.replace(/\/$/, '')}/`) ? c.root : '/';
  const restart = c.api?.systemd ? 'systemctl restart docker.socket docker.service' : 'restart dockerd';
  let st;
  try {
    st = lstatSync(path);
  } catch {
    return c.add('dockerd-socket', 'fail', `no socket at api.upstream ${api.upstream}: dockerd does not listen where the face forwards`, `${restart} (it moves there after install.sh --api)`);
  }
  if (!st.isSocket()) return c.add('dockerd-socket', 'fail', `${api.upstream} is not a socket`, `remove it, then ${restart}`);
  const squat = squattable(path, top);
  if (squat) return c.add('dockerd-socket', 'fail', `${api.upstream} is in a place others control: ${squat}`, `set api.upstream to a path in a root-only directory (${'/run/gpuguard-dockerd/docker.sock'}), run install.sh --api, then ${restart}`);
  const reach = reachableByOthers(path, top);
  if (reach) return c.add('dockerd-socket', 'fail', `${api.upstream} (dockerd's own socket) is reachable by ${reach}: they go around the face`, `chmod 0700 ${api.upstream.replace(/\/[^/]+$/, '')} (install.sh --api makes it so)`);
  // Anywhere else dockerd listens that users could reach.
  const others: string[] = [];
  for (const { l, from } of configuredListeners(c)) {
    if (l.kind === 'unix' && !samePath(l.path, api.upstream)) others.push(`${l.path} (${from})`);
  }
  const pid = dockerdPidOf(c.dockerdPid);
  const live = pid ? liveListeners(pid) : undefined;
  for (const p of live?.unix ?? []) {
    if (samePath(p, api.upstream) || p.startsWith('@')) continue;
    const who = reachableByOthers(c.root === '/' ? p : c.host(p));
    if (who) others.push(`${p} (the running dockerd, pid ${pid}: reachable by ${who})`);
  }
  if (others.length) return c.add('dockerd-socket', 'fail', `dockerd also listens on ${[...new Set(others)].join(', ')}: users reach it there, around the face`, `remove that listener (install.sh --api moves dockerd's only one to ${api.upstream}), then ${restart}`);
  const user = c.sampleUser();
  const cli = c.realCli();
  const mode = (st.mode & 0o777).toString(8).padStart(4, '0');
  if (user && cli) {
    const r = asUser(user, cli, path);
    if (r.ok) return c.add('dockerd-socket', 'fail', `user ${user} reaches dockerd on ${api.upstream} directly (docker version answered ${r.said})`, `chmod 0700 ${api.upstream.replace(/\/[^/]+$/, '')}, then ${restart}`);
    return c.add('dockerd-socket', 'ok', `${api.upstream} is root's alone (socket ${mode} in a root-only directory${live ? `; dockerd pid ${pid} listens nowhere else` : ''}); user ${user} is refused: ${r.said}`);
  }
  c.add('dockerd-socket', 'ok', `${api.upstream} is root's alone (socket ${mode} in a root-only directory${live ? `; dockerd pid ${pid} listens nowhere else` : ''})`);
}

/** The face answers: dockerd behind it for root (/_ping), and a user's real CLI through it. */
async function checkAnswers(c: ApiDoctorContext, api: Policy['api']): Promise<void> {
  const { apiGet } = await import('../docker/api.ts');
  const path = c.host(api.listen);
  const fix = c.api?.systemd ? `journalctl -u ${FACE_UNIT}.service and -u docker.service say why` : 'the face\'s stderr and dockerd\'s log say why';
  let ping;
  try {
    ping = await apiGet(path, '/_ping');
  } catch (err) {
    return c.add('api-answers', 'fail', `the face on ${api.listen} dropped GET /_ping (${(err as Error).message})`, fix);
  }
  if (ping.status !== 200) return c.add('api-answers', 'fail', `the face on ${api.listen} answers GET /_ping with HTTP ${ping.status} (${JSON.stringify(ping.body).slice(0, 120)}): dockerd behind it does not answer`, fix);
  const user = c.sampleUser();
  const cli = c.realCli();
  if (!user || !cli) return c.add('api-answers', 'ok', `dockerd answers through the face (GET /_ping as root)${user ? '' : '; no regular user to try it as'}`);
  const r = asUser(user, cli, path);
  if (!r.ok) return c.add('api-answers', 'fail', `user ${user}'s docker version through ${api.listen} failed: ${r.said}`, `a user must be in group ${api.group} to reach the face; ${fix}`);
  c.add('api-answers', 'ok', `dockerd answers through the face: GET /_ping as root, and docker version as ${user} (server ${r.said})`);
}

/** The checks of API mode, in order. The face's checks only run where it is installed. */
export async function checkApi(c: ApiDoctorContext): Promise<void> {
  const api = c.policy.api;
  if (c.api && (!samePath(c.api.listen, api.listen) || !samePath(c.api.upstream, api.upstream))) {
    c.add('api-config', 'warn', `the policy's api (listen ${api.listen}, upstream ${api.upstream}) differs from what install.sh set up (listen ${c.api.listen}, upstream ${c.api.upstream})`, 'run install.sh --api again, so dockerd and the face move to the policy\'s sockets');
  }
  const faceUp = await checkFaceSocket(c, api);
  checkUpstream(c, api);
  if (faceUp) await checkAnswers(c, api);
  else c.add('api-answers', 'fail', `not tried: no face on ${api.listen}`, 'see api-socket');
}

