/**
 * `docker start` of a container with GPUs: the shim asks here before handing
 * over (src/gpu/index.ts checkStart decides). This file only reads the
 * command line: `docker [global opts] start|container start [flags] C…`.
 */
import { errorLine, PolicyDenied } from '../errors.ts';
import { loadPolicyCached } from '../policy/cache.ts';
import { checkStart } from './index.ts';
import { envForSocket } from './plan.ts';

const VALUE_FLAGS = new Set(['--detach-keys', '--checkpoint', '--checkpoint-dir']);

/** Container refs of a `start` command, from the index after `start` (pure). */
export function startTargets(argv: readonly string[], from: number): string[] {
  const refs: string[] = [];
  let flags = true;
  for (let i = from; i < argv.length; i++) {
    const a = argv[i]!;
    if (flags && a === '--') {
      flags = false;
      continue;
    }
    if (flags && a.startsWith('-') && a !== '-') {
      if (VALUE_FLAGS.has(a)) i++;
      continue;
    }
    refs.push(a);
  }
  return refs;
}

/** Check the containers a `docker start` names; throws PolicyDenied (exit 125) when one may not start. */
export async function guardStart(argv: readonly string[], from: number, env: NodeJS.ProcessEnv, socket?: string): Promise<void> {
  const refs = startTargets(argv, from);
  if (!refs.length) return;
  try {
    const { policy } = await loadPolicyCached(env);
    await checkStart({ refs, policy, env: envForSocket(env, socket) });
  } catch (err) {
    // Only a decision refuses a start; a broken policy or an unreachable daemon must not block
    // every `docker start` (docker reports its own errors, run/create report the policy's).
    if (err instanceof PolicyDenied) throw err;
    process.stderr.write(`gpuguard: warning: GPU check before start skipped: ${errorLine(err)}\n`);
  }
}
