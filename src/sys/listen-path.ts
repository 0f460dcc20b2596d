/**
 * Making way for a unix socket to listen on: a stale socket file (its
 * listener gone) is removed; anything else there is a problem to report.
 */
import { lstatSync, unlinkSync } from 'node:fs';
import { connect } from 'node:net';

/** undefined once `path` is free to bind; else what is in the way ("is in use", "is not a socket"). */
export async function clearListenPath(path: string): Promise<'is not a socket' | 'is in use' | undefined> {
  let st;
  try {
    st = lstatSync(path);
  } catch {
    return undefined;
  }
  if (!st.isSocket()) return 'is not a socket';
  if (await listening(path)) return 'is in use';
  unlinkSync(path);
  return undefined;
}

/** Whether something listens at a unix socket path (accepts a connection within 2 s). */
export function listening(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect({ path });
    const done = (v: boolean) => {
      s.destroy();
      resolve(v);
    };
    s.once('connect', () => done(true));
    // A listener that accepts and hangs up at once (the decider answering) can show up as a reset:
    // only a refusal, or no socket, means nobody listens.
    s.once('error', (err: NodeJS.ErrnoException) => done(err.code !== 'ECONNREFUSED' && err.code !== 'ENOENT'));
    setTimeout(() => done(false), 2000).unref();
  });
}
