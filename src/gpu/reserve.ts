/**
 * Race freedom for GPU allocation, without state that outlives its use.
 *
 * The scheme:
 *  1. A short host-wide lock: flock(2) on `<dir>/gpu.lock`, held only while
 *     one shim reads the state, decides and writes its reservation (tens of
 *     milliseconds), never across the real docker CLI. The kernel drops it
 *     when the process dies, so a killed shim cannot leave it held.
 *  2. A reservation file per grant, `<dir>/gpu-res.<uid>.<pid>.<random>.json`,
 *     naming the devices and the process (pid + its start time from
 *     /proc/<pid>/stat). The shim then execve()s the real CLI in the same
 *     process, so the reservation is live exactly as long as that docker
 *     command runs: through an image pull, until the container exists (from
 *     then on Docker itself shows the devices). A reservation whose process
 *     is gone is void at once, so a killed shim or CLI blocks nothing.
 *  3. Readers read the reservations *before* asking Docker: a process seen
 *     alive either had not created its container yet (its reservation
 *     counts) or created it before Docker is asked (Docker shows it).
 *
 * The directory (default /run/gpuguard, GPUGUARD_RUN_DIR for tests) is
 * shared by every user, so it is world-writable with the sticky bit (1777,
 * like /tmp): anyone can add a file, nobody can delete or replace another
 * user's. A reservation is believed only if the file's owner (fstat, not the
 * content) is the uid it names and its process is alive and owned by that
 * uid (or root); what it can hold counts against its owner's quota like a
 * container would. Files are created O_EXCL|O_NOFOLLOW with random names and
 * chmod 0644 so every user can read them whatever the umask. The lock file
 * is opened read-only (flock needs no write access) and never with O_CREAT
 * on an existing file (fs.protected_regular). What a member of the docker
 * group can still do — hold the lock forever, or skip gpuguard altogether —
 * is no worse than what the raw docker socket already lets them do; the lock
 * wait is bounded, so a stuck lock gives a clear error, not a hang.
 *
 * Limits: a void record can only be deleted by its owner (or root) in a
 * sticky directory, so other users' dead files stay until their owner's next
 * request or `gpuguard gpus` as root (they are ignored meanwhile). With
 * /proc mounted hidepid=2, another user's process start time cannot be read;
 * kill(pid, 0) then says whether the pid exists, and a reused pid could keep
 * a void reservation for at most RESERVATION_MAX_AGE_MS. gpu.wait tickets
 * (`gpu-wait.*`) follow the same rules; their priority is taken from the
 * policy for the file's owner, never from the file.
 */
import { closeSync, constants, fchmodSync, fstatSync, mkdirSync, openSync, readdirSync, readFileSync, renameSync, statSync, unlinkSync, writeSync, chmodSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { GpuguardError } from '../errors.ts';
import { tryLockExclusive } from '../sys/flock.ts';

export const DEFAULT_RUN_DIR = '/run/gpuguard';
/** A reservation older than this is void even if its process lives on (a forged or stuck one). */
export const RESERVATION_MAX_AGE_MS = 60 * 60 * 1000;
const LOCK_TIMEOUT_MS = 15_000;

export class ReservationError extends GpuguardError {
  override name = 'ReservationError';
}

export function runDir(env: NodeJS.ProcessEnv): string {
  return env.GPUGUARD_RUN_DIR || DEFAULT_RUN_DIR;
}

/** Make sure the shared directory exists and is safe to use (1777 or ours). */
export function ensureRunDir(dir: string): void {
  let st;
  try {
    st = statSync(dir);
  } catch {
    try {
      mkdirSync(dir, { recursive: true, mode: 0o1777 });
      chmodSync(dir, 0o1777);
      st = statSync(dir);
    } catch (err) {
      throw new ReservationError(
        `GPU allocation needs the shared directory ${dir} (mode 1777) and cannot create it (${(err as NodeJS.ErrnoException).code}); as root: install -d -m 1777 ${dir} (install.sh sets this up)`,
        1,
        { cause: err },
      );
    }
  }
  if (!st.isDirectory()) throw new ReservationError(`${dir} is not a directory; GPU allocation needs it as a shared directory (mode 1777)`);
  const worldWritable = (st.mode & 0o002) !== 0;
  if (worldWritable && (st.mode & 0o1000) === 0) {
    throw new ReservationError(`${dir} is world-writable without the sticky bit, so users could delete each other's GPU reservations; as root: chmod 1777 ${dir}`);
  }
}

// ---------------------------------------------------------------- the lock

function openLockFile(path: string): number {
  try {
    return openSync(path, constants.O_RDONLY | constants.O_NOFOLLOW);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  try {
    const fd = openSync(path, constants.O_RDONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o444);
    fchmodSync(fd, 0o444);
    return fd;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    return openSync(path, constants.O_RDONLY | constants.O_NOFOLLOW);
  }
}

/** A held GPU lock: the open descriptor; closing it releases the lock. */
export interface GpuLock {
  fd: number;
  release(): void;
}

function openGpuLock(dir: string): { fd: number; path: string } {
  ensureRunDir(dir);
  const path = join(dir, 'gpu.lock');
  try {
    return { fd: openLockFile(path), path };
  } catch (err) {
    throw new ReservationError(`cannot open the GPU lock ${path} (${(err as NodeJS.ErrnoException).code})`, 1, { cause: err });
  }
}

const held = (fd: number): GpuLock => {
  let open = true;
  return {
    fd,
    release() {
      if (open) closeSync(fd);
      open = false;
    },
  };
};

/** Take the lock now if it is free (synchronously, so work started right after overlaps with what the caller does next). */
export function tryGpuLock(dir: string): GpuLock | undefined {
  const { fd } = openGpuLock(dir);
  if (tryLockExclusive(fd)) return held(fd);
  closeSync(fd);
  return undefined;
}

/** Take the host-wide GPU lock, waiting up to timeoutMs. */
export async function gpuLock(dir: string, timeoutMs = LOCK_TIMEOUT_MS): Promise<GpuLock> {
  const { fd, path } = openGpuLock(dir);
  const deadline = Date.now() + timeoutMs;
  let delay = 1;
  try {
    while (!tryLockExclusive(fd)) {
      if (Date.now() > deadline) throw new ReservationError(`the GPU allocation lock ${path} has been held for over ${timeoutMs / 1000}s by another process; try again, or ask an admin to look (fuser ${path})`);
      await new Promise((r) => setTimeout(r, delay));
      delay = Math.min(delay * 2, 20);
    }
  } catch (err) {
    closeSync(fd);
    throw err;
  }
  return held(fd);
}

/** Run fn holding the host-wide GPU lock; released when fn settles (or the process dies). */
export async function withGpuLock<T>(dir: string, fn: () => Promise<T>, timeoutMs = LOCK_TIMEOUT_MS): Promise<T> {
  const lock = tryGpuLock(dir) ?? (await gpuLock(dir, timeoutMs));
  try {
    return await fn();
  } finally {
    lock.release();
  }
}

// ---------------------------------------------------------------- processes

/** A process's start time (clock ticks since boot, field 22 of /proc/PID/stat), or undefined when unreadable. */
export function processStart(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
  } catch {
    return undefined;
  }
}

function processUid(pid: number): number | undefined {
  try {
    const m = /^Uid:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) : undefined;
  } catch {
    return undefined;
  }
}

/** Is the process that wrote a record still the same live process (owned by uid)? */
export function processLive(pid: number, start: string, uid: number): boolean {
  const now = processStart(pid);
  if (now !== undefined) {
    if (now !== start) return false;
    const owner = processUid(pid);
    // root may act for a user (GPUGUARD_USER, sudo): its process then runs as root.
    return owner === undefined || owner === uid || owner === 0;
  }
  // /proc hidden (hidepid): the kernel still says whether the pid exists.
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

// ---------------------------------------------------------------- records

export interface Reservation {
  v: 1;
  uid: number;
  user: string;
  pid: number;
  start: string;
  /** UUIDs reserved. */
  devices: string[];
  slots: string[];
  at: string;
  priority: number;
}

export interface WaitTicket {
  v: 1;
  uid: number;
  user: string;
  pid: number;
  start: string;
  priority: number;
  /** Epoch ms when the request started waiting. */
  arrival: number;
  /** Devices it needs (1 for `all`). */
  need: number;
}

type Kind = 'res' | 'wait';

function writeRecord(dir: string, kind: Kind, record: Reservation | WaitTicket): string {
  for (let attempt = 0; attempt < 5; attempt++) {
    const name = `gpu-${kind}.${record.uid}.${record.pid}.${randomBytes(6).toString('hex')}.json`;
    const path = join(dir, name);
    let fd: number;
    try {
      fd = openSync(path, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o644);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EEXIST') continue;
      throw new ReservationError(`cannot write a GPU reservation in ${dir} (${(err as NodeJS.ErrnoException).code})`, 1, { cause: err });
    }
    try {
      fchmodSync(fd, 0o644);
      writeSync(fd, JSON.stringify(record));
    } finally {
      closeSync(fd);
    }
    return path;
  }
  throw new ReservationError(`cannot find a free reservation file name in ${dir}`);
}

interface Read<T> {
  path: string;
  record: T;
}

/**
 * Live records of one kind. Void ones (dead process, wrong owner, too old,
 * unreadable) are skipped; those this process may delete (its own uid, or
 * root) are deleted on the way.
 */
function readRecords<T extends Reservation | WaitTicket>(dir: string, kind: Kind, now: number): Read<T>[] {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return [];
  }
  const me = process.getuid?.() ?? -1;
  const out: Read<T>[] = [];
  for (const name of names) {
    if (!name.startsWith(`gpu-${kind}.`) || !name.endsWith('.json')) continue;
    const path = join(dir, name);
    let fd: number;
    try {
      fd = openSync(path, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
    } catch {
      continue;
    }
    let record: T | undefined;
    let owner = -1;
    try {
      const st = fstatSync(fd);
      owner = st.uid;
      if (st.isFile() && st.size < 64 * 1024) record = JSON.parse(readFileSync(fd, 'utf8')) as T;
    } catch {
      record = undefined;
    } finally {
      closeSync(fd);
    }
    const valid =
      record !== undefined &&
      record.v === 1 &&
      Number.isInteger(record.uid) &&
      Number.isInteger(record.pid) &&
      typeof record.start === 'string' &&
      (owner === record.uid || owner === 0) &&
      ageOk(record, now) &&
      processLive(record.pid, record.start, record.uid);
    if (valid) out.push({ path, record: record! });
    else if (owner === me || me === 0) {
      try {
        unlinkSync(path);
      } catch {
        /* someone else cleaned it */
      }
    }
  }
  return out;
}

function ageOk(r: Reservation | WaitTicket, now: number): boolean {
  const t = 'at' in r ? Date.parse(r.at) : r.arrival;
  return Number.isFinite(t) && now - t < RESERVATION_MAX_AGE_MS && t - now < 60_000;
}

export function readReservations(dir: string, now = Date.now()): Read<Reservation>[] {
  return readRecords<Reservation>(dir, 'res', now);
}

export function readWaitTickets(dir: string, now = Date.now()): Read<WaitTicket>[] {
  return readRecords<WaitTicket>(dir, 'wait', now);
}

function self(): { pid: number; start: string } {
  const start = processStart(process.pid);
  if (start === undefined) throw new ReservationError('cannot read /proc/self/stat, which GPU reservations need');
  return { pid: process.pid, start };
}

export function writeReservation(dir: string, r: Omit<Reservation, 'v' | 'pid' | 'start'>): string {
  return writeRecord(dir, 'res', { v: 1, ...self(), ...r });
}

export function writeWaitTicket(dir: string, t: Omit<WaitTicket, 'v' | 'pid' | 'start'>): string {
  return writeRecord(dir, 'wait', { v: 1, ...self(), ...t });
}

export function removeRecord(path: string): void {
  try {
    unlinkSync(path);
  } catch {
    /* gone */
  }
}

// ---------------------------------------------------------------- the per-user cache

/**
 * Each user's cache of container id → GPU ids (see state.ts GpuIdCache),
 * `<dir>/gpu-cache.<uid>.json`. Only a file the user owns is read, and it is
 * replaced by rename, so nobody can feed another user's allocator; what a
 * user could write into their own cache (hide a device from themselves) is
 * no more than `docker run --gpus device=…` with the raw CLI already allows.
 */
export function cacheStore(dir: string, uid: number = process.getuid?.() ?? 0): { load(): Record<string, string[]>; save(c: Record<string, string[]>): void } {
  const path = join(dir, `gpu-cache.${uid}.json`);
  return {
    load() {
      let fd: number;
      try {
        fd = openSync(path, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
      } catch {
        return {};
      }
      try {
        const st = fstatSync(fd);
        if (!st.isFile() || st.uid !== uid) return {};
        const data = JSON.parse(readFileSync(fd, 'utf8')) as unknown;
        if (!data || typeof data !== 'object' || Array.isArray(data)) return {};
        const out: Record<string, string[]> = {};
        for (const [id, ids] of Object.entries(data)) if (/^[0-9a-f]{64}$/.test(id) && Array.isArray(ids) && ids.every((x) => typeof x === 'string')) out[id] = ids;
        return out;
      } catch {
        return {};
      } finally {
        closeSync(fd);
      }
    },
    save(c) {
      const tmp = join(dir, `gpu-cache.${uid}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
      try {
        const fd = openSync(tmp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600);
        try {
          writeSync(fd, JSON.stringify(c));
        } finally {
          closeSync(fd);
        }
        renameSync(tmp, path);
      } catch {
        removeRecord(tmp); // a cache is an optimisation: never a failure
      }
    },
  };
}
