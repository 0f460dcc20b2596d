/**
 * gpuguard and its native front, as files. The names installed as `docker`,
 * `docker-compose`, `gpuguard-runc` and `runc` point at the front
 * (src/front/front.c, built beside this binary as `gpuguard-front`), which
 * execs the real tool itself or, for the calls that need a decision, starts
 * this binary (`gpuguard`, in the same directory) with the same argv.
 *
 * When looking for the real docker, compose or runtime, every one of these is
 * "us": this binary, the front beside it, and any copy of a front (it
 * carries FRONT_MARKER; the front skips copies of itself the same way).
 * Handing a call to any of them would loop.
 */
import { dirname } from 'node:path';
import { realpathOf } from '../sys/fastfs.ts';

export const GPUGUARD_NAME = 'gpuguard';
export const FRONT_NAME = 'gpuguard-front';
/** Bytes every front binary carries (front.c keeps them in its read-only data). */
export const FRONT_MARKER = 'gpuguard-native-front/1:5b1f0e7c';
/** A front is a few hundred KiB at most; anything bigger (docker, runc) is not read for the marker. */
export const FRONT_MAX_BYTES = 4 * 1024 * 1024;

declare const Bun: { file(path: string): { size: number } } | undefined;

/** Resolved paths of this binary and of the front beside it. */
export function ourPaths(self: string = process.execPath): string[] {
  const real = realpathOf(self) ?? self;
  const front = realpathOf(`${dirname(real)}/${FRONT_NAME}`);
  return front ? [real, front] : [real];
}

/** Whether a resolved path is gpuguard or a front (ours, or a copy of one). */
export function isUs(realPath: string, ours: readonly string[]): boolean {
  return ours.includes(realPath) || isFrontCopy(realPath);
}

function isFrontCopy(path: string): boolean {
  try {
    const size = typeof Bun !== 'undefined' ? Bun.file(path).size : process.getBuiltinModule('node:fs').statSync(path).size;
    if (!(size > 0 && size <= FRONT_MAX_BYTES)) return false;
    // node:fs only here, for a small file: loading it starts Bun's thread pool (see sys/fastfs.ts).
    return process.getBuiltinModule('node:fs').readFileSync(path).includes(FRONT_MARKER);
  } catch {
    return false;
  }
}
