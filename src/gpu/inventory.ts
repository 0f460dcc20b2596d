/**
 * The host's GPU devices, from `nvidia-smi -L`: full GPUs and MIG devices
 * with their UUIDs. A GPU with MIG enabled offers only its MIG devices (its
 * slices); one without offers itself. Slot ids follow the seed: `<gpu>` for a
 * full GPU, `<gpu>.<mig device index>` for a slice (`1.2`).
 *
 * `parseInventory` is pure; `loadInventory` runs the binary named by
 * GPUGUARD_NVIDIA_SMI or the policy's `gpu.inventory`.
 */
import { execFile } from 'node:child_process';
import { statSync, readFileSync } from 'node:fs';
import { GpuguardError } from '../errors.ts';

export interface GpuDevice {
  /** `0` for a full GPU, `1.2` for MIG device 2 of GPU 1. */
  slot: string;
  uuid: string;
  kind: 'gpu' | 'mig';
  /** Index of the physical GPU (for a slice: its parent). */
  gpu: number;
  /** MIG device index within the GPU (slices only). */
  mig?: number;
  /** MIG profile (`1g.10gb`), or `full` for a whole GPU. */
  profile: string;
  /** The physical GPU's model name, e.g. `NVIDIA A100-SXM4-80GB`. */
  model: string;
  /** UUID of the physical GPU (itself for a full GPU). */
  gpuUuid: string;
  /** GPU-equivalents: a `1g` slice of an A100 is 1/7, a `3g` 3/7, a full GPU 1. */
  equivalents: number;
}

export interface Inventory {
  /** What can be handed out, in nvidia-smi order. */
  devices: GpuDevice[];
  /** Every physical GPU, MIG-enabled or not (parents of slices included). */
  gpus: { index: number; uuid: string; model: string; mig: boolean }[];
  /** Where it came from, for messages. */
  source: string;
  /** Set when no inventory could be read (no nvidia-smi, no GPU): why. */
  unavailable?: string;
}

export class InventoryError extends GpuguardError {
  override name = 'InventoryError';
}

const GPU_LINE = /^GPU (\d+): (.*?) \(UUID: (GPU-[0-9A-Za-z-]+)\)\s*$/;
// Driver ≥ 470: "  MIG 1g.10gb     Device  0: (UUID: MIG-<uuid>)"; older: "(UUID: MIG-GPU-<uuid>/7/0)".
const MIG_LINE = /^\s+MIG (\S+)\s+Device\s+(\d+): \(UUID: (MIG-[0-9A-Za-z/-]+)\)\s*$/;
// "3g.40gb", "1g.10gb+me", "1g.5gb" (A30), or a compute-instance profile "1c.3g.40gb".
const PROFILE = /^(?:(\d+)c\.)?(\d+)g\.\d+gb(?:\+\w+)?$/;

/**
 * Compute slices of a whole GPU of this model. Every MIG-capable NVIDIA GPU
 * has 7 except the A30 (4); an unknown model is taken as 7, the common case.
 */
export function computeSlices(model: string): number {
  return /\bA30\b/.test(model) ? 4 : 7;
}

/** GPU-equivalents of a MIG profile on a given model; undefined when the profile is not understood. */
export function profileEquivalents(profile: string, model: string): number | undefined {
  const m = PROFILE.exec(profile);
  if (!m) return undefined;
  const slices = Number(m[1] ?? m[2]);
  return slices / computeSlices(model);
}

/** Parse `nvidia-smi -L` output. `source` names it in errors, which also give the line. */
export function parseInventory(text: string, source = 'nvidia-smi -L'): Inventory {
  const gpus: Inventory['gpus'] = [];
  const slices = new Map<number, GpuDevice[]>();
  const lines = text.split('\n');
  lines.forEach((raw, i) => {
    const line = raw.replace(/\r$/, '');
    if (!line.trim()) return;
    const where = `${source}: line ${i + 1}`;
    const g = GPU_LINE.exec(line);
    if (g) {
      const index = Number(g[1]);
      if (gpus.some((x) => x.index === index)) throw new InventoryError(`${where}: GPU ${index} listed twice: "${line.trim()}"`);
      gpus.push({ index, model: g[2]!, uuid: g[3]!, mig: false });
      return;
    }
    const m = MIG_LINE.exec(line);
    if (m) {
      const parent = gpus.at(-1);
      if (!parent) throw new InventoryError(`${where}: MIG device before any GPU line: "${line.trim()}"`);
      const profile = m[1]!;
      const equivalents = profileEquivalents(profile, parent.model);
      if (equivalents === undefined) throw new InventoryError(`${where}: unknown MIG profile "${profile}" (expected e.g. 1g.10gb or 3g.40gb)`);
      const mig = Number(m[2]);
      parent.mig = true;
      const list = slices.get(parent.index) ?? [];
      if (list.some((d) => d.mig === mig)) throw new InventoryError(`${where}: MIG device ${mig} of GPU ${parent.index} listed twice`);
      list.push({ slot: `${parent.index}.${mig}`, uuid: m[3]!, kind: 'mig', gpu: parent.index, mig, profile, model: parent.model, gpuUuid: parent.uuid, equivalents });
      slices.set(parent.index, list);
      return;
    }
    throw new InventoryError(`${where}: not a GPU or MIG device line: "${line.trim()}"`);
  });
  const devices: GpuDevice[] = [];
  for (const g of gpus) {
    if (g.mig) devices.push(...slices.get(g.index)!);
    else devices.push({ slot: String(g.index), uuid: g.uuid, kind: 'gpu', gpu: g.index, profile: 'full', model: g.model, gpuUuid: g.uuid, equivalents: 1 });
  }
  const uuids = new Set<string>();
  for (const d of devices) {
    if (uuids.has(d.uuid)) throw new InventoryError(`${source}: UUID ${d.uuid} appears twice`);
    uuids.add(d.uuid);
  }
  return { devices, gpus, source };
}

/**
 * The inventory program: GPUGUARD_NVIDIA_SMI, else the policy's
 * `gpu.inventory` (a command on PATH or a path; a non-executable file is
 * read as saved `nvidia-smi -L` output).
 */
export function inventorySource(env: NodeJS.ProcessEnv, policyInventory = 'nvidia-smi'): string {
  return env.GPUGUARD_NVIDIA_SMI || policyInventory;
}

export function loadInventory(env: NodeJS.ProcessEnv, policyInventory?: string): Promise<Inventory> {
  const bin = inventorySource(env, policyInventory);
  const source = `${bin} -L`;
  if (bin.includes('/')) {
    try {
      const st = statSync(bin);
      if (st.isFile() && (st.mode & 0o111) === 0) return Promise.resolve(parseInventory(readFileSync(bin, 'utf8'), bin));
    } catch {
      return Promise.resolve({ devices: [], gpus: [], source, unavailable: `${bin} does not exist` });
    }
  }
  return runNvidiaSmi(bin, ['-L'], env).then((r) => ('unavailable' in r ? { devices: [], gpus: [], source, unavailable: r.unavailable } : parseInventory(r.stdout, source)));
}

/**
 * Run the inventory program with `args`. A host without it, or a driver
 * without a GPU ("No devices were found", exit 6), is `unavailable` (a
 * fact, not an error); any other failure is an InventoryError with its
 * first line of output.
 */
export function runNvidiaSmi(bin: string, args: string[], env: NodeJS.ProcessEnv): Promise<{ stdout: string } | { unavailable: string }> {
  const source = `${bin} ${args.join(' ')}`;
  return new Promise((resolve, reject) => {
    execFile(bin, args, { encoding: 'utf8', timeout: 30_000, env, maxBuffer: 16 * 1024 * 1024 }, (err, stdout, stderr) => {
      if (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if (code === 'ENOENT') return resolve({ unavailable: `${bin} not found (no NVIDIA driver on this host?)` });
        if (/No devices were found/i.test(stdout + stderr)) return resolve({ unavailable: 'nvidia-smi found no GPU' });
        return reject(new InventoryError(`${source} failed: ${(stderr || stdout).trim().split('\n')[0] || err.message}`, 1, { cause: err }));
      }
      resolve({ stdout });
    });
  });
}

/** Format GPU-equivalents as a fraction of sevenths where exact ("3/7"), else a decimal. */
export function formatEquivalents(eq: number): string {
  if (Number.isInteger(eq)) return String(eq);
  for (const den of [7, 2, 4]) {
    const num = eq * den;
    if (Math.abs(num - Math.round(num)) < 1e-9) {
      const whole = Math.floor(Math.round(num) / den);
      const rest = Math.round(num) - whole * den;
      return whole ? `${whole} ${rest}/${den}` : `${rest}/${den}`;
    }
  }
  return eq.toFixed(2);
}
