/**
 * Doctor's lifecycle checks: is a reaper scheduled and did its last run
 * succeed, recently (`reaper`); are /dev/nvidia* closed to users outside the
 * group that `install.sh --restrict-host-gpu` named (`gpu-device-files`).
 */
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync, readlinkSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { MODPROBE_FILE, parseModprobeText, REAP_STATE_FILE, REAP_TIMER, SYSTEMD_DIR, TIMER_WANTS } from '../install/reaper.ts';
import { reaperNeeded } from '../policy/lifecycle.ts';
import type { Policy } from '../policy/schema.ts';
import { readLastRun } from '../lifecycle/state.ts';

type Status = 'ok' | 'warn' | 'fail';
export interface Finding {
  check: string;
  status: Status;
  message: string;
  fix?: string;
}

/** Three timer periods without a run: the timer is not running the reaper. */
export const REAPER_STALE_MS = 15 * 60_000;

export interface LifecycleContext {
  root: string;
  policy: Policy;
  /** Host path of the install record's directory (the reaper's state is beside it). */
  stateDir: string;
  /** A view path as this process sees it. */
  host(view: string): string;
  now?: number;
}

function read(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
}

/** Where the reaper is scheduled: the systemd timer (enabled, and active where systemd runs), or a cron line. */
function schedule(c: LifecycleContext): { how?: string; problem?: string } {
  const systemd = statOk(join(c.root, 'run/systemd/system'));
  if (systemd) {
    if (!statOk(c.host(join(SYSTEMD_DIR, REAP_TIMER)))) return { problem: `no ${REAP_TIMER} in ${SYSTEMD_DIR}` };
    // The link's target is a path on the installed system: it is not followed (a --root tree).
    if (readLinkOf(c.host(TIMER_WANTS)) !== join(SYSTEMD_DIR, REAP_TIMER)) return { problem: `${REAP_TIMER} is not enabled (no ${TIMER_WANTS})` };
    if (c.root === '/') {
      let active = '';
      try {
        active = execFileSync('systemctl', ['is-active', REAP_TIMER], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
      } catch (err) {
        active = String((err as { stdout?: string }).stdout ?? '').trim() || 'unknown';
      }
      if (active !== 'active') return { problem: `${REAP_TIMER} is ${active}` };
    }
    return { how: `systemd timer ${REAP_TIMER}` };
  }
  const crontabs = [join(c.root, 'etc/crontab'), ...list(join(c.root, 'etc/cron.d')), ...list(join(c.root, 'var/spool/cron/crontabs'))];
  for (const f of crontabs) {
    const text = read(f);
    if (text && /^[^#\n]*gpuguard\S*\s+reap\b/m.test(text)) return { how: `cron (${f.slice(c.root === '/' ? 0 : c.root.length)})` };
  }
  return { problem: 'no systemd timer and no cron line runs gpuguard reap' };
}

function list(dir: string): string[] {
  try {
    return readdirSync(dir).map((n) => join(dir, n));
  } catch {
    return [];
  }
}

function readLinkOf(path: string): string | undefined {
  try {
    return readlinkSync(path);
  } catch {
    return undefined;
  }
}

function statOk(path: string): boolean {
  try {
    statSync(path);
    return true;
  } catch {
    return false;
  }
}

function ago(ms: number): string {
  const m = Math.round(ms / 60_000);
  return m < 60 ? `${m} min ago` : m < 2880 ? `${Math.round(m / 60)} h ago` : `${Math.round(m / 1440)} days ago`;
}

export function checkReaper(c: LifecycleContext): Finding {
  const check = 'reaper';
  if (!reaperNeeded(c.policy)) return { check, status: 'ok', message: 'the policy sets no lifecycle rules and allows host GPU processes: no reaper needed' };
  const fix = 'run install.sh (installs and starts the systemd timer), or without systemd add the cron line it prints';
  const s = schedule(c);
  if (s.problem) return { check, status: 'fail', message: `the policy has lifecycle rules but ${s.problem}: containers are never warned, stopped or removed`, fix };
  const last = readLastRun(join(c.stateDir, REAP_STATE_FILE));
  if (!last) return { check, status: 'warn', message: `scheduled (${s.how}) but has not run yet`, fix: `wait 5 minutes, or run: gpuguard reap --dry-run` };
  const age = (c.now ?? Date.now()) - Date.parse(last.at);
  if (!last.ok) return { check, status: 'fail', message: `the last reap (${last.at}, ${ago(age)}) failed: ${last.error ?? 'unknown error'}`, fix: 'run gpuguard reap by hand to see it; journalctl -u gpuguard-reap' };
  if (!(age <= REAPER_STALE_MS)) return { check, status: 'fail', message: `the last reap ran ${ago(age)} (${last.at}): ${s.how} is not running it`, fix: `systemctl status ${REAP_TIMER} (or check cron); run gpuguard reap by hand to see errors` };
  return { check, status: 'ok', message: `${s.how}; last run ${ago(age)}: ${last.containers} container(s), ${last.acted} acted on` };
}

const DEVICE = /^nvidia(\d+|ctl|-uvm|-uvm-tools|-modeset)$/;

export function checkGpuDeviceFiles(c: LifecycleContext): Finding {
  const check = 'gpu-device-files';
  const devDir = join(c.root, 'dev');
  const nodes = list(devDir).filter((p) => DEVICE.test(p.slice(devDir.length + 1)));
  const restriction = parseModprobeText(read(c.host(MODPROBE_FILE)) ?? '');
  const describe = (p: string) => {
    const st = statSync(p);
    return { name: `/dev/${p.slice(devDir.length + 1)}`, uid: st.uid, gid: st.gid, mode: st.mode & 0o777 };
  };
  if (!nodes.length) return { check, status: 'ok', message: `no NVIDIA device files in /dev (no driver loaded)${restriction ? `; ${MODPROBE_FILE} restricts them to group ${restriction.group}` : ''}` };
  const all = nodes.map(describe);
  const show = (d: ReturnType<typeof describe>) => `${d.name} (uid ${d.uid}, gid ${d.gid}, mode ${d.mode.toString(8).padStart(4, '0')})`;
  if (restriction) {
    const wrong = all.filter((d) => d.uid !== 0 || d.gid !== restriction.gid || (d.mode & 0o007) !== 0);
    if (wrong.length) {
      return {
        check,
        status: 'fail',
        message: `${MODPROBE_FILE} restricts GPUs to group ${restriction.group} (gid ${restriction.gid}), but ${wrong.slice(0, 3).map(show).join(', ')}${wrong.length > 3 ? ` and ${wrong.length - 3} more` : ''}: users outside it can use GPUs on the host`,
        fix: 'the options apply when the nvidia module loads: reboot (or unload and load nvidia with no GPU process running)',
      };
    }
    return { check, status: 'ok', message: `${all.length} NVIDIA device file(s) root:${restriction.group}, no access for others` };
  }
  const open = all.filter((d) => (d.mode & 0o006) !== 0);
  if (open.length && c.policy.gpu.hostProcesses !== 'allow') {
    return { check, status: 'ok', message: `${all.length} NVIDIA device file(s) open to every user; gpuguard reap enforces gpu.hostProcesses: ${c.policy.gpu.hostProcesses}` };
  }
  if (open.length) {
    return {
      check,
      status: 'warn',
      message: `${open.slice(0, 3).map(show).join(', ')}${open.length > 3 ? ` and ${open.length - 3} more` : ''}: every user can use GPUs outside containers, around the allocator`,
      fix: 'install.sh --restrict-host-gpu GROUP (the users allowed host GPU use), then reboot; or gpu.hostProcesses: warn|kill in the policy',
    };
  }
  return { check, status: 'ok', message: `${all.length} NVIDIA device file(s), none open to every user` };
}
