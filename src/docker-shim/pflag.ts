/**
 * The docker CLI's flag grammar (spf13/pflag with interspersed arguments
 * off): `--f=v`, `--f v`, `-fv`, `-f=v`, `-f v`, clusters `-itd` and
 * `-itp80:80`, `--` ends flags, and the first positional word ends them too.
 * Pure and dependency-free: the pass-through path uses it for the global
 * options, so it must cost nothing to load.
 */

/** How a flag is spelled in the table: its long name and whether it takes a value. */
export interface FlagSpec {
  long: string;
  takesValue: boolean;
}

export interface FlagTable {
  long(name: string): FlagSpec | undefined;
  short(letter: string): FlagSpec | undefined;
}

/** One flag as it appeared in argv. Indexes are into the scanned argv; `end` is exclusive. */
export interface FlagOccurrence {
  /** Canonical long name without dashes (`label` for `-l`); for unknown flags the name as written. */
  name: string;
  /** As written: `--label`, `-l`, or the cluster letter `-l` inside `-itl`. */
  spelled: string;
  /** The value for flags that take one (`undefined` for booleans without `=`). */
  value?: string;
  /** First argv index of this flag (its own word, or the cluster word). */
  start: number;
  /** One past the last argv index it uses (2 words for `--name x`). */
  end: number;
  /** True when the flag is one letter of a cluster such as `-itd` (the word holds other flags too). */
  cluster: boolean;
  /** Not in the table: passed through, treated as boolean unless written `--x=v`. */
  unknown?: boolean;
}

export interface FlagScan {
  flags: FlagOccurrence[];
  /** Index of the first positional word (the subcommand, or the image), or argv.length when none. */
  positional: number;
  /** Index of a `--` that ended the flags, if one did. */
  terminator?: number;
  /** Set when docker itself would reject the flags (missing value, unknown shorthand): pass through and let it say so. */
  error?: string;
}

/** Scan flags from `from` until the first positional word or `--`. */
export function scanFlags(argv: readonly string[], from: number, table: FlagTable): FlagScan {
  const flags: FlagOccurrence[] = [];
  let i = from;
  while (i < argv.length) {
    const word = argv[i]!;
    if (word === '--') return { flags, positional: i + 1, terminator: i };
    if (!word.startsWith('-') || word === '-') return { flags, positional: i };
    if (word.startsWith('--')) {
      const eq = word.indexOf('=');
      const name = eq < 0 ? word.slice(2) : word.slice(2, eq);
      const spec = table.long(name);
      const spelled = `--${name}`;
      if (eq >= 0) {
        flags.push({ name: spec?.long ?? name, spelled, value: word.slice(eq + 1), start: i, end: i + 1, cluster: false, ...(spec ? {} : { unknown: true }) });
        i += 1;
      } else if (spec?.takesValue) {
        if (i + 1 >= argv.length) return { flags, positional: argv.length, error: `flag needs an argument: ${spelled}` };
        flags.push({ name: spec.long, spelled, value: argv[i + 1]!, start: i, end: i + 2, cluster: false });
        i += 2;
      } else {
        flags.push({ name: spec?.long ?? name, spelled, start: i, end: i + 1, cluster: false, ...(spec ? {} : { unknown: true }) });
        i += 1;
      }
      continue;
    }
    // Shorthand cluster, pflag's parseSingleShortArg applied letter by letter.
    let rest = word.slice(1);
    let end = i + 1;
    const letters: FlagOccurrence[] = [];
    while (rest.length) {
      const letter = rest[0]!;
      const spec = table.short(letter);
      if (!spec) return { flags: [...flags, ...letters], positional: argv.length, error: `unknown shorthand flag: '${letter}' in ${word}` };
      const occ: FlagOccurrence = { name: spec.long, spelled: `-${letter}`, start: i, end: i + 1, cluster: false };
      if (rest.length > 2 && rest[1] === '=') {
        occ.value = rest.slice(2);
        rest = '';
      } else if (!spec.takesValue) {
        rest = rest.slice(1);
      } else if (rest.length > 1) {
        occ.value = rest.slice(1);
        rest = '';
      } else if (i + 1 < argv.length) {
        occ.value = argv[i + 1]!;
        occ.end = i + 2;
        end = i + 2;
        rest = '';
      } else {
        return { flags: [...flags, ...letters], positional: argv.length, error: `flag needs an argument: '${letter}' in ${word}` };
      }
      letters.push(occ);
    }
    const isCluster = letters.length > 1;
    for (const l of letters) flags.push({ ...l, cluster: isCluster, end });
    i = end;
  }
  return { flags, positional: argv.length };
}

/** A table from a plain list of specs and a letter map. */
export function makeTable(specs: Record<string, { short?: string; takesValue: boolean }>): FlagTable {
  const shorts = new Map<string, FlagSpec>();
  const longs = new Map<string, FlagSpec>();
  for (const [long, s] of Object.entries(specs)) {
    const spec = { long, takesValue: s.takesValue };
    longs.set(long, spec);
    if (s.short) shorts.set(s.short, spec);
  }
  return { long: (n) => longs.get(n), short: (l) => shorts.get(l) };
}
