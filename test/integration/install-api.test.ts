/**
 * install.sh --api --root against fixture trees: a Debian host booted with
 * systemd (docker.io's own docker.service and docker.socket: dockerd -H
 * fd://) gets a docker.socket drop-in and the face's units, and no daemon.json
 * `hosts`; the same host without systemd gets daemon.json `hosts` and the
 * exact steps to start things. In both the docker CLI stays where it is, a
 * second install changes nothing, a dry run changes nothing, and --uninstall
 * leaves every file as it was (content, mode, owner). Every refusal comes
 * before the first change. The real systemd tools judge the units
 * (`systemctl --root … is-enabled`, `systemd-analyze verify`).
 */
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, copyFileSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { BINARY, FRONT, missing, ROOT, run } from '../harness/index.ts';
import { makeTree, snapshot, type TreeName } from '../fixtures/install/trees.ts';

const INSTALL = join(ROOT, 'install.sh');
const UPSTREAM = '/run/gpuguard-dockerd/docker.sock';
const trees: string[] = [];
after(() => {
  for (const t of trees) rmSync(t, { recursive: true, force: true });
});

function tree(name: TreeName): string {
  const t = makeTree(name);
  trees.push(t);
  return t;
}

const install = (root: string, ...args: string[]) => run('bash', [INSTALL, '--root', root, ...args]);
const json = (p: string) => JSON.parse(readFileSync(p, 'utf8'));
const text = (root: string, p: string) => readFileSync(join(root, p), 'utf8');
const mode = (p: string) => lstatSync(p).mode & 0o7777;

/** Install must refuse with one line matching `message`, changing nothing. */
async function refuses(root: string, args: string[], message: RegExp) {
  const before = snapshot(root);
  const r = await install(root, ...args);
  assert.equal(r.code, 1, r.stdout + r.stderr);
  assert.match(r.stderr, message);
  assert.equal(r.stderr.trim().split('\n').length, 1, `one line: ${r.stderr}`);
  assert.deepEqual(snapshot(root), before, 'refused before the first change');
}

describe('install.sh --api on a systemd host (docker.io: dockerd -H fd:// from docker.socket)', () => {
  test('a docker.socket drop-in and the face\'s units; the CLI stays; no-op twice; uninstall restores every file', async (t) => {
    if (missing(t, { commands: ['dpkg-divert', 'systemctl', 'systemd-analyze'], files: [BINARY] })) return;
    const root = tree('systemd');
    const before = snapshot(root);

    const dry = await install(root, '--api', '--dry-run');
    assert.equal(dry.code, 0, dry.stderr);
    assert.match(dry.stdout, /would move docker\.socket to \/run\/gpuguard-dockerd\/docker\.sock \(root only, 0600\) with a drop-in/);
    assert.match(dry.stdout, /would write gpuguard-api\.socket: the face listens on \/var\/run\/docker\.sock \(group docker, mode 0660\)/);
    assert.doesNotMatch(dry.stdout, /divert/, 'API mode leaves the docker CLI alone');
    assert.deepEqual(snapshot(root), before, 'a dry run changes nothing');

    const r = await install(root, '--api');
    assert.equal(r.code, 0, r.stderr + r.stdout);
    assert.match(r.stdout, /not restarting dockerd or starting the face \(--root .*\): on that host run systemctl daemon-reload/);
    // The real CLI stays first on PATH: nothing diverted, no shim.
    assert.equal(text(root, 'usr/bin/docker'), '#!/bin/sh\necho "docker 20.10" "$@"\n');
    assert.ok(!existsSync(join(root, 'usr/bin/docker.real')));
    assert.equal(text(root, 'var/lib/dpkg/diversions'), '');
    // dockerd is socket-activated: its socket moves with a docker.socket drop-in; daemon.json gets no "hosts" (dockerd would refuse both).
    const dropIn = text(root, 'etc/systemd/system/docker.socket.d/gpuguard-api.conf');
    assert.match(dropIn, /^\[Socket\]\nListenStream=\nListenStream=\/run\/gpuguard-dockerd\/docker\.sock\nSocketUser=root\nSocketGroup=root\nSocketMode=0600\nDirectoryMode=0700\n$/m);
    assert.equal(json(join(root, 'etc/docker/daemon.json')).hosts, undefined);
    assert.equal(json(join(root, 'etc/docker/daemon.json'))['default-runtime'], 'gpuguard', 'the runtime wrapper stays');
    assert.equal(text(root, 'usr/lib/systemd/system/docker.service'), readFileSync(join(ROOT, 'test/fixtures/install/docker.service'), 'utf8'), 'docker.service as packaged');
    // The face: a socket unit on the socket users reach, a service running gpuguard serve, enabled through sockets.target.
    const sock = text(root, 'etc/systemd/system/gpuguard-api.socket');
    assert.match(sock, /^ListenStream=\/run\/docker\.sock$/m);
    assert.match(sock, /^SocketGroup=docker$/m);
    assert.match(sock, /^SocketMode=0660$/m);
    const svc = text(root, 'etc/systemd/system/gpuguard-api.service');
    assert.match(svc, /^ExecStart=\/usr\/local\/lib\/gpuguard\/gpuguard serve$/m);
    assert.match(svc, /^ExecReload=\/bin\/kill -HUP \$MAINPID$/m);
    const enabled = await run('systemctl', ['--root', root, 'is-enabled', 'gpuguard-api.socket']);
    assert.equal(enabled.stdout.trim(), 'enabled', enabled.stderr);
    // systemd-analyze judges the units (unknown keys, bad values); the binary's path is this build's on this host.
    const v = mkdtempSync('/tmp/gg-units-');
    try {
      copyFileSync(join(root, 'etc/systemd/system/gpuguard-api.socket'), join(v, 'gpuguard-api.socket'));
      writeFileSync(join(v, 'gpuguard-api.service'), svc.replace('/usr/local/lib/gpuguard/gpuguard', BINARY));
      copyFileSync(join(ROOT, 'test/fixtures/install/docker.socket'), join(v, 'docker.socket'));
      mkdirSync(join(v, 'docker.socket.d'));
      copyFileSync(join(root, 'etc/systemd/system/docker.socket.d/gpuguard-api.conf'), join(v, 'docker.socket.d/gpuguard-api.conf'));
      const verify = await run('systemd-analyze', ['verify', ...['gpuguard-api.socket', 'gpuguard-api.service', 'docker.socket'].map((u) => join(v, u))]);
      assert.equal(verify.code, 0, verify.stderr);
      assert.equal(verify.stderr.trim(), '', 'systemd-analyze has nothing to say');
    } finally {
      rmSync(v, { recursive: true, force: true });
    }
    // dockerd's socket directory: root's alone, now and at boot.
    assert.equal(mode(join(root, 'run/gpuguard-dockerd')), 0o700);
    assert.equal(text(root, 'etc/tmpfiles.d/gpuguard-api.conf').split('\n').find((l) => l.startsWith('d ')), 'd /run/gpuguard-dockerd 0700 root root -');
    // The policy names both sockets, and is valid.
    const policy = text(root, 'etc/gpuguard/policy.yaml');
    assert.match(policy, /^api: \{listen: \/var\/run\/docker\.sock, upstream: \/run\/gpuguard-dockerd\/docker\.sock, group: docker, mode: "0660"\}$/m);
    assert.match(policy, /^ {2}realPath: \/usr\/bin\/docker\b/m, 'the policy names the real CLI where it is');
    assert.equal((await run(BINARY, ['policy', 'check', join(root, 'etc/gpuguard/policy.yaml')])).code, 0);
    assert.equal(json(join(root, 'var/lib/gpuguard/state.json')).api.via, 'docker.socket');

    const installed = snapshot(root);
    const again = await install(root, '--api');
    assert.equal(again.code, 0, again.stderr);
    assert.match(again.stdout, /nothing to change/);
    assert.deepEqual(snapshot(root), installed, 'a second install changes nothing');

    const u = await install(root, '--uninstall');
    assert.equal(u.code, 0, u.stderr + u.stdout);
    assert.deepEqual(snapshot(root), before, 'uninstall restores every file');
  });

  test('refused: dockerd with another -H (a docker.service drop-in, or DOCKER_OPTS), TCP in docker.socket, hosts in daemon.json', async (t) => {
    if (missing(t, { files: [BINARY] })) return;
    const root = tree('systemd');
    const dropIn = join(root, 'etc/systemd/system/docker.service.d/override.conf');
    mkdirSync(join(root, 'etc/systemd/system/docker.service.d'), { recursive: true });
    writeFileSync(dropIn, '[Service]\nExecStart=\nExecStart=/usr/sbin/dockerd -H fd:// -H tcp://0.0.0.0:2375 --containerd=/run/containerd/containerd.sock\n');
    await refuses(root, ['--api'], /^gpuguard: dockerd is started with -H tcp:\/\/0\.0\.0\.0:2375 \(\/etc\/systemd\/system\/docker\.service\.d\/override\.conf\): it would keep listening there, around the face; remove that -H/);
    rmSync(dropIn);

    const defaults = join(root, 'etc/default/docker');
    const orig = readFileSync(defaults, 'utf8');
    writeFileSync(defaults, `${orig}DOCKER_OPTS="-H unix:///var/run/docker.sock"\n`);
    await refuses(root, ['--api'], /dockerd is started with -H unix:\/\/\/var\/run\/docker\.sock \(\$DOCKER_OPTS from \/etc\/default\/docker, in \/lib\/systemd\/system\/docker\.service's ExecStart\)/);
    writeFileSync(defaults, orig);

    const socketDropIn = join(root, 'etc/systemd/system/docker.socket.d/tcp.conf');
    mkdirSync(join(root, 'etc/systemd/system/docker.socket.d'), { recursive: true });
    writeFileSync(socketDropIn, '[Socket]\nListenStream=2375\n');
    await refuses(root, ['--api'], /docker\.socket also gets ListenStream=2375 from \/etc\/systemd\/system\/docker\.socket\.d\/tcp\.conf: dockerd would keep listening there/);
    rmSync(socketDropIn);

    const daemonJson = join(root, 'etc/docker/daemon.json');
    const d = json(daemonJson);
    writeFileSync(daemonJson, JSON.stringify({ ...d, hosts: ['unix:///var/run/docker.sock'] }));
    await refuses(root, ['--api'], /daemon\.json has "hosts" and dockerd is started with -H fd:\/\/ .*: dockerd refuses to start with both/);
  });
});

describe('install.sh --api on a host without systemd', () => {
  test('daemon.json "hosts", the exact steps to start dockerd and the face; no-op twice; uninstall restores every file', async (t) => {
    if (missing(t, { files: [BINARY] })) return;
    const root = tree('packaged');
    const before = snapshot(root);
    const r = await install(root, '--api');
    assert.equal(r.code, 0, r.stderr + r.stdout);
    const d = json(join(root, 'etc/docker/daemon.json'));
    assert.deepEqual(d.hosts, [`unix://${UPSTREAM}`]);
    assert.equal(d['default-runtime'], 'gpuguard');
    assert.ok(!existsSync(join(root, 'etc/systemd')), 'no units without systemd');
    assert.ok(!existsSync(join(root, 'usr/bin/docker.real')), 'the CLI stays');
    assert.equal(mode(join(root, 'run/gpuguard-dockerd')), 0o700);
    const steps = r.stdout.split('\n').filter((l) => /^install: +(\d\.|then|no systemd)/.test(l));
    assert.deepEqual(steps, [
      'install: no systemd here: restart dockerd and start the face yourself, now and at every boot, in this order:',
      'install:   1. install -d -m 0700 -o root -g root /run/gpuguard-dockerd   (dockerd does not create it, and /run is emptied at boot)',
      'install:   2. restart dockerd (however this host starts it): dockerd reads "hosts" only when it starts; it then listens on /run/gpuguard-dockerd/docker.sock only',
      'install:   3. as root, keep running: /usr/local/lib/gpuguard/gpuguard serve   (listens on /var/run/docker.sock, group docker, mode 0660; logs to stderr; SIGHUP reloads the policy, SIGTERM drains)',
      `install:   then check: /usr/local/lib/gpuguard/gpuguard doctor --root ${root}`,
    ]);
    const installed = snapshot(root);
    const again = await install(root, '--api');
    assert.match(again.stdout, /nothing to change/);
    assert.deepEqual(snapshot(root), installed);
    // An upgrade replaces the binary; the running face must be restarted to run it.
    const newer = join(mkdtempSync('/tmp/gg-bin-'), 'gpuguard');
    writeFileSync(newer, `${readFileSync(BINARY, 'latin1')}x`, 'latin1');
    copyFileSync(FRONT, join(newer, '../gpuguard-front')); // the native front comes with the binary it starts
    const up = await install(root, '--api', '--binary', newer);
    rmSync(join(newer, '..'), { recursive: true, force: true });
    assert.equal(up.code, 0, up.stderr);
    assert.match(up.stdout, /install: upgrade .*\/usr\/local\/lib\/gpuguard\/gpuguard/);
    assert.match(up.stdout, /install: restart the face so that it runs the new binary: SIGTERM to gpuguard serve \(it drains\), then start it again as before/);
    const u = await install(root, '--uninstall');
    assert.equal(u.code, 0, u.stderr + u.stdout);
    assert.match(u.stdout, /uninstall: stop the face \(\/usr\/local\/lib\/gpuguard\/gpuguard serve\) now/);
    assert.match(u.stdout, /uninstall: now restart dockerd/);
    assert.deepEqual(snapshot(root), before);
  });

  test('a TCP listener behind tlsverify stays; a daemon.json edited after install keeps the edit and loses only gpuguard', async (t) => {
    if (missing(t, { files: [BINARY] })) return;
    const root = tree('packaged');
    const file = join(root, 'etc/docker/daemon.json');
    const orig = json(file);
    writeFileSync(file, `${JSON.stringify({ ...orig, hosts: ['unix:///var/run/docker.sock', 'tcp://0.0.0.0:2376'], tlsverify: true, tlscacert: '/etc/docker/ca.pem' }, null, 2)}\n`);
    const before = readFileSync(file, 'utf8');
    assert.equal((await install(root, '--api')).code, 0);
    assert.deepEqual(json(file).hosts, [`unix://${UPSTREAM}`, 'tcp://0.0.0.0:2376']);
    const edited = { ...json(file), debug: true };
    writeFileSync(file, `${JSON.stringify(edited, null, 2)}\n`);
    const u = await install(root, '--uninstall');
    assert.equal(u.code, 0, u.stdout + u.stderr);
    const after = json(file);
    assert.equal(after.debug, true, 'the admin\'s edit is kept');
    assert.deepEqual(after.hosts, JSON.parse(before).hosts, 'hosts as before install');
    assert.equal(after['default-runtime'], JSON.parse(before)['default-runtime'], 'the default runtime as before install');
    assert.equal(after.runtimes.gpuguard, undefined);
  });

  test('refused: a TCP listener without tlsverify, -H in DOCKER_OPTS, an upstream users could squat, switching modes', async (t) => {
    if (missing(t, { files: [BINARY] })) return;
    const root = tree('packaged');
    const file = join(root, 'etc/docker/daemon.json');
    const orig = readFileSync(file, 'utf8');
    writeFileSync(file, JSON.stringify({ ...JSON.parse(orig), hosts: ['tcp://0.0.0.0:2375'] }));
    await refuses(root, ['--api'], /daemon\.json: "hosts" has tcp:\/\/0\.0\.0\.0:2375 without "tlsverify": true: anyone who reaches that port is root on this host/);
    writeFileSync(file, orig);

    mkdirSync(join(root, 'etc/default'), { recursive: true });
    writeFileSync(join(root, 'etc/default/docker'), 'DOCKER_OPTS="-H unix:///var/run/docker.sock --debug"\n');
    await refuses(root, ['--api'], /dockerd is started with -H unix:\/\/\/var\/run\/docker\.sock \(\/etc\/default\/docker \(DOCKER_OPTS\)\)/);
    rmSync(join(root, 'etc/default/docker'));

    // DESIGN.md's sketch put the upstream in /run/gpuguard, which is 1777 for GPU reservations: anyone could be there first.
    mkdirSync(join(root, 'run/gpuguard'), { recursive: true });
    chmodSync(join(root, 'run/gpuguard'), 0o1777);
    mkdirSync(join(root, 'etc/gpuguard'), { recursive: true });
    writeFileSync(join(root, 'etc/gpuguard/policy.yaml'), 'version: 1\napi: {upstream: /run/gpuguard/dockerd.sock}\n');
    await refuses(root, ['--api'], /api\.upstream \/run\/gpuguard\/dockerd\.sock is not a place only root controls: .*\/run\/gpuguard is mode 1777 \(writable by all\): anyone could create .*dockerd\.sock first/);
    writeFileSync(join(root, 'etc/gpuguard/policy.yaml'), 'version: 1\napi: {upstream: /run/gg-up/dockerd.sock}\n');
    mkdirSync(join(root, 'run/gg-up'));
    chmodSync(join(root, 'run/gg-up'), 0o755);
    await refuses(root, ['--api'], /\/run\/gg-up \(for api\.upstream\) exists with mode 0755: dockerd's socket must be root's alone; chmod 0700 \/run\/gg-up/);
    rmSync(join(root, 'etc/gpuguard'), { recursive: true });
    rmSync(join(root, 'run'), { recursive: true });

    // One mode per host: shim mode → --api, and back, go through --uninstall.
    assert.equal((await install(root)).code, 0);
    await refuses(root, ['--api'], /gpuguard is installed in shim mode here \(.*state\.json\): in API mode the real docker CLI goes back on PATH .*; run install\.sh --uninstall, then install\.sh --api/);
    assert.equal((await install(root, '--uninstall')).code, 0);
    assert.equal((await install(root, '--api')).code, 0);
    await refuses(root, [], /gpuguard is installed in API mode here \(.*state\.json\): run install\.sh --api to update it, or install\.sh --uninstall first/);
    assert.equal((await install(root, '--uninstall')).code, 0);
  });
});

describe('doctor on a systemd tree installed with --api (configuration only: no daemon, no face)', () => {
  interface Line {
    check: string;
    status: string;
    message: string;
    fix?: string;
  }
  const doctor = async (root: string): Promise<{ code: number; lines: Line[] }> => {
    const env: NodeJS.ProcessEnv = { ...process.env, GPUGUARD_NVIDIA_SMI: '/bin/true' };
    delete env.DOCKER_HOST;
    delete env.GPUGUARD_POLICY;
    const r = await run(BINARY, ['doctor', '--json', '--root', root], { env, extendEnv: false });
    return { code: r.code, lines: JSON.parse(r.stdout).checks };
  };
  const line = (lines: Line[], check: string) => lines.find((l) => l.check === check)!;

  test('the face and dockerd are not running: api-socket and dockerd-socket fail with what to start', async (t) => {
    if (missing(t, { files: [BINARY] })) return;
    const root = tree('systemd');
    assert.equal((await install(root, '--api')).code, 0);
    const d = await doctor(root);
    assert.equal(line(d.lines, 'api-socket').status, 'fail');
    assert.match(line(d.lines, 'api-socket').message, /nothing at \/var\/run\/docker\.sock/);
    assert.match(line(d.lines, 'api-socket').fix!, /systemctl start gpuguard-api\.socket/);
    assert.equal(line(d.lines, 'dockerd-socket').status, 'fail');
    assert.match(line(d.lines, 'dockerd-socket').message, /no socket at api\.upstream \/run\/gpuguard-dockerd\/docker\.sock/);
    assert.equal(line(d.lines, 'shim-on-path').status, 'ok');
    assert.equal(line(d.lines, 'dockerd-tcp').status, 'ok');
    assert.equal(line(d.lines, 'api-config'), undefined, 'the policy and the install agree');
    assert.equal(d.code, 2);
    // The admin moves the face in the policy but does not run install.sh --api again: the units still say otherwise.
    const policy = join(root, 'etc/gpuguard/policy.yaml');
    writeFileSync(policy, readFileSync(policy, 'utf8').replace('listen: /var/run/docker.sock', 'listen: /run/gpuguard-face.sock'));
    const moved = line((await doctor(root)).lines, 'api-config');
    assert.equal(moved.status, 'warn');
    assert.match(moved.message, /the policy's api \(listen \/run\/gpuguard-face\.sock, upstream \/run\/gpuguard-dockerd\/docker\.sock\) differs from what install\.sh set up \(listen \/var\/run\/docker\.sock/);
    assert.match(moved.fix!, /run install\.sh --api again/);
  });

  test('dockerd-tcp: TCP from a docker.socket drop-in, or from DOCKER_OPTS; tlsverify makes it an authenticated listener', async (t) => {
    if (missing(t, { files: [BINARY] })) return;
    const root = tree('systemd');
    assert.equal((await install(root, '--api')).code, 0);
    const tcp = join(root, 'etc/systemd/system/docker.socket.d/tcp.conf');
    writeFileSync(tcp, '[Socket]\nListenStream=0.0.0.0:2375\n');
    let d = await doctor(root);
    assert.equal(line(d.lines, 'dockerd-tcp').status, 'fail');
    assert.match(line(d.lines, 'dockerd-tcp').message, /dockerd listens on TCP without TLS client verification: 0\.0\.0\.0:2375 \(docker\.socket \(\/etc\/systemd\/system\/docker\.socket\.d\/tcp\.conf\)\)/);
    rmSync(tcp);
    const defaults = join(root, 'etc/default/docker');
    writeFileSync(defaults, `${readFileSync(defaults, 'utf8')}DOCKER_OPTS="-H tcp://0.0.0.0:2376"\n`);
    d = await doctor(root);
    assert.equal(line(d.lines, 'dockerd-tcp').status, 'fail');
    assert.match(line(d.lines, 'dockerd-tcp').message, /tcp:\/\/0\.0\.0\.0:2376 \(\$DOCKER_OPTS from \/etc\/default\/docker, in \/lib\/systemd\/system\/docker\.service's ExecStart\)/);
    const file = join(root, 'etc/docker/daemon.json');
    writeFileSync(file, JSON.stringify({ ...json(file), tlsverify: true }));
    d = await doctor(root);
    assert.equal(line(d.lines, 'dockerd-tcp').status, 'ok');
    assert.match(line(d.lines, 'dockerd-tcp').message, /require client certificates \(tlsverify\): tcp:\/\/0\.0\.0\.0:2376/);
  });
});
