/**
 * The security asks of a compose project, read from the merged
 * configuration that the real compose prints (`config`: relative paths
 * already absolute, short and long volume syntax as compose writes them):
 * the compose half of src/policy/security.ts. Each ask carries the service
 * key it came from (`at`), so a refusal can name the file that sets it.
 */
import { emptySecurityRequest, localVolumeHostPath, localVolumeReadOnly, parseBindSpec, type NamespaceKind, type SecurityRequest } from '../policy/security.ts';

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);
const list = (v: unknown): unknown[] => (Array.isArray(v) ? v : []);
const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : typeof v === 'number' || typeof v === 'boolean' ? String(v) : undefined);

/** Service keys that set a namespace mode (compose file v2/v3 and the compose spec). */
const NAMESPACE_KEYS: [string, NamespaceKind][] = [
  ['pid', 'pid'],
  ['ipc', 'ipc'],
  ['network_mode', 'network'],
  ['uts', 'uts'],
  ['userns_mode', 'userns'],
  ['cgroup', 'cgroupns'],
];

/** The name compose gives a top-level volume: its `name`, else `<project>_<key>` (external: the key). */
export function composeVolumeName(config: unknown, key: string, project: string): string {
  const v = isObj(config) && isObj(config.volumes) ? config.volumes[key] : undefined;
  const name = isObj(v) ? str(v.name) : undefined;
  if (name) return name;
  return isObj(v) && v.external ? key : `${project}_${key}`;
}

export function serviceSecurityRequest(service: string, config: unknown, project: string): SecurityRequest {
  const services = isObj(config) && isObj(config.services) ? config.services : {};
  const s = isObj(services[service]) ? services[service] : {};
  const req = emptySecurityRequest();
  const ask = (key: string, value: string) => ({ from: `${key}: ${value}`, at: key });

  if (s.privileged === true || str(s.privileged)?.toLowerCase() === 'true') req.privileged.push(ask('privileged', 'true'));
  for (const c of list(s.cap_add)) if (str(c) !== undefined) req.capAdd.push({ cap: str(c)!, ...ask('cap_add', str(c)!) });
  for (const d of list(s.devices)) {
    // "host:container[:perms]", or the compose spec's long form {source, target, permissions}.
    const device = isObj(d) ? str(d.source) : str(d);
    if (device !== undefined) req.devices.push({ device, ...ask('devices', isObj(d) ? device : str(d)!) });
  }
  for (const r of list(s.device_cgroup_rules)) if (str(r) !== undefined) req.deviceCgroupRules.push({ rule: str(r)!, ...ask('device_cgroup_rules', str(r)!) });
  for (const [key, kind] of NAMESPACE_KEYS) {
    const mode = str(s[key]);
    if (mode === undefined) continue;
    // service:<name> is a container of this project, compose's own.
    if (mode.toLowerCase().startsWith('service:')) continue;
    req.namespaces.push({ kind, mode, ...ask(key, mode) });
  }
  for (const o of list(s.security_opt)) if (str(o) !== undefined) req.securityOpt.push({ opt: str(o)!, ...ask('security_opt', str(o)!) });

  for (const v of list(s.volumes)) {
    if (isObj(v)) {
      const type = str(v.type) ?? 'volume';
      const source = str(v.source);
      const shown = `${type} ${source ?? ''} → ${str(v.target) ?? ''}`.replace('  ', ' ');
      const readOnly = v.read_only === true || str(v.read_only)?.toLowerCase() === 'true';
      if (type === 'bind' && source) req.binds.push({ source, readOnly, ...ask('volumes', shown) });
      else if (type === 'volume' && source) req.volumes.push({ name: composeVolumeName(config, source, project), readOnly, ...ask('volumes', shown) });
      continue;
    }
    const spec = str(v);
    if (spec === undefined) continue;
    const b = parseBindSpec(spec);
    // compose config prints absolute paths; a relative one is compose's to refuse.
    if (b.kind === 'bind') req.binds.push({ source: b.source, readOnly: b.readOnly, ...ask('volumes', spec) });
    else if (b.kind === 'volume') req.volumes.push({ name: composeVolumeName(config, b.name, project), readOnly: b.readOnly, ...ask('volumes', spec) });
  }
  for (const v of list(s.volumes_from)) {
    const spec = str(v);
    if (spec === undefined) continue;
    // container:<name>[:mode] is a container; service:<name> and a bare service name are this project's.
    const parts = spec.split(':');
    if (parts[0] === 'container' && parts[1]) req.containers.push({ container: parts[1], how: 'volumes-from', ...ask('volumes_from', spec) });
    else if (parts[0] !== 'service' && !(parts[0]! in services)) req.containers.push({ container: parts[0]!, how: 'volumes-from', ...ask('volumes_from', spec) });
  }
  for (const l of list(s.external_links)) {
    const spec = str(l);
    if (spec !== undefined) req.containers.push({ container: spec.split(':')[0]!, how: 'link', ...ask('external_links', spec) });
  }
  return req;
}

/**
 * The project's own volumes (top-level `volumes:`): compose creates each
 * with its driver options, so one whose options mount a host path is a bind
 * of that path, whichever service uses it.
 */
export function projectVolumeRequests(config: unknown): { key: string; request: SecurityRequest }[] {
  const volumes = isObj(config) && isObj(config.volumes) ? config.volumes : {};
  const out: { key: string; request: SecurityRequest }[] = [];
  for (const [key, v] of Object.entries(volumes)) {
    if (!isObj(v) || v.external) continue;
    const opts = isObj(v.driver_opts) ? Object.fromEntries(Object.entries(v.driver_opts).map(([k, x]) => [k, str(x) ?? ''])) : undefined;
    const host = localVolumeHostPath(str(v.driver), opts);
    if (host === undefined) continue;
    const request = emptySecurityRequest();
    request.binds.push({ source: host, readOnly: localVolumeReadOnly(opts), from: `volumes: ${key}: driver_opts ${Object.entries(opts ?? {}).map(([k, x]) => `${k}=${x}`).join(' ')}`, at: 'volumes' });
    out.push({ key, request });
  }
  return out;
}

/** `docker-compose run` options that are security asks: -v/--volume, --cap-add (v2), with the service they apply to. */
export function runSecurityFlags(rest: readonly string[]): { service?: string; volumes: string[]; capAdd: string[] } {
  const out: { service?: string; volumes: string[]; capAdd: string[] } = { volumes: [], capAdd: [] };
  const skipValue = new Set(['-e', '--env', '--name', '--entrypoint', '-u', '--user', '-p', '--publish', '-w', '--workdir', '-l', '--label', '--cap-drop', '--pull', '--env-from-file']);
  for (let i = 0; i < rest.length; i++) {
    const a = rest[i]!;
    if (a === '--') {
      out.service = rest[i + 1];
      break;
    }
    if (!a.startsWith('-') || a === '-') {
      out.service = a;
      break;
    }
    const eq = a.indexOf('=');
    const [name, inline] = a.startsWith('--') && eq > 0 ? [a.slice(0, eq), a.slice(eq + 1)] : [a, undefined];
    const value = () => inline ?? rest[++i];
    if (name === '-v' || name === '--volume') {
      const v = value();
      if (v !== undefined) out.volumes.push(v);
    } else if (!name.startsWith('--') && name.startsWith('-v') && name.length > 2) out.volumes.push(name.slice(2).replace(/^=/, ''));
    else if (name === '--cap-add') {
      const v = value();
      if (v !== undefined) out.capAdd.push(v);
    } else if (skipValue.has(name) && inline === undefined) i++;
  }
  return out;
}
