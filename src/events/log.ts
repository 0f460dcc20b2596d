/**
 * The event log: one JSON object per line, appended with a single write(2)
 * on an O_APPEND descriptor, so concurrent writers never interleave (lines
 * well under PIPE_BUF-sized writes on a local file system are atomic in
 * practice; one write per event is what makes that hold).
 */
import { closeSync, fchmodSync, mkdirSync, openSync, writeSync, constants } from 'node:fs';
import { dirname } from 'node:path';

export type Face = 'docker' | 'compose' | 'runtime' | 'admin' | 'reap' | 'api';
/** `stop`, `remove`, `kill`: what the reaper did (`face: reap`). */
export type Decision = 'allow' | 'rewrite' | 'deny' | 'warn' | 'error' | 'stop' | 'remove' | 'kill';

export interface GpuguardEvent {
  face: Face;
  decision: Decision;
  user?: string;
  uid?: number;
  /** A short summary of what was asked (argv or runtime call). */
  argv?: string[];
  container?: string;
  namespace?: string;
  reasons?: string[];
  gpus?: string[];
  [extra: string]: unknown;
}

/**
 * Mode of a log this creates: every face appends (the shim runs as the
 * calling user), only root reads; install.sh creates it the same way.
 */
const LOG_MODE = 0o622;

const APPEND = constants.O_WRONLY | constants.O_APPEND;

/** Open for appending; a missing log (and its directory) is created with LOG_MODE whatever the umask. */
function openLog(logPath: string): number {
  try {
    return openSync(logPath, APPEND);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  mkdirSync(dirname(logPath), { recursive: true, mode: 0o755 });
  try {
    const fd = openSync(logPath, APPEND | constants.O_CREAT | constants.O_EXCL, LOG_MODE);
    fchmodSync(fd, LOG_MODE);
    return fd;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return openSync(logPath, APPEND); // another writer made it first
    throw err;
  }
}

/**
 * Append one event. Never throws: a full disk or a log dir the user cannot
 * write must not break docker. Returns whether the line was written.
 */
export function appendEvent(logPath: string, event: GpuguardEvent, now: Date = new Date()): boolean {
  const line = `${JSON.stringify({ time: now.toISOString(), pid: process.pid, ...event })}\n`;
  let fd: number | undefined;
  try {
    fd = openLog(logPath);
    const buf = Buffer.from(line, 'utf8');
    return writeSync(fd, buf, 0, buf.length) === buf.length;
  } catch {
    return false;
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}
