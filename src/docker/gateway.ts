/**
 * The one gateway to the real Docker: finding the real CLI (never ourselves),
 * and reading container state, typed at this edge with zod. Every face and
 * admin command that needs Docker goes through here.
 */
import { execFile } from 'node:child_process';
import { z } from 'zod';
import { GpuguardError } from '../errors.ts';

export { findRealDocker, findRealDockerFast } from './real.ts';

declare const Bun: unknown;

export class DockerError extends GpuguardError {
  override name = 'DockerError';
}

/** Run the real docker CLI and capture its output. Environment is passed as is (DOCKER_HOST, contexts). */
export function dockerCLI(realDocker: string, args: string[], env: NodeJS.ProcessEnv = process.env): Promise<{ stdout: string; stderr: string; code: number }> {
  return new Promise((resolve) => {
    execFile(realDocker, args, { env, maxBuffer: 64 * 1024 * 1024, encoding: 'utf8' }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? ((err as { code: number }).code) : 1) : 0;
      resolve({ stdout, stderr, code });
    });
  });
}

/** What gpuguard reads of a container (`docker inspect`), validated here and nowhere else. */
export const ContainerDetails = z.looseObject({
  Id: z.string(),
  Name: z.string(),
  Created: z.string(),
  Image: z.string(),
  State: z.looseObject({
    Status: z.string(),
    Running: z.boolean(),
    StartedAt: z.string().optional(),
    FinishedAt: z.string().optional(),
  }),
  Config: z.looseObject({
    Image: z.string().optional(),
    Labels: z.record(z.string(), z.string()).nullable().optional(),
    Env: z.array(z.string()).nullable().optional(),
  }),
  HostConfig: z.looseObject({
    Runtime: z.string().optional(),
    CgroupParent: z.string().optional(),
    Binds: z.array(z.string()).nullable().optional(),
    DeviceRequests: z
      .array(z.looseObject({ Driver: z.string().optional(), Count: z.number().optional(), DeviceIDs: z.array(z.string()).nullable().optional(), Capabilities: z.array(z.array(z.string())).nullable().optional() }))
      .nullable()
      .optional(),
  }),
  Mounts: z.array(z.looseObject({ Type: z.string().optional(), Source: z.string().optional(), Destination: z.string().optional() })).nullable().optional(),
});
export type ContainerDetails = z.infer<typeof ContainerDetails>;

/** Every container (running or not), inspected. */
export async function inspectAllContainers(realDocker: string, env: NodeJS.ProcessEnv = process.env): Promise<ContainerDetails[]> {
  const ids = await dockerCLI(realDocker, ['ps', '-aq', '--no-trunc'], env);
  if (ids.code !== 0) throw new DockerError(`docker ps failed: ${ids.stderr.trim() || `exit ${ids.code}`}`);
  const list = ids.stdout.split('\n').filter(Boolean);
  if (!list.length) return [];
  return inspectContainers(realDocker, list, env);
}

export async function inspectContainers(realDocker: string, refs: string[], env: NodeJS.ProcessEnv = process.env): Promise<ContainerDetails[]> {
  const r = await dockerCLI(realDocker, ['container', 'inspect', ...refs], env);
  // inspect prints what it found even when one ref is gone (exit 1): keep those.
  let data: unknown;
  try {
    data = JSON.parse(r.stdout || '[]');
  } catch (err) {
    throw new DockerError(`docker inspect printed something that is not JSON: ${r.stderr.trim()}`, 1, { cause: err });
  }
  const parsed = z.array(ContainerDetails).safeParse(data);
  if (!parsed.success) throw new DockerError(`docker inspect returned an unexpected shape: ${parsed.error.issues[0]?.message}`);
  return parsed.data;
}

/** What gpuguard reads of `docker info`: the registered runtimes, the default one, the cgroup driver. */
export const DaemonInfo = z.looseObject({
  Runtimes: z.record(z.string(), z.looseObject({ path: z.string().optional() })).nullable().optional(),
  DefaultRuntime: z.string().optional(),
  CgroupDriver: z.string().optional(),
  ServerVersion: z.string().optional(),
  /** Set (with exit code 0) when the CLI could not reach the daemon. */
  ServerErrors: z.array(z.string()).nullable().optional(),
});
export type DaemonInfo = z.infer<typeof DaemonInfo>;

export async function dockerInfo(realDocker: string, env: NodeJS.ProcessEnv = process.env): Promise<DaemonInfo> {
  const r = await dockerCLI(realDocker, ['info', '--format', '{{json .}}'], env);
  if (r.code !== 0) throw new DockerError(`docker info failed: ${r.stderr.trim().split('\n').pop() || `exit ${r.code}`}`);
  let data: unknown;
  try {
    data = JSON.parse(r.stdout);
  } catch (err) {
    throw new DockerError(`docker info printed something that is not JSON: ${r.stdout.slice(0, 200)}`, 1, { cause: err });
  }
  const parsed = DaemonInfo.safeParse(data);
  if (!parsed.success) throw new DockerError(`docker info returned an unexpected shape: ${parsed.error.issues[0]?.message}`);
  if (parsed.data.ServerErrors?.length) throw new DockerError(`docker info: ${parsed.data.ServerErrors[0]}`);
  return parsed.data;
}

/**
 * How many containers (running or stopped) carry `label` (`key=value`), on
 * the daemon the user's command goes to: `globalArgs` are the user's global
 * options (-H, --context, --config), so the count and the create see the
 * same daemon.
 *
 * An image can carry any label, so a container made from an image labelled
 * `<p>.user=alice` by someone who went around the shim counts for alice
 * although she never ran it. Not filtered on purpose: a container made
 * through the shim always has the label set at create (ours come last and
 * win over the image's), and dropping containers whose label equals their
 * image's would let alice evade the count with `LABEL <p>.user=alice` in her
 * own Dockerfile. TODO(ownership): once src/ownership has owner evidence,
 * count by it instead.
 */
export async function countContainersWithLabel(realDocker: string, globalArgs: string[], label: string, env: NodeJS.ProcessEnv = process.env): Promise<number> {
  const r = await dockerCLI(realDocker, [...globalArgs, 'ps', '-a', '-q', '--no-trunc', '--filter', `label=${label}`], env);
  if (r.code !== 0) throw new DockerError(`docker ps failed: ${r.stderr.trim() || `exit ${r.code}`}`);
  return r.stdout.split('\n').filter(Boolean).length;
}

/**
 * The Engine API socket the docker CLI would talk to: DOCKER_HOST when it is
 * `unix://…`, else /var/run/docker.sock; undefined when the CLI would go
 * elsewhere (tcp, ssh, a named context): callers then use the CLI.
 */
export function engineSocket(env: NodeJS.ProcessEnv = process.env): string | undefined {
  if (env.DOCKER_CONTEXT && env.DOCKER_CONTEXT !== 'default') return undefined;
  const host = env.DOCKER_HOST;
  if (!host) return '/var/run/docker.sock';
  if (host.startsWith('unix://')) return host.slice('unix://'.length);
  return undefined;
}


/** GET on the Engine API over a unix socket: Bun's fetch where it runs (fast), node:http under Node. */
export async function engineGet(socket: string, path: string): Promise<{ status: number; body: string }> {
  try {
    if (typeof Bun !== 'undefined') {
      const r = await fetch(`http://docker${path}`, { unix: socket } as RequestInit);
      return { status: r.status, body: await r.text() };
    }
    const http = await import('node:http');
    return await new Promise((resolve, reject) => {
      const req = http.request({ socketPath: socket, path, method: 'GET', headers: { Host: 'docker' } }, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (body += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      });
      req.on('error', reject);
      req.end();
    });
  } catch (err) {
    throw new DockerError(`cannot reach the Docker daemon at ${socket}: ${(err as Error).message}; is dockerd running and are you in the docker group?`, 1, { cause: err });
  }
}

/** One row of `GET /containers/json?all=1`: enough to decide which containers to inspect. */
export const ContainerSummary = z.looseObject({
  Id: z.string(),
  Names: z.array(z.string()).nullable().optional(),
  State: z.string().optional(),
  Labels: z.record(z.string(), z.string()).nullable().optional(),
  Created: z.number().optional(),
});
export type ContainerSummary = z.infer<typeof ContainerSummary>;

export async function listContainersAPI(socket: string): Promise<ContainerSummary[]> {
  const r = await engineGet(socket, '/containers/json?all=1');
  if (r.status !== 200) throw new DockerError(`docker API /containers/json answered ${r.status}: ${r.body.trim()}`);
  // Checked by hand, not with zod: this runs on every GPU request and zod's first parse costs 2–3 ms (measured).
  const data: unknown = JSON.parse(r.body);
  const bad = (why: string) => new DockerError(`docker API /containers/json returned an unexpected shape: ${why}`);
  if (!Array.isArray(data)) throw bad('not a list');
  for (const [i, c] of data.entries()) {
    if (!c || typeof c !== 'object' || typeof (c as { Id?: unknown }).Id !== 'string') throw bad(`entry ${i} has no Id`);
    const { Names, State, Labels, Created } = c as Record<string, unknown>;
    if (Names != null && !(Array.isArray(Names) && Names.every((n) => typeof n === 'string'))) throw bad(`entry ${i}: Names`);
    if (State !== undefined && typeof State !== 'string') throw bad(`entry ${i}: State`);
    if (Labels != null && (typeof Labels !== 'object' || Array.isArray(Labels) || Object.values(Labels).some((v) => typeof v !== 'string'))) throw bad(`entry ${i}: Labels`);
    if (Created !== undefined && typeof Created !== 'number') throw bad(`entry ${i}: Created`);
  }
  return data as ContainerSummary[];
}

/** Inspect by id over the API; a container removed meanwhile (404) is left out. */
export async function inspectContainersAPI(socket: string, ids: string[]): Promise<ContainerDetails[]> {
  const out = await Promise.all(
    ids.map(async (id) => {
      const r = await engineGet(socket, `/containers/${encodeURIComponent(id)}/json`);
      if (r.status === 404) return undefined;
      if (r.status !== 200) throw new DockerError(`docker API inspect ${id} answered ${r.status}: ${r.body.trim()}`);
      const parsed = ContainerDetails.safeParse(JSON.parse(r.body));
      if (!parsed.success) throw new DockerError(`docker API inspect ${id} returned an unexpected shape: ${parsed.error.issues[0]?.message}`);
      return parsed.data;
    }),
  );
  return out.filter((c): c is ContainerDetails => c !== undefined);
}

/**
 * The same count straight from the Engine API on a local unix socket
 * (GET /containers/json?all=1&filters=…): no docker CLI process, which is
 * most of what a count costs. Undefined when the socket cannot be asked
 * (missing, no permission, not a daemon): the caller falls back to the CLI.
 */
export async function countContainersOnSocket(socketPath: string, label: string, timeoutMs = 5000): Promise<number | undefined> {
  const filters = encodeURIComponent(JSON.stringify({ label: [label] }));
  const count = (list: unknown) => (Array.isArray(list) ? list.length : undefined);
  if (typeof Bun !== 'undefined') {
    // Bun's fetch speaks HTTP over a unix socket natively: ~1.5 ms here, node:http ~9 ms.
    try {
      const res = await fetch(`http://docker/containers/json?all=1&filters=${filters}`, { unix: socketPath, signal: AbortSignal.timeout(timeoutMs) } as RequestInit);
      return res.ok ? count(await res.json()) : undefined;
    } catch {
      return undefined;
    }
  }
  const { request } = await import('node:http');
  return new Promise((resolve) => {
    const req = request({ socketPath, path: `/containers/json?all=1&filters=${filters}`, method: 'GET', timeout: timeoutMs, headers: { Host: 'docker' } }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => {
        if (res.statusCode !== 200) return resolve(undefined);
        try {
          resolve(count(JSON.parse(body)));
        } catch {
          resolve(undefined);
        }
      });
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(undefined));
    req.end();
  });
}
