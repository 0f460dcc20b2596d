/**
 * Reading the policy file: YAML parsed with `yaml` (keeping source positions),
 * validated with the zod schema, every failure reported as one line
 * `FILE:LINE:COL: key.path: what was expected`.
 */
import { readFileSync } from 'node:fs';
import { isMap, isSeq, LineCounter, parseDocument, type Node } from 'yaml';
import type { z } from 'zod';
import { PolicyError } from '../errors.ts';
import { PolicySchema, type Policy } from './schema.ts';

export const DEFAULT_POLICY_PATH = '/etc/gpuguard/policy.yaml';

export interface LoadedPolicy {
  policy: Policy;
  /** The file it came from, or undefined for the built-in defaults (no file on the host). */
  path: string | undefined;
}

/** Where the policy is: GPUGUARD_POLICY, else /etc/gpuguard/policy.yaml. */
export function policyPath(env: NodeJS.ProcessEnv = process.env): string {
  return env.GPUGUARD_POLICY || DEFAULT_POLICY_PATH;
}

/**
 * Load the host's policy. A missing default file means the built-in defaults
 * (a host with no policy still works); a missing file named by
 * GPUGUARD_POLICY is an error, since someone asked for it.
 */
export function loadPolicy(env: NodeJS.ProcessEnv = process.env): LoadedPolicy {
  const path = policyPath(env);
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' && !env.GPUGUARD_POLICY) return { policy: builtinPolicy(), path: undefined };
    throw new PolicyError(`${path}: cannot read the policy file (${code ?? String(err)}); create it or point GPUGUARD_POLICY at one`, { cause: err });
  }
  return { policy: parsePolicy(text, path), path };
}

export function builtinPolicy(): Policy {
  return PolicySchema.parse({ version: 1 });
}

/** Parse and validate policy text; `file` is only used in messages. */
export function parsePolicy(text: string, file: string): Policy {
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false, uniqueKeys: true });
  const at = (offset: number) => {
    const { line, col } = lines.linePos(offset);
    return `${file}:${line}:${col}`;
  };
  const yamlError = doc.errors[0];
  if (yamlError) {
    const reason = yamlError.message.split('\n')[0]!.replace(/ at line \d+, column \d+:?$/, '');
    throw new PolicyError(`${at(yamlError.pos[0])}: invalid YAML: ${reason}`);
  }
  const data = doc.toJS() ?? {};
  if (typeof data !== 'object' || Array.isArray(data)) {
    throw new PolicyError(`${file}:1:1: expected a mapping of policy keys (version, groups, …), got ${describe(data)}`);
  }
  const result = PolicySchema.safeParse(data);
  if (result.success) return result.data;
  const issue = result.error.issues[0]!;
  const { path, message } = explainIssue(issue, data);
  const node = nodeAt(doc.contents, path, issue.code === 'unrecognized_keys');
  const where = node?.range ? at(node.range[0]) : `${file}:1:1`;
  const keyPath = path.length ? `${path.join('.')}: ` : '';
  throw new PolicyError(`${where}: ${keyPath}${message}`);
}

function explainIssue(issue: z.core.$ZodIssue, data: unknown): { path: PropertyKey[]; message: string } {
  const path = [...issue.path];
  switch (issue.code) {
    case 'unrecognized_keys': {
      const key = issue.keys[0]!;
      return { path: [...path, key], message: `unknown key "${key}" (see \`gpuguard policy schema\` for the keys)` };
    }
    case 'invalid_type': {
      const got = valueAt(data, path);
      const expected = EXPECTED_NAMES[issue.expected] ?? issue.expected;
      if (got === undefined) return { path, message: `missing; expected ${expected}` };
      return { path, message: `expected ${expected}, got ${describe(got)}` };
    }
    case 'invalid_value':
      if (valueAt(data, path) === undefined) return { path, message: `missing; expected ${issue.values.map((v) => JSON.stringify(v)).join(' or ')}` };
      return {
        path,
        message: `expected one of ${issue.values.map((v) => JSON.stringify(v)).join(', ')}, got ${describe(valueAt(data, path))}`,
      };
    case 'invalid_union':
    case 'invalid_format':
    case 'too_small':
    case 'too_big':
    case 'custom':
    default: {
      const got = valueAt(data, path);
      const suffix = got !== undefined && issue.code !== 'custom' ? `, got ${describe(got)}` : '';
      return { path, message: `${issue.message}${suffix}` };
    }
  }
}

const EXPECTED_NAMES: Record<string, string> = { int: 'a whole number', object: 'a mapping', array: 'a list' };

function valueAt(data: unknown, path: PropertyKey[]): unknown {
  let cur: unknown = data;
  for (const key of path) {
    if (cur === null || typeof cur !== 'object') return undefined;
    cur = (cur as Record<PropertyKey, unknown>)[key];
  }
  return cur;
}

/** The YAML node at a key path; for a key itself (unknown keys) the key node. */
function nodeAt(root: unknown, path: PropertyKey[], wantKey: boolean): Node | undefined {
  let cur = root as Node | undefined;
  for (let i = 0; i < path.length; i++) {
    const key = path[i];
    if (isMap(cur)) {
      const pair = cur.items.find((p) => (p.key as { value?: unknown } | null)?.value === key);
      if (!pair) return cur;
      if (wantKey && i === path.length - 1) return pair.key as Node;
      cur = (pair.value as Node | null) ?? (pair.key as Node);
    } else if (isSeq(cur) && typeof key === 'number') {
      const item = cur.items[key] as Node | undefined;
      if (!item) return cur;
      cur = item;
    } else {
      return cur;
    }
  }
  return cur;
}

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'a list';
  if (typeof value === 'object') return 'a mapping';
  if (typeof value === 'string') return JSON.stringify(value);
  return String(value);
}
