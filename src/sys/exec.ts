/**
 * Becoming another program: execve(2) with the same pid, argv and environment.
 *
 * Bun's own process.execve drops every descriptor above 2, and Bun marks
 * inherited descriptors close-on-exec at startup; a runtime wrapper must hand
 * runc its `--preserve-fds` / `LISTEN_FDS` descriptors intact, so we clear
 * FD_CLOEXEC on exactly those and call libc's execve through bun:ffi.
 * Under Node (tests running the source) process.execve is used where it
 * exists (Node ≥ 22.15), else the program runs as a child and we exit with
 * its status: good enough for tests, never used by the compiled binary.
 */
import { GpuguardError } from '../errors.ts';

const F_GETFD = 1;
const F_SETFD = 2;
const FD_CLOEXEC = 1;

declare const Bun: unknown;
declare function require(id: string): any;

interface Libc {
  execve(path: unknown, argv: unknown, envp: unknown): number;
  fcntl(fd: number, cmd: number, arg: number): number;
  __errno_location(): unknown;
}

let ffi: { libc: Libc; ptr: (b: ArrayBufferView) => number; read: { i32: (p: unknown, o?: number) => number } } | undefined;

function loadFfi() {
  if (ffi) return ffi;
  const { dlopen, FFIType, ptr, read } = require('bun:ffi');
  const { symbols } = dlopen('libc.so.6', {
    execve: { args: [FFIType.ptr, FFIType.ptr, FFIType.ptr], returns: FFIType.i32 },
    fcntl: { args: [FFIType.i32, FFIType.i32, FFIType.i32], returns: FFIType.i32 },
    __errno_location: { args: [], returns: FFIType.ptr },
  });
  ffi = { libc: symbols as Libc, ptr, read };
  return ffi;
}

const ERRNO_NAMES: Record<number, string> = { 2: 'ENOENT', 8: 'ENOEXEC', 13: 'EACCES', 20: 'ENOTDIR', 40: 'ELOOP' };

export class ExecError extends GpuguardError {
  override name = 'ExecError';
}

/**
 * Replace this process with `path`. `argv[0]` is passed as given.
 * `keepFds`: descriptors above 2 that must survive (FD_CLOEXEC cleared).
 */
export function execve(path: string, argv: string[], env: NodeJS.ProcessEnv, keepFds: number[] = []): never {
  const envList = Object.entries(env)
    .filter((e): e is [string, string] => e[1] !== undefined)
    .map(([k, v]) => `${k}=${v}`);
  if (typeof Bun !== 'undefined') {
    const { libc, ptr, read } = loadFfi();
    for (const fd of keepFds) {
      const flags = libc.fcntl(fd, F_GETFD, 0);
      if (flags >= 0 && flags & FD_CLOEXEC) libc.fcntl(fd, F_SETFD, flags & ~FD_CLOEXEC);
    }
    const cstr = (s: string) => Buffer.from(`${s}\0`, 'utf8');
    const keep: Buffer[] = [];
    const vector = (items: string[]) => {
      const arr = new BigUint64Array(items.length + 1);
      items.forEach((s, i) => {
        const b = cstr(s);
        keep.push(b);
        arr[i] = BigInt(ptr(b));
      });
      return arr;
    };
    const pathBuf = cstr(path);
    const argvArr = vector(argv);
    const envArr = vector(envList);
    libc.execve(ptr(pathBuf), ptr(argvArr), ptr(envArr));
    const errno = read.i32(libc.__errno_location());
    void keep;
    throw new ExecError(`cannot execute ${path}: ${ERRNO_NAMES[errno] ?? `errno ${errno}`}`, errno === 2 ? 127 : 126);
  }
  const proc = process as unknown as { execve?: (file: string, args: string[], env: NodeJS.ProcessEnv) => never };
  if (typeof proc.execve === 'function') return proc.execve(path, argv, env);
  // Node without execve: run as a child (tests of the source only).
  const { spawnSync } = require('node:child_process') as typeof import('node:child_process');
  const r = spawnSync(path, argv.slice(1), { argv0: argv[0], env, stdio: 'inherit' });
  if (r.error) throw new ExecError(`cannot execute ${path}: ${(r.error as NodeJS.ErrnoException).code}`, 127);
  process.exit(r.status ?? 128 + 9);
}
