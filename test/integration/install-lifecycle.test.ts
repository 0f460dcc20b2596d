/**
 * install.sh's lifecycle steps on fixture trees (--root): the reaper's
 * systemd timer and service (or the cron hint without systemd), and
 * `--restrict-host-gpu GROUP` (modprobe.d); each idempotent, dry-run and
 * uninstalled byte for byte. Then doctor's `reaper` and `gpu-device-files`
 * checks on such a tree, broken in turn, with a real reap that fails.
 */
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdirSync, readFileSync, readlinkSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { BINARY, IS_ROOT, ROOT, ensureTestUsers, missing, run } from '../harness/index.ts';
import { makeTree, snapshot } from '../fixtures/install/trees.ts';

const INSTALL = join(ROOT, 'install.sh');
const UNITS = 'etc/systemd/system';
const trees: string[] = [];
after(() => {
  for (const t of trees) rmSync(t, { recursive: true, force: true });
});

function tree(systemd: boolean): string {
  const t = makeTree('packaged');
  trees.push(t);
  if (systemd) mkdirSync(join(t, 'run/systemd/system'), { recursive: true });
  return t;
}

const install = (root: string, ...args: string[]) => run('bash', [INSTALL, '--root', root, ...args]);
const gid = (group: string) => Number(execFileSync('getent', ['group', group], { encoding: 'utf8' }).split(':')[2]);

describe('install.sh: the reaper and --restrict-host-gpu', () => {
  test('systemd: timer and service written and enabled, modprobe file for the group; idempotent; uninstall restores the tree byte for byte', async (t) => {
    if (missing(t, { root: true, commands: ['dpkg-divert'], files: [BINARY] })) return;
    ensureTestUsers();
    const root = tree(true);
    const before = snapshot(root);
    const dry = await install(root, '--dry-run', '--restrict-host-gpu', 'gg-docker');
    assert.equal(dry.code, 0, dry.stderr);
    assert.match(dry.stdout, /would write the reaper's timer gpuguard-reap\.timer \(every 5 minutes\)/);
    assert.match(dry.stdout, /would restrict \/dev\/nvidia\* to root and group gg-docker/);
    assert.deepEqual(snapshot(root), before, 'a dry run changes nothing');

    const r = await install(root, '--restrict-host-gpu', 'gg-docker');
    assert.equal(r.code, 0, r.stderr + r.stdout);
    const service = readFileSync(join(root, UNITS, 'gpuguard-reap.service'), 'utf8');
    assert.match(service, /^Type=oneshot$/m);
    assert.match(service, /^ExecStart=\/usr\/local\/lib\/gpuguard\/gpuguard reap --state \/var\/lib\/gpuguard\/reap\.json$/m);
    assert.doesNotMatch(service, /GPUGUARD_POLICY/, 'the default policy needs no environment');
    const timer = readFileSync(join(root, UNITS, 'gpuguard-reap.timer'), 'utf8');
    assert.match(timer, /^OnUnitActiveSec=5min$/m);
    assert.match(timer, /^WantedBy=timers\.target$/m);
    assert.equal(readlinkSync(join(root, UNITS, 'timers.target.wants/gpuguard-reap.timer')), '/etc/systemd/system/gpuguard-reap.timer');
    // The decider: a long-running root service, enabled at boot.
    const decider = readFileSync(join(root, UNITS, 'gpuguard-decider.service'), 'utf8');
    assert.match(decider, /^ExecStart=\/usr\/local\/lib\/gpuguard\/gpuguard decider$/m);
    assert.match(decider, /^Restart=on-failure$/m);
    assert.match(decider, /^WantedBy=multi-user\.target$/m);
    assert.equal(readlinkSync(join(root, UNITS, 'multi-user.target.wants/gpuguard-decider.service')), '/etc/systemd/system/gpuguard-decider.service');
    assert.equal(
      readFileSync(join(root, 'etc/modprobe.d/gpuguard-nvidia.conf'), 'utf8').split('\n').filter((l) => !l.startsWith('#')).join('\n'),
      `options nvidia NVreg_DeviceFileUID=0 NVreg_DeviceFileGID=${gid('gg-docker')} NVreg_DeviceFileMode=0660\n`,
    );
    const check = await run(BINARY, ['policy', 'check', join(root, 'etc/gpuguard/policy.yaml')]);
    assert.equal(check.code, 0, check.stderr);
    assert.match(readFileSync(join(root, 'etc/gpuguard/policy.yaml'), 'utf8'), /^# lifecycle:\n# {3}idleAfter: 2h/m, 'the written policy documents lifecycle');

    const installed = snapshot(root);
    const again = await install(root, '--restrict-host-gpu', 'gg-docker');
    assert.match(again.stdout, /nothing to change/);
    assert.deepEqual(snapshot(root), installed);
    const regroup = await install(root, '--restrict-host-gpu', 'gg-students');
    assert.equal(regroup.code, 0, regroup.stderr);
    assert.match(regroup.stdout, /restrict \/dev\/nvidia\* to root and group gg-students .*updated/);
    assert.match(readFileSync(join(root, 'etc/modprobe.d/gpuguard-nvidia.conf'), 'utf8'), new RegExp(`NVreg_DeviceFileGID=${gid('gg-students')} `));

    // The reaper ran meanwhile (its state beside the install record): uninstall takes it too.
    writeFileSync(join(root, 'var/lib/gpuguard/reap.json'), '{"version":1,"containers":{},"hostProcesses":{}}\n', { mode: 0o600 });
    const u = await install(root, '--uninstall');
    assert.equal(u.code, 0, u.stderr + u.stdout);
    assert.deepEqual(snapshot(root), before, 'uninstall restores every file');
  });

  test('refusals come before any change: an unknown group, another file setting the NVIDIA device-file options, a foreign unit file', async (t) => {
    if (missing(t, { root: true, commands: ['dpkg-divert'], files: [BINARY] })) return;
    const root = tree(true);
    const before = snapshot(root);
    const nogroup = await install(root, '--restrict-host-gpu', 'no-such-group');
    assert.equal(nogroup.code, 1);
    assert.match(nogroup.stderr, /^gpuguard: --restrict-host-gpu: there is no group "no-such-group" \(getent group no-such-group\); create it/);
    assert.deepEqual(snapshot(root), before);
    mkdirSync(join(root, 'etc/modprobe.d'), { recursive: true });
    writeFileSync(join(root, 'etc/modprobe.d/nvidia-video.conf'), 'options nvidia NVreg_DeviceFileGID=44 NVreg_DeviceFileMode=0660\n');
    const foreign = await install(root, '--restrict-host-gpu', 'gg-docker');
    assert.equal(foreign.code, 1);
    assert.match(foreign.stderr, /--restrict-host-gpu: \/etc\/modprobe\.d\/nvidia-video\.conf already sets NVreg_DeviceFile\* options for nvidia/);
    rmSync(join(root, 'etc/modprobe.d'), { recursive: true });
    mkdirSync(join(root, UNITS), { recursive: true });
    writeFileSync(join(root, UNITS, 'gpuguard-reap.timer'), '[Timer]\nOnCalendar=hourly\n');
    const unit = await install(root);
    assert.equal(unit.code, 1);
    assert.match(unit.stderr, /gpuguard-reap\.timer exists and was not made by install\.sh; move it away/);
    assert.ok(!existsSync(join(root, 'usr/local/lib/gpuguard')), 'nothing installed');
  });

  test('without systemd: no units, the cron line to add instead', async (t) => {
    if (missing(t, { commands: ['dpkg-divert'], files: [BINARY] })) return;
    const root = tree(false);
    const r = await install(root, '--policy', join(root, 'site.yaml'));
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, new RegExp(`^install: the reaper \\(gpuguard reap, every 5 minutes\\) needs cron on a host without systemd: echo '\\*/5 \\* \\* \\* \\* root GPUGUARD_POLICY=${root}/site\\.yaml /usr/local/lib/gpuguard/gpuguard reap --state /var/lib/gpuguard/reap\\.json' > /etc/cron\\.d/gpuguard-reap$`, 'm'));
    assert.match(r.stdout, new RegExp(`^install: the decider \\(docker run/create/ps without a Bun start each\\) needs a service manager on a host without systemd: start it as root at boot: GPUGUARD_POLICY=${root}/site\\.yaml /usr/local/lib/gpuguard/gpuguard decider &$`, 'm'));
    assert.ok(!existsSync(join(root, UNITS)));
  });
});

interface Line {
  check: string;
  status: string;
  message: string;
  fix?: string;
}

describe('gpuguard doctor: reaper and gpu-device-files', () => {
  async function doctor(root: string, env: Record<string, string> = {}): Promise<Record<string, Line>> {
    const clean: NodeJS.ProcessEnv = { ...process.env, PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', GPUGUARD_NVIDIA_SMI: '/bin/true', ...env };
    delete clean.DOCKER_HOST;
    delete clean.GPUGUARD_POLICY;
    const r = await run(BINARY, ['doctor', '--root', root, '--json'], { env: clean, extendEnv: false });
    return Object.fromEntries((JSON.parse(r.stdout).checks as Line[]).map((l) => [l.check, l]));
  }
  const lastRun = (root: string, run: Record<string, unknown>) =>
    writeFileSync(join(root, 'var/lib/gpuguard/reap.json'), JSON.stringify({ version: 1, containers: {}, hostProcesses: {}, lastRun: { durationMs: 40, containers: 3, acted: 1, ...run } }), { mode: 0o600 });
  const withLifecycle = (root: string) => {
    const f = join(root, 'etc/gpuguard/policy.yaml');
    writeFileSync(f, `${readFileSync(f, 'utf8')}lifecycle: {idleAfter: 2h}\n`);
  };

  test('reaper: not needed without rules; with rules: scheduled, never run, ok, failed, stale, not enabled', async (t) => {
    if (missing(t, { root: true, commands: ['dpkg-divert'], files: [BINARY] })) return;
    const root = tree(true);
    assert.equal((await install(root)).code, 0);
    let d = await doctor(root);
    assert.deepEqual([d.reaper!.status, d.reaper!.message], ['ok', 'the policy sets no lifecycle rules and allows host GPU processes: no reaper needed']);
    withLifecycle(root);
    d = await doctor(root);
    assert.deepEqual([d.reaper!.status, d.reaper!.message], ['warn', 'scheduled (systemd timer gpuguard-reap.timer) but has not run yet']);
    lastRun(root, { at: new Date(Date.now() - 120_000).toISOString(), ok: true });
    d = await doctor(root);
    assert.deepEqual([d.reaper!.status, d.reaper!.message], ['ok', 'systemd timer gpuguard-reap.timer; last run 2 min ago: 3 container(s), 1 acted on']);
    lastRun(root, { at: new Date(Date.now() - 3_600_000).toISOString(), ok: true });
    d = await doctor(root);
    assert.equal(d.reaper!.status, 'fail');
    assert.match(d.reaper!.message, /^the last reap ran 1 h ago \(\S+\): systemd timer gpuguard-reap\.timer is not running it$/);
    // A real reap that fails (no daemon): its error is what doctor says.
    const reap = await run(BINARY, ['reap', '--state', join(root, 'var/lib/gpuguard/reap.json')], { env: { GPUGUARD_POLICY: join(root, 'etc/gpuguard/policy.yaml'), DOCKER_HOST: 'unix:///nonexistent/docker.sock', GPUGUARD_NVIDIA_SMI: '/bin/true' } });
    assert.equal(reap.code, 1);
    assert.match(reap.stderr, /^gpuguard: cannot reach the Docker daemon at unix:\/\/\/nonexistent\/docker\.sock/);
    d = await doctor(root);
    assert.equal(d.reaper!.status, 'fail');
    assert.match(d.reaper!.message, /^the last reap \(\S+, 0 min ago\) failed: cannot reach the Docker daemon at unix:\/\/\/nonexistent\/docker\.sock/);
    assert.ok(d.reaper!.fix);
    unlinkSync(join(root, UNITS, 'timers.target.wants/gpuguard-reap.timer'));
    d = await doctor(root);
    assert.deepEqual([d.reaper!.status, d.reaper!.message], ['fail', 'the policy has lifecycle rules but gpuguard-reap.timer is not enabled (no /etc/systemd/system/timers.target.wants/gpuguard-reap.timer): containers are never warned, stopped or removed']);
  });

  test('reaper without systemd: missing until a cron line runs it', async (t) => {
    if (missing(t, { root: true, commands: ['dpkg-divert'], files: [BINARY] })) return;
    const root = tree(false);
    assert.equal((await install(root)).code, 0);
    withLifecycle(root);
    let d = await doctor(root);
    assert.deepEqual([d.reaper!.status, d.reaper!.message], ['fail', 'the policy has lifecycle rules but no systemd timer and no cron line runs gpuguard reap: containers are never warned, stopped or removed']);
    mkdirSync(join(root, 'etc/cron.d'), { recursive: true });
    writeFileSync(join(root, 'etc/cron.d/gpuguard-reap'), '*/5 * * * * root /usr/local/lib/gpuguard/gpuguard reap --state /var/lib/gpuguard/reap.json\n');
    lastRun(root, { at: new Date().toISOString(), ok: true });
    d = await doctor(root);
    assert.equal(d.reaper!.status, 'ok', JSON.stringify(d.reaper));
    assert.match(d.reaper!.message, /^cron \(\/etc\/cron\.d\/gpuguard-reap\); last run 0 min ago/);
  });

  test('gpu-device-files: open to all (warn), restricted as the modprobe file says (ok), not yet after install (fail)', async (t) => {
    if (missing(t, { root: true, commands: ['dpkg-divert', 'mknod'], files: [BINARY] })) return;
    ensureTestUsers();
    const root = tree(true);
    assert.equal((await install(root)).code, 0);
    let d = await doctor(root);
    assert.deepEqual([d['gpu-device-files']!.status, d['gpu-device-files']!.message], ['ok', 'no NVIDIA device files in /dev (no driver loaded)']);
    mkdirSync(join(root, 'dev'));
    for (const [name, minor] of [['nvidia0', '0'], ['nvidiactl', '255']] as const) {
      execFileSync('mknod', ['-m', '0666', join(root, 'dev', name), 'c', '195', minor]);
    }
    d = await doctor(root);
    assert.equal(d['gpu-device-files']!.status, 'warn');
    assert.match(d['gpu-device-files']!.message, /^\/dev\/nvidia0 \(uid 0, gid 0, mode 0666\), \/dev\/nvidiactl \(uid 0, gid 0, mode 0666\): every user can use GPUs outside containers/);
    assert.equal((await install(root, '--restrict-host-gpu', 'gg-docker')).code, 0);
    d = await doctor(root);
    assert.equal(d['gpu-device-files']!.status, 'fail', 'the driver has not been reloaded: still open');
    assert.match(d['gpu-device-files']!.message, /restricts GPUs to group gg-docker \(gid \d+\), but \/dev\/nvidia0 \(uid 0, gid 0, mode 0666\)/);
    for (const name of ['nvidia0', 'nvidiactl']) {
      chownSync(join(root, 'dev', name), 0, gid('gg-docker'));
      chmodSync(join(root, 'dev', name), 0o660);
    }
    d = await doctor(root);
    assert.deepEqual([d['gpu-device-files']!.status, d['gpu-device-files']!.message], ['ok', '2 NVIDIA device file(s) root:gg-docker, no access for others']);
    rmSync(join(root, 'dev'), { recursive: true });
    assert.ok(IS_ROOT);
  });
});
