/** GPU env hygiene: the policy's decision (no grant → NVIDIA_VISIBLE_DEVICES=void) applied to the spec. */
import { setEnv } from '../../oci/env.ts';
import { GPU_ENV, type GpuEnvDecision } from '../../policy/runtime-rules.ts';
import type { Modifier } from './index.ts';

export function gpuEnvModifier(decision: GpuEnvDecision): Modifier {
  return {
    name: 'gpu-env',
    modify(spec) {
      if (decision.action !== 'void') return [];
      return setEnv(spec.config, GPU_ENV, 'void') ? [{ modifier: 'gpu-env', what: `env ${GPU_ENV}=void: ${decision.reason}` }] : [];
    },
  };
}
