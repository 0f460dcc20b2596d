/**
 * A counting proxy in front of a private dockerd's socket: every Engine API
 * request is forwarded unchanged and recorded (method, path, User-Agent), so
 * a test can say how many calls a face made. Plain request/response only
 * (no hijacked streams): enough for lists, inspects and `ps`.
 */
import { chmodSync } from 'node:fs';
import { createServer, request, type Server } from 'node:http';

export interface ApiCall {
  method: string;
  path: string;
  userAgent: string;
}

export interface ApiProxy {
  socket: string;
  calls: ApiCall[];
  close(): Promise<void>;
}

export async function countingProxy(upstream: string, socket: string): Promise<ApiProxy> {
  const calls: ApiCall[] = [];
  const server: Server = createServer((req, res) => {
    calls.push({ method: req.method ?? '', path: req.url ?? '', userAgent: String(req.headers['user-agent'] ?? '') });
    const up = request({ socketPath: upstream, method: req.method, path: req.url, headers: req.headers }, (r) => {
      res.writeHead(r.statusCode ?? 502, r.headers);
      r.pipe(res);
    });
    up.on('error', (err) => {
      res.writeHead(502);
      res.end(String(err));
    });
    req.pipe(up);
  });
  await new Promise<void>((resolve, reject) => server.once('error', reject).listen(socket, resolve));
  chmodSync(socket, 0o666);
  return {
    socket,
    calls,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
