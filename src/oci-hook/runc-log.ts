/**
 * Reporting a failure the way runc does, so that the caller shows it:
 * containerd's shim reads the last error from the `--log` file (runc's
 * logrus JSON lines: {"level":"error","msg":…,"time":…}) and dockerd puts it
 * into "OCI runtime create failed: …". Also written to stderr, one line.
 */
import { appendFileSync, writeSync } from 'node:fs';
import type { RuncGlobals } from './args.ts';

/** logrus' default time format, RFC 3339 with seconds. */
function rfc3339(now: Date): string {
  return now.toISOString().replace(/\.\d{3}Z$/, 'Z');
}

export function runcLogLine(format: string | undefined, message: string, now: Date = new Date()): string {
  if (format === 'json') return `${JSON.stringify({ level: 'error', msg: message, time: rfc3339(now) })}\n`;
  return `time="${rfc3339(now)}" level=error msg=${JSON.stringify(message)}\n`;
}

/** Write `gpuguard: <message>` to the --log file (if any) and stderr. Never throws. */
export function reportRuntimeError(globals: RuncGlobals | undefined, message: string): void {
  const line = `gpuguard: ${message}`;
  if (globals?.log) {
    try {
      appendFileSync(globals.log, runcLogLine(globals.logFormat, line), { mode: 0o644 });
    } catch {
      /* stderr below still says it */
    }
  }
  try {
    writeSync(2, `${line}\n`);
  } catch {
    /* nothing left to tell */
  }
}
