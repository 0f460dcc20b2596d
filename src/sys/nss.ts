/**
 * The system's user database (NSS: files, sssd, LDAP …), asked in-process:
 * getpwnam_r/getpwuid_r and getgrouplist/getgrgid_r from libc through
 * bun:ffi, so an LDAP/AD user resolves exactly as `getent passwd` and
 * `id -Gn` would resolve them, without starting either (two processes cost
 * the shim's create 4–10 ms here). Under Node (tests running the source), or
 * if libc cannot be opened, the same questions go to getent and id.
 */
import { execFileSync } from 'node:child_process';

export interface PasswdEntry {
  user: string;
  uid: number;
  gid: number;
  /** The home directory (pw_dir). */
  home: string;
}

declare const Bun: unknown;
declare function require(id: string): any;

interface Libc {
  getpwnam_r(name: unknown, pwd: unknown, buf: unknown, len: number, result: unknown): number;
  getpwuid_r(uid: number, pwd: unknown, buf: unknown, len: number, result: unknown): number;
  getgrouplist(user: unknown, gid: number, groups: unknown, ngroups: unknown): number;
  getgrgid_r(gid: number, grp: unknown, buf: unknown, len: number, result: unknown): number;
}

interface Ffi {
  libc: Libc;
  ptr: (b: ArrayBufferView) => number;
  cstring: (p: number) => string;
}

let ffi: Ffi | null | undefined;

function loadFfi(): Ffi | null {
  if (ffi !== undefined) return ffi;
  if (typeof Bun === 'undefined') return (ffi = null);
  try {
    const { dlopen, FFIType, ptr, CString } = require('bun:ffi');
    const P = FFIType.ptr;
    const { symbols } = dlopen('libc.so.6', {
      getpwnam_r: { args: [P, P, P, FFIType.u64, P], returns: FFIType.i32 },
      getpwuid_r: { args: [FFIType.u32, P, P, FFIType.u64, P], returns: FFIType.i32 },
      getgrouplist: { args: [P, FFIType.u32, P, P], returns: FFIType.i32 },
      getgrgid_r: { args: [FFIType.u32, P, P, FFIType.u64, P], returns: FFIType.i32 },
    });
    ffi = { libc: symbols as Libc, ptr, cstring: (p: number) => new CString(p).toString() };
  } catch {
    ffi = null;
  }
  return ffi;
}

const ERANGE = 34;
const cstr = (s: string) => Buffer.from(`${s}\0`, 'utf8');

/* glibc's `struct passwd` (LP64): pw_name at 0, pw_uid at 16, pw_gid at 20, pw_dir at 32, 48 bytes; `struct group`: gr_name at 0, 32 bytes. */
function passwdFfi(f: Ffi, key: string): PasswdEntry | undefined {
  let out: PasswdEntry | undefined;
  const byUid = /^\d+$/.test(key);
  const name = cstr(key);
  const record = Buffer.alloc(48);
  const result = new BigUint64Array(1);
  for (let len = 4096; len <= 1 << 20; len *= 4) {
    const buf = Buffer.alloc(len);
    const rc = byUid
      ? f.libc.getpwuid_r(Number(key), f.ptr(record), f.ptr(buf), len, f.ptr(result))
      : f.libc.getpwnam_r(f.ptr(name), f.ptr(record), f.ptr(buf), len, f.ptr(result));
    if (rc === ERANGE) continue;
    if (rc !== 0 || result[0] === 0n) return undefined;
    out = { user: f.cstring(Number(record.readBigUInt64LE(0))), uid: record.readUInt32LE(16), gid: record.readUInt32LE(20), home: f.cstring(Number(record.readBigUInt64LE(32))) };
    void buf;
    break;
  }
  return out;
}

function groupNameFfi(f: Ffi, gid: number): string | undefined {
  const record = Buffer.alloc(32);
  const result = new BigUint64Array(1);
  for (let len = 4096; len <= 1 << 22; len *= 4) {
    const buf = Buffer.alloc(len);
    const rc = f.libc.getgrgid_r(gid, f.ptr(record), f.ptr(buf), len, f.ptr(result));
    if (rc === ERANGE) continue;
    if (rc !== 0 || result[0] === 0n) return undefined;
    const name = f.cstring(Number(record.readBigUInt64LE(0)));
    void buf;
    return name;
  }
  return undefined;
}

function groupsFfi(f: Ffi, user: string, gid: number): string[] {
  const name = cstr(user);
  let n = 64;
  for (let tries = 0; tries < 8; tries++) {
    const gids = new Uint32Array(n);
    const count = new Int32Array([n]);
    const rc = f.libc.getgrouplist(f.ptr(name), gid, f.ptr(gids), f.ptr(count));
    if (rc < 0) {
      n = Math.max(count[0]!, n * 2);
      continue;
    }
    // As `id -Gn`: a group without a name is shown by its number.
    return [...new Set(gids.subarray(0, count[0]!))].map((g) => groupNameFfi(f, g) ?? String(g));
  }
  return [];
}

/** `getent passwd KEY`: a numeric key is a uid, anything else a name (as getent decides). */
export function passwdEntry(key: string): PasswdEntry | undefined {
  const f = loadFfi();
  if (f) return passwdFfi(f, key);
  let line: string;
  try {
    line = execFileSync('getent', ['passwd', key], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
  } catch {
    return undefined;
  }
  const [user, , uid, gid, , home] = line.split('\n')[0]!.split(':');
  return user && uid !== undefined && /^\d+$/.test(uid) ? { user, uid: Number(uid), gid: Number(gid), home: home ?? '' } : undefined;
}

/** `id -Gn USER`: the names of every group the user is in, the primary one included. */
export function groupNames(entry: PasswdEntry): string[] {
  const f = loadFfi();
  if (f) return groupsFfi(f, entry.user, entry.gid);
  try {
    return execFileSync('id', ['-Gn', '--', entry.user], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim().split(/\s+/).filter(Boolean);
  } catch {
    return [];
  }
}
