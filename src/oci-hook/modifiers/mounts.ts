/**
 * Rule mounts: each planned mount (already expanded and decided by the
 * policy) becomes a bind mount, read-only ones recursively so (`rro`) where
 * the runtime and kernel support it, since plain `ro` leaves submounts (an NFS
 * share inside the dataset dir) writable. A container that already mounts
 * something at that destination gets its own mount made read-only instead of
 * a duplicate; a container that binds a protected source (or a directory in
 * it) anywhere gets that bind read-only too.
 */
import { PolicyError } from '../../errors.ts';
import type { OciMount } from '../../oci/spec.ts';
import { normaliseDestination, type PlannedMount, type SkippedMount } from '../../policy/runtime-rules.ts';
import type { Change, Modifier } from './index.ts';

export interface MountHost {
  /** Whether a mount source exists on the host. */
  exists(path: string): boolean;
  /** The path with symlinks resolved (or as given when it cannot be). */
  realpath(path: string): string;
  /** Whether `rro` (recursive read-only) works with this runtime and kernel. */
  rro: boolean;
}

export function readOnlyOptions(rro: boolean): string[] {
  return rro ? ['rbind', 'ro', 'rro', 'nosuid', 'nodev'] : ['rbind', 'ro', 'nosuid', 'nodev'];
}

/** Make a mount read-only in place (recursively where possible); returns whether it changed. */
export function makeReadOnly(m: OciMount, rro: boolean): boolean {
  const before = m.options ?? [];
  const next = before.filter((o) => o !== 'rw' && o !== 'rrw');
  if (!next.includes('ro')) next.push('ro');
  if (rro && !next.includes('rro')) next.push('rro');
  if (next.length === before.length && next.every((o, i) => o === before[i])) return false;
  m.options = next;
  return true;
}

function isUnder(path: string, dir: string): boolean {
  return path === dir || path.startsWith(dir === '/' ? '/' : `${dir}/`);
}

function isBind(m: OciMount): boolean {
  return m.type === 'bind' || (m.options ?? []).some((o) => o === 'bind' || o === 'rbind');
}

export function mountsModifier(planned: readonly PlannedMount[], skipped: readonly SkippedMount[], host: MountHost): Modifier {
  const name = 'mounts';
  return {
    name,
    modify(spec) {
      const changes: Change[] = skipped.map((s) => ({ modifier: name, what: `skipped ${s.source} (rule ${s.rule}): ${s.reason}`, warning: true }));
      const hadMounts = spec.config.mounts !== undefined;
      const mounts = (spec.config.mounts ??= []);
      const protectedSources: string[] = [];
      for (const p of planned) {
        if (!host.exists(p.source)) {
          if (!p.ifExists) throw new PolicyError(`runtime rule ${p.rule}: mount source ${p.source} does not exist (ifExists: false)`);
          changes.push({ modifier: name, what: `skipped ${p.source} (rule ${p.rule}): source does not exist`, warning: true });
          continue;
        }
        if (p.readOnly) protectedSources.push(host.realpath(p.source));
        const dest = normaliseDestination(p.destination);
        const existing = mounts.filter((m) => normaliseDestination(m.destination) === dest);
        if (existing.length) {
          if (!p.readOnly) continue;
          for (const m of existing) {
            if (makeReadOnly(m, host.rro)) changes.push({ modifier: name, what: `made the container's own mount at ${dest} read-only (rule ${p.rule})` });
          }
          continue;
        }
        const mount: OciMount = { destination: dest, type: 'bind', source: p.source, options: p.readOnly ? readOnlyOptions(host.rro) : ['rbind', 'nosuid', 'nodev'] };
        // Before any mount inside the destination, so those stay visible on top of it.
        const inside = mounts.findIndex((m) => isUnder(normaliseDestination(m.destination), dest));
        if (inside < 0) mounts.push(mount);
        else mounts.splice(inside, 0, mount);
        changes.push({ modifier: name, what: `mount ${p.source} at ${dest} ${p.readOnly ? (host.rro ? 'rro' : 'ro') : 'rw'} (rule ${p.rule})` });
        if (p.readOnly && !host.rro) {
          changes.push({ modifier: name, what: `${dest}: ro only, submounts stay writable (runtime or kernel lacks rro)`, warning: true });
        }
      }
      // A bind of a protected source (or of a directory inside it) elsewhere is read-only too.
      for (const m of mounts) {
        if (!m.source || !isBind(m)) continue;
        const src = host.realpath(m.source);
        if (!protectedSources.some((p) => isUnder(src, p))) continue;
        if (makeReadOnly(m, host.rro)) changes.push({ modifier: name, what: `made the bind of ${m.source} at ${m.destination} read-only (protected source)` });
      }
      if (!hadMounts && !mounts.length) delete spec.config.mounts;
      return changes;
    },
  };
}
