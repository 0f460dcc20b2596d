/**
 * The runtime wrapper (`gpuguard-runc`, or `runc` for Concourse): on `create`
 * and `run`, edit the bundle's config.json by the policy, then become the real
 * runtime with the same pid, argv, environment and descriptors. Every other
 * call (`start`, `state`, `kill`, `delete`, `exec`, `features`, `--version` …)
 * is handed over at once: no policy parse, no config.json, no Docker.
 */
import { GpuguardError, errorLine } from '../errors.ts';
import { isEdited, parseRuncArgs, type RuncCall } from './args.ts';
import { handOver } from './handover.ts';
import { findRealRuntime, policyRealPathForPassThrough } from './real-runtime.ts';

export async function main(args: string[]): Promise<number> {
  const env = process.env;
  let call: RuncCall | undefined;
  try {
    call = parseRuncArgs(args, process.cwd());
    if (isEdited(call)) {
      return await (await import('./create.ts')).create(call, args, env);
    }
    const real = findRealRuntime({ env, policyRealPath: env.GPUGUARD_REAL_RUNTIME ? undefined : await policyRealPathForPassThrough(env) });
    return await handOver(real, args, call, env);
  } catch (err) {
    (await import('./runc-log.ts')).reportRuntimeError(call?.globals, errorLine(err));
    if (!(err instanceof GpuguardError) && env.GPUGUARD_DEBUG) console.error(err);
    return err instanceof GpuguardError ? err.exitCode : 70;
  }
}
