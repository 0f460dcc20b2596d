/** Rule env: each variable a matching rule sets replaces the container's value. */
import { setEnv } from '../../oci/env.ts';
import type { Modifier } from './index.ts';

export function ruleEnvModifier(env: ReadonlyMap<string, { value: string; rule: string }>): Modifier {
  return {
    name: 'rule-env',
    modify(spec) {
      const changes = [];
      for (const [name, { value, rule }] of env) {
        if (setEnv(spec.config, name, value)) changes.push({ modifier: 'rule-env', what: `env ${name}=${value} (rule ${rule})` });
      }
      return changes;
    },
  };
}
