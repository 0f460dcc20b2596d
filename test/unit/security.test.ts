/**
 * The security policy's pure parts: the argv translation (one line in, the
 * asks out), the shared helpers (bind specs, local volume options,
 * capabilities, security options, roots compared by components), the
 * decision (deny, keep, admin override, audit), and the path resolution on
 * a real directory tree with symlinks.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parsePolicy } from '../../src/policy/load.ts';
import { resolveUser } from '../../src/policy/effective.ts';
import { applyMode, firstRefusal } from '../../src/policy/decide.ts';
import {
  bindRoots, containerRefs, decideSecurity, emptySecurityRequest, isWithinRoot, localVolumeHostPath, loosening, normaliseCapability, parseBindSpec,
  type SecurityFacts, type SecurityRequest,
} from '../../src/policy/security.ts';
import { accessOf, gatherSecurityFacts, resolveLikeDaemon } from '../../src/security/facts.ts';
import { csvRecord, securityRequestOf, volumeCreateRequestOf } from '../../src/docker-shim/security.ts';
import { scanDockerArgv } from '../../src/docker-shim/argv.ts';
import { shellWords } from '../../src/docker-shim/quote.ts';
import { scanGlobals, createCommand } from '../../src/docker-shim/globals.ts';
import { execSecurityRequest } from '../../src/docker-shim/exec-flags.ts';

const POLICY = `version: 1
admins: [root2]
security:
  privileged: false
  capAdd: [SYS_PTRACE]
  devices: false
  hostNamespaces: false
  otherUsersContainers: false
  unconfined: false
  binds: ["{home}", "/srv/*", "/scratch/{user}"]
`;
const policy = parsePolicy(POLICY, 'test.yaml');
const open = parsePolicy('version: 1\n', 'open.yaml');
const alice = resolveUser(policy, { user: 'alice', uid: 1001, unixGroups: [], home: '/home/alice' });
const admin = resolveUser(policy, { user: 'root2', uid: 1002, unixGroups: [], home: '/home/root2' });

function request(line: string, cwd = '/home/alice/proj'): SecurityRequest {
  const scan = scanDockerArgv(shellWords(line))!;
  return securityRequestOf(scan, cwd);
}

test('schema: a security block with keys left out takes the safe values', () => {
  const p = parsePolicy('version: 1\nsecurity: {capAdd: [NET_ADMIN]}\n', 's.yaml');
  assert.deepEqual(p.security, { privileged: false, capAdd: ['NET_ADMIN'], devices: false, hostNamespaces: false, otherUsersContainers: false, unconfined: false, binds: ['{home}'] });
  assert.equal(open.security, undefined);
  assert.deepEqual(parsePolicy('version: 1\nsecurity: {binds: ["/*", "{home}/*", "{home}", "/scratch/{user}/x"]}\n', 's.yaml').security?.binds.length, 4);
  for (const [bad, msg] of [
    ['binds: [srv]', /expected an absolute path or one starting with \{home\}/],
    ['binds: ["/data/{group}"]', /\{home\} and \{user\} as the only placeholders.*got "\/data\/\{group\}"/],
    ['binds: ["/srv/*/x"]', /"\*" only as "dir\/\*"/],
    ['binds: ["/srv*"]', /"\*" only as "dir\/\*"/],
    ['capAdd: ["SYS ADMIN"]', /capability name/],
    ['bogus: true', /bogus/],
  ] as const) {
    assert.throws(() => parsePolicy(`version: 1\nsecurity: {${bad}}\n`, 's.yaml'), msg, bad);
  }
});

test('argv: every spelling of the flags becomes an ask, with the spelling it came from', () => {
  const r = request(
    "run --privileged -v /etc:/x -v ./data:/d:ro -v named:/n -v /anon --volume=/root:/r --mount type=BIND,src=/var/run/docker.sock,dst=/s --mount 'type=volume,source=v1,target=/v,volume-opt=type=none,volume-opt=o=bind,volume-opt=device=/etc' --mount type=tmpfs,dst=/t --cap-add sys_admin --cap-add=CAP_NET_ADMIN --device /dev/sda --device nvidia.com/gpu=0 --device /dev/nvidia0 --device-cgroup-rule 'c 195:* rmw' --pid host --ipc=container:other --net host --network name=container:x,alias=a --uts host --userns=host --cgroupns host --security-opt seccomp=unconfined --security-opt label:disable --volumes-from c1:ro --link c2:alias bb",
  );
  assert.deepEqual(r.privileged, [{ from: '--privileged' }]);
  assert.deepEqual(r.binds.map((b) => [b.source, b.from]), [
    ['/etc', '-v /etc:/x'],
    ['/home/alice/proj/data', '-v ./data:/d:ro'],
    ['/root', '--volume /root:/r'],
    ['/var/run/docker.sock', '--mount type=BIND,src=/var/run/docker.sock,dst=/s'],
    ['/etc', '--mount type=volume,source=v1,target=/v,volume-opt=type=none,volume-opt=o=bind,volume-opt=device=/etc'],
  ]);
  assert.deepEqual(r.volumes.map((v) => v.name), ['named', 'v1']);
  assert.deepEqual(r.capAdd.map((c) => c.cap), ['sys_admin', 'CAP_NET_ADMIN']);
  assert.deepEqual(r.devices.map((d) => d.device), ['/dev/sda'], 'GPU devices are the allocator\'s');
  assert.deepEqual(r.deviceCgroupRules.map((d) => d.rule), ['c 195:* rmw']);
  assert.deepEqual(r.namespaces.map((n) => `${n.kind}=${n.mode}`).sort(), ['cgroupns=host', 'ipc=container:other', 'network=container:x', 'network=host', 'pid=host', 'userns=host', 'uts=host']);
  assert.deepEqual(r.securityOpt.map((o) => o.opt), ['seccomp=unconfined', 'label:disable']);
  assert.deepEqual(containerRefs(r).sort(), ['c1', 'c2', 'other', 'x']);
});

test('argv: the last --pid/--privileged wins (pflag); --privileged=false asks nothing', () => {
  assert.deepEqual(request('run --pid host --pid private bb').namespaces, [{ kind: 'pid', mode: 'private', from: '--pid private' }]);
  assert.deepEqual(request('run --privileged=false bb').privileged, []);
  assert.deepEqual(request('run --privileged=false --privileged bb').privileged, [{ from: '--privileged' }]);
  assert.equal(request('run --privileged=maybe bb').privileged.length, 1, 'a value docker refuses is judged, never ignored');
  assert.deepEqual(request('run bb --privileged -v /:/x').binds, [], 'words after the image are the command');
});

test('csv: Go encoding/csv, one record', () => {
  assert.deepEqual(csvRecord('a=1,b=2'), ['a=1', 'b=2']);
  assert.deepEqual(csvRecord('"src=/a,b",dst=/x'), ['src=/a,b', 'dst=/x']);
  assert.deepEqual(csvRecord('"a ""q"" b",c'), ['a "q" b', 'c']);
  assert.deepEqual(csvRecord('\n\ntype=bind,src=/etc\n,dst=/x'), ['type=bind', 'src=/etc']);
  assert.equal(csvRecord('a"b,c'), undefined);
  assert.equal(csvRecord('"ab"c,d'), undefined);
  assert.equal(csvRecord('"abc'), undefined);
  // A bind docker would refuse to parse is still judged (plain split).
  const scan = scanDockerArgv(['run', '--mount', 'type=bind,src=/etc",dst=/x', 'bb'])!;
  assert.deepEqual(securityRequestOf(scan, '/').binds.map((b) => b.source), ['/etc"']);
});

test('helpers: -v specs, local volume options, capabilities, security options', () => {
  assert.deepEqual(parseBindSpec('/a:/b:ro'), { kind: 'bind', source: '/a', relative: false, readOnly: true });
  assert.deepEqual(parseBindSpec('/a:/b:z,ro'), { kind: 'bind', source: '/a', relative: false, readOnly: true });
  assert.deepEqual(parseBindSpec('/a:/b:rw'), { kind: 'bind', source: '/a', relative: false, readOnly: false });
  assert.deepEqual(parseBindSpec('vol:/b'), { kind: 'volume', name: 'vol', readOnly: false });
  assert.deepEqual(parseBindSpec('/only'), { kind: 'anonymous' });
  assert.deepEqual(parseBindSpec('./x:/b'), { kind: 'bind', source: './x', relative: true, readOnly: false });
  assert.deepEqual(parseBindSpec('~/x:/b'), { kind: 'bind', source: '~/x', relative: true, readOnly: false });
  assert.equal(localVolumeHostPath(undefined, { type: 'none', o: 'bind', device: '/etc' }), '/etc');
  assert.equal(localVolumeHostPath('local', { o: 'ro,rbind', device: 'etc' }), '/etc', 'a relative device is relative to dockerd\'s cwd, /');
  assert.equal(localVolumeHostPath('local', { type: 'ext4', device: '/dev/sda1' }), '/dev/sda1');
  assert.equal(localVolumeHostPath('local', { type: 'nfs', o: 'addr=10.0.0.1', device: ':/export' }), undefined);
  assert.equal(localVolumeHostPath('local', { type: 'tmpfs', device: 'tmpfs' }), undefined);
  assert.equal(localVolumeHostPath('rexray', { device: '/etc', o: 'bind' }), undefined);
  assert.equal(normaliseCapability(' sys_admin'), 'CAP_SYS_ADMIN');
  assert.equal(normaliseCapability('all'), 'ALL');
  assert.equal(loosening('no-new-privileges'), undefined);
  assert.equal(loosening('no-new-privileges:true'), undefined);
  assert.equal(loosening('apparmor=docker-default'), undefined);
  for (const o of ['seccomp=unconfined', 'seccomp:unconfined', 'SECCOMP=UNCONFINED', 'apparmor:unconfined', 'label=disable', 'label:type:spc_t', 'systempaths=unconfined', 'seccomp={"defaultAction":"SCMP_ACT_ALLOW"}', 'bogus=1']) {
    assert.ok(loosening(o), o);
  }
});

test('roots: filled in per user, compared by path components, never by string prefix', () => {
  const roots = bindRoots(policy.security!, alice).map((r) => ({ ...r, resolved: r.rendered }));
  assert.deepEqual(roots.map((r) => [r.rendered, r.children]), [['/home/alice', false], ['/srv', true], ['/scratch/alice', false]]);
  const ok = (p: string) => roots.some((r) => isWithinRoot(p, r));
  assert.ok(ok('/home/alice'));
  assert.ok(ok('/home/alice/x/y'));
  assert.ok(!ok('/home/alicea'));
  assert.ok(!ok('/home/alicea/x'));
  assert.ok(!ok('/home'));
  assert.ok(ok('/srv/datasets'));
  assert.ok(!ok('/srv'), 'dir/* is what is below dir, not dir');
  assert.ok(!ok('/srv/.secret'), 'as a shell glob: no hidden directories');
  assert.ok(!ok('/srvx/a'));
  assert.ok(ok('/scratch/alice/run1'));
  assert.ok(!ok('/scratch/bob'));
  const noHome = bindRoots(policy.security!, { user: 'x' });
  assert.match(noHome[0]!.note!, /no home directory/);
  assert.match(bindRoots(policy.security!, { user: 'x', home: '/' })[0]!.note!, /home of x is \//);
});

test('resolve: .. and symlinks as dockerd will, a missing part judged by its nearest existing parent', () => {
  const root = mkdtempSync(join(tmpdir(), 'gg-sec-'));
  try {
    mkdirSync(join(root, 'home/bob/real'), { recursive: true });
    mkdirSync(join(root, 'etc'));
    writeFileSync(join(root, 'etc/shadow'), '');
    symlinkSync(join(root, 'etc'), join(root, 'home/bob/etc-link'));
    symlinkSync('../../etc', join(root, 'home/bob/rel-link'));
    symlinkSync('real', join(root, 'home/bob/inside'));
    symlinkSync('loop2', join(root, 'home/bob/loop1'));
    symlinkSync('loop1', join(root, 'home/bob/loop2'));
    symlinkSync(join(root, 'etc/newdir'), join(root, 'home/bob/dangling'));
    const r = (p: string) => resolveLikeDaemon(join(root, p));
    assert.deepEqual(r('home/bob/real'), { resolved: join(root, 'home/bob/real'), existing: join(root, 'home/bob/real') });
    assert.deepEqual(r('home/bob/etc-link/shadow'), { resolved: join(root, 'etc/shadow'), existing: join(root, 'etc/shadow') });
    assert.deepEqual(r('home/bob/rel-link'), { resolved: join(root, 'etc'), existing: join(root, 'etc') });
    assert.deepEqual(r('home/bob/inside/x/y'), { resolved: join(root, 'home/bob/real/x/y'), existing: join(root, 'home/bob/real') });
    // dockerd cleans the path before it looks anything up: link/.. is the directory, not the link target's parent.
    assert.deepEqual(r('home/bob/etc-link/../real'), { resolved: join(root, 'home/bob/real'), existing: join(root, 'home/bob/real') });
    assert.deepEqual(r('home/bob/../../etc'), { resolved: join(root, 'etc'), existing: join(root, 'etc') });
    assert.deepEqual(r('home/bob/dangling/sub'), { resolved: join(root, 'etc/newdir/sub'), existing: join(root, 'etc') });
    assert.match((r('home/bob/loop1') as { error: string }).error, /too many symbolic links/);
    assert.match((resolveLikeDaemon('/proc/self/cwd') as { error: string }).error, /\/proc/);
    assert.match((resolveLikeDaemon('/dev/fd/0') as { error: string }).error, /\/proc/);
    assert.deepEqual(resolveLikeDaemon('relative'), { error: 'not an absolute path' });
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

const RW = { read: true, write: true };
/** Facts for a decision: roots as rendered; every path the user may read and write unless said otherwise. */
function facts(over: Partial<SecurityFacts> = {}, user = alice): SecurityFacts {
  const roots = bindRoots(policy.security!, user).map((r) => (r.note ? r : { ...r, resolved: r.rendered }));
  const paths = Object.fromEntries(Object.entries(over.paths ?? {}).map(([k, v]) => [k, 'error' in v || v.access ? v : { ...v, access: RW }]));
  return { roots, containers: {}, volumes: {}, ...over, paths };
}

test('decide: refusals name the flag, the rule and what is allowed; allowed asks are kept', () => {
  const req = request('run --privileged --cap-add SYS_PTRACE --cap-add SYS_ADMIN -v /home/alice/x:/x -v /home/alicea:/y --pid host --security-opt seccomp=unconfined --volumes-from theirs bb');
  const f = facts({
    paths: { '/home/alice/x': { resolved: '/home/alice/x', existing: '/home/alice' }, '/home/alicea': { resolved: '/home/alicea', existing: '/home/alicea' } },
    containers: { theirs: { user: 'bob', method: 'label', evidence: 'label ds01.user=bob', name: 'theirs' } },
  });
  const d = decideSecurity(policy, alice, req, f);
  const line = (rule: string, verdict: string) => d.filter((x) => x.rule === rule && x.verdict === verdict).map((x) => x.reason);
  assert.deepEqual(line('security.privileged', 'deny'), ['--privileged: a privileged container is root on the host (security.privileged: false); remove it, and add only the capabilities you need with --cap-add (allowed: SYS_PTRACE)']);
  assert.deepEqual(line('security.capAdd', 'keep'), ['--cap-add SYS_PTRACE: CAP_SYS_PTRACE is allowed (security.capAdd)']);
  assert.deepEqual(line('security.capAdd', 'deny'), ['--cap-add SYS_ADMIN: capability SYS_ADMIN may not be added (security.capAdd: allowed: SYS_PTRACE); remove it']);
  assert.deepEqual(line('security.binds', 'keep'), ['-v /home/alice/x:/x: /home/alice/x (does not exist yet: judged by /home/alice) is under {home} = /home/alice'.replace(' (does not exist yet: judged by /home/alice)', '')]);
  assert.deepEqual(line('security.binds', 'deny'), ['-v /home/alicea:/y: /home/alicea is not a path you may mount (security.binds); you may mount paths under /home/alice, /srv/* or /scratch/alice; for other data use a named volume']);
  assert.deepEqual(line('security.hostNamespaces', 'deny'), ['--pid host: the host\'s process (pid) namespace may not be shared (security.hostNamespaces: false); remove it']);
  assert.match(line('security.unconfined', 'deny')[0]!, /^--security-opt seccomp=unconfined: it turns off seccomp \(security.unconfined: false\); remove it \(debuggers need only --cap-add SYS_PTRACE/);
  assert.deepEqual(line('security.otherUsersContainers', 'deny'), ['--volumes-from theirs: container "theirs" belongs to bob (method: label, label ds01.user=bob) (security.otherUsersContainers: false); you may use the volumes of your own containers only']);
  assert.equal(firstRefusal(d)?.rule, 'security.privileged');
  assert.ok(!d.some((x) => x.reason.includes('\n')), 'one line each');
});

test('decide: symlinks, missing paths, errors and the daemon socket', () => {
  const req = emptySecurityRequest();
  req.binds.push({ source: '/home/alice/etc', from: '-v /home/alice/etc:/x' }, { source: '/home/alice/new/dir', from: '-v /home/alice/new/dir:/y' }, { source: '/var/run/docker.sock', from: '-v /var/run/docker.sock:/s' }, { source: '/home/alice/loop', from: '-v /home/alice/loop:/l' }, { source: '/unresolved', from: '-v /unresolved:/u' });
  const d = decideSecurity(policy, alice, req, facts({
    paths: {
      '/home/alice/etc': { resolved: '/etc', existing: '/etc' },
      '/home/alice/new/dir': { resolved: '/home/alice/new/dir', existing: '/home/alice' },
      '/var/run/docker.sock': { resolved: '/run/docker.sock', existing: '/run/docker.sock' },
      '/home/alice/loop': { error: 'too many symbolic links at /home/alice/loop' },
    },
  }));
  assert.match(d[0]!.reason, /^-v \/home\/alice\/etc:\/x: \/home\/alice\/etc \(resolves to \/etc\) is not a path you may mount/);
  assert.equal(d[1]!.verdict, 'keep');
  assert.match(d[2]!.reason, /\(resolves to \/run\/docker.sock\) is not a path you may mount: it is the Docker daemon's socket, which is root on the host/);
  assert.match(d[3]!.reason, /cannot be resolved \(too many symbolic links at \/home\/alice\/loop\)/);
  assert.match(d[4]!.reason, /was not resolved/);
  assert.deepEqual(d.map((x) => x.verdict), ['deny', 'keep', 'deny', 'deny', 'deny']);
});

test('decide: an existing volume is judged by what it mounts; containers by their owner', () => {
  const req = request('run -v alicevol:/a -v bobvol:/b -v plain:/p -v fresh:/f --network container:mine --ipc container:ghost --pid container:nobodys bb');
  const d = decideSecurity(policy, alice, req, facts({
    volumes: { alicevol: { driver: 'local', options: { type: 'none', o: 'bind', device: '/home/alice/data' } }, bobvol: { driver: 'local', options: { type: 'none', o: 'bind', device: '/home/bob' } }, plain: { driver: 'local', options: {} }, fresh: null },
    paths: { '/home/alice/data': { resolved: '/home/alice/data', existing: '/home/alice/data' }, '/home/bob': { resolved: '/home/bob', existing: '/home/bob' } },
    containers: { mine: { user: 'alice', method: 'label', evidence: 'label ds01.user=alice', name: 'mine' }, ghost: { missing: true }, nobodys: { user: undefined, method: 'none', evidence: 'no evidence of an owner', name: 'nobodys' } },
  }));
  const summary = d.map((x) => `${x.verdict} ${x.reason.slice(0, 60)}`);
  assert.deepEqual(summary, [
    `keep --network container:mine: container "mine" is alice's (label`,
    'deny --ipc container:ghost: there is no container "ghost", so gpu',
    'deny --pid container:nobodys: container "nobodys" has no known ow',
    'keep -v alicevol:/a: volume alicevol mounts /home/alice/data is u',
    'deny -v bobvol:/b: volume bobvol mounts /home/bob is not a path y',
  ]);
});

test('decide: no security key decides nothing; admins are overridden, never refused; audit warns', () => {
  const req = request('run --privileged -v /:/host --cap-add ALL --device /dev/sda bb');
  assert.deepEqual(decideSecurity(open, alice, req, facts()), []);
  const f = facts({ paths: { '/': { resolved: '/', existing: '/' } } }, admin);
  const d = decideSecurity(policy, admin, req, f);
  assert.ok(d.length === 4 && d.every((x) => x.verdict === 'override'), JSON.stringify(d));
  assert.match(d[0]!.reason, /^--privileged: a privileged container: allowed because root2 is an admin \(logged\)$/);
  const audited = applyMode(decideSecurity(parsePolicy(`${POLICY}mode: audit\n`, 'a.yaml'), alice, req, facts({ paths: { '/': { resolved: '/', existing: '/' } } })), 'audit');
  assert.ok(audited.every((x) => x.verdict === 'warn'), JSON.stringify(audited));
  assert.match(audited.find((x) => x.rule === 'security.binds')!.reason, /^audit mode, not refused: -v \/:\/host: \/ is not a path you may mount: it is the host's root file system/);
});

test('volume create: -o options, both spellings, the last of a key wins; plain volumes ask nothing', () => {
  const v = (line: string) => {
    const argv = shellWords(line);
    const g = scanGlobals(argv);
    const cmd = createCommand(argv, g)!;
    assert.equal(cmd.kind, 'volume-create');
    return volumeCreateRequestOf(argv, cmd.flagsFrom);
  };
  assert.deepEqual(v('volume create -o type=none -o o=bind -o device=/etc myvol').request.binds, [{ source: '/etc', from: 'docker volume create -o type=none -o o=bind -o device=/etc', readOnly: false }]);
  assert.equal(v('volume create -o type=none -o o=bind,ro -o device=/etc myvol').request.binds[0]!.readOnly, true);
  assert.equal(v('volume create myvol --opt=o=bind --opt device=/home/bob').request.binds[0]!.source, '/home/bob');
  assert.equal(v('volume create -odevice=/etc -oo=bind').request.binds[0]!.source, '/etc');
  assert.equal(v('volume create -o device=/etc -o o=bind -o device=/srv/x').request.binds[0]!.source, '/srv/x');
  assert.deepEqual(v('volume create myvol').request.binds, []);
  assert.deepEqual(v('volume create -d rexray -o device=/etc -o o=bind').request.binds, []);
  assert.equal(v('volume create x -o o=bind -o device=/etc').name, 'x');
  assert.ok(v('volume create --help').help);
  assert.equal(createCommand(['volume', 'ls'], scanGlobals(['volume', 'ls'])), undefined);
});

test('gather: no security key, no I/O; admins and named containers', async () => {
  let asked = 0;
  const docker = async () => {
    asked++;
    throw new Error('should not be asked');
  };
  const req = request('run --volumes-from x -v vol:/v -v /etc:/e bb');
  const none = await gatherSecurityFacts(open, alice, req, { local: true, docker });
  assert.deepEqual(none, { paths: {}, roots: [], containers: {}, volumes: {} });
  const forAdmin = await gatherSecurityFacts(policy, admin, req, { local: true, docker });
  assert.equal(asked, 0, 'an admin may use every container and volume: nothing asked');
  assert.deepEqual(Object.keys(forAdmin.paths), ['/etc']);
  const remote = await gatherSecurityFacts(policy, alice, request('run -v /home/alice:/h bb'), { local: false });
  assert.match((remote.paths['/home/alice'] as { error: string }).error, /another host/);
  const failing = await gatherSecurityFacts(policy, alice, req, { local: true, docker });
  assert.match((failing.containers.x as { error: string }).error, /should not be asked/);
  assert.match((failing.volumes.vol as { error: string }).error, /should not be asked/);
  assert.equal(asked, 1, 'one connection for both lookups');
});

test('exec: --privileged before the container asks; after it, it is the command', () => {
  assert.deepEqual(execSecurityRequest(['--privileged', 'c', 'sh'])?.privileged, [{ from: 'docker exec --privileged' }]);
  assert.deepEqual(execSecurityRequest(['-it', '--privileged=true', '-u', '0', 'c', 'sh'])?.privileged, [{ from: 'docker exec --privileged=true' }]);
  assert.equal(execSecurityRequest(['--privileged=false', 'c', 'sh']), undefined);
  assert.equal(execSecurityRequest(['c', 'sh', '--privileged']), undefined);
  assert.equal(execSecurityRequest(['-e', '--privileged', 'c', 'sh']), undefined, '-e takes a value');
});

test('decide: under an allowed root, no more than the user has on the host', () => {
  const req = emptySecurityRequest();
  req.binds.push(
    { source: '/srv/datasets', from: '-v /srv/datasets:/d', readOnly: false },
    { source: '/srv/datasets', from: '-v /srv/datasets:/d:ro', readOnly: true },
    { source: '/srv/alice-only', from: '-v /srv/alice-only:/x:ro', readOnly: true },
    { source: '/srv/new', from: '-v /srv/new:/n' },
    { source: '/home/alice/new', from: '-v /home/alice/new:/n' },
    { source: '/srv/unchecked', from: '-v /srv/unchecked:/u:ro', readOnly: true },
  );
  const d = decideSecurity(policy, resolveUser(policy, { user: 'bob', uid: 1003, unixGroups: [], home: '/home/bob' }), req, {
    roots: [{ written: '/srv/*', rendered: '/srv', children: true, resolved: '/srv' }, { written: '{home}', rendered: '/home/alice', children: false, resolved: '/home/alice' }],
    containers: {},
    volumes: {},
    paths: {
      '/srv/datasets': { resolved: '/srv/datasets', existing: '/srv/datasets', access: { read: true, write: false } },
      '/srv/alice-only': { resolved: '/srv/alice-only', existing: '/srv/alice-only', access: { read: false, write: false } },
      '/srv/new': { resolved: '/srv/new', existing: '/srv', access: { read: true, write: false } },
      '/home/alice/new': { resolved: '/home/alice/new', existing: '/home/alice', access: RW },
      '/srv/unchecked': { resolved: '/srv/unchecked', existing: '/srv/unchecked' },
    },
  });
  assert.deepEqual(d.map((x) => `${x.verdict} ${x.reason}`), [
    'deny -v /srv/datasets:/d: bob cannot write to /srv/datasets (security.binds: a container gets no more than you have on the host); mount it read-only (:ro)',
    'keep -v /srv/datasets:/d:ro: /srv/datasets is under /srv/*, read-only',
    'deny -v /srv/alice-only:/x:ro: bob cannot read /srv/alice-only (security.binds: a container gets no more than you have on the host)',
    'deny -v /srv/new:/n: /srv/new does not exist and bob cannot create it in /srv (dockerd would, as root) (security.binds: a container gets no more than you have on the host)',
    'keep -v /home/alice/new:/n: /home/alice/new is under {home} = /home/alice',
    'deny -v /srv/unchecked:/u:ro: gpuguard could not check what bob may do with /srv/unchecked (security.binds: a container gets no more than you have on the host)',
  ]);
});

test('access: as the user (access(2)) and for another uid (mode bits)', () => {
  const root = mkdtempSync(join(tmpdir(), 'gg-acc-'));
  try {
    mkdirSync(join(root, 'open'), { mode: 0o755 });
    mkdirSync(join(root, 'closed'), { mode: 0o700 });
    writeFileSync(join(root, 'file'), '', { mode: 0o644 });
    const me = process.getuid?.() ?? 0;
    const self = accessOf({ user: 'me', uid: me });
    assert.deepEqual(self(join(root, 'open')), { read: true, write: true });
    // Another uid: not the owner, not in the group (nobody's groups), so the "other" bits decide.
    const other = accessOf({ user: 'nobody', uid: 65534 });
    assert.deepEqual(other(join(root, 'open')), { read: true, write: false });
    assert.deepEqual(other(join(root, 'closed')), { read: false, write: false });
    assert.deepEqual(other(join(root, 'file')), { read: true, write: false });
    assert.deepEqual(other(join(root, 'missing')), { read: false, write: false });
    assert.deepEqual(accessOf({ user: 'root', uid: 0 })(join(root, 'closed')), { read: true, write: true });
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});
