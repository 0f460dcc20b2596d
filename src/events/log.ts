/**
 * The event log: one JSON object per line, appended with a single write(2)
 * on an O_APPEND descriptor, so concurrent writers never interleave (lines
 * well under PIPE_BUF-sized writes on a local file system are atomic in
 * practice; one write per event is what makes that hold).
 */
import { closeSync, mkdirSync, openSync, writeSync, constants } from 'node:fs';
import { dirname } from 'node:path';

export type Face = 'docker' | 'compose' | 'runtime' | 'admin';
export type Decision = 'allow' | 'rewrite' | 'deny' | 'warn' | 'error';

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
 * Append one event. Never throws: a full disk or a log dir the user cannot
 * write must not break docker. Returns whether the line was written.
 */
export function appendEvent(logPath: string, event: GpuguardEvent, now: Date = new Date()): boolean {
  const line = `${JSON.stringify({ time: now.toISOString(), pid: process.pid, ...event })}\n`;
  let fd: number | undefined;
  try {
    try {
      fd = openSync(logPath, constants.O_WRONLY | constants.O_APPEND | constants.O_CREAT, 0o640);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      mkdirSync(dirname(logPath), { recursive: true, mode: 0o755 });
      fd = openSync(logPath, constants.O_WRONLY | constants.O_APPEND | constants.O_CREAT, 0o640);
    }
    const buf = Buffer.from(line, 'utf8');
    return writeSync(fd, buf, 0, buf.length) === buf.length;
  } catch {
    return false;
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}
