/**
 * The Engine API's lists, read from a local unix socket and checked by hand
 * (no zod, which costs the shim milliseconds to load): every container with
 * labels, names, image id and mounts, and every image with its labels. What
 * a listing decision needs (`docker ps`, `docker stats`, the API face's list
 * filter, the reaper: ownership/facts.ts `ownersOfList`), in a number of
 * calls that does not grow with the number of containers.
 */
import { apiGet, type ApiResponse } from './api.ts';
import { DaemonUnreachable, DockerError } from './cli.ts';

/** GET on the socket; a socket that does not answer is DaemonUnreachable (the real CLI would fail too). */
export async function engineRead(socket: string, path: string, get: typeof apiGet = apiGet): Promise<ApiResponse> {
  try {
    return await get(socket, path);
  } catch (err) {
    throw new DaemonUnreachable(`cannot reach the Docker daemon at unix://${socket} (${(err as NodeJS.ErrnoException).code ?? String(err)}); is dockerd running and may you use its socket?`, 1, { cause: err });
  }
}

/** A non-200 answer, with dockerd's own message when it gave one. */
export function engineFailure(what: string, r: ApiResponse): DockerError {
  return new DockerError(`${what}: ${typeof r.body === 'object' && r.body && 'message' in r.body ? String((r.body as { message: unknown }).message) : `HTTP ${r.status}`}`);
}

/** Every container, running or not; with filters (dockerd's `ps --filter` semantics), those that match. */
export async function listContainersOn(socket: string, filters?: Record<string, string[]>): Promise<ContainerSummary[]> {
  const q = filters ? `&filters=${encodeURIComponent(JSON.stringify(Object.fromEntries(Object.entries(filters).map(([k, vs]) => [k, Object.fromEntries(vs.map((v) => [v, true]))]))))}` : '';
  const r = await engineRead(socket, `/containers/json?all=1${q}`);
  if (r.status !== 200) throw engineFailure('listing containers failed', r);
  return parseContainerList(r.body);
}

/** Up to this many images, one inspect each costs less than listing every image on the host. */
const INSPECT_IMAGES_UP_TO = 2;

/**
 * Labels of each image id; an image that is gone is absent from the map.
 * One image list for more than a couple of ids (it holds every tagged or
 * dangling image); an image the list hides (an intermediate one) is
 * inspected on its own.
 */
export async function imageLabelsOn(socket: string, ids: readonly string[]): Promise<Map<string, Record<string, string>>> {
  const out = new Map<string, Record<string, string>>();
  let wanted = [...new Set(ids)];
  if (wanted.length > INSPECT_IMAGES_UP_TO) {
    const r = await engineRead(socket, '/images/json');
    if (r.status !== 200) throw engineFailure('listing images failed', r);
    const want = new Set(wanted);
    for (const img of parseImageList(r.body)) if (want.has(img.Id)) out.set(img.Id, img.Labels ?? {});
    wanted = wanted.filter((id) => !out.has(id));
  }
  await Promise.all(
    wanted.map(async (id) => {
      const r = await engineRead(socket, `/images/${encodeURIComponent(id)}/json`);
      if (r.status !== 200) return;
      const labels = imageInspectLabels(r.body);
      if (labels) out.set(id, labels);
    }),
  );
  return out;
}

/** `GET /images/{id}/json`: Config.Labels (absent or null: none); undefined for a shape that is not an image. */
function imageInspectLabels(body: unknown): Record<string, string> | undefined {
  if (!body || typeof body !== 'object' || typeof (body as { Id?: unknown }).Id !== 'string') return undefined;
  const config = (body as { Config?: unknown }).Config;
  if (config == null) return {};
  if (typeof config !== 'object') return undefined;
  const labels = (config as { Labels?: unknown }).Labels;
  if (labels == null) return {};
  return isStringRecord(labels) ? (labels as Record<string, string>) : undefined;
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
