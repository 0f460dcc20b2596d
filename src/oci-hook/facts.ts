/**
 * What the wrapper can know about a container at `create`, translated from
 * the runtime call and the config into the policy's terms. Never asks Docker
 * (dockerd may be waiting on this very call).
 */
import { basename, dirname } from 'node:path';
import { envMap } from '../oci/env.ts';
import type { OciConfig } from '../oci/spec.ts';
import type { ContainerFacts } from '../policy/runtime-rules.ts';
import type { RuncCall } from './args.ts';

/** dockerd adds this prestart hook for `--gpus` (its path is wherever the hook is on dockerd's PATH). */
export const NVIDIA_HOOK = 'nvidia-container-runtime-hook';

const TASK_DIR = /\/io\.containerd\.runtime\.v[12]\.(?:task|linux)\/([^/]+)\/[^/]+\/?$/;

/**
 * containerd namespace: from the bundle path (…/io.containerd.runtime.v2.task/<ns>/<id>),
 * else from `--root` when it is a shim's per-namespace root
 * (/run/containerd/runc/<ns>, dockerd's <exec-root>/runtime-runc/<ns>).
 */
export function namespaceOf(call: Pick<RuncCall, 'bundle' | 'globals'>): string | undefined {
  const fromBundle = call.bundle ? TASK_DIR.exec(call.bundle)?.[1] : undefined;
  if (fromBundle) return fromBundle;
  const root = call.globals.root?.replace(/\/+$/, '');
  if (!root) return undefined;
  const parent = basename(dirname(root));
  return parent === 'runc' || parent.startsWith('runtime-') ? basename(root) : undefined;
}

export function hasNvidiaHook(config: OciConfig): boolean {
  const hooks = config.hooks;
  const all = [...(hooks?.prestart ?? []), ...(hooks?.createRuntime ?? []), ...(hooks?.createContainer ?? [])];
  return all.some((h) => typeof h?.path === 'string' && basename(h.path) === NVIDIA_HOOK);
}

export function containerFacts(call: RuncCall, config: OciConfig): ContainerFacts {
  const annotations: Record<string, string> = {};
  for (const [k, v] of Object.entries(config.annotations ?? {})) if (typeof v === 'string') annotations[k] = v;
  return { namespace: namespaceOf(call), annotations, env: envMap(config), nvidiaHook: hasNvidiaHook(config) };
}
