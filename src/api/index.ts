/**
 * `gpuguard serve [--listen PATH] [--upstream PATH] [--group G] [--mode M]`:
 * the API face, in the foreground, as root. It owns the socket users reach
 * and forwards what the policy allows to dockerd's root-only socket; the
 * caller's identity is the connecting process's uid, from the kernel
 * (SO_PEERCRED). With systemd socket activation (LISTEN_FDS) the listening
 * socket is fd 3. SIGTERM drains (no new connections; requests under way
 * finish, up to DRAIN_MS), SIGHUP reloads the policy (a bad one is reported
 * and the old one kept).
 */
import { execFileSync } from 'node:child_process';
import { chmodSync, chownSync, unlinkSync } from 'node:fs';
import { clearListenPath as clearPath } from '../sys/listen-path.ts';
import pkg from '../../package.json' with { type: 'json' };
import { errorLine, GpuguardError, UsageError } from '../errors.ts';
import { SerialAllocator } from '../gpu/serial.ts';
import { loadPolicy, policyPath } from '../policy/load.ts';
import { serveConnection } from './conn.ts';
import { makeDecider, type FaceState } from './decide.ts';
import { Owners } from './owners.ts';
import { peerCred, raiseSendBuffer } from './sockopt.ts';
import { Pipe, pipeHandlers, type RawSocket } from './stream.ts';
import { upstreamProblem, Upstream } from './upstream.ts';
import { UserDb } from './users.ts';

declare const Bun: {
  listen(opts: Record<string, unknown>): { stop(closeActive?: boolean): void };
};

const DRAIN_MS = 10_000;

/**
 * The heap size JavaScriptCore is told the machine has. It sizes its heap
 * and collects garbage by the machine's RAM; on a 24 GiB host the face then
 * grew to ~110 MiB under 64 busy clients, with this 86 MiB (same throughput,
 * measured: bench/README.md, API face). Read by JSC at start only, so the
 * face re-executes itself once with it set.
 */
const JSC_RAM_SIZE = String(256 << 20);

export class ServeError extends GpuguardError {
  override name = 'ServeError';
}

interface Options {
  listen?: string;
  upstream?: string;
  group?: string;
  mode?: string;
}

function parseArgs(args: string[]): Options {
  const o: Options = {};
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    const m = /^--(listen|upstream|group|mode)(?:=(.*))?$/.exec(a);
    if (!m) throw new UsageError(`gpuguard serve: unknown argument "${a}"; usage: gpuguard serve [--listen PATH] [--upstream PATH] [--group GROUP] [--mode MODE]`);
    const value = m[2] ?? args[++i];
    if (value === undefined || value === '') throw new UsageError(`gpuguard serve: --${m[1]} needs a value`);
    o[m[1] as keyof Options] = value;
  }
  return o;
}

function gidOf(group: string): number {
  if (/^\d+$/.test(group)) return Number(group);
  try {
    return Number(execFileSync('getent', ['group', group], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).split(':')[2]);
  } catch {
    throw new ServeError(`group "${group}" (api.group) does not exist; create it or set api.group to the group whose members may use docker`);
  }
}

/** Make room for the listening socket: a live one is an error, a stale one (nobody listening) is replaced. */
async function clearListenPath(path: string): Promise<void> {
  const problem = await clearPath(path);
  if (problem === 'is not a socket') throw new ServeError(`${path} exists and is not a socket; move it away or set api.listen / --listen to another path`);
  if (problem === 'is in use') throw new ServeError(`${path} is in use: something (dockerd, or another gpuguard serve) already listens there; stop it or listen elsewhere (--listen)`);
}

/** systemd socket activation: the listening socket is fd 3 when LISTEN_PID is us. */
function activatedFd(env: NodeJS.ProcessEnv): number | undefined {
  if (!env.LISTEN_FDS || env.LISTEN_PID !== String(process.pid)) return undefined;
  const n = Number(env.LISTEN_FDS);
  if (!Number.isInteger(n) || n < 1) return undefined;
  if (n > 1) process.stderr.write(`gpuguard serve: ${n} sockets passed by systemd; using the first (fd 3)\n`);
  return 3;
}

export async function serve(args: string[]): Promise<number> {
  const o = parseArgs(args);
  const env = process.env;
  if (typeof (globalThis as { Bun?: unknown }).Bun !== 'undefined' && !env.BUN_JSC_forceRAMSize) {
    const { execve } = await import('../sys/exec.ts');
    const passed = activatedFd(env) !== undefined ? Array.from({ length: Number(env.LISTEN_FDS) }, (_, i) => 3 + i) : [];
    return execve(process.execPath, [process.argv0, 'serve', ...args], { ...env, BUN_JSC_forceRAMSize: JSC_RAM_SIZE }, passed);
  }
  if (process.getuid?.() !== 0) throw new ServeError('gpuguard serve runs as root: it owns the socket users reach and talks to dockerd on its root-only socket');
  const loaded = loadPolicy(env);
  const api = loaded.policy.api;
  const upstreamPath = o.upstream ?? api.upstream;
  const listenPath = o.listen ?? api.listen;
  const problem = upstreamProblem(upstreamPath);
  if (problem) throw new ServeError(`dockerd's socket: ${problem}`);
  const fd = activatedFd(env);
  if (fd === undefined && listenPath === upstreamPath) throw new ServeError(`--listen and --upstream are both ${listenPath}; dockerd must listen elsewhere (api.upstream)`);

  const upstream = new Upstream(upstreamPath);
  const users = new UserDb();
  const state: FaceState = {
    policy: loaded.policy,
    policyPath: loaded.path ?? policyPath(env),
    upstream,
    users,
    owners: new Owners(upstream, users),
    gpus: new SerialAllocator({ ...env, DOCKER_HOST: `unix://${upstreamPath}` }),
    version: pkg.version,
  };
  const decide = makeDecider(state);
  let draining = false;
  const connections = new Map<Pipe, { busy: boolean }>();
  const onError = (err: unknown) => process.stderr.write(`gpuguard serve: ${errorLine(err)}\n`);

  const handlers = {
    ...pipeHandlers,
    open(s: { data: Pipe } & RawSocket) {
      const pipe = new Pipe(s);
      s.data = pipe;
      const cred = s.fd !== undefined && s.fd >= 0 ? peerCred(s.fd) : undefined;
      if (!cred) {
        // No kernel identity, no decision: nothing is served.
        pipe.destroy();
        return;
      }
      raiseSendBuffer(s.fd);
      const track = { busy: false };
      connections.set(pipe, track);
      void serveConnection(pipe, cred, { upstream, decide, draining: () => draining, onError, track: (busy) => (track.busy = busy) })
        .catch(onError)
        .finally(() => connections.delete(pipe));
    },
  };

  let server: { stop(closeActive?: boolean): void };
  if (fd !== undefined) {
    server = Bun.listen({ fd, allowHalfOpen: true, socket: handlers });
  } else {
    await clearListenPath(listenPath);
    const gid = gidOf(o.group ?? api.group);
    const modeText = o.mode ?? api.mode;
    if (!/^0?[0-7]{3}$/.test(modeText)) throw new ServeError(`mode "${modeText}" is not an octal mode such as 0660`);
    const old = process.umask(0o177);
    try {
      server = Bun.listen({ unix: listenPath, allowHalfOpen: true, socket: handlers });
    } finally {
      process.umask(old);
    }
    chownSync(listenPath, 0, gid);
    chmodSync(listenPath, parseInt(modeText, 8));
  }
  process.stderr.write(
    `gpuguard serve: listening on ${fd !== undefined ? 'the socket systemd passed (fd 3)' : listenPath}, dockerd at ${upstreamPath}, policy ${loaded.path ?? 'built-in (no policy file)'}\n`,
  );

  process.on('SIGHUP', () => {
    try {
      const next = loadPolicy(env);
      state.policy = next.policy;
      state.policyPath = next.path ?? policyPath(env);
      users.clear();
      process.stderr.write(`gpuguard serve: policy reloaded from ${next.path ?? 'built-in defaults'}\n`);
    } catch (err) {
      process.stderr.write(`gpuguard serve: policy not reloaded, the old one stays: ${errorLine(err)}\n`);
    }
  });

  return new Promise<number>((resolve) => {
    const shutdown = (signal: string) => {
      if (draining) return;
      draining = true;
      process.stderr.write(`gpuguard serve: ${signal}: draining ${connections.size} connection(s)\n`);
      server.stop(false);
      if (fd === undefined) {
        try {
          unlinkSync(listenPath);
        } catch {
          /* gone */
        }
      }
      for (const [pipe, t] of connections) if (!t.busy) void pipe.close();
      const deadline = Date.now() + DRAIN_MS;
      const tick = setInterval(() => {
        if (connections.size === 0 || Date.now() > deadline) {
          clearInterval(tick);
          for (const pipe of connections.keys()) pipe.destroy();
          resolve(0);
        }
      }, 50);
    };
    process.on('SIGTERM', () => shutdown('SIGTERM'));
    process.on('SIGINT', () => shutdown('SIGINT'));
  });
}

export { serve as main };
