/**
 * The docker face: gpuguard installed as `docker`. Everything but
 * `run`/`create` (and `volume create`) on the local daemon is handed to the real CLI by execve —
 * same pid, argv, environment and descriptors — after reading nothing but
 * argv (no policy, no docker query). `run`/`create` are rewritten by the
 * pure translator in rewrite.ts and then handed over the same way.
 */
import { homedir } from 'node:os';
import { join } from 'node:path';
import { findRealDocker, findRealDockerFast } from '../docker/real.ts';
import { isGuarded } from '../ownership/commands.ts';
import { execve } from '../sys/exec.ts';
import { dockerRoute } from '../front/routes.ts';
import { createCommand, resolveCommand, scanGlobals, targetsLocalDaemon, type GlobalScan } from './globals.ts';

export async function main(args: string[]): Promise<number> {
  const env = process.env;
  const globals = scanGlobals(args);
  // The native front decides the same from argv and usually execs the real CLI itself (src/front).
  if (dockerRoute(args, globals) === 'pass') return passThrough(args, env);
  const cmd = createCommand(args, globals);
  if (globals.command === 'compose' && !globals.error) {
    const target = targetsLocalDaemon(globals, env, () => currentContext(globals, env));
    return (await import('./compose.ts')).composeFromDocker(args, globals, target, env);
  }
  if (!cmd) {
    let argv = args;
    const target = () => targetsLocalDaemon(globals, env, () => currentContext(globals, env));
    // stop/exec/rm/logs/… and ps: the ownership guard decides (src/ownership/guard.ts); it
    // refuses before anything happens, and rewrites only `docker ps`/`docker stats` lists.
    if (isGuarded(args, globals)) argv = await (await import('../ownership/guard.ts')).guardShimCommand(args, globals, target(), env);
    // `docker start`: a stopped container's GPU may have vanished or been taken (src/gpu decides).
    const verb = resolveCommand(argv, globals);
    if (verb?.verb === 'start' && (verb.group === undefined || verb.group === 'container')) {
      const t = target();
      if (t.local) await (await import('../gpu/start.ts')).guardStart(argv, verb.argsFrom, env, t.socket);
    }
    // `docker exec --privileged`: every capability for a process in the container (security.privileged decides).
    if (verb?.verb === 'exec' && (verb.group === undefined || verb.group === 'container') && argv.some((w) => w.startsWith('--privileged'))) {
      const request = (await import('./exec-flags.ts')).execSecurityRequest(argv.slice(verb.argsFrom));
      if (request) {
        const { judge, enforce } = await import('./standalone.ts');
        await enforce(await judge(request, target(), env), argv);
      }
    }
    return passThrough(argv, env);
  }
  const target = targetsLocalDaemon(globals, env, () => currentContext(globals, env));
  if (cmd.kind === 'volume-create') return (await import('./standalone.ts')).runVolumeCreate(args, globals, cmd.flagsFrom, target, env);
  return (await import('./create.ts')).runCreate(args, globals, cmd, target, env);
}

/** Become the real docker CLI with argv and environment untouched. */
export async function passThrough(args: string[], env: NodeJS.ProcessEnv): Promise<never> {
  return execve(await realDockerCli(env), [process.argv0, ...args], env);
}

/**
 * The real docker CLI without parsing the policy when PATH (or
 * GPUGUARD_REAL_DOCKER) answers; only with no other docker on PATH (a
 * dpkg-diverted install) does the policy's docker.realPath decide.
 */
export async function realDockerCli(env: NodeJS.ProcessEnv): Promise<string> {
  const fast = findRealDockerFast(env);
  if (fast !== undefined) return fast;
  const { loadPolicyCached } = await import('../policy/cache.ts');
  return findRealDocker(env, (await loadPolicyCached(env)).policy.docker.realPath);
}

/** The config file's currentContext (`docker context use`), read only when nothing else decides the daemon. */
export function currentContext(g: GlobalScan, env: NodeJS.ProcessEnv): string | undefined {
  const dir = g.config ?? env.DOCKER_CONFIG ?? join(homedir(), '.docker');
  try {
    // node:fs only here, when the config file decides: loading it starts a thread pool the pass-through would pay for.
    const { readFileSync } = process.getBuiltinModule('node:fs');
    const cfg = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8')) as { currentContext?: unknown };
    return typeof cfg.currentContext === 'string' ? cfg.currentContext : undefined;
  } catch {
    return undefined;
  }
}
