/**
 * daemon.json, merged (pure: text in, text out). The wrapper becomes the
 * `default-runtime` under the name `gpuguard`, every other registered runtime
 * is re-pointed through a wrapper of its own whose `.real` link remembers the
 * original path; every other key, the key order and the indentation are kept.
 */
import { GpuguardError } from '../errors.ts';
import { RUNTIME_NAME } from './layout.ts';
import { parseHost } from './dockerd-hosts.ts';

export interface RuntimeEntry {
  path: string;
  runtimeArgs?: string[];
  [k: string]: unknown;
}

export interface DaemonConfig {
  runtimes?: Record<string, RuntimeEntry>;
  'default-runtime'?: string;
  [k: string]: unknown;
}

/** Where the wrapper for runtime NAME lives, and its `.real` link beside it. */
export function wrapperPath(libView: string, name: string): string {
  return `${libView}/runtimes/${name}/gpuguard-runc`;
}

export function parseDaemonJson(text: string, file: string): DaemonConfig {
  if (text.trim() === '') return {};
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (err) {
    throw new GpuguardError(`${file}: not valid JSON (${(err as Error).message}); dockerd would refuse it too: fix it, then run install.sh again`);
  }
  if (typeof data !== 'object' || data === null || Array.isArray(data)) throw new GpuguardError(`${file}: expected a JSON object of dockerd options`);
  const runtimes = (data as DaemonConfig).runtimes;
  if (runtimes !== undefined) {
    if (typeof runtimes !== 'object' || runtimes === null || Array.isArray(runtimes)) throw new GpuguardError(`${file}: "runtimes" must be an object of name → {path}`);
    for (const [name, rt] of Object.entries(runtimes)) {
      if (typeof rt !== 'object' || rt === null || typeof (rt as RuntimeEntry).path !== 'string') throw new GpuguardError(`${file}: runtime "${name}" has no "path"`);
    }
  }
  return data as DaemonConfig;
}

/** The indentation the file uses (two spaces when it cannot tell), so a rewrite looks like the original. */
export function detectIndent(text: string): string | number {
  const m = /^\{\s*\n([ \t]+)"/.exec(text);
  return m ? m[1]! : 2;
}

export function formatDaemonJson(config: DaemonConfig, like: string): string {
  return `${JSON.stringify(config, null, detectIndent(like))}\n`;
}

export interface MergeResult {
  config: DaemonConfig;
  /** name → the real runtime path behind its wrapper (new ones and ones already wrapped). */
  wrapped: Record<string, string>;
  /** The default runtime before, when it was not ours already (undefined: dockerd's built-in runc). */
  previousDefault: string | undefined;
}

/**
 * Merge our runtime into a config. `alreadyReal` gives the remembered real
 * path of runtimes already wrapped (from their `.real` links), `realRunc` the
 * runtime our default runtime chains to when the old default was runc.
 */
export function mergeDaemonConfig(original: DaemonConfig, libView: string, realRunc: string, alreadyReal: (name: string) => string | undefined): MergeResult {
  const config: DaemonConfig = structuredClone(original);
  const runtimes: Record<string, RuntimeEntry> = { ...(config.runtimes ?? {}) };
  const wrapped: Record<string, string> = {};
  for (const [name, rt] of Object.entries(runtimes)) {
    if (name === RUNTIME_NAME) continue;
    const ours = wrapperPath(libView, name);
    if (rt.path === ours) {
      const real = alreadyReal(name);
      if (!real) throw new GpuguardError(`runtime "${name}" points at ${ours} but its ${ours}.real link is gone; restore it (ln -s REAL ${ours}.real) or run install.sh --uninstall first`);
      wrapped[name] = real;
    } else {
      wrapped[name] = rt.path;
      runtimes[name] = { ...rt, path: ours };
    }
  }
  const before = config['default-runtime'];
  const previousDefault = before === RUNTIME_NAME ? undefined : before;
  let defaultReal: string;
  if (before === RUNTIME_NAME) defaultReal = alreadyReal(RUNTIME_NAME) ?? realRunc;
  else if (before && before !== 'runc') {
    const real = wrapped[before];
    if (!real) throw new GpuguardError(`daemon.json: default-runtime "${before}" is not registered under "runtimes"; dockerd would not start with it: fix it first`);
    defaultReal = real;
  } else defaultReal = realRunc;
  wrapped[RUNTIME_NAME] = defaultReal;
  runtimes[RUNTIME_NAME] = { ...(runtimes[RUNTIME_NAME] ?? {}), path: wrapperPath(libView, RUNTIME_NAME) };
  config.runtimes = runtimes;
  config['default-runtime'] = RUNTIME_NAME;
  return { config, wrapped, previousDefault };
}

/**
 * The inverse, for a daemon.json someone edited after the install (so the
 * backup cannot simply be put back): wrapped runtimes get their real paths
 * back, ours goes, the default runtime is what it was.
 */
export function unmergeDaemonConfig(current: DaemonConfig, libView: string, realPaths: Record<string, string>, previousDefault: string | undefined, hadRuntimes: boolean): DaemonConfig {
  const config: DaemonConfig = structuredClone(current);
  if (config.runtimes) {
    delete config.runtimes[RUNTIME_NAME];
    for (const [name, rt] of Object.entries(config.runtimes)) {
      if (rt.path === wrapperPath(libView, name) && realPaths[name]) config.runtimes[name] = { ...rt, path: realPaths[name] };
    }
    if (!hadRuntimes && Object.keys(config.runtimes).length === 0) delete config.runtimes;
  }
  if (config['default-runtime'] === RUNTIME_NAME) {
    if (previousDefault) config['default-runtime'] = previousDefault;
    else delete config['default-runtime'];
  }
  return config;
}

/**
 * API mode without socket activation: dockerd listens where daemon.json's
 * `hosts` says, and only there. Its unix and fd listeners become the one
 * upstream socket; a TCP listener stays only behind TLS client verification
 * (`tlsverify`), because without it anyone who reaches the port is root on
 * the host, around the face. Returns the new config and the `hosts` before
 * (null: no such key), for uninstall.
 */
export function mergeApiHosts(original: DaemonConfig, upstream: string, file: string): { config: DaemonConfig; previous: string[] | null } {
  const before = original.hosts;
  if (before !== undefined && (!Array.isArray(before) || before.some((h) => typeof h !== 'string'))) throw new GpuguardError(`${file}: "hosts" must be a list of strings such as "unix:///var/run/docker.sock"; fix it, then run install.sh --api again`);
  const tcp: string[] = [];
  for (const spec of (before ?? []) as string[]) {
    const l = parseHost(spec);
    if (l.kind !== 'tcp') continue;
    if (original.tlsverify !== true) throw new GpuguardError(`${file}: "hosts" has ${spec} without "tlsverify": true: anyone who reaches that port is root on this host, around the face; remove it (or require client certificates with "tlsverify"), then run install.sh --api again`);
    tcp.push(spec);
  }
  const config: DaemonConfig = structuredClone(original);
  config.hosts = [`unix://${upstream}`, ...tcp];
  return { config, previous: before === undefined ? null : [...(before as string[])] };
}

/** The inverse for a daemon.json edited after install: `hosts` as it was (gone if it was not there). */
export function unmergeApiHosts(current: DaemonConfig, previous: string[] | null | undefined): DaemonConfig {
  const config: DaemonConfig = structuredClone(current);
  if (previous === undefined) return config;
  if (previous === null) delete config.hosts;
  else config.hosts = [...previous];
  return config;
}
