/**
 * A JSON request body read the way dockerd (Go's encoding/json) reads it,
 * so the face decides on what dockerd will do, not on what JavaScript sees:
 *
 * - Go matches a struct's field names without regard to case, later keys
 *   winning: `{"HostConfig": {"privileged": true}}` is privileged. Each
 *   object the face reads is rewritten with the canonical spelling; two
 *   spellings of one field in one object, or a non-ASCII field name (Go
 *   folds some, such as the Kelvin sign, onto ASCII letters), are refused.
 * - dockerd 20.10 also reads HostConfig fields from the top level of a
 *   create body (a deprecated embedded struct, verified: a top-level
 *   `"Privileged": true` with no HostConfig makes a privileged container).
 *   Those are moved into HostConfig exactly as dockerd merges them
 *   (runconfig getHostConfig), so the body the face forwards says the same
 *   thing with no second place to look.
 *
 * Unknown fields are kept: dockerd ignores them. Pure.
 */
import { HttpError } from './http.ts';

type Obj = Record<string, unknown>;
export const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

/** container.Config (api/types/container/config.go). */
export const CONFIG_FIELDS = [
  'Hostname', 'Domainname', 'User', 'AttachStdin', 'AttachStdout', 'AttachStderr', 'ExposedPorts', 'Tty', 'OpenStdin', 'StdinOnce',
  'Env', 'Cmd', 'Healthcheck', 'ArgsEscaped', 'Image', 'Volumes', 'WorkingDir', 'Entrypoint', 'NetworkDisabled', 'MacAddress',
  'OnBuild', 'Labels', 'StopSignal', 'StopTimeout', 'Shell',
];

/** container.HostConfig with its embedded Resources (api/types/container/host_config.go). */
export const HOST_CONFIG_FIELDS = [
  'Binds', 'ContainerIDFile', 'LogConfig', 'NetworkMode', 'PortBindings', 'RestartPolicy', 'AutoRemove', 'VolumeDriver', 'VolumesFrom',
  'ConsoleSize', 'Annotations', 'CapAdd', 'CapDrop', 'CgroupnsMode', 'Dns', 'DnsOptions', 'DnsSearch', 'ExtraHosts', 'GroupAdd',
  'IpcMode', 'Cgroup', 'Links', 'OomScoreAdj', 'PidMode', 'Privileged', 'PublishAllPorts', 'ReadonlyRootfs', 'SecurityOpt',
  'StorageOpt', 'Tmpfs', 'UTSMode', 'UsernsMode', 'ShmSize', 'Sysctls', 'Runtime', 'Isolation', 'Mounts', 'MaskedPaths',
  'ReadonlyPaths', 'Init',
  // Resources
  'CpuShares', 'Memory', 'NanoCpus', 'CgroupParent', 'BlkioWeight', 'BlkioWeightDevice', 'BlkioDeviceReadBps', 'BlkioDeviceWriteBps',
  'BlkioDeviceReadIOps', 'BlkioDeviceWriteIOps', 'CpuPeriod', 'CpuQuota', 'CpuRealtimePeriod', 'CpuRealtimeRuntime', 'CpusetCpus',
  'CpusetMems', 'Devices', 'DeviceCgroupRules', 'DeviceRequests', 'KernelMemory', 'KernelMemoryTCP', 'MemoryReservation', 'MemorySwap',
  'MemorySwappiness', 'OomKillDisable', 'PidsLimit', 'Ulimits', 'CpuCount', 'CpuPercent', 'IOMaximumIOps', 'IOMaximumBandwidth',
];

interface Shape {
  fields: readonly string[];
  /** Fields holding a struct (or a list of structs) the face reads too. */
  nested?: Record<string, { shape: Shape; list?: boolean }>;
}

const DRIVER_CONFIG: Shape = { fields: ['Name', 'Options'] };
const MOUNT: Shape = {
  fields: ['Type', 'Source', 'Target', 'ReadOnly', 'Consistency', 'BindOptions', 'VolumeOptions', 'TmpfsOptions', 'ClusterOptions'],
  nested: {
    BindOptions: { shape: { fields: ['Propagation', 'NonRecursive', 'CreateMountpoint', 'ReadOnlyNonRecursive', 'ReadOnlyForceRecursive'] } },
    VolumeOptions: { shape: { fields: ['NoCopy', 'Labels', 'DriverConfig', 'Subpath'], nested: { DriverConfig: { shape: DRIVER_CONFIG } } } },
    TmpfsOptions: { shape: { fields: ['SizeBytes', 'Mode', 'Options'] } },
  },
};

export const HOST_CONFIG: Shape = {
  fields: HOST_CONFIG_FIELDS,
  nested: {
    Mounts: { shape: MOUNT, list: true },
    DeviceRequests: { shape: { fields: ['Driver', 'Count', 'DeviceIDs', 'Capabilities', 'Options'] }, list: true },
    Devices: { shape: { fields: ['PathOnHost', 'PathInContainer', 'CgroupPermissions'] }, list: true },
    LogConfig: { shape: { fields: ['Type', 'Config'] } },
    RestartPolicy: { shape: { fields: ['Name', 'MaximumRetryCount'] } },
  },
};

const NETWORKING_CONFIG: Shape = { fields: ['EndpointsConfig'] };

/** The create body (runconfig.ContainerConfigWrapper): Config's fields, its own, and (20.10) HostConfig's promoted. */
const CREATE_WRAPPER: Shape = {
  fields: [...CONFIG_FIELDS, 'HostConfig', 'NetworkingConfig', 'Cpuset', ...HOST_CONFIG_FIELDS],
  nested: { HostConfig: { shape: HOST_CONFIG }, NetworkingConfig: { shape: NETWORKING_CONFIG } },
};

/** Go's field-name folding, for ASCII names (non-ASCII names are refused before this is asked). */
const fold = (s: string) => s.toLowerCase();

/** Rewrite one decoded object with canonical field names (in place of the keys Go would match), recursively for the nested shapes. */
export function canonical(obj: Obj, shape: Shape, where: string): Obj {
  const byFold = new Map(shape.fields.map((f) => [fold(f), f]));
  const seen = new Map<string, string>();
  const out: Obj = {};
  for (const [key, value] of Object.entries(obj)) {
    if (/[^\x20-\x7e]/.test(key)) throw new HttpError(400, `${where}: field name ${JSON.stringify(key)} has non-ASCII characters (dockerd would fold some onto other fields); spell field names in ASCII`);
    const name = byFold.get(fold(key));
    if (name === undefined) {
      out[key] = value;
      continue;
    }
    const before = seen.get(name);
    if (before !== undefined) throw new HttpError(400, `${where}: field ${name} given twice (as ${before} and ${key}); dockerd matches field names without regard to case, give it once`);
    seen.set(name, key);
    const nested = shape.nested?.[name];
    if (nested && value !== null && value !== undefined) {
      if (nested.list) {
        if (!Array.isArray(value)) throw new HttpError(400, `${where}.${name}: expected a list`);
        out[name] = value.map((item, i) => (isObj(item) ? canonical(item, nested.shape, `${where}.${name}[${i}]`) : item));
      } else {
        if (!isObj(value)) throw new HttpError(400, `${where}.${name}: expected an object`);
        out[name] = canonical(value, nested.shape, `${where}.${name}`);
      }
    } else out[name] = value;
  }
  return out;
}

const isZero = (v: unknown) => v === undefined || v === null || v === 0 || v === '';

/**
 * A create body as dockerd 20.10 will read it: canonical names, and the
 * deprecated top-level HostConfig fields merged into HostConfig with
 * dockerd's rules (no HostConfig: they are the HostConfig; with one: only
 * Memory, MemorySwap, CpuShares, CpusetCpus and VolumeDriver fill its zero
 * values; top-level Cpuset fills an empty CpusetCpus).
 */
export function createBodyAsDockerdReadsIt(body: unknown): Obj {
  if (!isObj(body)) throw new HttpError(400, 'the create body must be a JSON object');
  const top = canonical(body, CREATE_WRAPPER, 'create body');
  const hostTop: Obj = {};
  for (const f of HOST_CONFIG_FIELDS) {
    if (f in top) {
      hostTop[f] = top[f];
      delete top[f];
    }
  }
  const cpuset = top.Cpuset;
  delete top.Cpuset;
  let hc = isObj(top.HostConfig) ? top.HostConfig : undefined;
  if (top.HostConfig !== undefined && top.HostConfig !== null && !hc) throw new HttpError(400, 'create body: HostConfig must be an object');
  if (Object.keys(hostTop).length) {
    const lifted = canonical(hostTop, HOST_CONFIG, 'create body (top-level HostConfig fields)');
    if (!hc) hc = lifted;
    else {
      hc = { ...hc };
      for (const f of ['Memory', 'MemorySwap', 'CpuShares', 'CpusetCpus', 'VolumeDriver']) {
        if (!isZero(lifted[f]) && isZero(hc[f])) hc[f] = lifted[f];
      }
    }
  }
  if (!isZero(cpuset) && hc && isZero(hc.CpusetCpus)) hc = { ...hc, CpusetCpus: cpuset };
  if (hc) top.HostConfig = hc;
  return top;
}

/** Any other JSON body the face reads (volumes, networks, exec, update): canonical names for `fields`. */
export function bodyAsDockerdReadsIt(body: unknown, fields: readonly string[], where: string, nested?: Shape['nested']): Obj {
  if (!isObj(body)) throw new HttpError(400, `${where}: the body must be a JSON object`);
  return canonical(body, { fields, ...(nested ? { nested } : {}) }, where);
}

/** Parse a JSON body: malformed JSON is a 400 (dockerd would refuse it too). */
export function parseJsonBody(buf: Buffer, where: string): unknown {
  try {
    return JSON.parse(buf.toString('utf8'));
  } catch (err) {
    throw new HttpError(400, `${where}: the body is not valid JSON (${(err as Error).message})`);
  }
}
