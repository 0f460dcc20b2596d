/**
 * `gpuguard decider`: a resident root process that decides the docker calls
 * the native front routes to gpuguard (run/create, the ownership guard's
 * verbs and listings), so that they pay no Bun start: the front connects to
 * its socket, and execs the real CLI with the argv the decider answers
 * (src/decider/protocol.ts). Without a decider, or whenever it declines,
 * the front runs gpuguard as before; the decisions are the same code
 * (src/docker-shim's `main` with a {@link Caller} for the front's process).
 *
 * The caller is read from the kernel, never from the wire: the uid from
 * SO_PEERCRED, argv, environment and working directory from /proc/PID of
 * the process that connected (the front, blocked on the answer). The
 * decider is root, so it declines whatever the shim does with the user's
 * own rights (compose files, `--label-file`/`--env-file`, GPU reservations,
 * `start`, `exec --privileged`, `volume create`), any other daemon than
 * the one it was started for, any other policy file, and a config file
 * the user does not own. It answers root's calls by declining too (root's
 * identity comes from SUDO_USER or GPUGUARD_USER, which only a root process of
 * its own may claim).
 */
import { chmodSync, fstatSync, lstatSync, mkdirSync, openSync, readlinkSync, readSync, closeSync, statSync, constants } from 'node:fs';
import { basename, dirname, normalize } from 'node:path';
import { errorLine, GpuguardError, UsageError } from '../errors.ts';
import { peerCred, type PeerCred } from '../api/sockopt.ts';
import { Declined, type Caller, type VetPoint } from '../docker-shim/caller.ts';
import { DEFAULT_SOCKET } from '../docker-shim/globals.ts';
import { main as dockerFace } from '../docker-shim/index.ts';
import type { RunScan } from '../docker-shim/argv.ts';
import { policyPath } from '../policy/load.ts';
import { requestFromFlags } from '../gpu/plan.ts';
import { clearListenPath } from '../sys/listen-path.ts';
import { ContainerListCache } from './containers.ts';
import { UserDb } from '../api/users.ts';
import { DECIDER_DEADLINE_MS, DEFAULT_DECIDER_SOCKET, encodeAnswer, type Answer } from './protocol.ts';

declare const Bun: {
  listen(opts: Record<string, unknown>): { stop(closeActive?: boolean): void };
};

interface DeciderSocket {
  write(data: Uint8Array): number;
  end(): void;
  readonly fd?: number;
  data: { pending?: Uint8Array };
}

export class DeciderError extends GpuguardError {
  override name = 'DeciderError';
}

/** Calls decided at once; a front that finds the decider this busy runs gpuguard itself. */
const MAX_IN_FLIGHT = 16;

interface Options {
  listen: string;
  dockerSocket: string;
}

function parseArgs(args: string[]): Options {
  const o: Options = { listen: DEFAULT_DECIDER_SOCKET, dockerSocket: DEFAULT_SOCKET };
  for (let i = 0; i < args.length; i++) {
    const m = /^--(listen|docker-socket)(?:=(.*))?$/.exec(args[i]!);
    if (!m) throw new UsageError(`gpuguard decider: unknown argument "${args[i]}"; usage: gpuguard decider [--listen PATH] [--docker-socket PATH]`);
    const value = m[2] ?? args[++i];
    if (!value || !value.startsWith('/')) throw new UsageError(`gpuguard decider: --${m[1]} needs an absolute path`);
    if (m[1] === 'listen') o.listen = normalize(value);
    else o.dockerSocket = normalize(value);
  }
  return o;
}

/** The answer a caller's process gets: set by `handover` (exec) or by the end of the face's `main`. */
class Handover {
  constructor(
    readonly real: string,
    readonly argv: string[],
  ) {}
}

/** The front's process as the kernel shows it; undefined (decline) when it is not a front's docker call we can read. */
interface CallerProcess {
  argv: string[];
  env: NodeJS.ProcessEnv;
  cwd: string;
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

function nulFields(buf: Buffer): string[] {
  // Bytes that are not UTF-8 would come back changed from a JavaScript string: declined.
  const text = utf8.decode(buf);
  const fields = text.split('\0');
  if (fields.at(-1) === '') fields.pop();
  return fields;
}

/** argv and environment together are bounded by the caller's stack limit, which the caller sets: so are we. */
const MAX_PROC_BYTES = 4 << 20;
/** A docker config file is a few hundred bytes. */
const MAX_USER_FILE_BYTES = 1 << 20;

/** All of an open file, refused (declined) past `max` bytes; read in chunks (most are a few KiB). */
function readBounded(fd: number, max: number, what: string): Buffer {
  const chunks: Buffer[] = [];
  let total = 0;
  for (;;) {
    const chunk = Buffer.allocUnsafe(64 << 10);
    const n = readSync(fd, chunk, 0, chunk.length, null);
    if (n <= 0) break;
    chunks.push(chunk.subarray(0, n));
    total += n;
    if (total > max) throw new Declined(`${what} is larger than ${max} bytes`);
  }
  return Buffer.concat(chunks, total);
}

function readProcFile(path: string): Buffer {
  const fd = openSync(path, constants.O_RDONLY);
  try {
    return readBounded(fd, MAX_PROC_BYTES, path);
  } finally {
    closeSync(fd);
  }
}

export function readCallerProcess(cred: PeerCred): CallerProcess {
  const dir = `/proc/${cred.pid}`;
  try {
    // The process that connected, still: /proc/PID is owned by its (effective) uid.
    if (statSync(dir).uid !== cred.uid) throw new Declined('the connecting process is gone');
    // Paths mean what they mean here only in our mount namespace and root (not in a container or chroot).
    if (readlinkSync(`${dir}/ns/mnt`) !== readlinkSync('/proc/self/ns/mnt') || readlinkSync(`${dir}/root`) !== '/') throw new Declined('the caller sees another file system (a container or chroot)');
    const argv = nulFields(readProcFile(`${dir}/cmdline`));
    const env: NodeJS.ProcessEnv = {};
    for (const entry of nulFields(readProcFile(`${dir}/environ`))) {
      const eq = entry.indexOf('=');
      // getenv(3) answers the first of two same-named entries.
      if (eq > 0 && !(entry.slice(0, eq) in env)) env[entry.slice(0, eq)] = entry.slice(eq + 1);
    }
    const cwd = readlinkSync(`${dir}/cwd`);
    if (!cwd.startsWith('/') || cwd.endsWith(' (deleted)')) throw new Declined('the working directory is gone');
    return { argv, env, cwd };
  } catch (err) {
    if (err instanceof Declined) throw err;
    throw new Declined(`cannot read the caller's process (${(err as Error).message})`);
  }
}

/**
 * A file the user named or owns (their docker config): read only when the
 * caller owns it, as a check of the user's own rights; anything else is
 * left to gpuguard running as the user.
 */
function ownedFileReader(uid: number): (path: string) => string {
  return (path) => {
    const fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK);
    try {
      const st = fstatSync(fd);
      if (!st.isFile() || st.uid !== uid) throw new Declined(`${path} is not the caller's own file`);
      return readBounded(fd, MAX_USER_FILE_BYTES, path).toString('utf8');
    } finally {
      closeSync(fd);
    }
  };
}

/** The flags whose files the shim reads as the user, and GPU requests, whose grant it reserves as the user. */
function vetCreate(scan: RunScan, env: NodeJS.ProcessEnv): void {
  for (const f of scan.flags) {
    if (f.name === 'label-file' || f.name === 'env-file') throw new Declined(`--${f.name} is read with the user's rights`);
  }
  // The allocator's own reading of the flags (no files left to read): a GPU grant takes its lock and
  // reservation files as the user (src/gpu/reserve.ts); a malformed request is the shim's to report.
  let kind: string;
  try {
    kind = requestFromFlags(scan.flags, env).kind;
  } catch (err) {
    throw new Declined(`a GPU request the shim reports (${errorLine(err)})`);
  }
  if (kind !== 'none') throw new Declined('a GPU request: the allocator reserves as the user');
}

const NOT_SERVED: Record<Exclude<VetPoint, 'create'>, string> = {
  compose: 'compose reads the project files as the user',
  start: "start's GPU check reserves as the user",
  'exec-privileged': 'exec --privileged is decided by the shim',
  'volume-create': 'volume create is decided by the shim',
};

export interface DeciderConfig {
  dockerSocket: string;
  policyPath: string;
  /** dockerd's container list, kept current (containers.ts); without it every listing asks dockerd. */
  containers?: ContainerListCache;
  /** The user database, answers kept a minute (as the API face keeps them); without it each call asks NSS. */
  users?: UserDb;
}

/** One call, decided for the process that connected. Exported for the unit tests. */
export async function decideFor(cred: PeerCred, config: DeciderConfig, readProcess: (c: PeerCred) => CallerProcess = readCallerProcess): Promise<Answer> {
  try {
    if (cred.uid === 0) throw new Declined("root's identity may come from SUDO_USER or GPUGUARD_USER");
    const proc = readProcess(cred);
    if (basename(proc.argv[0] ?? '') !== 'docker') throw new Declined('not a docker call');
    const env = proc.env;
    if (policyPath(env) !== config.policyPath) throw new Declined(`GPUGUARD_POLICY names another policy than ${config.policyPath}`);
    const args = proc.argv.slice(1);
    const readUserFile = ownedFileReader(cred.uid);
    const home = env.HOME && env.HOME.startsWith('/') ? env.HOME : undefined;
    const stderr: string[] = [];
    const caller: Caller = {
      env,
      uid: cred.uid,
      pid: cred.pid,
      cwd: () => proc.cwd,
      home: () => {
        if (home === undefined) throw new Declined('no absolute HOME');
        return home;
      },
      warn: (text) => void stderr.push(text),
      readUserFile,
      vet: (point, scan) => {
        if (point !== 'create') throw new Declined(NOT_SERVED[point]);
        if (scan) vetCreate(scan, env);
      },
      // Only the daemon this decider was started for: a socket the user names is theirs to ask, not root's.
      vetTarget: (target) => {
        if (!target.local || target.socket === undefined || normalize(target.socket) !== config.dockerSocket) throw new Declined(`another daemon (${target.why})`);
      },
      handover: async (real, argv) => {
        throw new Handover(real, argv);
      },
      ...(config.containers ? { listAllContainers: async () => config.containers!.all(), imageLabels: async (_socket: string, ids: string[]) => config.containers!.imageLabels(ids) } : {}),
      ...(config.users ? { identity: () => config.users!.identity(cred.uid) } : {}),
    };
    try {
      const code = await dockerFace(args, caller);
      return { kind: 'exit', stderr: stderr.join(''), code };
    } catch (err) {
      if (err instanceof Handover) return { kind: 'exec', stderr: stderr.join(''), real: err.real, argv: err.argv };
      if (err instanceof GpuguardError) return { kind: 'exit', stderr: `${stderr.join('')}gpuguard: ${errorLine(err)}\n`, code: err.exitCode };
      throw err;
    }
  } catch (err) {
    if (err instanceof Declined) return { kind: 'self', why: err.message };
    // Anything unexpected: gpuguard, run by the user, decides and reports it in its own words.
    return { kind: 'self', why: `internal: ${errorLine(err)}` };
  }
}

/** The socket's directory: root's, and writable by root alone, so that nobody else can put a socket there. */
function prepareDirectory(dir: string): void {
  mkdirSync(dir, { recursive: true, mode: 0o755 });
  const st = lstatSync(dir);
  if (!st.isDirectory() || st.uid !== 0 || st.mode & 0o022) throw new DeciderError(`${dir} must be a directory owned by root and writable by root alone (it is ${st.isDirectory() ? `mode ${(st.mode & 0o7777).toString(8)}, uid ${st.uid}` : 'not a directory'}); remove it and start the decider again`);
  chmodSync(dir, 0o755);
}

export async function run(args: string[]): Promise<number> {
  const o = parseArgs(args);
  if (process.getuid?.() !== 0) throw new DeciderError('gpuguard decider runs as root: it reads its callers from /proc and answers for every user; start it from its service (install.sh installs it)');
  const containers = new ContainerListCache(o.dockerSocket);
  const users = new UserDb();
  const config: DeciderConfig = { dockerSocket: o.dockerSocket, policyPath: policyPath(process.env), containers, users };
  prepareDirectory(dirname(o.listen));
  containers.start();
  const problem = await clearListenPath(o.listen);
  if (problem) throw new DeciderError(`${o.listen} ${problem}; stop what is there or start the decider with --listen PATH`);
  // Warm: the face's modules are loaded once, not on the first caller's time.
  await Promise.all([import('../docker-shim/create.ts'), import('../ownership/guard.ts'), import('../docker/lists.ts'), import('../ownership/facts.ts')]);

  let inFlight = 0;
  const reply = (s: DeciderSocket, a: Answer) => {
    const bytes = encodeAnswer(a);
    const n = s.write(bytes);
    if (n < bytes.length) s.data.pending = bytes.subarray(Math.max(n, 0));
    else s.end();
  };
  const handlers = {
    open(s: DeciderSocket) {
      s.data = {};
      const cred = s.fd !== undefined && s.fd >= 0 ? peerCred(s.fd) : undefined;
      if (!cred) return reply(s, { kind: 'self', why: 'no kernel identity' });
      if (inFlight >= MAX_IN_FLIGHT) return reply(s, { kind: 'self', why: 'busy' });
      inFlight++;
      let answered = false;
      const timer = setTimeout(() => {
        answered = true;
        reply(s, { kind: 'self', why: 'deadline' });
      }, DECIDER_DEADLINE_MS);
      void decideFor(cred, config).then((a) => {
        inFlight--;
        clearTimeout(timer);
        if (!answered) reply(s, a);
      });
    },
    data() {
      /* the front sends nothing; whatever comes is ignored */
    },
    drain(s: DeciderSocket) {
      const rest = s.data.pending;
      if (!rest) return;
      const n = s.write(rest);
      if (n < rest.length) s.data.pending = rest.subarray(Math.max(n, 0));
      else {
        s.data.pending = undefined;
        s.end();
      }
    },
    close() {},
    error() {},
  };
  const old = process.umask(0o177);
  let server: { stop(closeActive?: boolean): void };
  try {
    server = Bun.listen({ unix: o.listen, socket: handlers });
  } finally {
    process.umask(old);
  }
  // Every user may ask: the answer is only ever about the caller's own call.
  chmodSync(o.listen, 0o666);
  process.stderr.write(`gpuguard decider: listening on ${o.listen} for docker calls to ${o.dockerSocket}, policy ${config.policyPath}\n`);
  return new Promise<number>((resolve) => {
    const stop = () => {
      server.stop(false);
      containers.stop();
      // Calls in flight finish (a front that loses its answer runs gpuguard itself).
      const wait = setInterval(() => {
        if (inFlight === 0) {
          clearInterval(wait);
          resolve(0);
        }
      }, 20);
      setTimeout(() => resolve(0), DECIDER_DEADLINE_MS).unref();
    };
    process.once('SIGTERM', stop);
    process.once('SIGINT', stop);
    // An admin who changed a group or an account: forget the remembered answers now (the policy is re-read when it changes).
    process.on('SIGHUP', () => {
      users.clear();
      process.stderr.write('gpuguard decider: user database answers forgotten (SIGHUP)\n');
    });
  });
}
