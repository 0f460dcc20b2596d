/**
 * The argv scanner for `docker run` / `docker create` (pure). It finds every
 * flag with its position, the image and the command after it, so the
 * rewrite can insert before the image without reordering or re-quoting
 * anything. The flag table is test/fixtures/docker-run/value-flags.json,
 * checked against the real CLIs' help output by a test.
 */
import table from '../../test/fixtures/docker-run/value-flags.json' with { type: 'json' };
import { createCommand, scanGlobals, type CreateKind, type GlobalScan } from './globals.ts';
import { makeTable, scanFlags, type FlagOccurrence, type FlagTable } from './pflag.ts';

type TableEntry = { short?: string; type: string; hidden?: boolean };

export const RUN_FLAGS: FlagTable = makeTable({
  ...Object.fromEntries(Object.entries(table.flags as Record<string, TableEntry>).map(([long, e]) => [long, { short: e.short, takesValue: e.type !== 'bool' }])),
  help: { takesValue: false },
});

export interface RunScan {
  kind: CreateKind;
  globals: GlobalScan;
  /** Index where run/create's own flags begin. */
  flagsFrom: number;
  flags: FlagOccurrence[];
  /** Index of the image, or undefined when there is none (docker will say so). */
  image?: number;
  /** Index of a `--` before the image, if any. */
  terminator?: number;
  /** Where additions go: before `--` when there is one, else before the image. */
  insertAt: number;
  /** The container's command and arguments (everything after the image), untouched. */
  command: string[];
  /** `--help` was given: docker prints help and creates nothing. */
  help: boolean;
  /** Set when docker itself would reject the line. */
  error?: string;
}

/** Scan a whole docker argv (without argv0). Undefined for commands other than run/create (and container run/create). */
export function scanDockerArgv(argv: readonly string[]): RunScan | undefined {
  const globals = scanGlobals(argv);
  const cmd = createCommand(argv, globals);
  if (!cmd || cmd.kind === 'volume-create') return undefined;
  return scanRunCreate(argv, cmd.kind, cmd.flagsFrom, globals);
}

export function scanRunCreate(argv: readonly string[], kind: CreateKind, flagsFrom: number, globals: GlobalScan): RunScan {
  const s = scanFlags(argv, flagsFrom, RUN_FLAGS);
  const image = s.positional < argv.length && !s.error ? s.positional : undefined;
  return {
    kind,
    globals,
    flagsFrom,
    flags: s.flags,
    ...(image !== undefined ? { image } : {}),
    ...(s.terminator !== undefined ? { terminator: s.terminator } : {}),
    insertAt: s.terminator ?? s.positional,
    command: image !== undefined ? argv.slice(image + 1) : [],
    help: s.flags.some((f) => f.name === 'help' && f.value !== 'false'),
    ...(s.error ? { error: s.error } : {}),
  };
}

/** Every value of a flag, in argv order. */
export function values(scan: RunScan, name: string): string[] {
  return scan.flags.filter((f) => f.name === name && f.value !== undefined).map((f) => f.value!);
}

/** The last value of a flag (pflag: the last one wins for single-valued flags). */
export function lastValue(scan: RunScan, name: string): string | undefined {
  return values(scan, name).at(-1);
}

/**
 * What the GPU allocator needs to see (src/gpu plugs in here): every way a
 * docker run line can ask for a GPU, with positions so it can drop the
 * user's `--gpus` words and put explicit device requests in their place.
 */
export interface GpuRequestFacts {
  gpus: FlagOccurrence[];
  env: FlagOccurrence[];
  envFiles: FlagOccurrence[];
  runtime: FlagOccurrence[];
  devices: FlagOccurrence[];
}

export function gpuRequestFacts(scan: RunScan): GpuRequestFacts {
  const pick = (name: string) => scan.flags.filter((f) => f.name === name);
  return { gpus: pick('gpus'), env: pick('env'), envFiles: pick('env-file'), runtime: pick('runtime'), devices: pick('device') };
}
