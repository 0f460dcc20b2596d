/**
 * What install.sh puts in place for the decider (src/decider): a systemd
 * service running `gpuguard decider` as root, so that the docker calls the
 * front routes to gpuguard are decided without a Bun start each. Without
 * systemd, the line to start it by hand; without a decider everything still
 * works, each such call starting gpuguard itself.
 */
import { SYSTEMD_DIR } from './reaper.ts';

export const DECIDER_SERVICE = 'gpuguard-decider.service';
/** Where `systemctl enable` links a unit with WantedBy=multi-user.target. */
export const DECIDER_WANTS = `${SYSTEMD_DIR}/multi-user.target.wants/${DECIDER_SERVICE}`;

export function deciderCommand(binary: string): string {
  return `${binary} decider`;
}

export function deciderService(o: { binary: string; policy: string; defaultPolicy: boolean }): string {
  return `# Written by gpuguard install.sh; removed by install.sh --uninstall.
[Unit]
Description=gpuguard decider: docker run/create/ps decided for the native front without a Bun start per call
After=docker.service

[Service]
${o.defaultPolicy ? '' : `Environment=GPUGUARD_POLICY=${o.policy}\n`}ExecStart=${deciderCommand(o.binary)}
ExecReload=/bin/kill -HUP $MAINPID
Restart=on-failure
RestartSec=1

[Install]
WantedBy=multi-user.target
`;
}
