/**
 * The security rules (src/policy/security.ts, decideSecurity) for the API
 * face: the face half only, building the SecurityRequest from the bodies it
 * already reads as dockerd reads them (gobody.ts: canonical field names,
 * 20.10's top-level HostConfig fields merged in) and gathering the facts
 * through the one gatherer every face uses (src/security/facts.ts), with
 * dockerd asked on the upstream socket. Each ask names the field it came
 * from (`HostConfig.Privileged`, `HostConfig.Binds /etc:/x`).
 */
import { posix } from 'node:path';
import { dockerReader, inspectVolumes, type ReaderOptions } from '../docker/gateway.ts';
import { parseDeviceFlag } from '../gpu/request.ts';
import type { Decision } from '../policy/decide.ts';
import type { EffectiveUser } from '../policy/effective.ts';
import type { Policy } from '../policy/schema.ts';
import {
  decideSecurity,
  emptySecurityRequest,
  localVolumeHostPath,
  localVolumeReadOnly,
  parseBindSpec,
  volumeCreateRequest,
  type NamespaceKind,
  type SecurityRequest,
} from '../policy/security.ts';
import { gatherSecurityFacts, type DockerLookups } from '../security/facts.ts';
import { isObj } from './gobody.ts';
import type { Upstream } from './upstream.ts';

type Obj = Record<string, unknown>;

const strings = (v: unknown): string[] => (Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : []);
const stringMap = (v: unknown): Record<string, string> | undefined => (isObj(v) && Object.values(v).every((x) => typeof x === 'string') ? (v as Record<string, string>) : undefined);
/** A relative bind source has no working directory in the API: judged from / (where dockerd would resolve it). */
const absolute = (p: string) => (p.startsWith('/') ? p : posix.resolve('/', p));

const NAMESPACE_FIELDS: [string, NamespaceKind][] = [
  ['PidMode', 'pid'],
  ['IpcMode', 'ipc'],
  ['NetworkMode', 'network'],
  ['UTSMode', 'uts'],
  ['UsernsMode', 'userns'],
  ['CgroupnsMode', 'cgroupns'],
];

const isGpuRequest = (r: Obj) =>
  r.Driver === 'nvidia' ||
  (Array.isArray(r.Capabilities) && r.Capabilities.some((set) => Array.isArray(set) && set.includes('gpu'))) ||
  (r.Driver === 'cdi' && strings(r.DeviceIDs).every((id) => id.startsWith('nvidia.com/gpu=')));

/** What a create body asks for, in the security policy's terms (pure). */
export function securityRequestOfBody(body: Obj): SecurityRequest {
  const req = emptySecurityRequest();
  const hc = isObj(body.HostConfig) ? body.HostConfig : {};
  if (hc.Privileged === true) req.privileged.push({ from: 'HostConfig.Privileged' });
  for (const cap of strings(hc.CapAdd)) req.capAdd.push({ cap, from: `HostConfig.CapAdd ${cap}` });
  for (const d of Array.isArray(hc.Devices) ? hc.Devices : []) {
    if (!isObj(d) || typeof d.PathOnHost !== 'string') continue;
    // /dev/nvidiaN is a GPU request: the allocator decides it (and replaces it).
    if (!parseDeviceFlag(d.PathOnHost)) req.devices.push({ device: d.PathOnHost, from: `HostConfig.Devices ${d.PathOnHost}` });
  }
  for (const r of Array.isArray(hc.DeviceRequests) ? hc.DeviceRequests : []) {
    // Device requests other than GPUs reach host devices through a driver: a device ask.
    if (isObj(r) && !isGpuRequest(r)) req.devices.push({ device: `${String(r.Driver ?? '')} ${strings(r.DeviceIDs).join(',')}`.trim(), from: `HostConfig.DeviceRequests driver ${String(r.Driver ?? '')}` });
  }
  for (const rule of strings(hc.DeviceCgroupRules)) req.deviceCgroupRules.push({ rule, from: `HostConfig.DeviceCgroupRules ${rule}` });
  for (const [field, kind] of NAMESPACE_FIELDS) {
    const mode = hc[field];
    if (typeof mode === 'string' && mode !== '') req.namespaces.push({ kind, mode, from: `HostConfig.${field} ${mode}` });
  }
  for (const opt of strings(hc.SecurityOpt)) req.securityOpt.push({ opt, from: `HostConfig.SecurityOpt ${opt}` });
  // The CLI sends `--security-opt systempaths=unconfined` as empty MaskedPaths/ReadonlyPaths: any list
  // given replaces Docker's defaults, so it is that ask, whatever it holds.
  for (const field of ['MaskedPaths', 'ReadonlyPaths']) {
    if (Array.isArray(hc[field])) req.securityOpt.push({ opt: 'systempaths=unconfined', from: `HostConfig.${field} ${JSON.stringify(hc[field])}` });
  }
  for (const spec of strings(hc.Binds)) {
    const b = parseBindSpec(spec);
    const from = `HostConfig.Binds ${spec}`;
    if (b.kind === 'bind') req.binds.push({ source: absolute(b.source), from, readOnly: b.readOnly });
    else if (b.kind === 'volume') req.volumes.push({ name: b.name, from, readOnly: b.readOnly });
  }
  for (const m of Array.isArray(hc.Mounts) ? hc.Mounts : []) {
    if (!isObj(m)) continue;
    const type = typeof m.Type === 'string' ? m.Type.toLowerCase() : '';
    const source = typeof m.Source === 'string' ? m.Source : '';
    const from = `HostConfig.Mounts ${type} ${source}`.trim();
    const readOnly = m.ReadOnly === true;
    if (type === 'bind' && source) req.binds.push({ source: absolute(source), from, readOnly });
    if (type !== 'volume') continue;
    if (source) req.volumes.push({ name: source, from, readOnly });
    const vo = isObj(m.VolumeOptions) ? m.VolumeOptions : {};
    const dc = isObj(vo.DriverConfig) ? vo.DriverConfig : {};
    const driver = typeof dc.Name === 'string' && dc.Name ? dc.Name : typeof hc.VolumeDriver === 'string' && hc.VolumeDriver ? hc.VolumeDriver : undefined;
    const options = stringMap(dc.Options);
    const host = localVolumeHostPath(driver, options);
    if (host !== undefined) req.binds.push({ source: host, from, readOnly: readOnly || localVolumeReadOnly(options ?? {}) });
  }
  for (const v of strings(hc.VolumesFrom)) req.containers.push({ container: v.split(':')[0]!, how: 'volumes-from', from: `HostConfig.VolumesFrom ${v}` });
  for (const l of strings(hc.Links)) req.containers.push({ container: l.split(':')[0]!.replace(/^\//, ''), how: 'link', from: `HostConfig.Links ${l}` });
  return req;
}

/** An exec create's one security ask: Privileged. */
export function securityRequestOfExec(body: Obj): SecurityRequest {
  const req = emptySecurityRequest();
  if (body.Privileged === true) req.privileged.push({ from: 'exec Privileged' });
  return req;
}

/** A classic build's namespace ask: `networkmode` (host, or another container's). */
export function securityRequestOfBuild(networkMode: string | undefined): SecurityRequest {
  const req = emptySecurityRequest();
  if (networkMode) req.namespaces.push({ kind: 'network', mode: networkMode, from: `build networkmode=${networkMode}` });
  return req;
}

/** The security decisions on one request, facts gathered through dockerd's upstream socket. */
export async function decideSecurityOf(policy: Policy, who: EffectiveUser, req: SecurityRequest, up: Upstream): Promise<Decision[]> {
  if (!policy.security) return [];
  const facts = await gatherSecurityFacts(policy, who, req, { local: true, docker: () => lookups(up) });
  return decideSecurity(policy, who, req, facts);
}

export async function securityOfCreate(policy: Policy, who: EffectiveUser, body: Obj, up: Upstream): Promise<Decision[]> {
  return decideSecurityOf(policy, who, securityRequestOfBody(body), up);
}

export async function securityOfVolumeCreate(policy: Policy, who: EffectiveUser, body: Obj, up: Upstream): Promise<Decision[]> {
  const driver = typeof body.Driver === 'string' ? body.Driver : undefined;
  const opts = stringMap(body.DriverOpts) ?? {};
  return decideSecurityOf(policy, who, volumeCreateRequest(driver, opts, `volume DriverOpts ${Object.entries(opts).map(([k, v]) => `${k}=${v}`).join(',')}`), up);
}

export async function securityOfExecCreate(policy: Policy, who: EffectiveUser, body: Obj, up: Upstream): Promise<Decision[]> {
  return decideSecurityOf(policy, who, securityRequestOfExec(body), up);
}

/** dockerd on the upstream socket, as the facts gatherer reads it. */
async function lookups(up: Upstream): Promise<DockerLookups> {
  up.assertSafe();
  const opts: ReaderOptions = {
    socket: up.path,
    realDocker: () => {
      throw new Error('the API face reads dockerd on its socket only');
    },
  };
  return { reader: await dockerReader(opts), inspectVolumes: (names) => inspectVolumes(opts, names) };
}
