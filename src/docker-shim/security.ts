/**
 * The security asks of a `docker run`/`docker create` line and of a
 * `docker volume create` line, read from the scanner's flags with the
 * docker CLI's own grammar for each value (cli/command/container/opts.go,
 * opts/mount.go, opts/network.go): the face half of src/policy/security.ts.
 * Pure: argv (scanned) and the working directory in, a SecurityRequest out.
 */
import { posix } from 'node:path';
import { parseDeviceFlag } from '../gpu/request.ts';
import { emptySecurityRequest, localVolumeHostPath, localVolumeReadOnly, parseBindSpec, volumeCreateRequest, type NamespaceKind, type SecurityRequest } from '../policy/security.ts';
import type { RunScan } from './argv.ts';
import { makeTable, scanFlags, type FlagOccurrence } from './pflag.ts';

const NAMESPACE_FLAGS: Record<string, NamespaceKind> = { pid: 'pid', ipc: 'ipc', uts: 'uts', userns: 'userns', cgroupns: 'cgroupns' };

/** pflag's strconv.ParseBool: a bool flag's `=value`. */
function boolValue(f: FlagOccurrence): boolean | undefined {
  if (f.value === undefined) return true;
  if (['1', 't', 'T', 'TRUE', 'true', 'True'].includes(f.value)) return true;
  if (['0', 'f', 'F', 'FALSE', 'false', 'False'].includes(f.value)) return false;
  return undefined;
}

const shown = (f: FlagOccurrence) => (f.value === undefined ? f.spelled : `${f.spelled} ${f.value}`);

export function securityRequestOf(scan: Pick<RunScan, 'flags'>, cwd: string): SecurityRequest {
  const req = emptySecurityRequest();
  const abs = (p: string) => posix.resolve(cwd, p);
  const lastOf = new Map<string, FlagOccurrence>();
  for (const f of scan.flags) {
    if (f.name in NAMESPACE_FLAGS && f.value !== undefined) lastOf.set(f.name, f);
    if (f.name === 'privileged') lastOf.set(f.name, f);
  }
  for (const f of scan.flags) {
    const from = shown(f);
    // Single-valued flags: only the last one takes effect (pflag), judged where it stands.
    if (lastOf.get(f.name) === f) {
      // A malformed --privileged value is docker's to refuse; counted as asked, so it is never let through unjudged.
      if (f.name === 'privileged' && boolValue(f) !== false) req.privileged.push({ from });
      else if (f.name !== 'privileged') req.namespaces.push({ kind: NAMESPACE_FLAGS[f.name]!, mode: f.value!, from });
      continue;
    }
    const v = f.value;
    if (v === undefined) continue;
    switch (f.name) {
      case 'cap-add':
        req.capAdd.push({ cap: v, from });
        break;
      case 'device':
        // CDI nvidia.com/gpu=… and /dev/nvidiaN are GPU requests: the allocator decides those.
        if (!parseDeviceFlag(v)) req.devices.push({ device: v, from });
        break;
      case 'device-cgroup-rule':
        req.deviceCgroupRules.push({ rule: v, from });
        break;
      case 'network':
      case 'net':
        req.namespaces.push({ kind: 'network', mode: networkName(v), from });
        break;
      case 'security-opt':
        req.securityOpt.push({ opt: v, from });
        break;
      case 'volume': {
        const b = parseBindSpec(v);
        if (b.kind === 'bind') req.binds.push({ source: b.relative ? abs(b.source) : b.source, from, readOnly: b.readOnly });
        else if (b.kind === 'volume') req.volumes.push({ name: b.name, from, readOnly: b.readOnly });
        break;
      }
      case 'mount':
        addMount(req, v, from, abs);
        break;
      case 'volumes-from':
        req.containers.push({ container: v.split(':')[0]!, how: 'volumes-from', from });
        break;
      case 'link':
        req.containers.push({ container: v.split(':')[0]!.replace(/^\//, ''), how: 'link', from });
        break;
    }
  }
  return req;
}

/** `--network NAME`, or the advanced `--network name=NAME,alias=…` (opts/network.go). */
function networkName(value: string): string {
  if (!value.includes('=')) return value;
  const fields = csvRecord(value) ?? value.split(',');
  for (const field of fields) {
    const eq = field.indexOf('=');
    if (eq >= 0 && field.slice(0, eq).trim().toLowerCase() === 'name') return field.slice(eq + 1);
  }
  return value;
}

/**
 * `--mount` (opts/mount.go): CSV fields `key=value`; type defaults to
 * volume and is lower-cased; the last source/src wins, `./x` and `.` are
 * made absolute; `volume-opt=k=v` are the volume's driver options.
 */
function addMount(req: SecurityRequest, value: string, from: string, abs: (p: string) => string): void {
  // Docker refuses what its CSV reader cannot read; judged by a plain split anyway, so no bind is missed.
  const fields = csvRecord(value) ?? value.split(',');
  let type = 'volume';
  let source: string | undefined;
  let driver: string | undefined;
  let readOnly = false;
  const options: Record<string, string> = {};
  for (const field of fields) {
    const eq = field.indexOf('=');
    if (field === 'readonly' || field === 'ro') readOnly = true;
    if (eq < 0) continue;
    const key = field.slice(0, eq);
    const val = field.slice(eq + 1);
    if (key === 'readonly' || key === 'ro') readOnly = ['1', 't', 'T', 'TRUE', 'true', 'True'].includes(val);
    else if (key === 'type') type = val.toLowerCase();
    else if (key === 'source' || key === 'src') source = val;
    else if (key === 'volume-driver') driver = val;
    else if (key === 'volume-opt') {
      const e = val.indexOf('=');
      const k = e < 0 ? val : val.slice(0, e);
      if (k) options[k] = e < 0 ? '' : val.slice(e + 1);
    }
  }
  if (type === 'bind') {
    if (source !== undefined && source !== '') req.binds.push({ source: source.startsWith('/') ? source : abs(source), from, readOnly });
    return;
  }
  if (type !== 'volume') return;
  if (source) req.volumes.push({ name: source, from, readOnly });
  const host = localVolumeHostPath(driver, options);
  if (host !== undefined) req.binds.push({ source: host, from, readOnly: readOnly || localVolumeReadOnly(options) });
}

/**
 * One record of Go's encoding/csv (as the docker CLI reads `--mount`):
 * comma-separated, a field in double quotes may hold commas and newlines
 * and `""` for a quote; leading blank lines skipped; the record ends at the
 * first newline outside quotes. Undefined where Go's reader fails (a bare
 * quote, text after a closing quote, an unterminated quote).
 */
export function csvRecord(text: string): string[] | undefined {
  let s = text.replace(/\r\n/g, '\n');
  while (s.startsWith('\n')) s = s.slice(1);
  const fields: string[] = [];
  let i = 0;
  for (;;) {
    let field = '';
    if (s[i] === '"') {
      i++;
      for (;;) {
        if (i >= s.length) return undefined;
        if (s[i] === '"') {
          if (s[i + 1] === '"') {
            field += '"';
            i += 2;
            continue;
          }
          i++;
          break;
        }
        field += s[i++];
      }
      if (i < s.length && s[i] !== ',' && s[i] !== '\n') return undefined;
    } else {
      while (i < s.length && s[i] !== ',' && s[i] !== '\n') {
        if (s[i] === '"') return undefined;
        field += s[i++];
      }
    }
    fields.push(field);
    if (i >= s.length || s[i] === '\n') return fields;
    i++; // the comma
  }
}

/** `docker volume create`'s flags (docker/cli cli/command/volume/create.go, 20.10 and 28). */
const VOLUME_CREATE_FLAGS = makeTable({
  driver: { short: 'd', takesValue: true },
  label: { takesValue: true },
  opt: { short: 'o', takesValue: true },
  name: { takesValue: true },
  availability: { takesValue: true },
  group: { takesValue: true },
  'limit-bytes': { takesValue: true },
  'required-bytes': { takesValue: true },
  scope: { takesValue: true },
  sharing: { takesValue: true },
  secret: { takesValue: true },
  'topology-preferred': { takesValue: true },
  'topology-required': { takesValue: true },
  type: { takesValue: true },
  help: { takesValue: false },
});

/**
 * `docker volume create [OPTIONS] [VOLUME]`: flags anywhere before `--`
 * (cobra's interspersed parsing); `-o key=value` options, the last of a key
 * winning; `-d` the driver. `argsFrom` is where create's own words begin.
 */
export function volumeCreateRequestOf(argv: readonly string[], argsFrom: number): { request: SecurityRequest; name?: string; help: boolean } {
  const flags: FlagOccurrence[] = [];
  const positionals: string[] = [];
  let i = argsFrom;
  while (i < argv.length) {
    const s = scanFlags(argv, i, VOLUME_CREATE_FLAGS);
    flags.push(...s.flags);
    if (s.error) {
      // docker refuses the line; judge what was read (an unknown flag is taken as boolean).
      break;
    }
    if (s.terminator !== undefined) {
      positionals.push(...argv.slice(s.terminator + 1));
      break;
    }
    if (s.positional >= argv.length) break;
    positionals.push(argv[s.positional]!);
    i = s.positional + 1;
  }
  let driver: string | undefined;
  const options: Record<string, string> = {};
  const spelled: string[] = [];
  for (const f of flags) {
    if (f.value === undefined) continue;
    if (f.name === 'driver') driver = f.value;
    if (f.name === 'opt') {
      const eq = f.value.indexOf('=');
      options[eq < 0 ? f.value : f.value.slice(0, eq)] = eq < 0 ? '' : f.value.slice(eq + 1);
      spelled.push(`${f.spelled} ${f.value}`);
    }
  }
  const name = flags.filter((f) => f.name === 'name' && f.value !== undefined).at(-1)?.value ?? positionals[0];
  const from = `docker volume create ${spelled.join(' ')}`.trim();
  return { request: volumeCreateRequest(driver, options, from), ...(name !== undefined ? { name } : {}), help: flags.some((f) => f.name === 'help') };
}
