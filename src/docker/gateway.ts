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

/** The daemon's socket cannot be reached (not running, no permission): the real CLI would fail too. */
export class DaemonUnreachable extends DockerError {
  override name = 'DaemonUnreachable';
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
  const get = async (path: string) => {
    try {
      return await apiGet(socket, path);
    } catch (err) {
      throw new DaemonUnreachable(`cannot reach the Docker daemon at unix://${socket} (${(err as NodeJS.ErrnoException).code ?? String(err)}); is dockerd running and may you use its socket?`, 1, { cause: err });
    }
  };
  const failure = (what: string, r: { status: number; body: unknown }) =>
    new DockerError(`${what}: ${typeof r.body === 'object' && r.body && 'message' in r.body ? String((r.body as { message: unknown }).message) : `HTTP ${r.status}`}`);
  return {
    async listContainerIds(filters) {
      return (await this.listContainers(filters)).map((c) => c.Id);
    },
    async listContainers(filters) {
      const q = filters ? `&filters=${encodeURIComponent(JSON.stringify(Object.fromEntries(Object.entries(filters).map(([k, vs]) => [k, Object.fromEntries(vs.map((v) => [v, true]))]))))}` : '';
      const r = await get(`/containers/json?all=1${q}`);
      if (r.status !== 200) throw failure('listing containers failed', r);
      return parseContainerList(r.body);
    },
    async inspectContainers(refs) {
      const found = new Map<string, ContainerDetails>();
      const missing: string[] = [];
      await Promise.all(
        refs.map(async (ref) => {
          const r = await get(`/containers/${encodeURIComponent(ref)}/json`);
          if (r.status === 404) return void missing.push(ref);
          if (r.status !== 200) throw failure(`inspecting container ${ref} failed`, r);
          const parsed = ContainerDetails.safeParse(r.body);
          if (!parsed.success) throw new DockerError(`container ${ref}: unexpected inspect shape: ${parsed.error.issues[0]?.message}`);
          found.set(ref, parsed.data);
        }),
      );
      return { found, missing };
    },
    async imageLabels(ids) {
      const out = new Map<string, Record<string, string>>();
      let wanted = [...new Set(ids)];
      if (wanted.length > INSPECT_IMAGES_UP_TO) {
        // One list holds every tagged or dangling image with its labels; an
        // intermediate image (hidden from the list) is inspected below.
        const r = await get('/images/json');
        if (r.status !== 200) throw failure('listing images failed', r);
        const want = new Set(wanted);
        for (const img of parseImageList(r.body)) if (want.has(img.Id)) out.set(img.Id, img.Labels ?? {});
        wanted = wanted.filter((id) => !out.has(id));
      }
      await Promise.all(
        wanted.map(async (id) => {
          const r = await get(`/images/${encodeURIComponent(id)}/json`);
          if (r.status !== 200) return;
          const parsed = ImageDetails.safeParse(r.body);
          if (parsed.success) out.set(id, parsed.data.Config?.Labels ?? {});
        }),
      );
      return out;
    },
  };
}

/** Up to this many images, one inspect each costs less than listing every image on the host. */
const INSPECT_IMAGES_UP_TO = 2;

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

/**
 * One row of `GET /containers/json?all=1`: names, state, labels, image id and
 * mounts — what owner detection (ownership/detect.ts `subjectOfListed`) and
 * the GPU holdings need, without inspecting each container.
 */
export interface ContainerSummary {
  Id: string;
  Names?: string[] | null;
  /** The image as named at create (or its id once the tag moved). */
  Image?: string;
  /** The image id, sha256:… */
  ImageID?: string;
  State?: string;
  Labels?: Record<string, string> | null;
  /** Seconds since the epoch. */
  Created?: number;
  Mounts?: { Type?: string; Source?: string; Destination?: string }[] | null;
}

const isStringRecord = (v: unknown) => typeof v === 'object' && v !== null && !Array.isArray(v) && Object.values(v).every((x) => typeof x === 'string');

/**
 * The container list, checked by hand, not with zod: it runs on every GPU
 * request and `docker ps`, and zod's first parse costs 2–3 ms (measured).
 * Unknown fields are kept.
 */
export function parseContainerList(data: unknown): ContainerSummary[] {
  const bad = (why: string) => new DockerError(`docker API /containers/json returned an unexpected shape: ${why}`);
  if (!Array.isArray(data)) throw bad('not a list');
  for (const [i, c] of data.entries()) {
    if (!c || typeof c !== 'object' || typeof (c as { Id?: unknown }).Id !== 'string') throw bad(`entry ${i} has no Id`);
    const { Names, State, Labels, Created, Image, ImageID, Mounts } = c as Record<string, unknown>;
    if (Names != null && !(Array.isArray(Names) && Names.every((n) => typeof n === 'string'))) throw bad(`entry ${i}: Names`);
    for (const [k, v] of [['State', State], ['Image', Image], ['ImageID', ImageID]] as const) if (v !== undefined && typeof v !== 'string') throw bad(`entry ${i}: ${k}`);
    if (Labels != null && !isStringRecord(Labels)) throw bad(`entry ${i}: Labels`);
    if (Created !== undefined && typeof Created !== 'number') throw bad(`entry ${i}: Created`);
    if (Mounts != null && !(Array.isArray(Mounts) && Mounts.every((m) => m && typeof m === 'object' && ['Type', 'Source', 'Destination'].every((k) => (m as Record<string, unknown>)[k] === undefined || typeof (m as Record<string, unknown>)[k] === 'string')))) throw bad(`entry ${i}: Mounts`);
  }
  return data as ContainerSummary[];
}

/** `GET /images/json` rows: id and labels (checked by hand, as the container list). */
export function parseImageList(data: unknown): { Id: string; Labels?: Record<string, string> | null }[] {
  const bad = (why: string) => new DockerError(`docker API /images/json returned an unexpected shape: ${why}`);
  if (!Array.isArray(data)) throw bad('not a list');
  for (const [i, img] of data.entries()) {
    if (!img || typeof img !== 'object' || typeof (img as { Id?: unknown }).Id !== 'string') throw bad(`entry ${i} has no Id`);
    const labels = (img as { Labels?: unknown }).Labels;
    if (labels != null && !isStringRecord(labels)) throw bad(`entry ${i}: Labels`);
  }
  return data as { Id: string; Labels?: Record<string, string> | null }[];
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
