/**
 * HTTP/1.1 framing for the API face, parsed strictly (RFC 9112) because a
 * proxy that reads a request's boundaries differently from dockerd lets a
 * second, undecided request through (smuggling). Pure: bytes in, a head or
 * a typed error out. What is ambiguous is refused, never guessed: Content-
 * Length with Transfer-Encoding, two Content-Lengths, a transfer coding
 * other than chunked, bare LF or CR, obsolete line folding, whitespace
 * before a header's colon, a malformed chunk size.
 *
 * Bodies the face forwards are re-framed by it (chunked bodies re-encoded
 * canonically, extensions and trailers dropped), so dockerd sees exactly
 * the boundaries the face decided on.
 */

export const MAX_HEAD_BYTES = 256 * 1024;

/** A framing or syntax error in a client's request: answered with `status` and the connection closed. */
export class HttpError extends Error {
  override name = 'HttpError';
  constructor(
    readonly status: 400 | 413 | 431 | 501 | 505,
    message: string,
  ) {
    super(message);
  }
}

export type Framing = { kind: 'none' } | { kind: 'length'; length: number } | { kind: 'chunked' };
export type ResponseFraming = Framing | { kind: 'close' };

export interface RequestHead {
  method: string;
  /** The request-target as sent (origin-form). */
  target: string;
  version: '1.0' | '1.1';
  /** Every header in order, name as sent, value without surrounding whitespace. */
  headers: [string, string][];
  framing: Framing;
  keepAlive: boolean;
  /** `Expect: 100-continue`: the face answers it itself and does not forward it. */
  expectContinue: boolean;
  /** Bytes of the head, final CRLF CRLF included. */
  length: number;
}

export interface ResponseHead {
  status: number;
  headers: [string, string][];
  framing: ResponseFraming;
  keepAlive: boolean;
  length: number;
}

const TCHAR = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
/** Field values: visible ASCII, obs-text, space and tab; no other control characters. */
const FIELD_VALUE = /^[\t\x20-\x7e\x80-\xff]*$/;
const TARGET = /^\/[\x21-\x7e]*$/;
const CRLF2 = Buffer.from('\r\n\r\n');

/** Where the head ends (index after CRLF CRLF), or -1 when more bytes are needed. Throws 431 past the limit. */
export function headEnd(buf: Buffer, max = MAX_HEAD_BYTES): number {
  const i = buf.indexOf(CRLF2);
  // A LF without its CR would let a lenient reader see a different head: refused at once.
  const scan = i >= 0 ? i + 4 : buf.length;
  for (let j = buf.indexOf(0x0a); j >= 0 && j < scan; j = buf.indexOf(0x0a, j + 1)) if (j === 0 || buf[j - 1] !== 0x0d) throw new HttpError(400, 'bare LF in the request head');
  if (i >= 0) {
    if (i + 4 > max) throw new HttpError(431, 'request head too large');
    return i + 4;
  }
  if (buf.length > max) throw new HttpError(431, 'request head too large');
  return -1;
}

/** The head's lines; a CR or LF anywhere but in CRLF pairs is refused. */
function headLines(text: string): string[] {
  const lines = text.split('\r\n');
  for (const l of lines) if (l.includes('\r') || l.includes('\n')) throw new HttpError(400, 'bare CR or LF in the request head');
  return lines;
}

function parseFields(lines: string[]): [string, string][] {
  const out: [string, string][] = [];
  for (const line of lines) {
    if (line === '') continue;
    if (line[0] === ' ' || line[0] === '\t') throw new HttpError(400, 'obsolete line folding in a header');
    const colon = line.indexOf(':');
    if (colon <= 0) throw new HttpError(400, `malformed header line "${line.slice(0, 40)}"`);
    const name = line.slice(0, colon);
    if (!TCHAR.test(name)) throw new HttpError(400, `malformed header name "${name.slice(0, 40)}"`);
    const value = line.slice(colon + 1).replace(/^[ \t]+|[ \t]+$/g, '');
    if (!FIELD_VALUE.test(value)) throw new HttpError(400, `control character in header ${name}`);
    out.push([name, value]);
  }
  return out;
}

export function headerValues(headers: readonly [string, string][], name: string): string[] {
  const lower = name.toLowerCase();
  return headers.filter(([n]) => n.toLowerCase() === lower).map(([, v]) => v);
}

/** The comma-separated tokens of a list header (Connection, Upgrade), lower-cased. */
function tokens(headers: readonly [string, string][], name: string): string[] {
  return headerValues(headers, name)
    .flatMap((v) => v.split(','))
    .map((t) => t.trim().toLowerCase())
    .filter(Boolean);
}

function bodyFraming(headers: readonly [string, string][], http10: boolean): Framing {
  const te = headerValues(headers, 'transfer-encoding');
  const cl = headerValues(headers, 'content-length');
  if (te.length && cl.length) throw new HttpError(400, 'both Content-Length and Transfer-Encoding: ambiguous framing');
  if (te.length) {
    if (http10) throw new HttpError(400, 'Transfer-Encoding in an HTTP/1.0 request');
    if (te.length > 1 || te[0]!.toLowerCase() !== 'chunked') throw new HttpError(501, `Transfer-Encoding "${te.join(', ')}" is not supported (only chunked)`);
    return { kind: 'chunked' };
  }
  if (cl.length > 1) throw new HttpError(400, 'more than one Content-Length');
  if (cl.length === 1) {
    const v = cl[0]!;
    if (!/^\d{1,15}$/.test(v)) throw new HttpError(400, `malformed Content-Length "${v.slice(0, 20)}"`);
    const length = Number(v);
    return length === 0 ? { kind: 'none' } : { kind: 'length', length };
  }
  return { kind: 'none' };
}

/** Parse a request head (`buf` holds exactly the head, CRLF CRLF included). */
export function parseRequestHead(buf: Buffer): RequestHead {
  const text = buf.toString('latin1', 0, buf.length - 4);
  const lines = headLines(text);
  const requestLine = lines[0]!;
  const m = /^([!#$%&'*+\-.^_`|~0-9A-Za-z]+) (\S+) HTTP\/(\d)\.(\d)$/.exec(requestLine);
  if (!m) throw new HttpError(400, `malformed request line "${requestLine.slice(0, 80)}"`);
  const [, method, target, major, minor] = m as unknown as [string, string, string, string, string];
  if (major !== '1' || (minor !== '0' && minor !== '1')) throw new HttpError(505, `HTTP/${major}.${minor} is not supported`);
  if (!TARGET.test(target)) throw new HttpError(400, 'the request target must be a path starting with /');
  const headers = parseFields(lines.slice(1));
  const http10 = minor === '0';
  const framing = bodyFraming(headers, http10);
  const connection = tokens(headers, 'connection');
  const keepAlive = http10 ? connection.includes('keep-alive') : !connection.includes('close');
  const expect = headerValues(headers, 'expect').map((v) => v.toLowerCase());
  return { method, target, version: http10 ? '1.0' : '1.1', headers, framing, keepAlive, expectContinue: expect.includes('100-continue'), length: buf.length };
}

/** Parse a response head from dockerd; `method` decides whether a body follows. */
export function parseResponseHead(buf: Buffer, method: string): ResponseHead {
  const text = buf.toString('latin1', 0, buf.length - 4);
  const lines = text.split(/\r?\n/);
  const m = /^HTTP\/1\.([01]) (\d{3})(?: .*)?$/.exec(lines[0]!);
  if (!m) throw new Error(`malformed response line from the daemon: "${lines[0]!.slice(0, 80)}"`);
  const status = Number(m[2]);
  const headers: [string, string][] = [];
  for (const line of lines.slice(1)) {
    if (!line) continue;
    const colon = line.indexOf(':');
    if (colon <= 0) throw new Error(`malformed header from the daemon: "${line.slice(0, 80)}"`);
    headers.push([line.slice(0, colon).trim(), line.slice(colon + 1).trim()]);
  }
  const connection = tokens(headers, 'connection');
  const keepAlive = m[1] === '0' ? connection.includes('keep-alive') : !connection.includes('close');
  let framing: ResponseFraming;
  if (method === 'HEAD' || status === 204 || status === 304 || (status >= 100 && status < 200)) framing = { kind: 'none' };
  else if (headerValues(headers, 'transfer-encoding').some((v) => v.toLowerCase().includes('chunked'))) framing = { kind: 'chunked' };
  else {
    const cl = headerValues(headers, 'content-length');
    if (cl.length) {
      const n = Number(cl[0]);
      if (!Number.isSafeInteger(n) || n < 0) throw new Error(`malformed Content-Length from the daemon: "${cl[0]}"`);
      framing = n === 0 ? { kind: 'none' } : { kind: 'length', length: n };
    } else framing = { kind: 'close' };
  }
  return { status, headers, framing, keepAlive, length: buf.length };
}

/** A request head serialised: the face's own, from parsed fields (framing headers set by the caller). */
export function serializeRequestHead(method: string, target: string, headers: readonly [string, string][]): Buffer {
  let s = `${method} ${target} HTTP/1.1\r\n`;
  for (const [n, v] of headers) s += `${n}: ${v}\r\n`;
  return Buffer.from(`${s}\r\n`, 'latin1');
}

export function serializeResponseHead(status: number, reason: string, headers: readonly [string, string][]): Buffer {
  let s = `HTTP/1.1 ${status} ${reason}\r\n`;
  for (const [n, v] of headers) s += `${n}: ${v}\r\n`;
  return Buffer.from(`${s}\r\n`, 'latin1');
}

/** Headers without the named ones (case-insensitive). */
export function withoutHeaders(headers: readonly [string, string][], ...names: string[]): [string, string][] {
  const drop = new Set(names.map((n) => n.toLowerCase()));
  return headers.filter(([n]) => !drop.has(n.toLowerCase()));
}

export function chunk(data: Buffer): Buffer {
  return Buffer.concat([Buffer.from(`${data.length.toString(16)}\r\n`, 'latin1'), data, Buffer.from('\r\n', 'latin1')]);
}

export const LAST_CHUNK = Buffer.from('0\r\n\r\n', 'latin1');

const MAX_CHUNK_LINE = 4096;

/**
 * Chunked transfer coding, decoded incrementally and strictly: a size of
 * 1–15 hex digits, optional extensions (dropped), CRLF after each chunk's
 * data, optional trailer fields (dropped). `push` returns the data bytes in
 * this buffer and, once the last chunk and trailers are read, `done` and the
 * bytes after the body (the next request, pipelined).
 */
export class ChunkedDecoder {
  private state: 'size' | 'data' | 'data-crlf' | 'trailer' | 'done' = 'size';
  private line = '';
  private left = 0;

  constructor(private readonly lenient = false) {}

  get done(): boolean {
    return this.state === 'done';
  }

  push(buf: Buffer): { data: Buffer[]; rest?: Buffer } {
    const data: Buffer[] = [];
    let i = 0;
    const bad = (why: string) => (this.lenient ? new Error(`malformed chunked body from the daemon: ${why}`) : new HttpError(400, `malformed chunked body: ${why}`));
    while (i < buf.length) {
      switch (this.state) {
        case 'size':
        case 'trailer': {
          const nl = buf.indexOf(0x0a, i);
          const end = nl < 0 ? buf.length : nl + 1;
          this.line += buf.toString('latin1', i, end);
          i = end;
          if (this.line.length > MAX_CHUNK_LINE) throw bad('line too long');
          if (nl < 0) break;
          if (!this.line.endsWith('\r\n') || this.line.slice(0, -2).includes('\r')) throw bad('bare LF');
          const line = this.line.slice(0, -2);
          this.line = '';
          if (this.state === 'trailer') {
            if (line === '') {
              this.state = 'done';
              return { data, rest: buf.subarray(i) };
            }
            if (!/^[!#$%&'*+\-.^_`|~0-9A-Za-z]+:/.test(line)) throw bad('malformed trailer');
            break;
          }
          const m = /^([0-9a-fA-F]{1,15})(?:[ \t]*;.*)?$/.exec(line);
          if (!m) throw bad(`chunk size "${line.slice(0, 20)}"`);
          this.left = parseInt(m[1]!, 16);
          this.state = this.left === 0 ? 'trailer' : 'data';
          break;
        }
        case 'data': {
          const n = Math.min(this.left, buf.length - i);
          data.push(buf.subarray(i, i + n));
          i += n;
          this.left -= n;
          if (this.left === 0) {
            this.state = 'data-crlf';
            this.line = '';
          }
          break;
        }
        case 'data-crlf': {
          this.line += String.fromCharCode(buf[i++]!);
          if (this.line === '\r') break;
          if (this.line !== '\r\n') throw bad('no CRLF after chunk data');
          this.line = '';
          this.state = 'size';
          break;
        }
        case 'done':
          return { data, rest: buf.subarray(i) };
      }
    }
    return this.state === 'done' ? { data, rest: Buffer.alloc(0) } : { data };
  }
}

export const REASONS: Record<number, string> = {
  100: 'Continue',
  200: 'OK',
  400: 'Bad Request',
  403: 'Forbidden',
  404: 'Not Found',
  409: 'Conflict',
  413: 'Payload Too Large',
  431: 'Request Header Fields Too Large',
  500: 'Internal Server Error',
  501: 'Not Implemented',
  502: 'Bad Gateway',
  503: 'Service Unavailable',
  505: 'HTTP Version Not Supported',
};
