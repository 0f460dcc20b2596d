/**
 * The docker face: gpuguard installed as `docker`. Everything but
 * `run`/`create` (and `volume create`) on the local daemon is handed to the real CLI by execve —
 * same pid, argv, environment and descriptors — after reading nothing but
 * argv (no policy, no docker query). `run`/`create` are rewritten by the
 * pure translator in rewrite.ts and then handed over the same way.
 */
import { join } from 'node:path';
import { findRealDocker, findRealDockerFast } from '../docker/real.ts';
import { isGuarded } from '../ownership/commands.ts';
import { dockerRoute } from '../front/routes.ts';
import { Declined, processCaller, type Caller } from './caller.ts';
import { createCommand, resolveCommand, scanGlobals, targetsLocalDaemon, type GlobalScan, type LocalTarget } from './globals.ts';

/**
 * `caller`: this process (the shim), or the front the decider answers
 * (src/decider), which declines through `caller.vet` what only a process
 * of the user's own may do.
 */
export async function main(args: string[], caller: Caller = processCaller()): Promise<number> {
  const env = caller.env;
  const globals = scanGlobals(args);
  // The native front decides the same from argv and usually execs the real CLI itself (src/front).
  if (dockerRoute(args, globals) === 'pass') return passThrough(args, caller);
  const cmd = createCommand(args, globals);
  // The daemon the command goes to, worked out once (the config file may decide) and shown to the caller.
  let local: LocalTarget | undefined;
  const target = (): LocalTarget => {
    if (local) return local;
    local = targetsLocalDaemon(globals, env, () => currentContext(globals, env, caller));
    caller.vetTarget?.(local);
    return local;
  };
  if (globals.command === 'compose' && !globals.error) {
    caller.vet?.('compose');
    return (await import('./compose.ts')).composeFromDocker(args, globals, target(), env);
  }
  if (!cmd) {
    let argv = args;
    // The guard below rewrites only ps/stats lists: the verb is the same before and after it.
    const verb = resolveCommand(args, globals);
    const container = verb !== undefined && (verb.group === undefined || verb.group === 'container');
    const starts = container && verb.verb === 'start';
    const execPrivileged = container && verb.verb === 'exec' && args.some((w) => w.startsWith('--privileged'));
    if (starts) caller.vet?.('start');
    if (execPrivileged) caller.vet?.('exec-privileged');
    // stop/exec/rm/logs/… and ps: the ownership guard decides (src/ownership/guard.ts); it
    // refuses before anything happens, and rewrites only `docker ps`/`docker stats` lists.
    if (isGuarded(args, globals)) argv = await (await import('../ownership/guard.ts')).guardShimCommand(args, globals, target(), caller);
    // `docker start`: a stopped container's GPU may have vanished or been taken (src/gpu decides).
    if (starts) {
      const t = target();
      if (t.local) await (await import('../gpu/start.ts')).guardStart(argv, verb.argsFrom, env, t.socket);
    }
    // `docker exec --privileged`: every capability for a process in the container (security.privileged decides).
    if (execPrivileged) {
      const request = (await import('./exec-flags.ts')).execSecurityRequest(argv.slice(verb.argsFrom));
      if (request) {
        const { judge, enforce } = await import('./standalone.ts');
        await enforce(await judge(request, target(), env), argv);
      }
    }
    return passThrough(argv, caller);
  }
  if (cmd.kind === 'volume-create') {
    caller.vet?.('volume-create');
    return (await import('./standalone.ts')).runVolumeCreate(args, globals, cmd.flagsFrom, target(), env);
  }
  return (await import('./create.ts')).runCreate(args, globals, cmd, target(), caller);
}

/** Become the real docker CLI with argv and environment untouched. */
export async function passThrough(args: string[], caller: Caller): Promise<never> {
  return caller.handover(await realDockerCli(caller.env), args);
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
export function currentContext(g: GlobalScan, env: NodeJS.ProcessEnv, caller: Caller = processCaller()): string | undefined {
  const dir = g.config ?? env.DOCKER_CONFIG ?? join(caller.home(), '.docker');
  try {
    const cfg = JSON.parse(caller.readUserFile(join(dir, 'config.json'))) as { currentContext?: unknown };
    return typeof cfg.currentContext === 'string' ? cfg.currentContext : undefined;
  } catch (err) {
    if (err instanceof Declined) throw err;
    return undefined;
  }
}
