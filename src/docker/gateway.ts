/**
 * The one gateway to the real Docker: finding the real CLI (never ourselves),
 * and reading container state, typed at this edge with zod. Every face and
 * admin command that needs Docker goes through here.
 */
import { z } from 'zod';
import { DaemonUnreachable, dockerCLI, DockerError } from './cli.ts';
import { engineFailure, engineRead, imageLabelsOn, listContainersOn, parseContainerList, type ContainerSummary } from './lists.ts';

export { findRealDocker, findRealDockerFast } from './real.ts';
export { dockerCLI, DaemonUnreachable, DockerError } from './cli.ts';
export { imageLabelsOn, listContainersOn, parseContainerList, parseImageList, type ContainerSummary } from './lists.ts';
export { countContainersOnSocket, countContainersWithLabel } from './count.ts';

declare const Bun: unknown;

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

/** What gpuguard reads of an image: its labels (ownership evidence must not come from them). */
export const ImageDetails = z.looseObject({
  Id: z.string(),
  Config: z.looseObject({ Labels: z.record(z.string(), z.string()).nullable().optional() }).nullable().optional(),
});
export type ImageDetails = z.infer<typeof ImageDetails>;

/**
 * Reading containers and images from the daemon the user's CLI would talk
 * to: the Engine API on its unix socket when it is local (about 1 ms a
 * call), else the real CLI with the user's global options (`-H`, `--context`,
 * `--config`, TLS) replayed.
 */
export interface DockerReader {
  /** Ids of every container, running or not; with filters (dockerd's `ps --filter` semantics), those that match. */
  listContainerIds(filters?: Record<string, string[]>): Promise<string[]>;
  /**
   * Every container (running or not) as one list with labels, names, image id
   * and mounts (`GET /containers/json?all=1`), filtered like `listContainerIds`:
   * enough for owner detection (ownership/facts.ts `ownersOfList`) without an
   * inspect per container.
   */
  listContainers(filters?: Record<string, string[]>): Promise<ContainerSummary[]>;
  /** Inspect refs (names, full or short ids); refs the daemon does not know are returned in `missing`. */
  inspectContainers(refs: string[]): Promise<{ found: Map<string, ContainerDetails>; missing: string[] }>;
  /**
   * Labels of each image id; an image that is gone is absent from the map.
   * On the socket: one image list for more than a couple of ids, so the
   * number of calls does not grow with the number of images.
   */
  imageLabels(ids: string[]): Promise<Map<string, Record<string, string>>>;
}

export interface ReaderOptions {
  env?: NodeJS.ProcessEnv;
  /** The global options as the user typed them (replayed to the CLI). */
  globalArgs?: string[];
  /** The daemon's unix socket, when the caller already knows it (the shim's targetsLocalDaemon). */
  socket?: string;
  /** Else: which daemon the global options point at (see api.ts `localSocket`). */
  endpoint?: import('./api.ts').Endpoint;
  /** The real CLI, found lazily: the socket path never needs it. */
  realDocker: () => string;
}

export async function dockerReader(opts: ReaderOptions): Promise<DockerReader> {
  const env = opts.env ?? process.env;
  const api = await import('./api.ts');
  const socket = opts.socket ?? api.localSocket(env, opts.endpoint);
  if (socket) return socketReader(socket, api.apiGet);
  return cliReader(opts.realDocker(), opts.globalArgs ?? [], env);
}

function socketReader(socket: string, apiGet: typeof import('./api.ts').apiGet): DockerReader {
  const get = (path: string) => engineRead(socket, path, apiGet);
  return {
    async listContainerIds(filters) {
      return (await listContainersOn(socket, filters)).map((c) => c.Id);
    },
    listContainers: (filters) => listContainersOn(socket, filters),
    async inspectContainers(refs) {
      const found = new Map<string, ContainerDetails>();
      const missing: string[] = [];
      await Promise.all(
        refs.map(async (ref) => {
          const r = await get(`/containers/${encodeURIComponent(ref)}/json`);
          if (r.status === 404) return void missing.push(ref);
          if (r.status !== 200) throw engineFailure(`inspecting container ${ref} failed`, r);
          const parsed = ContainerDetails.safeParse(r.body);
          if (!parsed.success) throw new DockerError(`container ${ref}: unexpected inspect shape: ${parsed.error.issues[0]?.message}`);
          found.set(ref, parsed.data);
        }),
      );
      return { found, missing };
    },
    imageLabels: (ids) => imageLabelsOn(socket, ids),
  };
}

function cliReader(real: string, globalArgs: string[], env: NodeJS.ProcessEnv): DockerReader {
  return {
    async listContainerIds(filters) {
      const f = Object.entries(filters ?? {}).flatMap(([k, vs]) => vs.flatMap((v) => ['--filter', `${k}=${v}`]));
      const r = await dockerCLI(real, [...globalArgs, 'ps', '-aq', '--no-trunc', ...f], env);
      if (r.code !== 0) throw new DockerError(`docker ps failed: ${r.stderr.trim() || `exit ${r.code}`}`);
      return r.stdout.split('\n').filter(Boolean);
    },
    async listContainers(filters) {
      // The CLI's own list prints labels as one comma-joined string (ambiguous):
      // one `docker inspect` of every id instead, two CLI calls whatever the count.
      const ids = await this.listContainerIds(filters);
      const { found } = await this.inspectContainers(ids);
      return [...found.values()].map(summaryOfInspect);
    },
    async inspectContainers(refs) {
      const found = new Map<string, ContainerDetails>();
      const missing: string[] = [];
      if (!refs.length) return { found, missing };
      const r = await dockerCLI(real, [...globalArgs, 'container', 'inspect', ...refs], env);
      let data: unknown;
      try {
        data = JSON.parse(r.stdout || '[]');
      } catch (err) {
        throw new DockerError(`docker inspect printed something that is not JSON: ${r.stderr.trim()}`, 1, { cause: err });
      }
      const list = z.array(ContainerDetails).parse(data);
      // The daemon's order of resolution: full id, exact name, unique id prefix.
      for (const ref of refs) {
        const c = list.find((d) => d.Id === ref) ?? list.find((d) => d.Name === `/${ref}`) ?? list.find((d) => d.Id.startsWith(ref));
        if (c) found.set(ref, c);
        else missing.push(ref);
      }
      return { found, missing };
    },
    async imageLabels(ids) {
      const out = new Map<string, Record<string, string>>();
      const unique = [...new Set(ids)];
      if (!unique.length) return out;
      const r = await dockerCLI(real, [...globalArgs, 'image', 'inspect', ...unique], env);
      let data: unknown = [];
      try {
        data = JSON.parse(r.stdout || '[]');
      } catch {
        /* no images found */
      }
      const parsed = z.array(ImageDetails).safeParse(data);
      if (parsed.success) for (const img of parsed.data) out.set(img.Id, img.Config?.Labels ?? {});
      return out;
    },
  };
}

/** What gpuguard reads of `docker info`: the registered runtimes, the default one, the cgroup driver. */
export const DaemonInfo = z.looseObject({
  Runtimes: z.record(z.string(), z.looseObject({ path: z.string().optional() })).nullable().optional(),
  DefaultRuntime: z.string().optional(),
  CgroupDriver: z.string().optional(),
  ServerVersion: z.string().optional(),
  ContainersRunning: z.number().optional(),
  LiveRestoreEnabled: z.boolean().optional(),
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

/** An inspected container in the list's shape (for the CLI reader, which has no list with labels). */
export function summaryOfInspect(c: ContainerDetails): ContainerSummary {
  const created = Date.parse(c.Created);
  return {
    Id: c.Id,
    Names: [c.Name],
    ...(c.Config.Image !== undefined ? { Image: c.Config.Image } : {}),
    ImageID: c.Image,
    State: c.State.Status,
    Labels: c.Config.Labels ?? {},
    ...(Number.isFinite(created) ? { Created: Math.floor(created / 1000) } : {}),
    // Binds whose mount point is not (yet) listed count as binds too, as in detect.ts bindSources.
    Mounts: [
      ...(c.Mounts ?? []).map((m) => ({ ...(m.Type !== undefined ? { Type: m.Type } : {}), ...(m.Source !== undefined ? { Source: m.Source } : {}), ...(m.Destination !== undefined ? { Destination: m.Destination } : {}) })),
      ...(c.HostConfig.Binds ?? []).map((b) => b.split(':')[0]!).filter((src) => src.startsWith('/') && !(c.Mounts ?? []).some((m) => m.Type === 'bind' && m.Source === src)).map((Source) => ({ Type: 'bind', Source })),
    ],
  };
}

export async function listContainersAPI(socket: string): Promise<ContainerSummary[]> {
  const r = await engineGet(socket, '/containers/json?all=1');
  if (r.status !== 200) throw new DockerError(`docker API /containers/json answered ${r.status}: ${r.body.trim()}`);
  return parseContainerList(JSON.parse(r.body));
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

/** What gpuguard reads of a volume (`docker volume inspect`): its driver and options (a local volume's options may make it a bind). */
export const VolumeDetails = z.looseObject({
  Name: z.string(),
  Driver: z.string(),
  Options: z.record(z.string(), z.string()).nullable().optional(),
});
export type VolumeDetails = z.infer<typeof VolumeDetails>;

/**
 * Existing volumes by name, on the daemon the user's command goes to (the
 * socket when local, else the CLI with the user's global options); a name
 * with no volume maps to null.
 */
export async function inspectVolumes(opts: ReaderOptions, names: string[]): Promise<Map<string, VolumeDetails | null>> {
  const env = opts.env ?? process.env;
  const out = new Map<string, VolumeDetails | null>();
  const unique = [...new Set(names)];
  if (!unique.length) return out;
  const api = await import('./api.ts');
  const socket = opts.socket ?? api.localSocket(env, opts.endpoint);
  if (socket) {
    await Promise.all(
      unique.map(async (name) => {
        let r: import('./api.ts').ApiResponse;
        try {
          r = await api.apiGet(socket, `/volumes/${encodeURIComponent(name)}`);
        } catch (err) {
          throw new DaemonUnreachable(`cannot reach the Docker daemon at unix://${socket} (${(err as NodeJS.ErrnoException).code ?? String(err)})`, 1, { cause: err });
        }
        if (r.status === 404) return void out.set(name, null);
        const parsed = VolumeDetails.safeParse(r.body);
        if (r.status !== 200 || !parsed.success) throw new DockerError(`inspecting volume ${name} failed: HTTP ${r.status}`);
        out.set(name, parsed.data);
      }),
    );
    return out;
  }
  const r = await dockerCLI(opts.realDocker(), [...(opts.globalArgs ?? []), 'volume', 'inspect', ...unique], env);
  // Exit 1 with the found ones printed when some are missing; anything else is a failure to ask.
  if (r.code !== 0 && !r.stderr.split('\n').filter(Boolean).every((l) => /no such volume/i.test(l))) throw new DockerError(`docker volume inspect failed: ${r.stderr.trim() || `exit ${r.code}`}`);
  let data: unknown = [];
  try {
    data = JSON.parse(r.stdout || '[]');
  } catch (err) {
    throw new DockerError(`docker volume inspect printed something that is not JSON: ${r.stderr.trim()}`, 1, { cause: err });
  }
  const list = z.array(VolumeDetails).parse(data);
  for (const name of unique) out.set(name, list.find((v) => v.Name === name) ?? null);
  return out;
}
