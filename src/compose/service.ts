/**
 * Translating compose services into the policy's questions and its answers
 * back into an override file. Reads the merged configuration that
 * `docker-compose config` prints (so extends, interpolation and merging are
 * compose's own), and the user's files only to name the file in a refusal.
 */
import { parseSize } from '../policy/units.ts';
import { parseVisibleDevices, type GpuRequest } from '../gpu/request.ts';

/** The per-container settings a service asks for, in the shim's terms. */
export interface ServiceAsk {
  service: string;
  labels: Record<string, string>;
  cgroupParent?: string;
  /** As spelled in the merged configuration ("256m", 0.5); the smaller where two keys say it. */
  limits: { cpus?: string; memory?: string; pids?: string; shmSize?: string };
  /** Raw GPU asks, for the allocator: reservations.devices, runtime, env. */
  gpu: { devices: GpuDeviceAsk[]; runtime?: string; visibleDevices?: string };
}

export interface GpuDeviceAsk {
  driver?: string;
  count?: number | 'all';
  deviceIds?: string[];
  capabilities: string[];
}

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

/** compose's two spellings of labels and environment: a mapping, or a list of "k=v". */
export function keyValues(v: unknown): Record<string, string> {
  if (isObj(v)) return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, x === null || x === undefined ? '' : String(x)]));
  if (Array.isArray(v)) {
    return Object.fromEntries(
      v.map((item) => {
        const s = String(item);
        const eq = s.indexOf('=');
        return eq < 0 ? [s, ''] : [s.slice(0, eq), s.slice(eq + 1)];
      }),
    );
  }
  return {};
}

const num = (v: unknown): number | undefined => (v === undefined || v === null || v === '' ? undefined : Number(v));
const size = (v: unknown): number | undefined => (v === undefined || v === null ? undefined : parseSize(typeof v === 'number' ? v : String(v)));

/** The smaller of two spellings of one limit, as spelled (unreadable values are kept: docker reports them). */
function smaller(measure: (v: unknown) => number | undefined, ...values: unknown[]): string | undefined {
  const given = values.filter((v) => v !== undefined && v !== null && v !== '');
  if (!given.length) return undefined;
  const best = given.reduce((a, b) => ((measure(b) ?? Infinity) < (measure(a) ?? Infinity) ? b : a));
  return String(best);
}

export function servicesOf(config: unknown): ServiceAsk[] {
  const services = isObj(config) && isObj(config.services) ? config.services : {};
  return Object.entries(services).map(([service, raw]) => {
    const s = isObj(raw) ? raw : {};
    const deploy = isObj(s.deploy) ? s.deploy : {};
    const resources = isObj(deploy.resources) ? deploy.resources : {};
    const limits = isObj(resources.limits) ? resources.limits : {};
    const reservations = isObj(resources.reservations) ? resources.reservations : {};
    const env = keyValues(s.environment);
    return {
      service,
      labels: keyValues(s.labels),
      cgroupParent: typeof s.cgroup_parent === 'string' ? s.cgroup_parent : undefined,
      // Both spellings count; the smaller one is what the container gets.
      limits: {
        cpus: smaller(num, s.cpus, limits.cpus),
        memory: smaller(size, s.mem_limit, limits.memory),
        pids: smaller(num, s.pids_limit, limits.pids),
        shmSize: smaller(size, s.shm_size),
      },
      gpu: {
        devices: (Array.isArray(reservations.devices) ? reservations.devices : []).filter(isObj).map((d) => ({
          driver: typeof d.driver === 'string' ? d.driver : undefined,
          count: d.count === 'all' ? 'all' : num(d.count),
          deviceIds: Array.isArray(d.device_ids) ? d.device_ids.map(String) : undefined,
          capabilities: Array.isArray(d.capabilities) ? d.capabilities.map(String) : [],
        })),
        runtime: typeof s.runtime === 'string' ? s.runtime : undefined,
        visibleDevices: env.NVIDIA_VISIBLE_DEVICES,
      },
    };
  });
}

/** A service asks for GPUs the way compose and Docker understand it. */
export function asksForGpu(ask: ServiceAsk): boolean {
  const { devices, runtime, visibleDevices } = ask.gpu;
  const deviceAsk = devices.some((d) => d.driver === 'nvidia' || d.capabilities.includes('gpu'));
  const envAsk = visibleDevices !== undefined && visibleDevices !== '' && visibleDevices !== 'void' && visibleDevices !== 'none';
  return deviceAsk || runtime === 'nvidia' || envAsk;
}

/** Which of the user's files sets `services.<service>.<key>` (the last one wins in compose, so report the last). */
export function fileSetting(files: { path: string; doc: unknown }[], service: string, key: string, test: (value: unknown) => boolean = () => true): string | undefined {
  let found: string | undefined;
  for (const f of files) {
    const s = isObj(f.doc) && isObj(f.doc.services) ? f.doc.services[service] : undefined;
    if (isObj(s) && key in s && test(s[key])) found = f.path;
  }
  return found;
}

/** What the policy adds to one service. */
export interface ServiceAnswer {
  service: string;
  labels: [string, string][];
  cgroupParent?: string;
  inject: { cpus?: number; memory?: string; pids?: number; shmSize?: string };
  gpu?: { deviceIds: string[]; capabilities: string[] };
}

/** The override document: only what the policy adds, per service (projects without GPU services; see applyAnswers). */
export function overrideDocument(answers: ServiceAnswer[], version: string | undefined): Obj {
  const services: Obj = {};
  for (const a of answers) {
    const s: Obj = { labels: Object.fromEntries(a.labels) };
    if (a.cgroupParent) s.cgroup_parent = a.cgroupParent;
    if (a.inject.cpus !== undefined) s.cpus = a.inject.cpus;
    if (a.inject.memory !== undefined) s.mem_limit = a.inject.memory;
    if (a.inject.pids !== undefined) s.pids_limit = a.inject.pids;
    if (a.inject.shmSize !== undefined) s.shm_size = a.inject.shmSize;
    services[a.service] = s;
  }
  return version === undefined ? { services } : { version, services };
}

/**
 * A service's GPU ask as one request for the allocator, in the same terms
 * as `docker run --gpus` (pure). Compose's device reservation: `count: all`
 * or no count and no ids means every device (compose's own default);
 * `device_ids` are explicit devices. `runtime: nvidia` or the environment
 * alone: NVIDIA_VISIBLE_DEVICES decides, as the NVIDIA runtime reads it.
 */
export function gpuRequestOf(ask: ServiceAsk): GpuRequest {
  const source = (what: string) => `service ${ask.service}: ${what}`;
  const device = ask.gpu.devices.find((d) => d.driver === 'nvidia' || d.capabilities.includes('gpu'));
  const capabilities = device?.capabilities.length ? { capabilities: device.capabilities } : {};
  if (device?.deviceIds?.length) return { kind: 'devices', devices: device.deviceIds, ...capabilities, sources: [source('deploy.resources.reservations.devices.device_ids')] };
  if (device && typeof device.count === 'number') {
    if (device.count <= 0) return { kind: 'none', sources: [source('count 0')] };
    return { kind: 'count', count: device.count, ...capabilities, sources: [source(`deploy.resources.reservations.devices.count ${device.count}`)] };
  }
  if (device) return { kind: 'all', ...capabilities, sources: [source('deploy.resources.reservations.devices')] };
  const visible = ask.gpu.visibleDevices;
  if (visible !== undefined) return parseVisibleDevices(visible, source(`NVIDIA_VISIBLE_DEVICES=${visible}`));
  if (ask.gpu.runtime === 'nvidia') return { kind: 'all', sources: [source('runtime nvidia')] };
  return { kind: 'none', sources: [] };
}

/**
 * The merged configuration with the policy's answers applied in place: for
 * projects with GPU services, whose device reservations an override file
 * could only add to (compose appends lists), never replace.
 */
export function applyAnswers(merged: unknown, answers: ServiceAnswer[]): Obj {
  const doc = structuredClone(isObj(merged) ? merged : {}) as Obj;
  const services = isObj(doc.services) ? doc.services : (doc.services = {});
  for (const a of answers) {
    const s = (isObj(services[a.service]) ? services[a.service] : (services[a.service] = {})) as Obj;
    s.labels = { ...keyValues(s.labels), ...Object.fromEntries(a.labels) };
    if (a.cgroupParent) s.cgroup_parent = a.cgroupParent;
    if (a.inject.cpus !== undefined) s.cpus = a.inject.cpus;
    if (a.inject.memory !== undefined) s.mem_limit = a.inject.memory;
    if (a.inject.pids !== undefined) s.pids_limit = a.inject.pids;
    if (a.inject.shmSize !== undefined) s.shm_size = a.inject.shmSize;
    if (!a.gpu) continue;
    const deploy = (isObj(s.deploy) ? s.deploy : (s.deploy = {})) as Obj;
    const resources = (isObj(deploy.resources) ? deploy.resources : (deploy.resources = {})) as Obj;
    const reservations = (isObj(resources.reservations) ? resources.reservations : (resources.reservations = {})) as Obj;
    const others = (Array.isArray(reservations.devices) ? reservations.devices : []).filter(
      (d) => !(isObj(d) && (d.driver === 'nvidia' || (Array.isArray(d.capabilities) && d.capabilities.includes('gpu')))),
    );
    reservations.devices = [...others, { driver: 'nvidia', device_ids: a.gpu.deviceIds, capabilities: a.gpu.capabilities.length ? a.gpu.capabilities : ['gpu'] }];
    const env = keyValues(s.environment);
    if ('NVIDIA_VISIBLE_DEVICES' in env) s.environment = { ...env, NVIDIA_VISIBLE_DEVICES: a.gpu.deviceIds.join(',') };
  }
  return doc;
}
