/**
 * flock(2) through bun:ffi: a lock the kernel drops when its holder dies,
 * so a killed process never leaves one held. Only the compiled binary has
 * bun:ffi; the source run under Node (tests of pure parts) cannot lock.
 */
import { GpuguardError } from '../errors.ts';

declare const Bun: unknown;
declare function require(id: string): any;

const LOCK_EX = 2;
const LOCK_NB = 4;
let flockFn: ((fd: number, op: number) => number) | undefined;

function flock(): (fd: number, op: number) => number {
  if (flockFn) return flockFn;
  if (typeof Bun === 'undefined') throw new GpuguardError('locking needs the compiled binary (flock through bun:ffi)');
  const { dlopen, FFIType } = require('bun:ffi');
  const { symbols } = dlopen('libc.so.6', { flock: { args: [FFIType.i32, FFIType.i32], returns: FFIType.i32 } });
  flockFn = symbols.flock as (fd: number, op: number) => number;
  return flockFn;
}

/** Take an exclusive lock on an open descriptor if it is free; closing the descriptor releases it. */
export function tryLockExclusive(fd: number): boolean {
  return flock()(fd, LOCK_EX | LOCK_NB) === 0;
}
