/**
 * Where dockerd listens, from each place that can say so: its command line
 * (`-H`/`--host`, `--tlsverify`), daemon.json (`hosts`, `tlsverify`), and
 * systemd's docker.socket (`ListenStream=`, handed over as `-H fd://`).
 * Pure: text and argv in, listeners out. Install and doctor both ask here.
 */

export type Listener =
  | { kind: 'unix'; path: string; spec: string }
  | { kind: 'fd'; spec: string }
  | { kind: 'tcp'; address: string; spec: string };

/** A dockerd host spec (`unix:///p`, `/p`, `fd://`, `tcp://h:p`, `h:p`) classified as dockerd reads it. */
export function parseHost(spec: string): Listener {
  const s = spec.trim();
  if (s.startsWith('unix://')) return { kind: 'unix', path: s.slice('unix://'.length) || '/var/run/docker.sock', spec };
  if (s.startsWith('/')) return { kind: 'unix', path: s, spec };
  if (s.startsWith('fd://')) return { kind: 'fd', spec };
  // tcp://, and anything else dockerd's ParseDaemonHost would read as an address (":2375", "host:port")
  return { kind: 'tcp', address: s.replace(/^tcp:\/\//, ''), spec };
}

export interface DockerdFlags {
  hosts: string[];
  /** --tlsverify (client certificates required): undefined when not on the command line. */
  tlsverify?: boolean;
  configFile?: string;
}

const VALUE_LONG = new Set(['--host', '--config-file', '--group', '--log-level', '--pidfile', '--bridge', '--storage-driver', '--data-root', '--exec-root', '--containerd', '--tlscacert', '--tlscert', '--tlskey']);
/** dockerd's one-letter flags that take a value (-H host, -G group, -l level, -p pidfile, -b bridge, -s storage driver). */
const VALUE_SHORT = new Set(['H', 'G', 'l', 'p', 'b', 's']);

/** The listener-related flags of a dockerd command line (argv[0] is dockerd itself). */
export function dockerdFlags(argv: string[]): DockerdFlags {
  const out: DockerdFlags = { hosts: [] };
  const take = (flag: string, value: string | undefined) => {
    if (value === undefined) return;
    if (flag === '--host' || flag === '-H') out.hosts.push(value);
    else if (flag === '--config-file') out.configFile = value;
  };
  for (let i = 1; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--') break;
    if (a.startsWith('--')) {
      const eq = a.indexOf('=');
      const flag = eq > 0 ? a.slice(0, eq) : a;
      const inline = eq > 0 ? a.slice(eq + 1) : undefined;
      if (flag === '--tlsverify') out.tlsverify = inline === undefined ? true : inline === 'true' || inline === '1';
      else if (VALUE_LONG.has(flag)) take(flag, inline ?? argv[++i]);
      continue;
    }
    if (a.startsWith('-') && a.length > 1) {
      // a cluster such as -DH unix:///x, -Hfd://, -H=fd://
      for (let k = 1; k < a.length; k++) {
        const letter = a[k]!;
        if (!VALUE_SHORT.has(letter)) continue;
        let rest = a.slice(k + 1);
        if (rest.startsWith('=')) rest = rest.slice(1);
        take(`-${letter}`, rest !== '' ? rest : argv[++i]);
        break;
      }
    }
  }
  return out;
}

/** What a docker.socket `ListenStream=` value is: a path (unix), or a port / address (tcp). */
export function parseListenStream(value: string): Listener {
  if (value.startsWith('/')) return { kind: 'unix', path: value, spec: value };
  if (value.startsWith('@')) return { kind: 'unix', path: value, spec: value }; // abstract namespace
  return { kind: 'tcp', address: value, spec: value };
}

/** The same path for two spellings of it: /var/run is /run on every systemd-era Debian. */
export function samePath(a: string, b: string): boolean {
  const norm = (p: string) => p.replace(/^\/var\/run\//, '/run/');
  return norm(a) === norm(b);
}
