/**
 * The API face (`gpuguard serve`, the compiled binary) in front of a
 * private dockerd: listening on a socket in its own temp dir (0660, owned
 * by `socketGroup`), talking to the dockerd's socket (root-only: the
 * harness starts dockerd with group root). Started as root like on a host;
 * stopped by pid even when a test fails.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { request } from 'node:http';
import { join } from 'node:path';
import type { PrivateDockerd } from './dockerd.ts';
import { BINARY } from './tools.ts';

export interface FaceOptions {
  /** Policy file (GPUGUARD_POLICY); without one the face uses the host's or the built-in policy. */
  policy?: string;
  /** Unix group whose members may connect (api.group); default root. */
  socketGroup?: string;
  /** Extra environment for the face (GPUGUARD_NVIDIA_SMI, …). */
  env?: Record<string, string>;
  /** Extra arguments to `gpuguard serve`. */
  args?: string[];
}

export interface RunningFace {
  dir: string;
  /** The socket clients use. */
  socket: string;
  /** `unix://<socket>`, for DOCKER_HOST. */
  host: string;
  pid: number;
  /** What the face wrote to stderr so far. */
  log(): string;
  /** SIGTERM and wait; the temp dir is removed. */
  stop(): Promise<void>;
  /** SIGKILL (as a crash would) and wait; the temp dir stays, so `startFace` can use it again. */
  kill(): Promise<void>;
  /** Start a new face on the same socket path (after kill or stop). */
  restart(): Promise<RunningFace>;
}

const live = new Set<ChildProcess>();
process.on('exit', () => {
  for (const c of live) c.kill('SIGKILL');
});

/** GET /_gpuguard/status on a unix socket; undefined while nothing answers. */
export function faceStatus(socket: string): Promise<{ gpuguard: string; pid: number; upstream: string; policy: string } | undefined> {
  return new Promise((resolve) => {
    const req = request({ socketPath: socket, path: '/_gpuguard/status', method: 'GET', headers: { Host: 'docker' }, timeout: 2000 }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => {
        try {
          resolve(res.statusCode === 200 ? JSON.parse(body) : undefined);
        } catch {
          resolve(undefined);
        }
      });
    });
    req.on('error', () => resolve(undefined));
    req.on('timeout', () => req.destroy());
    req.end();
  });
}

function exited(child: ChildProcess, ms: number): Promise<boolean> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(true);
  return new Promise((resolve) => {
    const t = setTimeout(() => resolve(false), ms);
    child.once('exit', () => {
      clearTimeout(t);
      resolve(true);
    });
  });
}

export async function startFace(d: PrivateDockerd, opts: FaceOptions = {}, reuseDir?: string): Promise<RunningFace> {
  const dir = reuseDir ?? mkdtempSync('/tmp/gg-face-');
  chmodSync(dir, 0o755);
  const socket = join(dir, 'docker.sock');
  const logPath = join(dir, 'face.log');
  const env: NodeJS.ProcessEnv = { PATH: process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin', ...(opts.policy ? { GPUGUARD_POLICY: opts.policy } : {}), ...opts.env };
  const out = openSync(logPath, 'a');
  const child = spawn(BINARY, ['serve', '--listen', socket, '--upstream', d.socket, '--group', opts.socketGroup ?? 'root', ...(opts.args ?? [])], { env, stdio: ['ignore', out, out], detached: true });
  child.unref();
  live.add(child);
  child.once('exit', () => live.delete(child));
  const log = () => {
    try {
      return readFileSync(logPath, 'utf8');
    } catch {
      return '';
    }
  };
  const deadline = Date.now() + 20_000;
  for (;;) {
    const status = await faceStatus(socket);
    if (status?.pid === child.pid) break;
    if (child.exitCode !== null || Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`gpuguard serve did not start (exit ${child.exitCode}):\n${log()}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  const face: RunningFace = {
    dir,
    socket,
    host: `unix://${socket}`,
    pid: child.pid!,
    log,
    async stop() {
      child.kill('SIGTERM');
      if (!(await exited(child, 15_000))) child.kill('SIGKILL');
      await exited(child, 5000);
      rmSync(dir, { recursive: true, force: true });
    },
    async kill() {
      child.kill('SIGKILL');
      await exited(child, 5000);
    },
    restart: () => startFace(d, opts, dir),
  };
  return face;
}
