/**
 * dockerd behind the face: its socket (checked before every use, so a
 * socket a user planted where dockerd's used to be is never spoken to),
 * raw connections for proxying, and JSON reads for the facts decisions
 * need (inspect, lists), failing closed: an error here refuses the request.
 */
import { lstatSync } from 'node:fs';
import { GpuguardError } from '../errors.ts';
import { Pipe, pipeHandlers, type RawSocket } from './stream.ts';
import { raiseSendBuffer } from './sockopt.ts';

declare const Bun: {
  connect(opts: { unix: string; allowHalfOpen?: boolean; data?: unknown; socket: unknown }): Promise<unknown>;
};

export class UpstreamError extends GpuguardError {
  override name = 'UpstreamError';
}

/** Why this path may not be dockerd's socket, or undefined when it may. */
export function upstreamProblem(path: string): string | undefined {
  let st;
  try {
    st = lstatSync(path);
  } catch (err) {
    return `${path} does not exist (${(err as NodeJS.ErrnoException).code}); is dockerd running with -H unix://${path}?`;
  }
  if (st.isSymbolicLink()) return `${path} is a symbolic link; point api.upstream at dockerd's socket itself`;
  if (!st.isSocket()) return `${path} is not a socket`;
  if (st.uid !== 0) return `${path} is owned by uid ${st.uid}, not root, so it is not dockerd's: refusing to talk to it`;
  return undefined;
}

export interface JsonReply {
  status: number;
  body: unknown;
  /** The body as received, for passing dockerd's own error on. */
  text: string;
}

export class Upstream {
  constructor(readonly path: string) {}

  /** Throws unless the path is still dockerd's socket (root's, a socket, not a link). */
  assertSafe(): void {
    const problem = upstreamProblem(this.path);
    if (problem) throw new UpstreamError(`cannot reach dockerd: ${problem}`);
  }

  /** A new raw connection for proxying one client connection. */
  async connect(): Promise<Pipe> {
    this.assertSafe();
    try {
      const socket = (await Bun.connect({
        unix: this.path,
        allowHalfOpen: true,
        socket: {
          ...pipeHandlers,
          open(s: { data: Pipe } & RawSocket) {
            s.data = new Pipe(s);
            raiseSendBuffer(s.fd);
          },
          connectError() {},
        },
      })) as { data: Pipe };
      return socket.data;
    } catch (err) {
      throw new UpstreamError(`cannot connect to dockerd at ${this.path}: ${(err as Error).message}`, 1, { cause: err });
    }
  }

  /** A JSON request to dockerd (facts for a decision). Rejects with UpstreamError when dockerd cannot be asked. */
  async json(method: string, path: string, body?: unknown): Promise<JsonReply> {
    this.assertSafe();
    let res: Response;
    try {
      res = await fetch(`http://docker${path}`, {
        method,
        unix: this.path,
        ...(body !== undefined ? { body: JSON.stringify(body), headers: { 'Content-Type': 'application/json' } } : {}),
      } as RequestInit);
    } catch (err) {
      throw new UpstreamError(`cannot reach dockerd at ${this.path}: ${(err as Error).message}`, 1, { cause: err });
    }
    const text = await res.text();
    let parsed: unknown = text;
    try {
      parsed = text ? JSON.parse(text) : undefined;
    } catch {
      /* dockerd's errors are JSON; anything else is kept as text */
    }
    return { status: res.status, body: parsed, text };
  }

  async get(path: string): Promise<JsonReply> {
    return this.json('GET', path);
  }
}

/** dockerd's error message from a reply, for passing on. */
export function daemonMessage(r: JsonReply): string {
  const b = r.body as { message?: unknown } | undefined;
  return typeof b === 'object' && b && typeof b.message === 'string' ? b.message : r.text.trim() || `HTTP ${r.status}`;
}
