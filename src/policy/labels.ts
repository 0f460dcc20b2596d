/** The labels gpuguard puts on a container, under the policy's prefix. */
import type { EffectiveUser } from './effective.ts';

/** How a container was asked for: the docker CLI shim, compose, Dev Containers, or the Engine API face. */
export type Interface = 'docker' | 'compose' | 'devcontainer' | 'api';

/** Labels the Dev Containers CLI and compose put on what they create. */
export const DEVCONTAINER_LABELS = ['devcontainer.local_folder', 'devcontainer.config_file'];
export const COMPOSE_PROJECT_LABEL = 'com.docker.compose.project';

/**
 * The interface a create came through, from the labels its client set
 * (Dev Containers over compose: it drives compose), else the face's own.
 */
export function interfaceOfLabels(keys: readonly string[], face: Interface): Interface {
  if (keys.some((k) => DEVCONTAINER_LABELS.includes(k))) return 'devcontainer';
  if (face === 'api' && keys.includes(COMPOSE_PROJECT_LABEL)) return 'compose';
  return face;
}

export const labelKeys = (prefix: string) => ({
  managed: `${prefix}.managed`,
  user: `${prefix}.user`,
  uid: `${prefix}.uid`,
  group: `${prefix}.group`,
  interface: `${prefix}.interface`,
  createdAt: `${prefix}.created_at`,
  gpuAllocated: `${prefix}.gpu.allocated`,
  gpuUuid: `${prefix}.gpu.uuid`,
  gpuAllocatedAt: `${prefix}.gpu.allocated_at`,
  gpuPriority: `${prefix}.gpu.priority`,
});

/** A label the user may not set: anything under the prefix. */
export function isReservedLabel(prefix: string, key: string): boolean {
  return key === prefix || key.startsWith(`${prefix}.`);
}

/** Owner labels, in a fixed order so rewritten argv are stable. */
export function ownerLabels(prefix: string, who: EffectiveUser, iface: Interface, now: Date): [string, string][] {
  const k = labelKeys(prefix);
  return [
    [k.managed, 'true'],
    [k.user, who.user],
    [k.uid, String(who.uid)],
    [k.group, who.group],
    [k.interface, iface],
    [k.createdAt, isoSeconds(now)],
  ];
}

/** ISO-8601 UTC to the second: 2026-11-23T18:04:05Z. */
export function isoSeconds(d: Date): string {
  return d.toISOString().replace(/\.\d{3}Z$/, 'Z');
}
