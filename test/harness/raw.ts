/**
 * Raw HTTP on a unix socket as a given unix user, for what the real clients
 * never send: pipelined requests, a second request on a kept-alive
 * connection, ambiguous framing. The bytes go out in one write from a
 * process of that user (python3 via runuser, so SO_PEERCRED names them);
 * whatever comes back until the server closes or stays quiet is returned,
 * and `responses` splits it into HTTP responses.
 */
import { ChunkedDecoder, parseResponseHead } from '../../src/api/http.ts';
import { execa } from 'execa';

const CLIENT = `
import socket, sys, time
path, quiet, pause_after, want, heads = sys.argv[1], float(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5].split(',')
data = sys.stdin.buffer.read()

def complete(buf):
    """How many whole responses buf holds (Content-Length or chunked bodies; HEAD-less GETs only)."""
    n = 0
    while True:
        end = buf.find(b'\\r\\n\\r\\n')
        if end < 0: return n
        head = buf[:end].decode('latin1').lower().split('\\r\\n')
        buf = buf[end + 4:]
        status = int(head[0].split(' ')[1])
        cl = [h.split(':', 1)[1].strip() for h in head[1:] if h.startswith('content-length:')]
        chunked = any(h.startswith('transfer-encoding:') and 'chunked' in h for h in head[1:])
        if status in (101, 204, 304) or (100 <= status < 200) or (n < len(heads) and heads[n] == 'HEAD'):
            pass
        elif cl:
            if len(buf) < int(cl[0]): return n
            buf = buf[int(cl[0]):]
        elif chunked:
            i = buf.find(b'0\\r\\n\\r\\n')
            if i < 0: return n
            buf = buf[i + 5:]
        else:
            return n
        n += 1

s = socket.socket(socket.AF_UNIX)
s.connect(path)
try:
    if pause_after > 0:
        s.sendall(data[:pause_after]); time.sleep(0.3); s.sendall(data[pause_after:])
    else:
        s.sendall(data)
except (BrokenPipeError, ConnectionResetError):
    pass  # the server answered and closed before taking everything (413)
s.settimeout(quiet)
out = b''
try:
    while want <= 0 or complete(out) < want:
        c = s.recv(65536)
        if not c: break
        out += c
except socket.timeout:
    pass
sys.stdout.buffer.write(out)
`;

/** Send `data` as `user` on `socket`; returns every byte received. */
export async function rawExchange(user: string, socket: string, data: string | Buffer, opts: { quietMs?: number; pauseAfter?: number; responses?: number } = {}): Promise<Buffer> {
  // Stop once as many whole responses as requests came back (or the server closed, or went quiet).
  const heads = (Buffer.isBuffer(data) ? data.toString('utf8') : data).split(/\r\n\r\n/).flatMap((p) => /([A-Z]+) \S+ HTTP\/1\.[01]\r\n/.exec(p)?.[1] ?? []);
  const want = opts.responses ?? heads.length;
  const r = await execa('runuser', ['-u', user, '--', 'python3', '-c', CLIENT, socket, String((opts.quietMs ?? 5000) / 1000), String(opts.pauseAfter ?? 0), String(want), heads.join(',')], {
    input: Buffer.isBuffer(data) ? data : Buffer.from(data, 'utf8'),
    encoding: 'buffer',
    stripFinalNewline: false,
    reject: false,
    timeout: 60_000,
  });
  if (r.exitCode !== 0) throw new Error(`raw client failed (${r.exitCode}): ${Buffer.from(r.stderr).toString()}`);
  return Buffer.from(r.stdout);
}

export interface RawResponse {
  status: number;
  headers: [string, string][];
  body: string;
}

/** Split received bytes into responses (Content-Length or chunked bodies; what is left over is dropped). */
export function responses(buf: Buffer, methods: string[] = []): RawResponse[] {
  const out: RawResponse[] = [];
  let rest: Buffer = buf;
  for (let i = 0; rest.length; i++) {
    const end = rest.indexOf('\r\n\r\n');
    if (end < 0) break;
    const head = parseResponseHead(rest.subarray(0, end + 4), methods[i] ?? 'GET');
    rest = rest.subarray(end + 4);
    let body: Buffer = Buffer.alloc(0);
    if (head.framing.kind === 'length') {
      body = rest.subarray(0, head.framing.length);
      rest = rest.subarray(head.framing.length);
    } else if (head.framing.kind === 'chunked') {
      const dec = new ChunkedDecoder(true);
      const { data, rest: after } = dec.push(rest);
      body = Buffer.concat(data);
      rest = after ?? Buffer.alloc(0);
    } else if (head.framing.kind === 'close') {
      body = rest;
      rest = Buffer.alloc(0);
    }
    out.push({ status: head.status, headers: head.headers, body: body.toString('utf8') });
  }
  return out;
}

/** One request's bytes: method, path, headers, optional JSON body with Content-Length. */
export function rawRequest(method: string, path: string, opts: { body?: unknown; headers?: [string, string][] } = {}): string {
  const body = opts.body === undefined ? '' : typeof opts.body === 'string' ? opts.body : JSON.stringify(opts.body);
  const headers: [string, string][] = [['Host', 'docker'], ...(opts.headers ?? [])];
  if (opts.body !== undefined) headers.push(['Content-Type', 'application/json'], ['Content-Length', String(Buffer.byteLength(body))]);
  return `${method} ${path} HTTP/1.1\r\n${headers.map(([k, v]) => `${k}: ${v}\r\n`).join('')}\r\n${body}`;
}
