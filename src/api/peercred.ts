/**
 * Who is on the other end of an accepted unix socket, from the kernel:
 * getsockopt(SO_PEERCRED) (man 7 unix) through bun:ffi on the socket's fd.
 * The credentials are those of the process that called connect(2), fixed
 * at that moment; nothing the client sends can change them.
 */

declare function require(id: string): any;

const SOL_SOCKET = 1;
const SO_PEERCRED = 17;

export interface PeerCred {
  pid: number;
  uid: number;
  gid: number;
}

let getsockopt: ((fd: number, level: number, name: number, val: unknown, len: unknown) => number) | undefined;
let ptrOf: ((b: ArrayBufferView) => unknown) | undefined;

/** The peer's credentials, or undefined when the kernel does not say (not a unix socket). */
export function peerCred(fd: number): PeerCred | undefined {
  if (!getsockopt) {
    const { dlopen, FFIType, ptr } = require('bun:ffi');
    const { symbols } = dlopen('libc.so.6', {
      getsockopt: { args: [FFIType.i32, FFIType.i32, FFIType.i32, FFIType.ptr, FFIType.ptr], returns: FFIType.i32 },
    });
    getsockopt = symbols.getsockopt;
    ptrOf = ptr;
  }
  const cred = new Int32Array(3);
  const len = new Uint32Array([12]);
  if (getsockopt!(fd, SOL_SOCKET, SO_PEERCRED, ptrOf!(cred), ptrOf!(len)) !== 0 || len[0] !== 12) return undefined;
  return { pid: cred[0]!, uid: cred[1]! >>> 0, gid: cred[2]! >>> 0 };
}
