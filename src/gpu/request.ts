/**
 * Every way of asking docker for a GPU, normalised to one request. Pure: the
 * raw flag values from the argv scanner (and the caller's environment, for a
 * bare `-e NVIDIA_VISIBLE_DEVICES`) in, a request or a one-line error out.
 *
 * The `--gpus` grammar is docker/cli's (opts/gpus.go): the value is one CSV
 * record; a field without `=` is a count (`all` = every GPU); keys are
 * `count`, `device`, `capabilities`, `driver`, `options`, each at most once;
 * with no count and no device the count is 1. So `device=0,1` unquoted is
 * `device=0` plus a count of 1, which dockerd refuses ("cannot set both Count
 * and DeviceIDs"); the list must be quoted: `--gpus '"device=0,1"'`.
 */
import { GpuguardError } from '../errors.ts';

export type GpuRequestKind = 'none' | 'all' | 'count' | 'devices';

export interface GpuRequest {
  kind: GpuRequestKind;
  /** kind count: how many devices. */
  count?: number;
  /** kind devices: ids as the user wrote them (index, slot, `1:2`, UUID). */
  devices?: string[];
  /** `--gpus capabilities=…`, kept on the rewritten flag (docker adds `gpu`). */
  capabilities?: string[];
  /** Each flag that made this request, for messages and explain: `--gpus 2`. */
  sources: string[];
}

/** The raw values the argv scanner hands over, in argv order. */
export interface GpuFlags {
  /** Every `--gpus` value. */
  gpus?: string[];
  /** Environment entries in docker's order (`--env-file` lines first, then `-e`/`--env`), `K=V` or a bare `K`. */
  env?: string[];
  /** `--runtime` value, if any. */
  runtime?: string;
  /** Every `--device` value. */
  devices?: string[];
}

/** A malformed GPU request: docker's own exit code for bad flags, 125. */
export class GpuRequestError extends GpuguardError {
  override name = 'GpuRequestError';
  constructor(message: string) {
    super(message, 125);
  }
}

const NONE: GpuRequest = { kind: 'none', sources: [] };

/** Read one `--gpus` value the way docker/cli does. */
export function parseGpusFlag(value: string): GpuRequest {
  const source = `--gpus ${value}`;
  const bad = (why: string) => new GpuRequestError(`invalid ${source}: ${why}`);
  let fields: string[];
  try {
    fields = parseCsvRecord(value);
  } catch (err) {
    throw bad((err as Error).message);
  }
  let count: number | undefined;
  let devices: string[] | undefined;
  let capabilities: string[] | undefined;
  const seen = new Set<string>();
  for (const [index, field] of fields.entries()) {
    const eq = field.indexOf('=');
    if (eq < 0 && devices) {
      const rest = fields.slice(index).filter((f) => !f.includes('='));
      throw bad(`docker reads "${field}" after device= as a count, not a device; quote the list: --gpus '"device=${[...devices, ...rest].join(',')}"'`);
    }
    const key = eq < 0 ? field : field.slice(0, eq);
    const val = eq < 0 ? '' : field.slice(eq + 1);
    if (seen.has(key) || (eq < 0 && seen.has('count'))) throw bad(`"${eq < 0 ? 'count' : key}" given twice`);
    seen.add(key);
    if (eq < 0) {
      seen.add('count');
      count = parseCount(field, bad);
      continue;
    }
    switch (key) {
      case 'count':
        count = parseCount(val, bad);
        break;
      case 'device':
        devices = val.split(',').map((d) => d.trim());
        if (devices.some((d) => !d)) throw bad('empty device id');
        break;
      case 'capabilities':
        capabilities = val.split(',').map((c) => c.trim()).filter(Boolean);
        break;
      case 'driver':
        if (val !== 'nvidia' && val !== '') throw bad(`driver "${val}" is not a GPU driver gpuguard allocates for (only nvidia)`);
        break;
      case 'options':
        break;
      default:
        throw bad(`unknown key "${key}" (expected count, device, capabilities, driver or options)`);
    }
  }
  if (devices && count !== undefined) {
    throw bad(`both a count and device= given; docker refuses that. Quote a list of devices: --gpus '"device=${devices.join(',')}"'`);
  }
  const base = { sources: [source], ...(capabilities ? { capabilities } : {}) };
  if (devices) return { kind: 'devices', devices: unique(devices), ...base };
  if (count === undefined) count = 1;
  if (count === 0) return { kind: 'none', sources: [source] };
  if (count < 0) return { kind: 'all', ...base };
  return { kind: 'count', count, ...base };
}

function parseCount(s: string, bad: (why: string) => Error): number {
  if (s === 'all') return -1;
  if (!/^\d+$/.test(s)) return (() => { throw bad(`count must be a whole number or "all", got "${s}"`); })();
  return Number(s);
}

/**
 * One CSV record as Go's encoding/csv reads it: fields split on commas, a
 * field that starts with `"` is quoted (`""` is a literal quote).
 */
export function parseCsvRecord(input: string): string[] {
  const fields: string[] = [];
  let i = 0;
  for (;;) {
    if (input[i] === '"') {
      let field = '';
      i++;
      for (;;) {
        if (i >= input.length) throw new Error('unterminated quote');
        if (input[i] === '"') {
          if (input[i + 1] === '"') {
            field += '"';
            i += 2;
            continue;
          }
          i++;
          break;
        }
        field += input[i++];
      }
      if (i < input.length && input[i] !== ',') throw new Error(`unexpected "${input[i]}" after a quoted field`);
      fields.push(field);
    } else {
      const end = input.indexOf(',', i);
      const field = end < 0 ? input.slice(i) : input.slice(i, end);
      if (field.includes('"')) throw new Error('bare " in a field (quote the whole field)');
      fields.push(field);
      i = end < 0 ? input.length : end;
    }
    if (i >= input.length) break;
    i++; // the comma
  }
  return fields;
}

/**
 * NVIDIA_VISIBLE_DEVICES as the NVIDIA container runtime reads it: `all`,
 * `none`/`void`/empty (no GPU), or a comma list of indices, `gpu:mig`
 * indices and UUIDs.
 */
export function parseVisibleDevices(value: string, source: string): GpuRequest {
  const v = value.trim();
  if (v === '' || v === 'none' || v === 'void') return { kind: 'none', sources: [source] };
  if (v === 'all') return { kind: 'all', sources: [source] };
  const ids = v.split(',').map((d) => d.trim());
  if (ids.some((d) => !d)) throw new GpuRequestError(`invalid ${source}: empty device id`);
  return { kind: 'devices', devices: unique(ids), sources: [source] };
}

const CDI_GPU = /^nvidia\.com\/gpu=(.+)$/;
const DEV_NODE = /^\/dev\/nvidia(\d+)(?::.*)?$/;

/** `--device nvidia.com/gpu=0|0:1|all|<uuid>` (CDI) and `/dev/nvidiaN` device nodes; undefined for any other device. */
export function parseDeviceFlag(value: string): GpuRequest | undefined {
  const source = `--device ${value}`;
  const cdi = CDI_GPU.exec(value);
  if (cdi) {
    const name = cdi[1]!;
    if (name === 'all') return { kind: 'all', sources: [source] };
    return { kind: 'devices', devices: [name], sources: [source] };
  }
  const node = DEV_NODE.exec(value);
  if (node) return { kind: 'devices', devices: [node[1]!], sources: [source] };
  return undefined;
}

/** The last value of an env variable in docker's order; a bare `K` takes the caller's value (absent: not set). */
export function envValue(entries: readonly string[], key: string, callerEnv: NodeJS.ProcessEnv): { value: string; entry: string } | undefined {
  let found: { value: string; entry: string } | undefined;
  for (const entry of entries) {
    const eq = entry.indexOf('=');
    const k = eq < 0 ? entry : entry.slice(0, eq);
    if (k !== key) continue;
    if (eq >= 0) found = { value: entry.slice(eq + 1), entry };
    else found = callerEnv[key] !== undefined ? { value: callerEnv[key]!, entry } : undefined;
  }
  return found;
}

/** A runtime name that is NVIDIA's (`nvidia`, `nvidia-container-runtime`, …). */
export function isNvidiaRuntime(runtime: string | undefined): boolean {
  return !!runtime && /(^|\/|-)nvidia/.test(runtime);
}

/**
 * All GPU flags of one `docker run`/`create`, normalised to one request.
 * Two different requests in one command (`--gpus 1` and
 * `-e NVIDIA_VISIBLE_DEVICES=0`) are an error: which one would win depends on
 * the runtime, so the user must say which they mean.
 */
export function normaliseGpuRequest(flags: GpuFlags, callerEnv: NodeJS.ProcessEnv = {}): GpuRequest {
  const requests: GpuRequest[] = [];
  for (const v of flags.gpus ?? []) requests.push(parseGpusFlag(v));
  for (const d of flags.devices ?? []) {
    const r = parseDeviceFlag(d);
    if (r) requests.push(r);
  }
  const env = envValue(flags.env ?? [], 'NVIDIA_VISIBLE_DEVICES', callerEnv);
  const nvidiaRuntime = isNvidiaRuntime(flags.runtime);
  if (env) {
    const source = `-e ${env.entry}${env.entry.includes('=') ? '' : ` (=${env.value})`}${nvidiaRuntime ? ` --runtime ${flags.runtime}` : ''}`;
    requests.push(parseVisibleDevices(env.value, source));
  } else if (nvidiaRuntime && !requests.length) {
    // The NVIDIA runtime exposes whatever the image's NVIDIA_VISIBLE_DEVICES says; CUDA images say "all".
    requests.push({ kind: 'all', sources: [`--runtime ${flags.runtime}`] });
  }
  const real = requests.filter((r) => r.kind !== 'none');
  if (!real.length) return requests.length ? { ...NONE, sources: requests.flatMap((r) => r.sources) } : NONE;
  if (real.length > 1) {
    throw new GpuRequestError(`several GPU requests in one command (${real.map((r) => r.sources.join(' ')).join('; ')}); give exactly one, e.g. --gpus 1`);
  }
  return real[0]!;
}

/** The request in words, for messages: "1 GPU", "all GPUs", "devices 0.1,0.2". */
export function describeRequest(r: GpuRequest): string {
  switch (r.kind) {
    case 'none':
      return 'no GPU';
    case 'all':
      return 'all GPUs';
    case 'count':
      return `${r.count} GPU${r.count === 1 ? '' : 's'}`;
    case 'devices':
      return `device${r.devices!.length === 1 ? '' : 's'} ${r.devices!.join(',')}`;
  }
}

function unique<T>(xs: T[]): T[] {
  return [...new Set(xs)];
}
