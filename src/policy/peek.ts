/**
 * The one policy value the docker shim needs before anything else when a
 * user acts on their own container: the label prefix. Read with a YAML
 * parser only (no zod, no schema: those cost the shim ~20 ms of CPU), so the common
 * case (stop/exec/logs of one's own container) decides without loading the
 * policy. Anything unusual returns undefined and the caller loads the policy
 * properly (load.ts), which validates and reports errors.
 */
import { readFileSync } from 'node:fs';

declare const Bun: { YAML?: { parse(text: string): unknown } } | undefined;

/** Must equal load.ts DEFAULT_POLICY_PATH and the schema's labelPrefix default (unit-tested). */
export const PEEK_DEFAULT_PATH = '/etc/gpuguard/policy.yaml';
export const PEEK_DEFAULT_PREFIX = 'ds01';
const PREFIX = /^[a-z0-9]+([.-][a-z0-9]+)*$/;

export async function peekLabelPrefix(env: NodeJS.ProcessEnv): Promise<string | undefined> {
  const path = env.GPUGUARD_POLICY || PEEK_DEFAULT_PATH;
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'ENOENT' && !env.GPUGUARD_POLICY ? PEEK_DEFAULT_PREFIX : undefined;
  }
  let data: unknown;
  try {
    // The compiled binary has Bun's native YAML parser (no module to load); Node has `yaml`.
    data = typeof Bun !== 'undefined' && Bun.YAML ? Bun.YAML.parse(text) : (await import('yaml')).parse(text);
  } catch {
    return undefined;
  }
  if (data === null || typeof data !== 'object' || Array.isArray(data)) return undefined;
  const prefix = (data as Record<string, unknown>).labelPrefix;
  if (prefix === undefined) return PEEK_DEFAULT_PREFIX;
  return typeof prefix === 'string' && PREFIX.test(prefix) ? prefix : undefined;
}
