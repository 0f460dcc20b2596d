/**
 * `POST /containers/create` as policy questions and its answers applied:
 * the body (as dockerd reads it, gobody.ts) → the same CreateRequest the
 * shim builds from argv and the same GPU flags the allocator normalises;
 * the decisions → fields of the body. Pure. The parts read are validated
 * here with zod; every other field is kept as the client sent it.
 */
import { z } from 'zod';
import type { CreateRequest, Decision, Setting } from '../policy/decide.ts';
import { interfaceOfLabels, type Interface } from '../policy/labels.ts';
import { formatSize, parseSize } from '../policy/units.ts';
import { isNvidiaRuntime, normaliseGpuRequest, parseDeviceFlag, type GpuRequest } from '../gpu/request.ts';
import type { GpuDevice } from '../gpu/inventory.ts';
import { HttpError } from './http.ts';
import { isObj } from './gobody.ts';

type Obj = Record<string, unknown>;

const int = z.number().int();
const DeviceRequest = z.looseObject({
  Driver: z.string().optional(),
  Count: int.optional(),
  DeviceIDs: z.array(z.string()).nullable().optional(),
  Capabilities: z.array(z.array(z.string()).nullable()).nullable().optional(),
});
const Device = z.looseObject({ PathOnHost: z.string().optional() });

/** The fields of a create body the face reads; everything else passes untouched. */
const CreateBodyRead = z.looseObject({
  Image: z.string().optional(),
  Env: z.array(z.string()).nullable().optional(),
  Labels: z.record(z.string(), z.string()).nullable().optional(),
  HostConfig: z
    .looseObject({
      CgroupParent: z.string().optional(),
      NanoCpus: int.optional(),
      CpuQuota: int.optional(),
      CpuPeriod: int.optional(),
      Memory: int.optional(),
      PidsLimit: int.nullable().optional(),
      ShmSize: int.optional(),
      Runtime: z.string().optional(),
      DeviceRequests: z.array(DeviceRequest).nullable().optional(),
      Devices: z.array(Device).nullable().optional(),
    })
    .nullable()
    .optional(),
});
export type CreateBodyRead = z.infer<typeof CreateBodyRead>;

/** Validate what the face reads; a wrong type is what dockerd would refuse too (400). */
export function readCreateBody(body: Obj): CreateBodyRead {
  const r = CreateBodyRead.safeParse(body);
  if (!r.success) {
    const issue = r.error.issues[0]!;
    throw new HttpError(400, `create body: ${issue.path.join('.') || 'body'}: ${issue.message}`);
  }
  return r.data;
}

/** Bytes as docker's size grammar ("2g"): the policy reads it the same, and messages read like the flag. */
const bytes = (n: number) => (n < 0 ? String(n) : formatSize(n));
const nonZero = (n: number | null | undefined) => (n === undefined || n === null || n === 0 ? undefined : String(n));

/** The policy's question, from the body: what the shim's createRequest reads from argv. */
export function createRequestOf(b: CreateBodyRead): CreateRequest {
  const hc = b.HostConfig ?? {};
  const req: CreateRequest = {
    labels: Object.entries(b.Labels ?? {}).map(([key, value]) => ({ key, value, from: 'Labels' })),
  };
  const set = (k: Exclude<keyof CreateRequest, 'labels'>, v: string | undefined) => {
    if (v !== undefined) req[k] = v;
  };
  set('cgroupParent', hc.CgroupParent || undefined);
  set('cpus', hc.NanoCpus ? String(hc.NanoCpus / 1e9) : undefined);
  set('cpuQuota', nonZero(hc.CpuQuota));
  set('cpuPeriod', nonZero(hc.CpuPeriod));
  // 0 is "not set" in the API (the CLI sends 0 when no flag was given): the policy's limit is injected.
  set('memory', hc.Memory ? bytes(hc.Memory) : undefined);
  set('pidsLimit', nonZero(hc.PidsLimit));
  set('shmSize', hc.ShmSize ? bytes(hc.ShmSize) : undefined);
  set('runtime', hc.Runtime || undefined);
  return req;
}

export function interfaceOfBody(b: CreateBodyRead): Interface {
  return interfaceOfLabels(Object.keys(b.Labels ?? {}), 'api');
}

const CDI_GPU = /^nvidia\.com\/gpu=/;

function isGpuDeviceRequest(r: z.infer<typeof DeviceRequest>): boolean {
  if (r.Driver === 'cdi') return (r.DeviceIDs ?? []).some((id) => CDI_GPU.test(id));
  return r.Driver === 'nvidia' || (r.Capabilities ?? []).some((set) => (set ?? []).includes('gpu'));
}

/** A device request written as the `--gpus` value the docker CLI turns into it (opts/gpus.go), CSV-quoted. */
function gpusFlagOf(r: z.infer<typeof DeviceRequest>): string {
  const q = (f: string) => (/[",]/.test(f) ? `"${f.replace(/"/g, '""')}"` : f);
  const fields: string[] = [];
  if (r.DeviceIDs?.length) fields.push(q(`device=${r.DeviceIDs.join(',')}`));
  else fields.push(r.Count === undefined || r.Count === 0 ? '0' : r.Count < 0 ? 'all' : String(r.Count));
  const caps = (r.Capabilities?.[0] ?? []).filter((c) => c !== 'gpu');
  if (caps.length) fields.push(q(`capabilities=${caps.join(',')}`));
  return fields.join(',');
}

/**
 * Every way the body asks for GPUs (device requests of any form, CDI
 * devices, /dev/nvidiaN device nodes, NVIDIA_VISIBLE_DEVICES, the nvidia
 * runtime), normalised by the allocator's own normaliser. Throws
 * GpuRequestError (several requests, malformed) like the shim does.
 */
export function gpuRequestOf(b: CreateBodyRead): GpuRequest {
  const hc = b.HostConfig ?? {};
  const gpus: string[] = [];
  const devices: string[] = [];
  for (const r of hc.DeviceRequests ?? []) {
    if (!isGpuDeviceRequest(r)) continue;
    if (r.Driver === 'cdi') devices.push(...(r.DeviceIDs ?? []).filter((id) => CDI_GPU.test(id)));
    else gpus.push(gpusFlagOf(r));
  }
  for (const d of hc.Devices ?? []) if (d.PathOnHost && parseDeviceFlag(d.PathOnHost)) devices.push(d.PathOnHost);
  // In the API an entry without "=" sets nothing, so only K=V entries count.
  const env = (b.Env ?? []).filter((e) => e.startsWith('NVIDIA_VISIBLE_DEVICES='));
  return normaliseGpuRequest({ gpus, devices, env, ...(hc.Runtime ? { runtime: hc.Runtime } : {}) }, {});
}

/** Apply the policy's additions (labels, cgroup parent, limits) to the body. */
export function applySettings(body: Obj, decisions: readonly Decision[]): void {
  const hc = hostConfig(body);
  for (const s of decisions.filter((d) => d.verdict !== 'deny').flatMap((d) => d.add ?? [])) applySetting(body, hc, s);
}

function hostConfig(body: Obj): Obj {
  if (!isObj(body.HostConfig)) body.HostConfig = {};
  return body.HostConfig as Obj;
}

function applySetting(body: Obj, hc: Obj, s: Setting): void {
  switch (s.kind) {
    case 'label':
      body.Labels = { ...(isObj(body.Labels) ? body.Labels : {}), [s.key]: s.value };
      return;
    case 'cgroupParent':
      hc.CgroupParent = s.value;
      return;
    case 'cpus':
      hc.NanoCpus = Math.round(Number(s.value) * 1e9);
      return;
    case 'cpuQuota':
      hc.CpuQuota = Number(s.value);
      return;
    case 'memory':
      hc.Memory = parseSize(s.value);
      return;
    case 'pidsLimit':
      hc.PidsLimit = Number(s.value);
      return;
    case 'shmSize':
      hc.ShmSize = parseSize(s.value);
      return;
  }
}

/**
 * Put the granted devices in place of the body's GPU asks, as the shim puts
 * one `--gpus device=<uuid>…` in place of the user's GPU flags: one NVIDIA
 * device request with the granted UUIDs (capabilities kept), GPU device
 * nodes, CDI GPU requests and the nvidia runtime dropped,
 * NVIDIA_VISIBLE_DEVICES (when set) made to agree, the GPU labels added.
 */
export function applyGpuGrant(body: Obj, devices: readonly GpuDevice[], labels: readonly [string, string][]): void {
  const hc = hostConfig(body);
  const uuids = devices.map((d) => d.uuid);
  const requests = Array.isArray(hc.DeviceRequests) ? (hc.DeviceRequests as Obj[]) : [];
  const gpuReqs = requests.filter((r) => isObj(r) && DeviceRequest.safeParse(r).success && isGpuDeviceRequest(r as z.infer<typeof DeviceRequest>));
  const first = gpuReqs.find((r) => r.Driver !== 'cdi');
  const capabilities = Array.isArray(first?.Capabilities) && first.Capabilities.length ? first.Capabilities : [['gpu']];
  hc.DeviceRequests = [
    ...requests.filter((r) => !gpuReqs.includes(r)),
    { Driver: 'nvidia', Count: 0, DeviceIDs: uuids, Capabilities: capabilities, Options: isObj(first?.Options) ? first.Options : {} },
  ];
  if (Array.isArray(hc.Devices)) hc.Devices = (hc.Devices as Obj[]).filter((d) => !(isObj(d) && typeof d.PathOnHost === 'string' && parseDeviceFlag(d.PathOnHost)));
  if (typeof hc.Runtime === 'string' && isNvidiaRuntime(hc.Runtime)) delete hc.Runtime;
  if (Array.isArray(body.Env)) {
    body.Env = (body.Env as unknown[]).map((e) => (typeof e === 'string' && e.startsWith('NVIDIA_VISIBLE_DEVICES=') ? `NVIDIA_VISIBLE_DEVICES=${uuids.join(',')}` : e));
  }
  body.Labels = { ...(isObj(body.Labels) ? body.Labels : {}), ...Object.fromEntries(labels) };
}

/** A named volume a create mounts (dockerd makes it when it does not exist yet). */
export interface VolumeRef {
  name: string;
  /** Where the body names it, for messages. */
  from: string;
  driver?: string;
  driverOpts?: Record<string, string>;
  labels?: Record<string, string>;
}

const BUILTIN_NETWORKS = new Set(['default', 'bridge', 'host', 'none']);

/**
 * The named volumes and networks a create body refers to (pure): Binds
 * whose source is not a path (`name:/dst[:opts]`), Mounts of type volume,
 * HostConfig.NetworkMode (but not the built-in modes or `container:`) and
 * the networks of NetworkingConfig.EndpointsConfig.
 */
export function namedRefs(body: Obj): { volumes: VolumeRef[]; networks: string[] } {
  const hc = isObj(body.HostConfig) ? body.HostConfig : {};
  const volumes: VolumeRef[] = [];
  const driver = typeof hc.VolumeDriver === 'string' && hc.VolumeDriver ? hc.VolumeDriver : undefined;
  for (const b of Array.isArray(hc.Binds) ? hc.Binds : []) {
    if (typeof b !== 'string') continue;
    const source = b.split(':')[0]!;
    if (source && !source.startsWith('/') && b.includes(':')) volumes.push({ name: source, from: `Binds ${b}`, ...(driver ? { driver } : {}) });
  }
  for (const m of Array.isArray(hc.Mounts) ? hc.Mounts : []) {
    if (!isObj(m) || m.Type !== 'volume' || typeof m.Source !== 'string' || !m.Source) continue;
    const vo = isObj(m.VolumeOptions) ? m.VolumeOptions : {};
    const dc = isObj(vo.DriverConfig) ? vo.DriverConfig : {};
    const strings = (v: unknown) => (isObj(v) && Object.values(v).every((x) => typeof x === 'string') ? (v as Record<string, string>) : undefined);
    const d = typeof dc.Name === 'string' && dc.Name ? dc.Name : driver;
    const opts = strings(dc.Options);
    const labels = strings(vo.Labels);
    volumes.push({ name: m.Source, from: `Mounts ${m.Source}`, ...(d ? { driver: d } : {}), ...(opts ? { driverOpts: opts } : {}), ...(labels ? { labels } : {}) });
  }
  const networks: string[] = [];
  const mode = typeof hc.NetworkMode === 'string' ? hc.NetworkMode : '';
  if (mode && !BUILTIN_NETWORKS.has(mode) && !mode.startsWith('container:')) networks.push(mode);
  const nc = isObj(body.NetworkingConfig) ? body.NetworkingConfig : {};
  if (isObj(nc.EndpointsConfig)) for (const n of Object.keys(nc.EndpointsConfig)) if (!BUILTIN_NETWORKS.has(n) && !networks.includes(n)) networks.push(n);
  return { volumes, networks };
}
