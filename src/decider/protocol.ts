/**
 * What the decider answers the native front (src/front/front.c reads it):
 * NUL-terminated fields, then end of stream. The front sends nothing: the
 * decider reads the caller from the kernel (SO_PEERCRED, /proc/PID).
 *
 *   exec\0 STDERR\0 REAL\0 N\0 ARG1\0 … ARGN\0   print STDERR, execve REAL with argv[0] and the N words
 *   exit\0 STDERR\0 CODE\0                        print STDERR, exit CODE
 *   self\0 WHY\0                                  run gpuguard itself, as without a decider
 */

/** The socket the front asks when GPUGUARD_DECIDER does not name another (empty: ask none). */
export const DEFAULT_DECIDER_SOCKET = '/run/gpuguard-decider/decider.sock';

/** How long the front waits for an answer before it runs gpuguard itself; the decider gives up sooner. */
export const FRONT_WAIT_SECONDS = 15;
/** How long the front waits to be let in (a decider whose backlog is full) before it runs gpuguard itself. */
export const FRONT_CONNECT_SECONDS = 2;
export const DECIDER_DEADLINE_MS = 10_000;

export type Answer = { kind: 'exec'; stderr: string; real: string; argv: string[] } | { kind: 'exit'; stderr: string; code: number } | { kind: 'self'; why: string };

export function encodeAnswer(a: Answer): Buffer {
  const fields = a.kind === 'exec' ? ['exec', a.stderr, a.real, String(a.argv.length), ...a.argv] : a.kind === 'exit' ? ['exit', a.stderr, String(a.code)] : ['self', a.why];
  // A NUL inside a field would end it early: argv and paths cannot hold one, messages are cleaned.
  return Buffer.from(fields.map((f) => `${f.replaceAll('\0', '')}\0`).join(''), 'utf8');
}

/** The inverse, for tests and `gpuguard decider --ask`. */
export function decodeAnswer(buf: Buffer): Answer | undefined {
  const text = buf.toString('utf8');
  if (!text.endsWith('\0')) return undefined;
  const f = text.slice(0, -1).split('\0');
  if (f[0] === 'self' && f.length === 2) return { kind: 'self', why: f[1]! };
  if (f[0] === 'exit' && f.length === 3 && /^\d+$/.test(f[2]!)) return { kind: 'exit', stderr: f[1]!, code: Number(f[2]) };
  if (f[0] === 'exec' && f.length >= 4 && /^\d+$/.test(f[3]!) && f.length === 4 + Number(f[3])) return { kind: 'exec', stderr: f[1]!, real: f[2]!, argv: f.slice(4) };
  return undefined;
}
