/**
 * Socket options through bun:ffi on a socket's fd (Bun exposes neither).
 *
 * Who is on the other end of an accepted unix socket, from the kernel:
 * getsockopt(SO_PEERCRED) (man 7 unix). The credentials are those of the
 * process that called connect(2), fixed at that moment; nothing the client
 * sends can change them.
 *
 * The send buffer of the face's sockets: a unix stream socket's sender may
 * have only SO_SNDBUF bytes in flight (208 KiB by default), so a relay
 * between two of them wakes for every few dozen KiB the reader frees.
 */

declare function require(id: string): any;

const SOL_SOCKET = 1;
const SO_PEERCRED = 17;

export interface PeerCred {
  pid: number;
  uid: number;
  gid: number;
}

const SO_SNDBUF = 7;
const SO_SNDBUFFORCE = 32;

interface SockLibc {
  getsockopt(fd: number, level: number, name: number, val: unknown, len: unknown): number;
  setsockopt(fd: number, level: number, name: number, val: unknown, len: number): number;
}
let libc: SockLibc | undefined;
let ptrOf: ((b: ArrayBufferView) => unknown) | undefined;

function sockLibc(): SockLibc {
  if (!libc) {
    const { dlopen, FFIType, ptr } = require('bun:ffi');
    const { symbols } = dlopen('libc.so.6', {
      getsockopt: { args: [FFIType.i32, FFIType.i32, FFIType.i32, FFIType.ptr, FFIType.ptr], returns: FFIType.i32 },
      setsockopt: { args: [FFIType.i32, FFIType.i32, FFIType.i32, FFIType.ptr, FFIType.u32], returns: FFIType.i32 },
    });
    libc = symbols as SockLibc;
    ptrOf = ptr;
  }
  return libc;
}

/** The peer's credentials, or undefined when the kernel does not say (not a unix socket). */
export function peerCred(fd: number): PeerCred | undefined {
  const c = sockLibc();
  const cred = new Int32Array(3);
  const len = new Uint32Array([12]);
  if (c.getsockopt(fd, SOL_SOCKET, SO_PEERCRED, ptrOf!(cred), ptrOf!(len)) !== 0 || len[0] !== 12) return undefined;
  return { pid: cred[0]!, uid: cred[1]! >>> 0, gid: cred[2]! >>> 0 };
}

/** The face's send buffer on each socket: what `docker cp` moved fastest with, measured (bench/README.md, API face). */
export const SEND_BUFFER = 1 << 20;

/**
 * Raise a socket's send buffer. SO_SNDBUFFORCE (the face is root) is not
 * capped by net.core.wmem_max; SO_SNDBUF is the fallback. Best effort: a
 * socket left at the default only moves bytes more slowly.
 */
export function raiseSendBuffer(fd: number | undefined, bytes: number = SEND_BUFFER): void {
  if (fd === undefined || fd < 0) return;
  const c = sockLibc();
  const value = new Int32Array([bytes]);
  if (c.setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, ptrOf!(value), 4) !== 0) c.setsockopt(fd, SOL_SOCKET, SO_SNDBUF, ptrOf!(value), 4);
}
