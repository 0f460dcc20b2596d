/**
 * Read-only Docker Engine API over a local unix socket, for the few facts the
 * shim needs before it hands over (who owns container X). Spawning the real
 * CLI for an inspect costs 20–40 ms; one GET on the socket costs about one.
 * Used only where the daemon is known to be local (see `localSocket`);
 * anything else goes through the real CLI (gateway.ts).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { homedir } from 'node:os';

export const DEFAULT_SOCKET = '/var/run/docker.sock';

/** Connection options the CLI would use, as far as they decide which daemon it talks to. */
export interface Endpoint {
  /** `-H`/`--host` values from the global options, in order. */
  hosts?: string[];
  /** `-c`/`--context` from the global options. */
  context?: string;
  /** `--config` from the global options. */
  config?: string;
}

/**
 * The unix socket the docker CLI would talk to, or undefined when it would
 * talk to something else (tcp, ssh, a non-default context): then callers use
 * the CLI itself, which knows how.
 */
export function localSocket(env: NodeJS.ProcessEnv, ep: Endpoint = {}): string | undefined {
  // The docker CLI's order (cli/command/cli.go resolveContextName): --context,
  // -H, DOCKER_HOST, DOCKER_CONTEXT, the config file's currentContext.
  const hosts = ep.hosts ?? [];
  if (ep.context !== undefined) {
    if (ep.context !== 'default' || hosts.length) return undefined; // docker refuses --context with -H
    return env.DOCKER_HOST ? unixPath(env.DOCKER_HOST) : DEFAULT_SOCKET;
  }
  if (hosts.length > 1) return undefined;
  if (hosts.length === 1) return unixPath(hosts[0]!);
  if (env.DOCKER_HOST) return unixPath(env.DOCKER_HOST);
  if (env.DOCKER_CONTEXT) return env.DOCKER_CONTEXT === 'default' ? DEFAULT_SOCKET : undefined;
  return currentContext(ep.config ?? env.DOCKER_CONFIG) === 'default' ? DEFAULT_SOCKET : undefined;
}

function unixPath(host: string): string | undefined {
  if (host.startsWith('unix://')) return host.slice('unix://'.length) || DEFAULT_SOCKET;
  if (host.startsWith('/')) return host;
  return undefined;
}

function currentContext(configDir: string | undefined): string {
  const dir = configDir || join(process.env.HOME || homedir(), '.docker');
  try {
    const cfg = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8')) as { currentContext?: unknown };
    return typeof cfg.currentContext === 'string' && cfg.currentContext ? cfg.currentContext : 'default';
  } catch {
    return 'default';
  }
}

export interface ApiResponse {
  status: number;
  body: unknown;
}

declare const Bun: unknown;

/** GET a JSON resource from the Engine API on a unix socket. Rejects on connection errors. */
export async function apiGet(socketPath: string, path: string): Promise<ApiResponse> {
  // The compiled binary: Bun's native fetch speaks HTTP over a unix socket and loads nothing.
  if (typeof Bun !== 'undefined') {
    const res = await fetch(`http://docker${path}`, { unix: socketPath } as RequestInit);
    const text = await res.text();
    let body: unknown = text;
    try {
      body = JSON.parse(text);
    } catch {
      /* error bodies may be plain text */
    }
    return { status: res.status, body };
  }
  const http = await import('node:http');
  return new Promise((resolve, reject) => {
    const req = http.request({ socketPath, path, method: 'GET', headers: { Host: 'docker' } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let body: unknown = text;
        try {
          body = JSON.parse(text);
        } catch {
          /* error bodies may be plain text */
        }
        resolve({ status: res.statusCode ?? 0, body });
      });
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}

/**
 * Any request on the Engine API over a unix socket (the admin commands that
 * act: `reap` stops and removes). No body is sent; the answer is parsed as
 * JSON where it is JSON. Rejects on connection errors and after timeoutMs.
 */
export async function apiRequest(socketPath: string, method: 'GET' | 'POST' | 'DELETE', path: string, timeoutMs = 60_000): Promise<ApiResponse> {
  const parse = (text: string): unknown => {
    try {
      return JSON.parse(text);
    } catch {
      return text;
    }
  };
  if (typeof Bun !== 'undefined') {
    const res = await fetch(`http://docker${path}`, { unix: socketPath, method, signal: AbortSignal.timeout(timeoutMs) } as RequestInit);
    return { status: res.status, body: parse(await res.text()) };
  }
  const http = await import('node:http');
  return new Promise((resolve, reject) => {
    const req = http.request({ socketPath, path, method, timeout: timeoutMs, headers: { Host: 'docker' } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: parse(Buffer.concat(chunks).toString('utf8')) }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`no answer within ${timeoutMs / 1000}s`)));
    req.on('error', reject);
    req.end();
  });
}
