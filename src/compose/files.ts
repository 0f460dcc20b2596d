/**
 * Which compose files the user's command selects, decided exactly as
 * compose itself does, so that naming them explicitly (plus gpuguard's
 * override) changes nothing else: -f (repeated), else COMPOSE_FILE (from the
 * environment or the project's .env, split on COMPOSE_PATH_SEPARATOR), else
 * discovery in the working directory and its parents plus the one matching
 * override file. v1 rules: docker-compose 1.29 compose/config/config.py;
 * v2 rules: compose-go's default file names (compose.yaml first).
 */
import { existsSync, readFileSync } from 'node:fs';
import { basename, dirname, isAbsolute, join, resolve } from 'node:path';
import { UsageError } from '../errors.ts';
import type { ComposeDialect } from './argv.ts';

const MAIN_NAMES: Record<ComposeDialect, string[]> = {
  v1: ['docker-compose.yml', 'docker-compose.yaml', 'compose.yml', 'compose.yaml'],
  v2: ['compose.yaml', 'compose.yml', 'docker-compose.yaml', 'docker-compose.yml'],
};
const OVERRIDE_NAMES: Record<ComposeDialect, string[]> = {
  v1: ['docker-compose.override.yml', 'docker-compose.override.yaml', 'compose.override.yml', 'compose.override.yaml'],
  v2: ['compose.override.yaml', 'compose.override.yml', 'docker-compose.override.yaml', 'docker-compose.override.yml'],
};

export interface FileSelectionInput {
  dialect: ComposeDialect;
  cwd: string;
  /** -f values as given. */
  files: string[];
  projectDirectory?: string;
  envFile?: string;
  env: NodeJS.ProcessEnv;
  exists?: (path: string) => boolean;
  readFile?: (path: string) => string | undefined;
}

export interface FileSelection {
  files: string[];
  from: '-f' | 'COMPOSE_FILE' | 'discovery';
  /** The project directory compose will use. */
  projectDir: string;
  /** The env file's variables (compose reads them for COMPOSE_* settings). */
  dotenv: Record<string, string>;
}

export function selectComposeFiles(input: FileSelectionInput): FileSelection {
  const exists = input.exists ?? existsSync;
  const readFile = input.readFile ?? ((p: string) => (existsSync(p) ? readFileSync(p, 'utf8') : undefined));
  const projectDirectory = input.projectDirectory ? resolve(input.cwd, input.projectDirectory) : undefined;
  if (input.files.includes('-')) {
    throw new UsageError('a compose file on standard input (-f -) cannot be checked by gpuguard; save it to a file and pass -f FILE', 1);
  }
  const envPath = input.envFile ? resolve(input.cwd, input.envFile) : join(projectDirectory ?? input.cwd, '.env');
  const dotenv = parseDotenv(readFile(envPath) ?? '');
  const setting = (key: string) => input.env[key] ?? dotenv[key];

  let files: string[];
  let from: FileSelection['from'];
  if (input.files.length) {
    [files, from] = [input.files.map((f) => resolve(input.cwd, f)), '-f'];
  } else if (setting('COMPOSE_FILE')) {
    const sep = setting('COMPOSE_PATH_SEPARATOR') || ':';
    const base = input.dialect === 'v2' ? (projectDirectory ?? input.cwd) : input.cwd;
    files = setting('COMPOSE_FILE')!.split(sep).filter(Boolean).map((f) => (isAbsolute(f) ? f : resolve(base, f)));
    from = 'COMPOSE_FILE';
  } else {
    const found = discover(input.dialect, projectDirectory && input.dialect === 'v2' ? projectDirectory : input.cwd, exists) ?? (projectDirectory ? discover(input.dialect, projectDirectory, exists) : undefined);
    if (!found) throw new UsageError(`no compose file found in ${input.cwd} or its parents (looked for ${MAIN_NAMES[input.dialect].join(', ')})`, 1);
    [files, from] = [found, 'discovery'];
  }
  return { files, from, projectDir: projectDirectory ?? dirname(files[0]!), dotenv };
}

function discover(dialect: ComposeDialect, start: string, exists: (p: string) => boolean): string[] | undefined {
  for (let dir = resolve(start); ; dir = dirname(dir)) {
    const main = MAIN_NAMES[dialect].find((n) => exists(join(dir, n)));
    if (main) {
      const override = OVERRIDE_NAMES[dialect].filter((n) => exists(join(dir, n)));
      // v1 refuses several override files itself (DuplicateOverrideFileFound): pass them all so it still does.
      return [join(dir, main), ...override.slice(0, dialect === 'v1' ? override.length : 1).map((n) => join(dir, n))];
    }
    if (dirname(dir) === dir) return undefined;
  }
}

/** KEY=VALUE lines; # comments; optional export; single or double quotes. */
export function parseDotenv(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (!line || line.startsWith('#')) continue;
    const m = /^(?:export\s+)?([A-Za-z_][A-Za-z0-9_.-]*)\s*=\s*(.*)$/.exec(line);
    if (!m) continue;
    let value = m[2]!;
    if ((value.startsWith('"') && value.endsWith('"')) || (value.startsWith("'") && value.endsWith("'"))) value = value.slice(1, -1);
    out[m[1]!] = value;
  }
  return out;
}

/**
 * The project name compose will use: -p, else COMPOSE_PROJECT_NAME (env or
 * .env), else the project directory's name; normalised as compose does
 * (lower case, only a-z 0-9 _ -).
 */
export function projectNameOf(sel: FileSelection, given: string | undefined, env: NodeJS.ProcessEnv): string {
  const raw = given || env.COMPOSE_PROJECT_NAME || sel.dotenv.COMPOSE_PROJECT_NAME || basename(sel.projectDir);
  return raw.toLowerCase().replace(/[^-_a-z0-9]/g, '') || 'default';
}
