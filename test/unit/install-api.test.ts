/**
 * The pure parts of API mode's install: systemd unit reading (drop-ins,
 * resets, ExecStart splitting with $DOCKER_OPTS), dockerd's host flags in
 * every pflag spelling, daemon.json `hosts` merged and unmerged, the policy's
 * `api` key added once, the decision of how dockerd moves, and the order of
 * systemctl calls.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { listSetting, parseEnvironmentFile, parseUnit, execArgv, splitCommand } from '../../src/install/systemd-units.ts';
import { dockerdFlags, parseHost, parseListenStream } from '../../src/install/dockerd-hosts.ts';
import { mergeApiHosts, unmergeApiHosts } from '../../src/install/daemon-json.ts';
import { ensureApiKey } from '../../src/install/policy-file.ts';
import { planApi, systemdStartPlan, systemdStopPlan, type DockerdLaunch } from '../../src/install/api.ts';
import { parsePolicy } from '../../src/policy/index.ts';
import { API_DEFAULTS } from '../../src/policy/schema.ts';
import { GpuguardError } from '../../src/errors.ts';

test('unit files: continuation lines, comments, sections; an empty assignment resets a list', () => {
  const unit = parseUnit('[Service]\n# comment\nExecStart=/usr/sbin/dockerd \\\n  -H fd://\n[Socket]\nListenStream=/run/docker.sock\n', '/lib/systemd/system/docker.socket');
  assert.deepEqual(listSetting(unit, 'Service', 'ExecStart').map((s) => s.value), ['/usr/sbin/dockerd  -H fd://']);
  const withDropIn = [...unit, ...parseUnit('[Socket]\nListenStream=\nListenStream=/run/gpuguard-dockerd/docker.sock\n', '/etc/systemd/system/docker.socket.d/gpuguard-api.conf')];
  const listen = listSetting(withDropIn, 'Socket', 'ListenStream');
  assert.deepEqual(listen.map((s) => [s.value, s.file]), [['/run/gpuguard-dockerd/docker.sock', '/etc/systemd/system/docker.socket.d/gpuguard-api.conf']]);
});

test('ExecStart: quotes, escapes, $VAR split into words, ${VAR} kept in one, the command prefix dropped', () => {
  const env = { DOCKER_OPTS: '-H tcp://0.0.0.0:2375  --debug', X: 'a b' };
  assert.deepEqual(execArgv('-/usr/sbin/dockerd -H fd:// $DOCKER_OPTS', env), ['/usr/sbin/dockerd', '-H', 'fd://', '-H', 'tcp://0.0.0.0:2375', '--debug']);
  assert.deepEqual(splitCommand('x "--label=${X}" \'$X\' pre${X}post a\\ b'), ['x', '--label=', '$X', 'prepost', 'a b']);
  assert.deepEqual(splitCommand('x "--label=${X}" pre${X}post', env), ['x', '--label=a b', 'prea bpost']);
  assert.deepEqual(execArgv('/usr/sbin/dockerd $MISSING'), ['/usr/sbin/dockerd']);
});

test('EnvironmentFile: quoted values, comments, export', () => {
  assert.deepEqual(parseEnvironmentFile('# c\nDOCKER_OPTS="-H unix:///x.sock --debug"\nexport A=1 # note\nB=\'two words\'\n'), { DOCKER_OPTS: '-H unix:///x.sock --debug', A: '1', B: 'two words' });
});

test('dockerd flags: every spelling of -H/--host, clusters, --tlsverify', () => {
  const f = dockerdFlags(['dockerd', '-H', 'fd://', '-Hunix:///a.sock', '-H=tcp://1.2.3.4:2376', '--host', 'unix:///b', '--host=tcp://:2375', '-DH', '/c.sock', '--tlsverify', '--config-file', '/etc/d.json', '--', '-H', 'x']);
  assert.deepEqual(f.hosts, ['fd://', 'unix:///a.sock', 'tcp://1.2.3.4:2376', 'unix:///b', 'tcp://:2375', '/c.sock']);
  assert.equal(f.tlsverify, true);
  assert.equal(f.configFile, '/etc/d.json');
  assert.equal(dockerdFlags(['dockerd', '--tlsverify=false']).tlsverify, false);
  assert.deepEqual(dockerdFlags(['dockerd', '--data-root', '-H', '--group', 'docker']).hosts, [], 'a value that looks like a flag is a value');
});

test('host specs and ListenStream values classified as dockerd and systemd read them', () => {
  assert.deepEqual(parseHost('unix://'), { kind: 'unix', path: '/var/run/docker.sock', spec: 'unix://' });
  assert.equal(parseHost('/run/x.sock').kind, 'unix');
  assert.equal(parseHost('fd://').kind, 'fd');
  assert.equal(parseHost('tcp://0.0.0.0:2375').kind, 'tcp');
  assert.equal(parseHost(':2375').kind, 'tcp');
  assert.equal(parseListenStream('2375').kind, 'tcp');
  assert.equal(parseListenStream('[::]:2375').kind, 'tcp');
  assert.equal(parseListenStream('/run/docker.sock').kind, 'unix');
});

test('daemon.json hosts: unix and fd become the upstream, TCP stays only behind tlsverify, the old value is kept for uninstall', () => {
  const up = '/run/gpuguard-dockerd/docker.sock';
  assert.deepEqual(mergeApiHosts({ debug: true }, up, 'd.json'), { config: { debug: true, hosts: [`unix://${up}`] }, previous: null });
  const tls = mergeApiHosts({ hosts: ['unix:///var/run/docker.sock', 'tcp://0.0.0.0:2376'], tlsverify: true }, up, 'd.json');
  assert.deepEqual(tls.config.hosts, [`unix://${up}`, 'tcp://0.0.0.0:2376']);
  assert.deepEqual(tls.previous, ['unix:///var/run/docker.sock', 'tcp://0.0.0.0:2376']);
  assert.throws(() => mergeApiHosts({ hosts: ['fd://', 'tcp://0.0.0.0:2375'], tls: true }, up, 'd.json'), /d\.json: "hosts" has tcp:\/\/0\.0\.0\.0:2375 without "tlsverify": true/);
  assert.throws(() => mergeApiHosts({ hosts: 'unix:///x' }, up, 'd.json'), /"hosts" must be a list of strings/);
  assert.deepEqual(unmergeApiHosts({ hosts: [`unix://${up}`], debug: true }, null), { debug: true });
  assert.deepEqual(unmergeApiHosts({ hosts: [`unix://${up}`] }, ['unix:///var/run/docker.sock']), { hosts: ['unix:///var/run/docker.sock'] });
  assert.deepEqual(unmergeApiHosts({ hosts: ['x'] }, undefined), { hosts: ['x'] }, 'socket-activated installs never touched hosts');
});

test('the policy gets an api key once, valid, comments and layout kept; an admin\'s own api key is theirs', () => {
  const text = '# site policy\nversion: 1\nmode: audit # rolling out\n';
  const e = ensureApiKey(text, API_DEFAULTS)!;
  assert.ok(e.text.startsWith(text), 'appended, the file as it was kept');
  assert.match(e.text, /^api: \{listen: \/var\/run\/docker\.sock, upstream: \/run\/gpuguard-dockerd\/docker\.sock, group: docker, mode: "0660"\}$/m);
  assert.deepEqual(parsePolicy(e.text, 'p').api, API_DEFAULTS);
  assert.deepEqual(ensureApiKey(e.text, API_DEFAULTS), { text: e.text, changed: [] });
  const flow = ensureApiKey('{version: 1}\n', API_DEFAULTS)!;
  assert.equal(parsePolicy(flow.text, 'p').api.upstream, API_DEFAULTS.upstream);
  assert.equal(ensureApiKey('- a\n', API_DEFAULTS), undefined);
  assert.equal(ensureApiKey('version: 1\napi: {group: ops}\n', API_DEFAULTS)!.changed.length, 0);
});

const launch = (hosts: string[][], socketListen: string[] = ['/run/docker.sock'], systemd = true): DockerdLaunch => ({
  systemd,
  sources: hosts.map((h, i) => ({ from: `source ${i}`, flags: { hosts: h } })),
  socket: systemd ? { file: '/lib/systemd/system/docker.socket', dropIns: [], settings: socketListen.map((v) => ({ section: 'Socket', key: 'ListenStream', value: v, file: '/lib/systemd/system/docker.socket' })) } : undefined,
});
const id = (v: string) => v;

test('how dockerd moves: docker.socket when socket-activated, daemon.json hosts without -H, refused with any other -H', () => {
  assert.equal(planApi(API_DEFAULTS, launch([['fd://']]), {}, 'd.json', id, '/').via, 'docker.socket');
  assert.equal(planApi(API_DEFAULTS, launch([[]], [], false), {}, 'd.json', id, '/').via, 'daemon.json');
  assert.throws(() => planApi(API_DEFAULTS, launch([['fd://'], ['unix:///var/run/docker.sock']]), {}, 'd.json', id, '/'), /dockerd is started with -H unix:\/\/\/var\/run\/docker\.sock \(source 1\)/);
  assert.throws(() => planApi(API_DEFAULTS, launch([['fd://']], ['/run/docker.sock', '2375']), {}, 'd.json', id, '/'), /docker\.socket listens on 2375 \(TCP/);
  assert.throws(() => planApi(API_DEFAULTS, launch([['fd://']]), { hosts: [] }, 'd.json', id, '/'), /dockerd refuses to start with both/);
  assert.throws(() => planApi(API_DEFAULTS, launch([['fd://']], [], false), {}, 'd.json', id, '/'), /no systemd docker\.socket to move/);
  assert.throws(() => planApi(API_DEFAULTS, launch([[]]), {}, 'd.json', id, '/'), /docker\.socket holds \/run\/docker\.sock .* but docker\.service does not take it/);
  assert.throws(() => planApi({ ...API_DEFAULTS, upstream: '/tmp/dockerd.sock' }, launch([['fd://']]), {}, 'd.json', id, '/'), (err: unknown) => err instanceof GpuguardError && /api\.upstream \/tmp\/dockerd\.sock is not a place only root controls: \/tmp is mode 1777/.test(err.message));
});

test('systemctl order: dockerd stops before the face takes its path; uninstall stops the face first', () => {
  const s = { ...API_DEFAULTS, via: 'docker.socket' as const, systemd: true };
  assert.deepEqual(systemdStartPlan(s, { dockerMoved: true, faceChanged: true }), [
    ['daemon-reload'],
    ['stop', 'gpuguard-api.service', 'gpuguard-api.socket', 'docker.service', 'docker.socket'],
    ['start', 'docker.socket', 'docker.service'],
    ['start', 'gpuguard-api.socket', 'gpuguard-api.service'],
  ]);
  assert.deepEqual(systemdStartPlan({ ...s, via: 'daemon.json' }, { dockerMoved: false, faceChanged: true }), [
    ['daemon-reload'],
    ['stop', 'gpuguard-api.service', 'gpuguard-api.socket'],
    ['start', 'gpuguard-api.socket', 'gpuguard-api.service'],
  ]);
  assert.deepEqual(systemdStartPlan(s, { dockerMoved: false, faceChanged: false, binaryChanged: true }), [['daemon-reload'], ['restart', 'gpuguard-api.service']], 'an upgrade restarts the face; systemd keeps its socket meanwhile');
  assert.deepEqual(systemdStopPlan(s), {
    before: [['stop', 'gpuguard-api.service', 'gpuguard-api.socket']],
    after: [['daemon-reload'], ['stop', 'docker.service', 'docker.socket'], ['start', 'docker.socket', 'docker.service']],
  });
});
