/**
 * Modifiers: one concern each (rule env, rule mounts, GPU env hygiene,
 * aggregate cgroup limits), composed into a list that is itself a modifier.
 * Each works on the in-memory spec (or, for aggregates, on the host's
 * cgroups) and reports what it changed; the first error aborts the list, and
 * the caller then flushes nothing.
 */
import type { Spec } from '../../oci/spec.ts';

export interface Change {
  modifier: string;
  /** What happened, one short phrase: "env NVIDIA_VISIBLE_DEVICES=void", "mount /srv/datasets ro". */
  what: string;
  /** A warning the event log should carry (e.g. `ro` where `rro` is unavailable, a skipped mount). */
  warning?: boolean;
}

export interface Modifier {
  readonly name: string;
  modify(spec: Spec): Change[];
}

export function modifierList(modifiers: readonly Modifier[]): Modifier {
  return {
    name: modifiers.map((m) => m.name).join('+'),
    modify(spec) {
      return modifiers.flatMap((m) => m.modify(spec));
    },
  };
}
