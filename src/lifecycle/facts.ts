/**
 * What `gpuguard reap` reads before it decides, in a number of Docker API
 * calls that does not grow with the number of containers: `GET /info` (the
 * data root), `GET /containers/json?all=1` (which containers, in which
 * state), `GET /images/json?all=1` (image labels, so a label an image
 * carries is not taken as set at create). Each container's full record
 * (start and finish times, pid, device requests, mounts) comes from
 * dockerd's own files under the data root (docker/disk.ts); only a
 * container whose files cannot be read or disagree with the list is
 * inspected over the API. CPU counters come from each container's cgroup,
 * GPU processes from nvidia-smi.
 */
import { z } from 'zod';
import { apiRequest, type ApiResponse } from '../docker/api.ts';
import { readContainerRecord, type ContainerRecord } from '../docker/disk.ts';
import { ContainerDetails, DockerError, parseContainerList, parseImageList, type ContainerSummary } from '../docker/gateway.ts';
import { loadInventory, type Inventory } from '../gpu/inventory.ts';
import { queryComputeApps, type ComputeApp } from '../gpu/processes.ts';

/** The Engine API on the local socket, counting its calls (the reaper reports them). */
export class Engine {
  calls = 0;
  constructor(readonly socket: string) {}

  async request(method: 'GET' | 'POST' | 'DELETE', path: string, timeoutMs?: number): Promise<ApiResponse> {
    this.calls++;
    try {
      return await apiRequest(this.socket, method, path, timeoutMs);
    } catch (err) {
      throw new DockerError(`cannot reach the Docker daemon at unix://${this.socket} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message}); is dockerd running?`, 1, { cause: err });
    }
  }

  async getJson(path: string): Promise<unknown> {
    const r = await this.request('GET', path);
    if (r.status !== 200) throw new DockerError(`docker API GET ${path} answered ${r.status}: ${messageOf(r.body)}`);
    return r.body;
  }
}

export function messageOf(body: unknown): string {
  if (body && typeof body === 'object' && 'message' in body) return String((body as { message: unknown }).message);
  return typeof body === 'string' ? body.trim() : JSON.stringify(body);
}

const Info = z.looseObject({ DockerRootDir: z.string().optional() });
const InspectExtra = z.looseObject({ State: z.looseObject({ Pid: z.number().optional() }), Config: z.looseObject({ StopTimeout: z.number().nullable().optional() }) });

export interface DockerFacts {
  containers: ContainerRecord[];
  /** The list's row of each container (what owner detection reads, as for `docker ps`). */
  rows: Map<string, ContainerSummary>;
  /** Image id → labels. */
  images: Map<string, Record<string, string>>;
  /** How many records came from dockerd's files, how many from an inspect. */
  fromDisk: number;
  fromApi: number;
}

function parse<T>(schema: z.ZodType<T>, data: unknown, what: string): T {
  const r = schema.safeParse(data);
  if (!r.success) throw new DockerError(`docker API ${what} returned an unexpected shape: ${r.error.issues[0]?.message}`);
  return r.data;
}

export async function readDockerFacts(engine: Engine): Promise<DockerFacts> {
  const [info, list, images] = await Promise.all([engine.getJson('/info'), engine.getJson('/containers/json?all=1'), engine.getJson('/images/json?all=1')]);
  const dataRoot = parse(Info, info, '/info').DockerRootDir;
  const listed = parseContainerList(list);
  const labels = new Map(parseImageList(images).map((i) => [i.Id, i.Labels ?? {}]));
  const containers: ContainerRecord[] = [];
  const inspect: string[] = [];
  for (const c of listed) {
    const record = dataRoot ? readContainerRecord(dataRoot, c.Id) : undefined;
    // A record that disagrees with the list was caught mid-change: ask the API.
    if (record && record.details.State.Status === c.State) containers.push(record);
    else inspect.push(c.Id);
  }
  const inspected = await Promise.all(inspect.map((id) => inspectRecord(engine, id)));
  for (const r of inspected) if (r) containers.push(r);
  return { containers, rows: new Map(listed.map((c) => [c.Id, c])), images: labels, fromDisk: containers.length - inspected.filter(Boolean).length, fromApi: inspected.filter(Boolean).length };
}

async function inspectRecord(engine: Engine, id: string): Promise<ContainerRecord | undefined> {
  const r = await engine.request('GET', `/containers/${id}/json`);
  if (r.status === 404) return undefined; // removed meanwhile
  if (r.status !== 200) throw new DockerError(`docker API inspect ${id} answered ${r.status}: ${messageOf(r.body)}`);
  const details = parse(ContainerDetails, r.body, `inspect ${id}`);
  const extra = parse(InspectExtra, r.body, `inspect ${id}`);
  const pid = details.State.Running ? (extra.State.Pid ?? 0) : 0;
  return { details, pid, ...(typeof extra.Config.StopTimeout === 'number' ? { stopTimeout: extra.Config.StopTimeout } : {}) };
}

export interface GpuFacts {
  inventory: Inventory;
  /** GPU processes, or why they could not be read. */
  apps: { apps: ComputeApp[] } | { unavailable: string };
}

/** The inventory and the GPU processes, each failure kept as a fact (the reaper decides what it means). */
export async function readGpuFacts(env: NodeJS.ProcessEnv, policyInventory: string): Promise<GpuFacts> {
  const [inventory, apps] = await Promise.all([
    loadInventory(env, policyInventory).catch((err: Error) => ({ devices: [], gpus: [], source: policyInventory, unavailable: err.message }) as Inventory),
    queryComputeApps(env, policyInventory).catch((err: Error) => ({ unavailable: err.message })),
  ]);
  return { inventory, apps: 'apps' in apps ? { apps: apps.apps } : { unavailable: apps.unavailable } };
}
