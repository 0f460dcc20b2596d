/**
 * What `gpuguard reap` remembers between runs, in one small root-owned file
 * (default /var/lib/gpuguard/reap.json, mode 0600): each running
 * container's CPU counter at the last run (idleness is the counter's growth
 * over the interval between two reaps), since when it has been idle, the
 * warnings already given, host processes already warned about, and how the
 * last run went (for `gpuguard doctor`). Written whole (temp file, fsync,
 * rename); one reaper at a time (flock on its directory).
 *
 * A file that is missing, not root's, or not understood is started afresh
 * with a warning: all that is lost is measurements, and a container whose
 * idleness is not measured is never stopped for it.
 */
import { closeSync, constants, fchmodSync, fstatSync, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, writeSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { z } from 'zod';
import { GpuguardError } from '../errors.ts';
import { tryLockExclusive } from '../sys/flock.ts';

export const DEFAULT_REAP_STATE = '/var/lib/gpuguard/reap.json';

const ActivityMemory = z.strictObject({
  startedAt: z.string(),
  at: z.number(),
  cpuNs: z.number().nonnegative(),
  idleSince: z.number().optional(),
});

const ReapStateSchema = z.strictObject({
  version: z.literal(1),
  containers: z.record(
    z.string(),
    z.strictObject({
      activity: ActivityMemory.optional(),
      warned: z.strictObject({ key: z.string(), at: z.number() }).optional(),
      /** mode audit: the stop or removal already logged. */
      audited: z.string().optional(),
    }),
  ),
  /** `<pid>:<start time>` → when its owner was warned. */
  hostProcesses: z.record(z.string(), z.strictObject({ warnedAt: z.number() })),
  lastRun: z
    .strictObject({
      at: z.string(),
      ok: z.boolean(),
      error: z.string().optional(),
      durationMs: z.number(),
      containers: z.number(),
      acted: z.number(),
    })
    .optional(),
});

export type ReapState = z.infer<typeof ReapStateSchema>;
export type LastRun = NonNullable<ReapState['lastRun']>;

export function emptyReapState(): ReapState {
  return { version: 1, containers: {}, hostProcesses: {} };
}

/** Read the state; `warning` says why it was started afresh, if it was. */
export function readReapState(path: string): { state: ReapState; warning?: string } {
  let fd: number;
  try {
    fd = openSync(path, constants.O_RDONLY | constants.O_NOFOLLOW);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return { state: emptyReapState() };
    return { state: emptyReapState(), warning: `${path}: cannot read the reaper's state (${code}); starting afresh` };
  }
  try {
    const st = fstatSync(fd);
    if (st.uid !== 0 && process.getuid?.() === 0) return { state: emptyReapState(), warning: `${path} is owned by uid ${st.uid}, not root: not trusted; starting afresh` };
    const parsed = ReapStateSchema.safeParse(JSON.parse(readFileSync(fd, 'utf8')));
    if (!parsed.success) return { state: emptyReapState(), warning: `${path}: not a reaper state file (${parsed.error.issues[0]?.message}); starting afresh` };
    return { state: parsed.data };
  } catch (err) {
    return { state: emptyReapState(), warning: `${path}: not valid JSON (${(err as Error).message}); starting afresh` };
  } finally {
    closeSync(fd);
  }
}

/** Only the last run, for doctor; undefined when the reaper never ran (or its file is not understood). */
export function readLastRun(path: string): LastRun | undefined {
  const { state, warning } = readReapState(path);
  return warning ? undefined : state.lastRun;
}

export function writeReapState(path: string, state: ReapState): void {
  mkdirSync(dirname(path), { recursive: true, mode: 0o755 });
  const tmp = join(dirname(path), `.${basename(path)}.tmp-${process.pid}`);
  const fd = openSync(tmp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600);
  try {
    fchmodSync(fd, 0o600);
    const buf = Buffer.from(`${JSON.stringify(state)}\n`);
    writeSync(fd, buf, 0, buf.length);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, path);
}

/**
 * Take the reaper's lock: flock on the state file's directory (the state
 * file itself is replaced by rename each run, and a lock file would be one
 * more file to clean up). Undefined when another reaper holds it.
 */
export function lockReaper(path: string): { release(): void } | undefined {
  const dir = dirname(path);
  mkdirSync(dir, { recursive: true, mode: 0o755 });
  let fd: number;
  try {
    fd = openSync(dir, constants.O_RDONLY | constants.O_DIRECTORY);
  } catch (err) {
    throw new GpuguardError(`cannot open ${dir} to lock the reaper (${(err as NodeJS.ErrnoException).code})`, 1, { cause: err });
  }
  if (!tryLockExclusive(fd)) {
    closeSync(fd);
    return undefined;
  }
  return { release: () => closeSync(fd) };
}
