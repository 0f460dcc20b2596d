/**
 * The compose command line: global options (v1 `docker-compose`, v2
 * `docker compose`), the subcommand and its arguments. Only what gpuguard
 * needs is interpreted (file selection, project name and directory, env
 * file, the subcommand); everything else is kept verbatim and in order.
 */
import { UsageError } from '../errors.ts';

export type ComposeDialect = 'v1' | 'v2';

/** Global options that take a value, per dialect (docker-compose 1.29 --help; docker/compose v2 cmd/compose/compose.go). */
export const VALUE_OPTIONS: Record<ComposeDialect, ReadonlySet<string>> = {
  v1: new Set(['-f', '--file', '-p', '--project-name', '--profile', '-c', '--context', '--log-level', '--ansi', '-H', '--host', '--tlscacert', '--tlscert', '--tlskey', '--project-directory', '--env-file']),
  v2: new Set(['-f', '--file', '-p', '--project-name', '--profile', '--project-directory', '--workdir', '--env-file', '--ansi', '--progress', '--parallel']),
};

/** Subcommands that create containers, and so get the policy's override file. */
export const CREATING_COMMANDS: ReadonlySet<string> = new Set(['up', 'run', 'create', 'scale']);

/** Whether this command line creates containers (and so needs the policy). */
export function createsContainers(scan: Pick<ComposeArgv, 'command'>): boolean {
  return scan.command !== undefined && CREATING_COMMANDS.has(scan.command);
}

export interface ComposeArgv {
  dialect: ComposeDialect;
  /** Global options before the subcommand, as given, minus -f/--file, -p/--project-name and --project-directory. */
  globals: string[];
  /** -p/--project-name and --project-directory as given (re-added by the rewrite, or replaced by explicit ones). */
  projectArgs: string[];
  /** -f/--file values in order ([] when the user named none). */
  files: string[];
  projectName?: string;
  projectDirectory?: string;
  envFile?: string;
  /** -H/--host values (v1). */
  hosts: string[];
  /** -c/--context (v1), the last one. */
  context?: string;
  command?: string;
  /** Everything after the subcommand, verbatim. */
  rest: string[];
}

export function scanComposeArgv(args: string[], dialect: ComposeDialect): ComposeArgv {
  const values = VALUE_OPTIONS[dialect];
  const out: ComposeArgv = { dialect, globals: [], projectArgs: [], files: [], hosts: [], rest: [] };
  let i = 0;
  for (; i < args.length; i++) {
    const arg = args[i]!;
    if (arg === '--') {
      i++;
      break;
    }
    if (!arg.startsWith('-') || arg === '-') break;
    let name = arg;
    let value: string | undefined;
    let inline = false;
    const eq = arg.indexOf('=');
    if (arg.startsWith('--') && eq > 0) {
      [name, value, inline] = [arg.slice(0, eq), arg.slice(eq + 1), true];
    } else if (!arg.startsWith('--') && arg.length > 2 && values.has(arg.slice(0, 2))) {
      // -fFILE / -pNAME (docopt and pflag both accept the attached form)
      [name, value, inline] = [arg.slice(0, 2), arg.slice(2).replace(/^=/, ''), true];
    }
    if (!values.has(name)) {
      out.globals.push(arg);
      continue;
    }
    if (!inline) {
      value = args[++i];
      if (value === undefined) throw new UsageError(`compose option ${name} needs a value`, 1);
    }
    switch (name) {
      case '-f':
      case '--file':
        out.files.push(value!);
        continue; // re-added explicitly by the rewrite
      case '-p':
      case '--project-name':
        out.projectName = value;
        out.projectArgs.push(...(inline ? [arg] : [name, value!]));
        continue;
      case '--project-directory':
      case '--workdir':
        out.projectDirectory = value;
        out.projectArgs.push(...(inline ? [arg] : [name, value!]));
        continue;
      case '--env-file':
        out.envFile = value;
        break;
      case '-H':
      case '--host':
        out.hosts.push(value!);
        break;
      case '-c':
      case '--context':
        out.context = value;
        break;
    }
    out.globals.push(...(inline ? [arg] : [name, value!]));
  }
  out.command = args[i];
  out.rest = args.slice(i + 1);
  return out;
}
