/**
 * A stand-in for `gpuguard serve` in install and doctor tests: a unix-socket
 * HTTP server that answers GET /_gpuguard/status as the face does and passes
 * every other request to the upstream dockerd (plain request/response: no
 * hijacking, enough for `docker version`). Its faults are chosen by the
 * test: answer the status endpoint like dockerd itself (`as: 'dockerd'`),
 * or fail /_ping as a face whose dockerd is gone (`pingStatus`).
 */
import { chmodSync, chownSync, rmSync } from 'node:fs';
import { createServer, request } from 'node:http';

export interface StandInFace {
  close(): Promise<void>;
}

export interface StandInOptions {
  /** `gpuguard`: answer the status endpoint; `dockerd`: pass it on too (dockerd answers 404 page not found). */
  as?: 'gpuguard' | 'dockerd';
  /** Answer /_ping with this status instead of passing it on. */
  pingStatus?: number;
  mode?: number;
  gid?: number;
}

export async function startStandInFace(listen: string, upstream: string, o: StandInOptions = {}): Promise<StandInFace> {
  rmSync(listen, { force: true });
  const server = createServer((req, res) => {
    const url = req.url ?? '/';
    if ((o.as ?? 'gpuguard') === 'gpuguard' && url === '/_gpuguard/status') {
      res.writeHead(200, { 'Content-Type': 'application/json' });
      res.end(JSON.stringify({ gpuguard: '0.0.0-stand-in', pid: process.pid, upstream, policy: '/etc/gpuguard/policy.yaml' }));
      return;
    }
    if (o.pingStatus && /^(\/v[\d.]+)?\/_ping$/.test(url)) {
      res.writeHead(o.pingStatus, { 'Content-Type': 'application/json' });
      res.end(JSON.stringify({ message: 'gpuguard: dockerd does not answer (stand-in)' }));
      return;
    }
    const up = request({ socketPath: upstream, path: url, method: req.method, headers: req.headers }, (ures) => {
      res.writeHead(ures.statusCode ?? 502, ures.headers);
      ures.pipe(res);
    });
    up.on('error', (err) => {
      res.writeHead(502, { 'Content-Type': 'application/json' });
      res.end(JSON.stringify({ message: `stand-in: ${err.message}` }));
    });
    req.pipe(up);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(listen, () => resolve());
  });
  chmodSync(listen, o.mode ?? 0o660);
  if (o.gid !== undefined) chownSync(listen, 0, o.gid);
  return {
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
