/**
 * The container's process env inside a config: a list of "NAME=value"
 * strings. Reading takes the first value of a name (what getenv(3) sees);
 * setting replaces every entry of the name, keeping the first one's place.
 */
import type { OciConfig } from './spec.ts';

export function envMap(config: OciConfig): Record<string, string> {
  const out: Record<string, string> = {};
  for (const entry of config.process?.env ?? []) {
    const eq = entry.indexOf('=');
    const name = eq < 0 ? entry : entry.slice(0, eq);
    if (!(name in out)) out[name] = eq < 0 ? '' : entry.slice(eq + 1);
  }
  return out;
}

/** Set NAME=value; returns whether the config changed. A config without `process` is left alone. */
export function setEnv(config: OciConfig, name: string, value: string): boolean {
  const proc = config.process;
  if (!proc) return false;
  const want = `${name}=${value}`;
  const list = proc.env ?? [];
  const isName = (e: string) => e === name || e.startsWith(`${name}=`);
  const first = list.findIndex(isName);
  const next = first < 0 ? [...list, want] : list.flatMap((e, i) => (i === first ? [want] : isName(e) ? [] : [e]));
  if (proc.env && next.length === list.length && next.every((e, i) => e === list[i])) return false;
  proc.env = next;
  return true;
}
