/**
 * Reading systemd units the way systemd does, for the few questions API mode
 * asks about dockerd: what docker.service's ExecStart runs (after drop-ins
 * and EnvironmentFile= variables) and where docker.socket listens. The parse
 * is pure (text in); `loadUnit` reads the unit and its drop-ins from the
 * search path under a root, so fixture trees answer like a host.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

/** systemd's system unit search path, highest priority first (systemd.unit(5)). */
export const UNIT_DIRS = ['/etc/systemd/system', '/run/systemd/system', '/usr/local/lib/systemd/system', '/lib/systemd/system', '/usr/lib/systemd/system'];

export interface UnitSetting {
  section: string;
  key: string;
  value: string;
  /** The file it came from (a view path), for messages. */
  file: string;
}

/** Settings of one unit file, in order; `\` continues a line, `#` and `;` start comments. */
export function parseUnit(text: string, file: string): UnitSetting[] {
  const out: UnitSetting[] = [];
  let section = '';
  let pending = '';
  for (const raw of text.split('\n')) {
    const line = pending + raw.trim();
    if (line.endsWith('\\')) {
      pending = `${line.slice(0, -1)} `;
      continue;
    }
    pending = '';
    if (!line || line.startsWith('#') || line.startsWith(';')) continue;
    const s = /^\[([^\]]+)\]$/.exec(line);
    if (s) {
      section = s[1]!;
      continue;
    }
    const eq = line.indexOf('=');
    if (eq <= 0) continue;
    out.push({ section, key: line.slice(0, eq).trim(), value: line.slice(eq + 1).trim(), file });
  }
  return out;
}

/** A list setting (ExecStart=, ListenStream=): each assignment adds, an empty one clears what came before. */
export function listSetting(settings: UnitSetting[], section: string, key: string): UnitSetting[] {
  let values: UnitSetting[] = [];
  for (const s of settings) {
    if (s.section !== section || s.key !== key) continue;
    if (s.value === '') values = [];
    else values.push(s);
  }
  return values;
}

export interface LoadedUnit {
  /** The unit file's view path. */
  file: string;
  /** Drop-in files, in the order systemd applies them. */
  dropIns: string[];
  settings: UnitSetting[];
}

/**
 * Unit NAME as systemd would load it: the first file found along the search
 * path, then every `NAME.d/*.conf` (one per file name, the higher-priority
 * directory winning), applied in file-name order. `host` maps a view path to
 * a path this process reads.
 */
export function loadUnit(name: string, host: (view: string) => string): LoadedUnit | undefined {
  let file: string | undefined;
  let text = '';
  for (const dir of UNIT_DIRS) {
    try {
      text = readFileSync(host(join(dir, name)), 'utf8');
      file = join(dir, name);
      break;
    } catch {
      /* next directory */
    }
  }
  if (!file) return undefined;
  const byName = new Map<string, string>();
  for (const dir of [...UNIT_DIRS].reverse()) {
    const d = join(dir, `${name}.d`);
    let names: string[] = [];
    try {
      names = readdirSync(host(d));
    } catch {
      continue;
    }
    for (const n of names) if (n.endsWith('.conf')) byName.set(n, join(d, n));
  }
  const dropIns = [...byName.keys()].sort().map((n) => byName.get(n)!);
  const settings = parseUnit(text, file);
  for (const f of dropIns) {
    try {
      settings.push(...parseUnit(readFileSync(host(f), 'utf8'), f));
    } catch {
      /* unreadable drop-in: systemd skips it too */
    }
  }
  return { file, dropIns, settings };
}

/**
 * Split a command line the way systemd does for ExecStart= (systemd.service(5),
 * "Command lines"): words separated by spaces, "…" and '…' quoting, \ escapes;
 * $NAME and ${NAME} expanded from `env` — unquoted $NAME splits into words.
 * (An ExecStart= command's own prefix, @ - : + !, is the caller's to drop.)
 */
export function splitCommand(line: string, env: Record<string, string> = {}): string[] {
  const words: string[] = [];
  let cur = '';
  let inWord = false;
  let quote: string | undefined;
  const push = () => {
    if (inWord) words.push(cur);
    cur = '';
    inWord = false;
  };
  for (let i = 0; i < line.length; i++) {
    const c = line[i]!;
    if (quote) {
      if (c === quote) quote = undefined;
      else if (c === '\\' && i + 1 < line.length) cur += line[++i];
      else if (c === '$' && quote === '"') {
        const m = /^\$(\{(\w+)\}|(\w+))/.exec(line.slice(i));
        if (m) {
          cur += env[m[2] ?? m[3]!] ?? '';
          i += m[0].length - 1;
        } else cur += c;
      } else cur += c;
      continue;
    }
    if (c === ' ' || c === '\t') {
      push();
      continue;
    }
    if (c === '"' || c === "'") {
      quote = c;
      inWord = true;
      continue;
    }
    if (c === '\\' && i + 1 < line.length) {
      cur += line[++i];
      inWord = true;
      continue;
    }
    if (c === '$') {
      const m = /^\$(\{(\w+)\}|(\w+))/.exec(line.slice(i));
      if (m) {
        const value = env[m[2] ?? m[3]!] ?? '';
        i += m[0].length - 1;
        if (m[2] !== undefined) {
          cur += value; // ${NAME}: one word
          inWord = true;
        } else {
          // $NAME alone: split on whitespace into separate words
          const parts = value.split(/\s+/).filter(Boolean);
          parts.forEach((p, k) => {
            if (k > 0) push();
            cur += p;
            inWord = true;
          });
        }
        continue;
      }
    }
    cur += c;
    inWord = true;
  }
  push();
  return words;
}

/** An ExecStart= line as argv: split, with the command's prefix characters (@ - : + !) dropped. */
export function execArgv(line: string, env: Record<string, string> = {}): string[] {
  const argv = splitCommand(line, env);
  if (argv[0]) argv[0] = argv[0].replace(/^[@\-:+!]+/, '');
  return argv;
}

/**
 * Variables from an EnvironmentFile= (KEY=VALUE lines, "…"/'…' quotes,
 * comments): enough for /etc/default/docker's DOCKER_OPTS.
 */
export function parseEnvironmentFile(text: string): Record<string, string> {
  const env: Record<string, string> = {};
  for (const raw of text.split('\n')) {
    const line = raw.trim().replace(/^export\s+/, '');
    if (!line || line.startsWith('#') || line.startsWith(';')) continue;
    const m = /^(\w+)=(.*)$/.exec(line);
    if (!m) continue;
    let v = m[2]!.trim();
    if ((v.startsWith('"') && v.endsWith('"') && v.length >= 2) || (v.startsWith("'") && v.endsWith("'") && v.length >= 2)) v = v.slice(1, -1);
    else v = v.replace(/\s+#.*$/, '');
    env[m[1]!] = v;
  }
  return env;
}

/** The environment a service's ExecStart sees: Environment=, then EnvironmentFile= over it (a missing "-" file skipped). */
export function serviceEnvironment(unit: LoadedUnit, host: (view: string) => string): Record<string, string> {
  const env: Record<string, string> = {};
  const service = unit.settings.filter((s) => s.section === 'Service');
  for (const s of service.filter((x) => x.key === 'Environment')) {
    for (const word of splitCommand(s.value)) {
      const eq = word.indexOf('=');
      if (eq > 0) env[word.slice(0, eq)] = word.slice(eq + 1);
    }
  }
  for (const s of service.filter((x) => x.key === 'EnvironmentFile' && x.value)) {
    try {
      Object.assign(env, parseEnvironmentFile(readFileSync(host(s.value.replace(/^-/, '')), 'utf8')));
    } catch {
      /* "-": optional */
    }
  }
  return env;
}
