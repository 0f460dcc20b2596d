/**
 * Which calls need gpuguard and which go straight to the real tool: the one
 * decision the native front (front.c) makes from argv alone, before any Bun
 * process starts. The faces decide with these functions too, so the two
 * cannot drift: build/front.ts generates the front's tables from the same
 * definitions (the grammars' flag tables, and these predicates probed word
 * by word), and test/unit/front-routes.test.ts runs both over the argv
 * corpora and fuzzed argv.
 *
 * The contract that makes a generated table possible: a docker call's route
 * depends on the global options' grammar and the command words only (the
 * first word, and the second for command groups such as `container`), never
 * on the command's own flags; compose's on its global options and its
 * subcommand; the runtime's on runc's global options and its subcommand.
 * The build fails when a predicate breaks this (build/front.ts probes it).
 */
import { createsContainers, scanComposeArgv, type ComposeDialect } from '../compose/argv.ts';
import { createCommand, resolveCommand, scanGlobals, type GlobalScan } from '../docker-shim/globals.ts';
import { isEdited, parseRuncArgs } from '../oci-hook/args.ts';
import { isGuarded } from '../ownership/commands.ts';

/** `gpuguard`: the call needs a decision (rewrite, guard, refusal, or an error to report). `pass`: exec the real tool. */
export type Route = 'gpuguard' | 'pass';

/** `docker compose …`: the v2 plugin, through the docker shim. */
export const COMPOSE_COMMAND = 'compose';

/** argv after `docker`. */
export function dockerRoute(args: readonly string[], g: GlobalScan = scanGlobals(args)): Route {
  // Global options docker itself rejects: it says so, in its own words.
  if (g.error || g.command === undefined) return 'pass';
  if (g.command === COMPOSE_COMMAND) return composeRoute(args.slice(g.commandIndex + 1), 'v2');
  if (createCommand(args, g)) return 'gpuguard';
  // stop/exec/rm/logs/… and ps, stats, prune: the ownership guard (src/ownership).
  if (isGuarded(args, g)) return 'gpuguard';
  // `docker start`: a stopped container's GPU may have vanished or been taken (src/gpu).
  const verb = resolveCommand(args, g);
  if (verb?.verb === 'start' && (verb.group === undefined || verb.group === 'container')) return 'gpuguard';
  return 'pass';
}

/** argv after `docker-compose` (v1) or after `docker [globals] compose` (v2). */
export function composeRoute(args: readonly string[], dialect: ComposeDialect): Route {
  try {
    return createsContainers(scanComposeArgv([...args], dialect)) ? 'gpuguard' : 'pass';
  } catch {
    return 'gpuguard'; // a malformed compose command line: gpuguard reports it
  }
}

/** argv after `runc` / `gpuguard-runc`. */
export function runtimeRoute(args: readonly string[]): Route {
  return isEdited(parseRuncArgs(args, '/')) ? 'gpuguard' : 'pass';
}
