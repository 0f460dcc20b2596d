/**
 * Aggregate limits: when the container's cgroup parent is a user's parent by
 * the policy's template, that parent gets the user's aggregate limits before
 * the real runtime creates the container. Changes the host, not the spec.
 */
import type { AggregateDecision, CgroupDriver } from '../../policy/cgroup-aggregate.ts';
import { applyAggregate, type CgroupIo, type CgroupLayout } from '../cgroups.ts';
import type { Change, Modifier } from './index.ts';

export function aggregateModifier(
  decision: AggregateDecision | undefined,
  driver: CgroupDriver,
  layout: () => CgroupLayout,
  io?: CgroupIo,
): Modifier {
  return {
    name: 'aggregate',
    modify() {
      if (!decision) return [];
      const set = applyAggregate(decision, driver, layout(), io);
      const changes: Change[] = [{ modifier: 'aggregate', what: `cgroup ${decision.parent} (user ${decision.user}): ${set.join(' ')}` }];
      if (decision.note) changes.push({ modifier: 'aggregate', what: decision.note, warning: true });
      return changes;
    },
  };
}
