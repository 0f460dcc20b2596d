/**
 * GPU device hygiene: a container without a GPU grant (the same decision as
 * the GPU env hygiene, policy/runtime-rules.ts gpuEnvDecision) gets no
 * NVIDIA device node (`/dev/nvidia*`, char major 195, or a major the host
 * registers as nvidia-uvm, nvidia-caps …) and no device cgroup rule that
 * allows one, whoever created it: `--device /dev/nvidia0` and
 * `--device-cgroup-rule 'c 195:* rwm'` then reach nothing. With a grant,
 * the NVIDIA hook provides the devices itself and nothing is touched.
 */
import type { GpuEnvDecision } from '../../policy/runtime-rules.ts';
import type { Change, Modifier } from './index.ts';

/** The NVIDIA GPU's character major (the driver's fixed one); others (uvm, caps, modeset) are dynamic. */
export const NVIDIA_MAJOR = 195;

/** Char majors named nvidia* in /proc/devices ("Character devices:" section), with 195 always. */
export function nvidiaMajors(procDevices: string | undefined): Set<number> {
  const out = new Set([NVIDIA_MAJOR]);
  let inChar = false;
  for (const line of (procDevices ?? '').split('\n')) {
    if (/^Character devices:/.test(line)) inChar = true;
    else if (/^Block devices:/.test(line)) inChar = false;
    else if (inChar) {
      const m = /^\s*(\d+)\s+(nvidia\S*)/.exec(line);
      if (m) out.add(Number(m[1]));
    }
  }
  return out;
}

const isCharType = (t: string | undefined) => t === 'c' || t === 'u';

export function gpuDevicesModifier(decision: GpuEnvDecision, majors: () => ReadonlySet<number>): Modifier {
  const name = 'gpu-devices';
  return {
    name,
    modify(spec) {
      if (decision.action !== 'void') return [];
      const linux = spec.config.linux;
      if (!linux) return [];
      const changes: Change[] = [];
      let known: ReadonlySet<number> | undefined;
      const nvidia = { has: (major: number) => (known ??= majors()).has(major) };
      if (linux.devices?.length) {
        const kept = [];
        for (const d of linux.devices) {
          const byPath = /^\/dev\/nvidia/.test(d.path);
          if (byPath || (isCharType(d.type) && d.major !== undefined && nvidia.has(d.major))) {
            changes.push({ modifier: name, what: `removed device ${d.path} (${d.type} ${d.major ?? '?'}:${d.minor ?? '?'}): ${decision.reason}` });
          } else kept.push(d);
        }
        linux.devices = kept;
      }
      const rules = linux.resources?.devices;
      if (rules?.length) {
        linux.resources!.devices = rules.filter((r) => {
          const opens = r.allow && (r.type === undefined || r.type === 'a' || isCharType(r.type)) && r.major !== undefined && r.major >= 0 && nvidia.has(r.major);
          if (opens) changes.push({ modifier: name, what: `removed device cgroup rule ${r.type ?? 'a'} ${r.major}:${r.minor === undefined || r.minor < 0 ? '*' : r.minor} ${r.access ?? ''}`.trimEnd() + `: ${decision.reason}` });
          return !opens;
        });
      }
      return changes;
    },
  };
}
