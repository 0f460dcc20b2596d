/**
 * What install.sh puts in place for the lifecycle and host GPU use: the
 * systemd timer and service that run `gpuguard reap` every 5 minutes (or,
 * without systemd, the cron line to add by hand), and with
 * `--restrict-host-gpu GROUP` a modprobe.d file that makes the NVIDIA driver
 * create /dev/nvidia* as root:GROUP 0660, so GPUs outside containers are for
 * root and GROUP only. The texts and checks are here; the installer writes
 * them and records each file for uninstall.
 */
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { GpuguardError } from '../errors.ts';

export const REAP_SERVICE = 'gpuguard-reap.service';
export const REAP_TIMER = 'gpuguard-reap.timer';
export const SYSTEMD_DIR = '/etc/systemd/system';
/** Where `systemctl enable` links a unit with WantedBy=timers.target. */
export const TIMER_WANTS = `${SYSTEMD_DIR}/timers.target.wants/${REAP_TIMER}`;
export const REAP_STATE_FILE = 'reap.json';
export const MODPROBE_FILE = '/etc/modprobe.d/gpuguard-nvidia.conf';

/** The reaper's command line, as the service and the cron line run it. */
export function reapCommand(o: { binary: string; stateDir: string }): string {
  return `${o.binary} reap --state ${join(o.stateDir, REAP_STATE_FILE)}`;
}

export function reapService(o: { binary: string; stateDir: string; policy: string; defaultPolicy: boolean }): string {
  return `# Written by gpuguard install.sh; removed by install.sh --uninstall.
[Unit]
Description=gpuguard reap: warn, stop and remove idle and over-age containers (lifecycle in ${o.policy})
After=docker.service

[Service]
Type=oneshot
${o.defaultPolicy ? '' : `Environment=GPUGUARD_POLICY=${o.policy}\n`}ExecStart=${reapCommand(o)}
`;
}

export function reapTimer(): string {
  return `# Written by gpuguard install.sh; removed by install.sh --uninstall.
[Unit]
Description=Run gpuguard reap every 5 minutes

[Timer]
OnBootSec=5min
OnUnitActiveSec=5min
AccuracySec=30s

[Install]
WantedBy=timers.target
`;
}

/** For a host without systemd: the line for /etc/cron.d/gpuguard-reap. */
export function cronLine(o: { binary: string; stateDir: string; policy: string; defaultPolicy: boolean }): string {
  return `*/5 * * * * root ${o.defaultPolicy ? '' : `GPUGUARD_POLICY=${o.policy} `}${reapCommand(o)}`;
}

/** The modprobe.d file: device files root:GROUP, mode 0660 (NVIDIA driver README, "Configuring device files"). */
export function modprobeText(group: string, gid: number): string {
  return `# Written by gpuguard install.sh --restrict-host-gpu ${group}; removed by install.sh --uninstall.
# The NVIDIA driver creates /dev/nvidia* owned by root:${group} (gid ${gid}), mode 0660:
# outside containers only root and members of ${group} can use a GPU. Containers get
# their devices from Docker's NVIDIA runtime hook as before. Takes effect when the
# nvidia module is next loaded (a reboot).
options nvidia NVreg_DeviceFileUID=0 NVreg_DeviceFileGID=${gid} NVreg_DeviceFileMode=0660
`;
}

/** The group and gid a modprobe file of ours names (for doctor); undefined when it is not ours or unreadable. */
export function parseModprobeText(text: string): { group: string; gid: number; mode: number } | undefined {
  const group = /--restrict-host-gpu (\S+);/.exec(text)?.[1];
  const gid = /NVreg_DeviceFileGID=(\d+)/.exec(text)?.[1];
  const mode = /NVreg_DeviceFileMode=(0?[0-7]{3,4})/.exec(text)?.[1];
  return group && gid && mode ? { group, gid: Number(gid), mode: parseInt(mode, 8) } : undefined;
}

/** A unix group's gid: from <root>/etc/group in a --root tree that has one, else the user database. */
export function groupId(root: string, group: string): number {
  if (root !== '/') {
    try {
      for (const line of readFileSync(join(root, 'etc/group'), 'utf8').split('\n')) {
        const [name, , gid] = line.split(':');
        if (name === group && gid && /^\d+$/.test(gid)) return Number(gid);
      }
    } catch {
      /* no group file in the tree: ask the host */
    }
  }
  let entry = '';
  try {
    entry = execFileSync('getent', ['group', group], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
  } catch {
    /* not found */
  }
  const gid = entry.split(':')[2];
  if (!gid || !/^\d+$/.test(gid)) {
    throw new GpuguardError(`--restrict-host-gpu: there is no group "${group}" (getent group ${group}); create it (groupadd ${group}), add the users who may use GPUs outside containers, then run install.sh again`);
  }
  return Number(gid);
}

/** Other modprobe.d files that already set the NVIDIA device-file options (two would fight: the later file wins). */
export function foreignDeviceFileOptions(root: string, ours: string): string[] {
  const found: string[] = [];
  for (const dir of ['etc/modprobe.d', 'lib/modprobe.d', 'usr/lib/modprobe.d', 'run/modprobe.d']) {
    let names: string[];
    try {
      names = readdirSync(join(root, dir));
    } catch {
      continue;
    }
    for (const name of names) {
      const path = join(root, dir, name);
      if (!name.endsWith('.conf') || path === ours) continue;
      try {
        if (/^\s*options\s+nvidia\s.*NVreg_DeviceFile(UID|GID|Mode)=/m.test(readFileSync(path, 'utf8'))) found.push(`/${dir}/${name}`);
      } catch {
        /* unreadable: not ours to judge */
      }
    }
  }
  return found;
}
