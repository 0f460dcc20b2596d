/**
 * A private dockerd for one test file: its own data-root, exec-root, socket
 * and pidfile under a temp dir, no bridge, no iptables, a stand-in
 * `nvidia-container-runtime-hook` on its PATH (so `--gpus` works without a
 * GPU), and a busybox image `bb` imported from busybox-static. It never
 * touches a host daemon and is stopped by pid, mounts cleaned, even when the
 * test fails.
 */
import { chmodSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { execFileSync, spawn } from 'node:child_process';
import { join } from 'node:path';
import { run, type RunResult } from './proc.ts';
import { realDockerCli } from './tools.ts';

export interface DockerdOptions {
  /** Extra runtimes: name → path (and args), as in daemon.json. */
  runtimes?: Record<string, { path: string; runtimeArgs?: string[] }>;
  defaultRuntime?: string;
  cgroupDriver?: 'cgroupfs' | 'systemd';
  /** Environment for dockerd (and so containerd, its shims and the runtime). */
  env?: Record<string, string>;
  /** Unix group that owns the socket, so test users can reach it. */
  socketGroup?: string;
  /** Import the busybox image as `bb` (default true). */
  image?: boolean;
  /** Name the socket in daemon.json "hosts" instead of --host (as a dockerd with no -H reads it; API mode moves it there). */
  hostsInConfig?: boolean;
}

export interface PrivateDockerd {
  dir: string;
  socket: string;
  host: string;
  pid: number;
  execRoot: string;
  dataRoot: string;
  /** containerd's socket, for `ctr -a`. */
  containerdSocket: string;
  /** The directory put first on dockerd's PATH (holds the stand-in NVIDIA hook). */
  binDir: string;
  /** The daemon.json it was started with. */
  configFile: string;
  /** Environment for a docker client pointed at this daemon. */
  clientEnv: Record<string, string>;
  realDocker: string;
  docker(args: string[], opts?: { input?: string; env?: Record<string, string> }): Promise<RunResult>;
  /**
   * Stop dockerd and start it again with the same flags, reading daemon.json
   * anew (listeners change only at a start); waits until `socket` (default:
   * its own) answers. Containers stop with it.
   */
  restart(socket?: string): Promise<void>;
  stop(): Promise<void>;
}

const live = new Set<PrivateDockerd>();
process.on('exit', () => {
  for (const d of live) {
    try {
      process.kill(d.pid, 'SIGKILL');
    } catch {
      /* gone */
    }
  }
});

/** The stand-in hook: dockerd only checks it is on PATH; runc runs it as a prestart hook. */
const STAND_IN_HOOK = `#!/bin/sh
# stand-in nvidia-container-runtime-hook for tests: no GPU, accept and do nothing
cat >/dev/null 2>&1
exit 0
`;

export async function startDockerd(opts: DockerdOptions = {}): Promise<PrivateDockerd> {
  const realDocker = realDockerCli();
  if (!realDocker) throw new Error('no docker CLI: install docker.io (bash test/setup.sh)');
  const dir = mkdtempSync('/tmp/gg-');
  chmodSync(dir, 0o755);
  const binDir = join(dir, 'bin');
  mkdirSync(binDir);
  writeFileSync(join(binDir, 'nvidia-container-runtime-hook'), STAND_IN_HOOK, { mode: 0o755 });
  const socket = join(dir, 'docker.sock');
  const pidfile = join(dir, 'docker.pid');
  const execRoot = join(dir, 'x');
  const dataRoot = join(dir, 'data');
  const configFile = join(dir, 'daemon.json');
  const config: Record<string, unknown> = {
    'exec-opts': [`native.cgroupdriver=${opts.cgroupDriver ?? 'cgroupfs'}`],
  };
  if (opts.runtimes) config.runtimes = opts.runtimes;
  if (opts.defaultRuntime) config['default-runtime'] = opts.defaultRuntime;
  if (opts.hostsInConfig) config.hosts = [`unix://${socket}`];
  writeFileSync(configFile, `${JSON.stringify(config, null, 2)}\n`);

  const args = [
    '--data-root', dataRoot,
    '--exec-root', execRoot,
    ...(opts.hostsInConfig ? [] : ['--host', `unix://${socket}`]),
    '--pidfile', pidfile,
    '--config-file', configFile,
    '--bridge=none', '--iptables=false', '--ip6tables=false', '--ip-masq=false',
    '--shutdown-timeout', '2',
    '--group', opts.socketGroup ?? 'root',
    '--storage-driver', 'overlay2',
  ];
  const log = join(dir, 'dockerd.log');
  const env: NodeJS.ProcessEnv = { ...process.env, PATH: `${binDir}:${process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin'}`, ...opts.env };
  delete env.DOCKER_HOST;
  const out = (await import('node:fs')).openSync(log, 'a');
  const launch = () => {
    const child = spawn('dockerd', args, { env, stdio: ['ignore', out, out], detached: true });
    child.unref();
    return child;
  };
  let child = launch();
  const clientEnv = { DOCKER_HOST: `unix://${socket}` };
  const daemon: PrivateDockerd = {
    dir, socket, host: clientEnv.DOCKER_HOST, pid: child.pid!, execRoot, dataRoot, binDir, configFile, clientEnv, realDocker,
    containerdSocket: join(execRoot, 'containerd/containerd.sock'),
    docker: (a, o = {}) => run(realDocker, a, { env: { ...clientEnv, ...o.env }, input: o.input }),
    restart: async (at = socket) => {
      await killDockerd(daemon.pid);
      child = launch();
      daemon.pid = child.pid!;
      await ready(at);
    },
    stop: () => stopDockerd(daemon),
  };
  live.add(daemon);

  const ready = async (at: string) => {
    const deadline = Date.now() + 30_000;
    for (;;) {
      if (existsSync(at) && (await daemon.docker(['version', '--format', '{{.Server.Version}}'], { env: { DOCKER_HOST: `unix://${at}` } })).code === 0) return;
      if (child.exitCode !== null || Date.now() > deadline) {
        const tail = readFileSync(log, 'utf8').split('\n').slice(-15).join('\n');
        await daemon.stop();
        throw new Error(`private dockerd did not start (log ${log}):\n${tail}`);
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  };
  await ready(socket);
  if (opts.image !== false) await importBusybox(daemon);
  return daemon;
}

/** `bb:latest`: static busybox with every applet, /etc/passwd, /etc/group, /etc/os-release. */
export async function importBusybox(d: PrivateDockerd, tag = 'bb:latest'): Promise<void> {
  const root = join(d.dir, 'bb-rootfs');
  for (const sub of ['bin', 'etc', 'tmp', 'root', 'srv', 'dev', 'proc', 'sys']) mkdirSync(join(root, sub), { recursive: true });
  chmodSync(join(root, 'tmp'), 0o1777);
  copyFileSync('/bin/busybox', join(root, 'bin/busybox'));
  chmodSync(join(root, 'bin/busybox'), 0o755);
  const applets = execFileSync('/bin/busybox', ['--list'], { encoding: 'utf8' }).split('\n').filter((a) => a && a !== 'busybox');
  for (const a of applets) symlinkSync('busybox', join(root, 'bin', a));
  writeFileSync(join(root, 'etc/passwd'), 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n');
  writeFileSync(join(root, 'etc/group'), 'root:x:0:\nnogroup:x:65534:\n');
  writeFileSync(join(root, 'etc/os-release'), 'NAME="BusyBox"\nID=busybox\nVERSION_ID=1\nPRETTY_NAME="BusyBox (gpuguard tests)"\n');
  const tar = join(d.dir, 'bb.tar');
  execFileSync('tar', ['-C', root, '-cf', tar, '.']);
  const r = await d.docker(['import', '--change', 'CMD ["sh"]', tar, tag]);
  if (r.code !== 0) throw new Error(`docker import failed: ${r.stderr}`);
  rmSync(root, { recursive: true, force: true });
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function killDockerd(pid: number): Promise<void> {
  if (!alive(pid)) return;
  process.kill(pid, 'SIGTERM');
  const deadline = Date.now() + 15_000;
  while (alive(pid) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
  if (alive(pid)) process.kill(pid, 'SIGKILL');
}

async function stopDockerd(d: PrivateDockerd): Promise<void> {
  live.delete(d);
  // The bridges of its networks live in the host's network namespace and outlive dockerd and
  // its data-root: left behind, they use up the default address pools for every later dockerd
  // on the host ("could not find an available, non-overlapping IPv4 address pool").
  const networks = alive(d.pid) ? (await d.docker(['network', 'ls', '--no-trunc', '-q', '--filter', 'driver=bridge'])).stdout.split('\n').filter(Boolean) : [];
  await killDockerd(d.pid);
  for (const id of networks) {
    try {
      execFileSync('ip', ['link', 'delete', `br-${id.slice(0, 12)}`], { stdio: 'ignore' });
    } catch {
      /* not a bridge of ours (the default one, or already gone) */
    }
  }
  // Whatever is still mounted below the temp dir (overlays, netns, shm) goes, deepest first.
  const mounts = readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .map((l) => l.split(' ')[4])
    .filter((m): m is string => !!m && m.startsWith(`${d.dir}/`))
    .sort((a, b) => b.length - a.length);
  for (const m of mounts) {
    try {
      execFileSync('umount', ['-l', m], { stdio: 'ignore' });
    } catch {
      /* already gone */
    }
  }
  rmSync(d.dir, { recursive: true, force: true });
}
