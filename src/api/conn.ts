/**
 * One client connection of the API face: every request on it is read with
 * the strict parser, decided, then answered by the face or forwarded to
 * dockerd on this connection's own upstream connection, one request at a
 * time (pipelined requests wait their turn, as HTTP/1.1 answers them in
 * order anyway). Bodies stream unless the decision buffers them; a hijacked
 * connection (attach, exec start, BuildKit's /session and /grpc) becomes a
 * byte-for-byte pipe both ways, half-closes passed on. When either side
 * goes away the other is closed.
 */
import { GpuguardError } from '../errors.ts';
import {
  ChunkedDecoder,
  HttpError,
  LAST_CHUNK,
  REASONS,
  chunk,
  headEnd,
  parseRequestHead,
  parseResponseHead,
  serializeRequestHead,
  serializeResponseHead,
  withoutHeaders,
  type RequestHead,
  type ResponseHead,
} from './http.ts';
import type { PeerCred } from './sockopt.ts';
import { route, type Route } from './routes.ts';
import type { Pipe } from './stream.ts';
import { parseTarget, serializeTarget, type Target } from './target.ts';
import { UpstreamError, type Upstream } from './upstream.ts';

export interface RequestContext {
  head: RequestHead;
  target: Target;
  route: Route;
  caller: PeerCred;
  /** The whole request body, decoded; HttpError 413 past `limit` bytes. */
  readBody(limit: number): Promise<Buffer>;
}

export type Action =
  | { kind: 'respond'; status: number; json?: unknown; headers?: [string, string][] }
  | {
      kind: 'forward';
      target: Target;
      /** A new request body (sent with Content-Length) in place of the client's. */
      body?: Buffer;
      /** The response may hijack the connection (attach, exec start, /session, /grpc). */
      hijack?: boolean;
      /** Rewrites a 200 JSON response (lists: another user's entries removed). */
      json?: (body: unknown) => unknown | Promise<unknown>;
      /** Filters a streamed response of JSON objects, one per line (events). */
      lines?: (obj: unknown) => boolean | Promise<boolean>;
      /** Told the response status once known, 0 when none came (GPU reservations end here). */
      done?: (status: number) => void;
    };

export type Decider = (req: RequestContext) => Promise<Action>;

export interface ConnOptions {
  upstream: Upstream;
  decide: Decider;
  /** True once the face drains: idle connections close. */
  draining: () => boolean;
  /** An unexpected error, for the face's log. */
  onError?: (err: unknown) => void;
  /** Told when a request starts (true) and when the connection waits for the next (false): draining closes idle ones. */
  track?: (busy: boolean) => void;
}

const CRLF = Buffer.from('\r\n', 'latin1');
const CHUNK_BATCH = 256 << 10;

/** Bodies the face discards itself after answering (else the connection is closed). */
const DISCARD_LIMIT = 1 << 20;

/** The face's own answer; a HEAD request gets the head alone. */
export function jsonResponse(status: number, body: unknown, extra: [string, string][] = [], method = 'GET'): Buffer {
  const data = Buffer.from(JSON.stringify(body), 'utf8');
  const head = serializeResponseHead(status, REASONS[status] ?? 'Error', [
    ['Content-Type', 'application/json'],
    ['Content-Length', String(data.length)],
    ...extra,
  ]);
  return method === 'HEAD' ? head : Buffer.concat([head, data]);
}

/** Read a head (request or response) from a pipe; null when it ends first. */
async function readHead(p: Pipe, strict: boolean): Promise<Buffer | null> {
  let buf: Buffer = Buffer.alloc(0);
  for (;;) {
    const end = buf.length ? (strict ? headEnd(buf) : buf.indexOf('\r\n\r\n') >= 0 ? buf.indexOf('\r\n\r\n') + 4 : -1) : -1;
    if (end >= 0) {
      p.unshift(buf.subarray(end));
      return buf.subarray(0, end);
    }
    const chunk = await p.read();
    if (!chunk) {
      if (buf.length && strict) throw new HttpError(400, 'connection ended inside a request head');
      if (buf.length) throw new Error('dockerd closed the connection inside a response head');
      return null;
    }
    buf = buf.length ? Buffer.concat([buf, chunk]) : chunk;
  }
}

/** The client's request body: read whole, streamed on, or discarded; exactly once. */
class RequestBody {
  private consumed = false;
  private buffered: Buffer | undefined;

  constructor(
    private readonly client: Pipe,
    private readonly head: RequestHead,
  ) {}

  get present(): boolean {
    return this.head.framing.kind !== 'none';
  }

  async readAll(limit: number): Promise<Buffer> {
    if (this.buffered) return this.buffered;
    if (this.consumed) throw new Error('request body already streamed');
    this.consumed = true;
    const parts: Buffer[] = [];
    let size = 0;
    for await (const part of this.pieces()) {
      size += part.length;
      if (size > limit) throw new HttpError(413, `request body larger than ${limit} bytes`);
      parts.push(part);
    }
    this.buffered = Buffer.concat(parts);
    return this.buffered;
  }

  /** Decoded body pieces, leaving what follows (the next request) in the pipe. */
  private async *pieces(): AsyncGenerator<Buffer> {
    const f = this.head.framing;
    if (f.kind === 'length') {
      let left = f.length;
      while (left > 0) {
        const c = await this.client.read();
        if (!c) throw new HttpError(400, 'connection ended inside the request body');
        if (c.length > left) {
          this.client.unshift(c.subarray(left));
          yield c.subarray(0, left);
          return;
        }
        left -= c.length;
        yield c;
      }
    } else if (f.kind === 'chunked') {
      const dec = new ChunkedDecoder();
      while (!dec.done) {
        const c = await this.client.read();
        if (!c) throw new HttpError(400, 'connection ended inside a chunked request body');
        const { data, rest } = dec.push(c);
        for (const d of data) if (d.length) yield d;
        if (rest) this.client.unshift(rest);
      }
    }
  }

  /** Send the body to dockerd framed as the face decided: buffered (Content-Length) or re-chunked canonically. */
  async sendTo(up: Pipe): Promise<void> {
    if (this.buffered || this.consumed) return;
    this.consumed = true;
    if (this.head.framing.kind !== 'chunked') {
      for await (const part of this.pieces()) await up.write(part);
      return;
    }
    // Re-chunked in batches: what has arrived goes out as one chunk once the client has
    // nothing more queued, or at CHUNK_BATCH bytes. Size line, data and CRLF are one
    // buffer and so one write: three writes per chunk cost more than the copy (docker cp in).
    let batch: Buffer[] = [];
    let size = 0;
    const flush = async () => {
      if (!size) return;
      const chunk = Buffer.concat([Buffer.from(`${size.toString(16)}\r\n`, 'latin1'), ...batch, CRLF]);
      batch = [];
      size = 0;
      await up.write(chunk);
    };
    for await (const part of this.pieces()) {
      batch.push(part);
      size += part.length;
      if (size >= CHUNK_BATCH || !this.client.hasBuffered) await flush();
    }
    await flush();
    await up.write(LAST_CHUNK);
  }

  /** Drop an unread body so the next request can be read; false when it is too big to be worth it. */
  async discard(): Promise<boolean> {
    if (this.consumed || !this.present) return true;
    if (this.head.framing.kind === 'length' && this.head.framing.length > DISCARD_LIMIT) return false;
    try {
      await this.readAll(DISCARD_LIMIT);
      return true;
    } catch {
      return false;
    }
  }
}

type Outcome = 'continue' | 'close' | 'raw';

export async function serveConnection(client: Pipe, caller: PeerCred, opts: ConnOptions): Promise<void> {
  let up: Pipe | undefined;
  let hijacked = false;
  client.whenClosed(() => up?.destroy());
  // A client that ends its side outside a hijacked stream has gone (dockerd's Go server cancels the
  // request on that too): the upstream request is aborted, so a `logs -f` does not stream on to nobody.
  client.whenEnded(() => {
    if (hijacked) return;
    up?.destroy();
    client.destroy();
  });
  try {
    for (;;) {
      if (opts.draining() && !client.hasBuffered) break;
      let head: RequestHead;
      opts.track?.(false);
      try {
        const raw = await readHead(client, true);
        if (!raw) break;
        opts.track?.(true);
        head = parseRequestHead(raw);
      } catch (err) {
        if (err instanceof HttpError) await client.write(jsonResponse(err.status, { message: `gpuguard: ${err.message}` }, [['Connection', 'close']])).catch(() => {});
        break;
      }
      const body = new RequestBody(client, head);
      if (head.expectContinue && body.present) await client.write(Buffer.from('HTTP/1.1 100 Continue\r\n\r\n'));
      let action: Action;
      try {
        const target = parseTarget(head.target);
        action = await opts.decide({ head, target, route: route(head.method, target.path), caller, readBody: (limit) => body.readAll(limit) });
      } catch (err) {
        action = errorAction(err, opts);
      }
      if (action.kind === 'respond') {
        const kept = head.keepAlive && (await body.discard());
        await client.write(jsonResponse(action.status, action.json ?? {}, [...(action.headers ?? []), ...(kept ? [] : ([['Connection', 'close']] as [string, string][]))], head.method));
        if (!kept) break;
        continue;
      }
      if (!up || up.closed) {
        try {
          up = await opts.upstream.connect();
        } catch (err) {
          action.done?.(0);
          await client.write(jsonResponse(502, { message: `gpuguard: ${(err as Error).message}` }, [['Connection', 'close']])).catch(() => {});
          break;
        }
      }
      const upstream = up;
      const outcome = await exchange(client, up, head, body, action).catch((err: unknown) => {
        // A client or dockerd that went away mid-answer is not an error of the face's.
        if (!client.closed && !upstream.closed) opts.onError?.(err);
        return 'close' as const;
      });
      if (outcome === 'raw') {
        hijacked = true;
        await rawPipe(client, up);
        break;
      }
      if (outcome === 'close') break;
    }
  } finally {
    await client.close();
    up?.destroy();
  }
}

function errorAction(err: unknown, opts: ConnOptions): Action {
  if (err instanceof HttpError) return { kind: 'respond', status: err.status, json: { message: `gpuguard: ${err.message}` }, headers: [['Connection', 'close']] };
  if (err instanceof UpstreamError) return { kind: 'respond', status: 502, json: { message: `gpuguard: ${err.message}` } };
  if (err instanceof GpuguardError) return { kind: 'respond', status: 500, json: { message: `gpuguard: ${err.message}` } };
  opts.onError?.(err);
  return { kind: 'respond', status: 500, json: { message: `gpuguard: internal error: ${(err as Error)?.message ?? String(err)}` } };
}

/** Forward one request and relay its response. */
async function exchange(client: Pipe, up: Pipe, head: RequestHead, body: RequestBody, action: Extract<Action, { kind: 'forward' }>): Promise<Outcome> {
  let status = 0;
  try {
    const headers = withoutHeaders(head.headers, 'content-length', 'transfer-encoding', 'expect');
    if (action.body) headers.push(['Content-Length', String(action.body.length)]);
    else if (head.framing.kind === 'length') headers.push(['Content-Length', String(head.framing.length)]);
    else if (head.framing.kind === 'chunked') headers.push(['Transfer-Encoding', 'chunked']);
    await up.write(serializeRequestHead(head.method, serializeTarget(action.target), headers));
    let sent = false;
    const sending = (action.body ? up.write(action.body) : body.sendTo(up)).then(() => {
      sent = true;
    });
    sending.catch(() => {});
    const res = await relay(client, up, head, action, (s) => (status = s));
    if (res !== 'raw') {
      if (!sent) {
        // dockerd answered before the body was all sent: the connection's framing is spent.
        up.destroy();
        return 'close';
      }
      await sending;
    }
    return res;
  } finally {
    action.done?.(status);
  }
}

async function relay(client: Pipe, up: Pipe, req: RequestHead, action: Extract<Action, { kind: 'forward' }>, onStatus: (s: number) => void): Promise<Outcome> {
  for (;;) {
    const raw = await readHead(up, false);
    if (!raw) throw new Error('dockerd closed the connection without answering');
    const res = parseResponseHead(raw, req.method);
    if (res.status === 101) {
      onStatus(101);
      await client.write(raw);
      return 'raw';
    }
    if (res.status < 200) {
      await client.write(raw);
      continue;
    }
    onStatus(res.status);
    if (action.hijack && res.status === 200 && res.framing.kind === 'close') {
      // dockerd's hijack without Upgrade (old clients): a raw stream follows the head.
      await client.write(raw);
      return 'raw';
    }
    if (action.json && res.status === 200 && res.framing.kind !== 'close') await rewriteJson(client, up, res, action.json);
    else if (action.lines && res.status === 200 && res.framing.kind === 'chunked') {
      await client.write(raw);
      await filterLines(client, up, action.lines);
    } else {
      await client.write(raw);
      await copyBody(up, client, res);
    }
    if (res.framing.kind === 'close') return 'close';
    return res.keepAlive && req.keepAlive ? 'continue' : 'close';
  }
}

/** Relay a response body as it comes, framing tracked so the connection can carry the next one. */
async function copyBody(up: Pipe, client: Pick<Pipe, 'write'>, res: ResponseHead): Promise<void> {
  const f = res.framing;
  if (f.kind === 'none') return;
  if (f.kind === 'length') {
    let left = f.length;
    while (left > 0) {
      const c = await up.read();
      if (!c) throw new Error('dockerd closed the connection inside a response body');
      const piece = c.length > left ? c.subarray(0, left) : c;
      if (c.length > left) up.unshift(c.subarray(left));
      left -= piece.length;
      await client.write(piece);
    }
    return;
  }
  if (f.kind === 'chunked') {
    const dec = new ChunkedDecoder(true);
    while (!dec.done) {
      const c = await up.read();
      if (!c) throw new Error('dockerd closed the connection inside a chunked response');
      const { rest } = dec.push(c);
      const used = rest ? c.subarray(0, c.length - rest.length) : c;
      if (rest?.length) up.unshift(rest);
      await client.write(used);
    }
    return;
  }
  for (;;) {
    const c = await up.read();
    if (!c) return;
    await client.write(c);
  }
}

async function readWhole(up: Pipe, res: ResponseHead): Promise<Buffer> {
  const parts: Buffer[] = [];
  if (res.framing.kind === 'chunked') {
    const dec = new ChunkedDecoder(true);
    while (!dec.done) {
      const c = await up.read();
      if (!c) throw new Error('dockerd closed the connection inside a chunked response');
      const { data, rest } = dec.push(c);
      parts.push(...data);
      if (rest?.length) up.unshift(rest);
    }
    return Buffer.concat(parts);
  }
  await copyBody(up, { write: async (b) => void parts.push(Buffer.from(b)) }, res);
  return Buffer.concat(parts);
}

async function rewriteJson(client: Pipe, up: Pipe, res: ResponseHead, fn: (body: unknown) => unknown): Promise<void> {
  const text = (await readWhole(up, res)).toString('utf8');
  let out: Buffer;
  try {
    out = Buffer.from(JSON.stringify(await fn(JSON.parse(text))), 'utf8');
  } catch (err) {
    // Fail closed: what cannot be filtered is not shown.
    const msg = Buffer.from(JSON.stringify({ message: `gpuguard: cannot filter dockerd's answer: ${(err as Error).message}` }));
    await client.write(Buffer.concat([serializeResponseHead(502, 'Bad Gateway', [['Content-Type', 'application/json'], ['Content-Length', String(msg.length)]]), msg]));
    return;
  }
  const headers = withoutHeaders(res.headers, 'content-length', 'transfer-encoding');
  headers.push(['Content-Length', String(out.length)]);
  await client.write(Buffer.concat([serializeResponseHead(res.status, REASONS[res.status] ?? 'OK', headers), out]));
}

/** A chunked stream of JSON objects (one per line), each kept or dropped, re-chunked one per line. */
async function filterLines(client: Pipe, up: Pipe, keep: (obj: unknown) => boolean | Promise<boolean>): Promise<void> {
  const dec = new ChunkedDecoder(true);
  let pending = '';
  while (!dec.done) {
    const c = await up.read();
    if (!c) return;
    const { data, rest } = dec.push(c);
    if (rest?.length) up.unshift(rest);
    pending += Buffer.concat(data).toString('utf8');
    let nl: number;
    while ((nl = pending.indexOf('\n')) >= 0) {
      const line = pending.slice(0, nl + 1);
      pending = pending.slice(nl + 1);
      let obj: unknown;
      try {
        obj = JSON.parse(line);
      } catch {
        continue; // not an object: nothing to show
      }
      if (await keep(obj)) await client.write(chunk(Buffer.from(line, 'utf8')));
    }
  }
  await client.write(LAST_CHUNK);
}

/** A hijacked connection: bytes both ways until both sides are done; half-closes passed on. */
async function rawPipe(client: Pipe, up: Pipe): Promise<void> {
  const pump = async (from: Pipe, to: Pipe) => {
    for (;;) {
      const c = await from.read();
      if (!c) break;
      await to.write(c);
    }
    await to.endWrite();
  };
  up.whenClosed(() => {
    // dockerd closed (the container exited): whatever is queued for the client still goes out.
  });
  await Promise.all([pump(client, up).catch(() => up.destroy()), pump(up, client).catch(() => client.destroy())]);
}
