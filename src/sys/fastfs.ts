/**
 * The few file-system questions the pass-through path asks (realpath,
 * executable?, a symlink's target, a file's size and mtime), answered
 * without node:fs under Bun. Measured with Bun 1.4.5: the first node:fs call
 * in a compiled binary starts thread-pool threads (1–3 clone3, ~1 ms), which
 * the execve that follows must then tear down; libc through bun:ffi (already
 * loaded for the execve) and Bun.file's sync getters start none. Under Node
 * (tests running the source) node:fs is used.
 */

declare const Bun: { file(path: string): { size: number; lastModified: number } } | undefined;
declare function require(id: string): any;

/** node:fs under Node only: importing it at all under Bun starts the thread pool. */
function nodeFs(): typeof import('node:fs') {
  return process.getBuiltinModule('node:fs');
}

interface Libc {
  realpath(path: unknown, resolved: unknown): unknown;
  access(path: unknown, mode: number): number;
  readlink(path: unknown, buf: unknown, size: number): number;
  free(p: unknown): void;
}

let libc: { sym: Libc; ptr: (b: ArrayBufferView) => number; CString: new (p: unknown) => { toString(): string } } | undefined;

function ffi() {
  if (libc) return libc;
  const { dlopen, FFIType, ptr, CString } = require('bun:ffi');
  const { symbols } = dlopen('libc.so.6', {
    realpath: { args: [FFIType.ptr, FFIType.ptr], returns: FFIType.ptr },
    access: { args: [FFIType.ptr, FFIType.i32], returns: FFIType.i32 },
    readlink: { args: [FFIType.ptr, FFIType.ptr, FFIType.u64], returns: FFIType.i64 },
    free: { args: [FFIType.ptr], returns: FFIType.void },
  });
  libc = { sym: symbols as Libc, ptr, CString };
  return libc;
}

const onBun = typeof Bun !== 'undefined';
const cstr = (s: string) => Buffer.from(`${s}\0`, 'utf8');
const F_OK = 0;
const X_OK = 1;

export function realpathOf(path: string): string | undefined {
  if (!onBun) {
    try {
      return nodeFs().realpathSync(path);
    } catch {
      return undefined;
    }
  }
  const { sym, ptr, CString } = ffi();
  const p = sym.realpath(ptr(cstr(path)), null);
  if (!p) return undefined;
  const out = new CString(p).toString();
  sym.free(p);
  return out;
}

export function isExecutable(path: string): boolean {
  if (!onBun) {
    try {
      const fs = nodeFs();
      fs.accessSync(path, fs.constants.X_OK);
      return fs.statSync(path).isFile();
    } catch {
      return false;
    }
  }
  const { sym, ptr } = ffi();
  return sym.access(ptr(cstr(path)), X_OK) === 0 && Bun!.file(path).size >= 0;
}

export function exists(path: string): boolean {
  if (!onBun) {
    try {
      nodeFs().accessSync(path);
      return true;
    } catch {
      return false;
    }
  }
  const { sym, ptr } = ffi();
  return sym.access(ptr(cstr(path)), F_OK) === 0;
}

/** A symlink's target, or undefined. */
export function readLink(path: string): string | undefined {
  if (!onBun) {
    try {
      return nodeFs().readlinkSync(path);
    } catch {
      return undefined;
    }
  }
  const { sym, ptr } = ffi();
  const buf = Buffer.alloc(4096);
  const n = Number(sym.readlink(ptr(cstr(path)), ptr(buf), buf.length));
  return n > 0 ? buf.toString('utf8', 0, n) : undefined;
}

/** Size and whole-millisecond mtime of an existing file, or undefined. */
export function fileStamp(path: string): { size: number; mtimeMs: number } | undefined {
  if (!onBun) {
    try {
      const st = nodeFs().statSync(path);
      return { size: st.size, mtimeMs: Math.floor(st.mtimeMs) };
    } catch {
      return undefined;
    }
  }
  if (!exists(path)) return undefined;
  const f = Bun!.file(path);
  return { size: f.size, mtimeMs: Math.floor(f.lastModified) };
}
