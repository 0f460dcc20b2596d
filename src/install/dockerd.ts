/**
 * Telling dockerd about a changed daemon.json: `systemctl reload docker` when
 * systemd runs it, else SIGHUP to the pid in its pidfile (dockerd reloads
 * `runtimes` and `default-runtime` live); then `docker info` must show it.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { GpuguardError } from '../errors.ts';
import { dockerInfo, type DaemonInfo } from '../docker/gateway.ts';
import { DEFAULTS } from './layout.ts';

export interface ReloadResult {
  reloaded: boolean;
  message: string;
}

export function reloadDockerd(root: string, pidfile: string | undefined): ReloadResult {
  if (root === '/' && pidfile === DEFAULTS.dockerdPid && existsSync('/run/systemd/system')) {
    let active = false;
    try {
      execFileSync('systemctl', ['is-active', '--quiet', 'docker'], { stdio: 'ignore' });
      active = true;
    } catch {
      /* not active under systemd: try the pidfile */
    }
    if (active) {
      try {
        execFileSync('systemctl', ['reload', 'docker'], { stdio: ['ignore', 'ignore', 'pipe'] });
      } catch (err) {
        throw new GpuguardError(`systemctl reload docker failed: ${String((err as { stderr?: Buffer }).stderr ?? err).trim()}; see journalctl -u docker`, 1, { cause: err });
      }
      return { reloaded: true, message: 'reloaded dockerd (systemctl reload docker)' };
    }
  }
  if (!pidfile) return { reloaded: false, message: 'not reloading dockerd (--root without --dockerd-pid): it reads daemon.json when it starts' };
  let pid: number;
  try {
    pid = Number.parseInt(readFileSync(pidfile, 'utf8').trim(), 10);
  } catch {
    return { reloaded: false, message: `dockerd is not running (no ${pidfile}): it reads daemon.json when it starts` };
  }
  try {
    process.kill(pid, 'SIGHUP');
  } catch {
    return { reloaded: false, message: `dockerd is not running (pid ${pid} from ${pidfile} is gone): it reads daemon.json when it starts` };
  }
  return { reloaded: true, message: `reloaded dockerd (SIGHUP to pid ${pid} from ${pidfile})` };
}

/** Wait (up to 10 s: the reload is asynchronous) until `docker info` lists the runtime, as the default if asked. */
export async function verifyRuntime(realDocker: string, name: string, asDefault: boolean, env: NodeJS.ProcessEnv = process.env): Promise<void> {
  await waitForInfo(realDocker, (info) => Object.keys(info.Runtimes ?? {}).includes(name) && (!asDefault || info.DefaultRuntime === name), `runtime "${name}"${asDefault ? ' as the default' : ''}`, env);
}

export async function waitForInfo(realDocker: string, ok: (info: DaemonInfo) => boolean, what: string, env: NodeJS.ProcessEnv = process.env): Promise<void> {
  const deadline = Date.now() + 10_000;
  let last = '';
  for (;;) {
    try {
      const info = await dockerInfo(realDocker, env);
      if (ok(info)) return;
      last = `runtimes ${Object.keys(info.Runtimes ?? {}).join(', ') || 'none'}, default ${info.DefaultRuntime ?? '?'}`;
    } catch (err) {
      last = (err as Error).message;
    }
    if (Date.now() > deadline) {
      throw new GpuguardError(`dockerd was reloaded but docker info does not show ${what} (${last}); dockerd logs why (journalctl -u docker): often a --default-runtime or --add-runtime flag on its command line that conflicts with daemon.json`);
    }
    await new Promise((r) => setTimeout(r, 200));
  }
}
