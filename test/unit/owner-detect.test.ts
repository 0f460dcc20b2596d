/** Owner detection (pure) and the policy's rule on who may act on a container. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { detectOwner, gpusOf, interfaceOf, type OwnerFacts } from '../../src/ownership/detect.ts';
import { ContainerDetails } from '../../src/docker/gateway.ts';
import { listsOnlyOwn, mayActOn } from '../../src/policy/ownership.ts';

const USERS: Record<string, number> = { alice: 1001, bob: 1002, carol: 1003, 'h.baker@hertie-school.lan': 1722830498 };
/** Host paths and their owners. */
const FILES: Record<string, number> = {
  '/home/alice/proj': 1001,
  '/home/alice/planted': 1002,
  '/home/bob/data': 1002,
  '/home/h.baker@hertie-school.lan/thesis': 1722830498,
  '/srv/compose/carol': 1003,
  '/srv/compose/root': 0,
};
const IMAGES: Record<string, Record<string, string>> = {
  'sha256:plain': {},
  'sha256:labelled': { 'ds01.user': 'mallory', 'aime.mlc.USER': 'mallory', 'ds01.interface': 'docker' },
  'sha256:selfish': { 'ds01.user': 'alice', 'ds01.created_at': '2025-01-01T00:00:00Z' },
};
const facts: OwnerFacts = {
  imageLabels: (id) => IMAGES[id],
  userByUid: (uid) => {
    const user = Object.keys(USERS).find((u) => USERS[u] === uid);
    return user ? { user, uid } : undefined;
  },
  userByName: (name) => (USERS[name] === undefined ? undefined : { user: name, uid: USERS[name]! }),
  ownerUid: (path) => FILES[path],
};

function container(o: { name?: string; created?: string; image?: string; labels?: Record<string, string>; binds?: string[]; mounts?: { Type: string; Source: string }[]; deviceRequests?: unknown[] } = {}): ContainerDetails {
  return ContainerDetails.parse({
    Id: 'f'.repeat(64),
    Name: `/${o.name ?? 'c1'}`,
    Created: o.created ?? '2026-11-23T18:00:00Z',
    Image: o.image ?? 'sha256:plain',
    State: { Status: 'running', Running: true },
    Config: { Image: 'bb', Labels: o.labels ?? {} },
    HostConfig: { Binds: o.binds ?? null, DeviceRequests: o.deviceRequests ?? null },
    Mounts: o.mounts ?? [],
  });
}
const detect = (c: ContainerDetails) => {
  const o = detectOwner(c, 'ds01', facts);
  return [o.user ?? 'unknown', o.method];
};

test('each method, alone', () => {
  const cases: [string, ContainerDetails, [string, string]][] = [
    ['<p>.user label', container({ labels: { 'ds01.user': 'alice' } }), ['alice', 'label']],
    ['aime.mlc.USER label', container({ labels: { 'aime.mlc.USER': 'bob' } }), ['bob', 'aime_label']],
    ['name pattern', container({ name: 'proj._.1003' }), ['carol', 'name_pattern']],
    ['name pattern, LDAP uid', container({ name: 'thesis._.1722830498' }), ['h.baker@hertie-school.lan', 'name_pattern']],
    ['devcontainer folder', container({ labels: { 'devcontainer.local_folder': '/home/alice/proj' } }), ['alice', 'devcontainer']],
    ['bind mount under a home, owned by that user', container({ mounts: [{ Type: 'bind', Source: '/home/bob/data' }] }), ['bob', 'mount_path']],
    ['bind mount from HostConfig.Binds', container({ binds: ['/home/h.baker@hertie-school.lan/thesis:/work:ro'] }), ['h.baker@hertie-school.lan', 'mount_path']],
    ['compose working dir', container({ labels: { 'com.docker.compose.project.working_dir': '/srv/compose/carol' } }), ['carol', 'compose']],
    ['nothing', container(), ['unknown', 'none']],
  ];
  for (const [what, c, want] of cases) assert.deepEqual(detect(c), want, what);
});

test('the seeds\' priority order: the first method with evidence wins', () => {
  const all = container({
    name: 'x._.1003',
    labels: { 'ds01.user': 'alice', 'aime.mlc.USER': 'bob', 'devcontainer.local_folder': '/home/alice/proj', 'com.docker.compose.project.working_dir': '/srv/compose/carol' },
    mounts: [{ Type: 'bind', Source: '/home/bob/data' }],
  });
  assert.deepEqual(detect(all), ['alice', 'label']);
  const noLabel = container({ name: 'x._.1003', labels: { 'aime.mlc.USER': 'bob' } });
  assert.deepEqual(detect(noLabel), ['bob', 'aime_label']);
  assert.deepEqual(detect(container({ name: 'x._.1003', labels: { 'devcontainer.local_folder': '/home/alice/proj' } })), ['carol', 'name_pattern']);
  assert.deepEqual(
    detect(container({ labels: { 'devcontainer.local_folder': '/home/alice/proj' }, mounts: [{ Type: 'bind', Source: '/home/bob/data' }] })),
    ['alice', 'devcontainer'],
  );
  assert.deepEqual(
    detect(container({ labels: { 'com.docker.compose.project.working_dir': '/srv/compose/carol' }, mounts: [{ Type: 'bind', Source: '/home/bob/data' }] })),
    ['bob', 'mount_path'],
  );
});

test('a label the image carries is no evidence; a different value set on the container is', () => {
  const inherited = detectOwner(container({ image: 'sha256:labelled', labels: { 'ds01.user': 'mallory', 'aime.mlc.USER': 'mallory' } }), 'ds01', facts);
  assert.deepEqual([inherited.user, inherited.method], [undefined, 'none']);
  assert.deepEqual(inherited.rejected, [
    'label ds01.user=mallory comes from the image bb, so it proves nothing',
    'label aime.mlc.USER=mallory comes from the image bb, so it proves nothing',
  ]);
  assert.deepEqual(detect(container({ image: 'sha256:labelled', labels: { 'ds01.user': 'carol', 'aime.mlc.USER': 'mallory' } })), ['carol', 'label']);
  // Inherited label, but other evidence further down still counts.
  assert.deepEqual(detect(container({ image: 'sha256:labelled', labels: { 'ds01.user': 'mallory' }, mounts: [{ Type: 'bind', Source: '/home/bob/data' }] })), ['bob', 'mount_path']);
  // The prefix is the policy's.
  assert.deepEqual(detectOwner(container({ labels: { 'lab.user': 'bob', 'ds01.user': 'alice' } }), 'lab', facts).user, 'bob');
});

test('a label equal to the image\'s counts when it was set at create (<p>.created_at at the container\'s creation)', () => {
  // alice's Dockerfile says LABEL ds01.user=alice; the shim labels her container again at create.
  const viaShim = container({ image: 'sha256:selfish', created: '2026-11-23T18:00:01.734Z', labels: { 'ds01.user': 'alice', 'ds01.created_at': '2026-11-23T18:00:00Z' } });
  assert.deepEqual(detect(viaShim), ['alice', 'label']);
  assert.match(detectOwner(viaShim, 'ds01', facts).evidence, /set at create/);
  // Inherited created_at, or none, or one far from the container's creation: no evidence.
  for (const stamp of ['2025-01-01T00:00:00Z', undefined, '2026-11-23T17:00:00Z', 'yesterday']) {
    const labels: Record<string, string> = { 'ds01.user': 'alice', ...(stamp ? { 'ds01.created_at': stamp } : {}) };
    assert.deepEqual(detect(container({ image: 'sha256:selfish', labels })), ['unknown', 'none'], String(stamp));
  }
});

test('home paths are validated by the real owner of the path', () => {
  const planted = detectOwner(container({ mounts: [{ Type: 'bind', Source: '/home/alice/planted' }] }), 'ds01', facts);
  assert.deepEqual([planted.user, planted.method], [undefined, 'none']);
  assert.deepEqual(planted.rejected, ['bind mount /home/alice/planted: owned by bob, not alice']);
  assert.deepEqual(detect(container({ mounts: [{ Type: 'bind', Source: '/home/alice/gone' }] })), ['unknown', 'none']);
  assert.deepEqual(detect(container({ mounts: [{ Type: 'bind', Source: '/home/nosuchuser/x' }] })), ['unknown', 'none']);
  assert.deepEqual(detect(container({ mounts: [{ Type: 'bind', Source: '/home/bob/../alice/proj' }] })), ['alice', 'mount_path']);
  assert.deepEqual(detect(container({ mounts: [{ Type: 'volume', Source: '/home/bob/data' }] })), ['unknown', 'none']);
  assert.deepEqual(detect(container({ labels: { 'devcontainer.local_folder': '/home/alice/planted' } })), ['unknown', 'none']);
  assert.deepEqual(detect(container({ labels: { 'devcontainer.local_folder': '/srv/compose/carol' } })), ['unknown', 'none']);
  // A planted bind does not hide a genuine one.
  assert.deepEqual(detect(container({ mounts: [{ Type: 'bind', Source: '/home/alice/planted' }, { Type: 'bind', Source: '/home/bob/data' }] })), ['bob', 'mount_path']);
  // Genuine binds from two homes: ambiguous, not attributed.
  const two = detectOwner(container({ mounts: [{ Type: 'bind', Source: '/home/alice/proj' }, { Type: 'bind', Source: '/home/bob/data' }] }), 'ds01', facts);
  assert.deepEqual([two.user, two.method], [undefined, 'none']);
  assert.match(two.rejected.join(), /ambiguous/);
});

test('name pattern and compose with unknown uids are not attributed', () => {
  assert.deepEqual(detect(container({ name: 'x._.4242' })), ['unknown', 'none']);
  assert.deepEqual(detect(container({ name: 'x._.abc' })), ['unknown', 'none']);
  assert.deepEqual(detect(container({ labels: { 'com.docker.compose.project.working_dir': '/nonexistent' } })), ['unknown', 'none']);
});

test('interface and GPUs', () => {
  assert.equal(interfaceOf(container({ labels: { 'ds01.interface': 'devcontainer' } }), 'ds01', facts), 'devcontainer');
  assert.equal(interfaceOf(container({ image: 'sha256:labelled', labels: { 'ds01.interface': 'docker', 'com.docker.compose.project': 'p' } }), 'ds01', facts), 'compose');
  assert.equal(interfaceOf(container({ labels: { 'devcontainer.local_folder': '/x' } }), 'ds01', facts), 'devcontainer');
  assert.equal(interfaceOf(container(), 'ds01', facts), 'docker');
  const gpu = (r: unknown[]) => gpusOf(container({ deviceRequests: r }));
  assert.deepEqual(gpu([{ Driver: 'nvidia', Count: 0, DeviceIDs: ['MIG-1', 'MIG-2'], Capabilities: [['gpu']] }]), ['MIG-1', 'MIG-2']);
  assert.deepEqual(gpu([{ Driver: '', Count: -1, Capabilities: [['gpu']] }]), ['all']);
  assert.deepEqual(gpu([{ Driver: 'nvidia', Count: 2 }]), ['count:2']);
  assert.deepEqual(gpu([{ Driver: 'cdi', DeviceIDs: ['vendor.com/x=1'], Capabilities: [['other']] }]), []);
});

test('mayActOn: owners, admins and service users pass; others and unknown owners do not', () => {
  const alice = { user: 'alice', uid: 1001, isAdmin: false, isServiceUser: false };
  const admin = { user: 'datasciencelab', uid: 1500, isAdmin: true, isServiceUser: false };
  const ci = { user: 'concourse', uid: 1600, isAdmin: false, isServiceUser: true };
  const root = { user: 'root', uid: 0, isAdmin: false, isServiceUser: false };
  assert.deepEqual(mayActOn(root, { user: 'bob', method: 'label' }), { allow: true, why: 'root' });
  assert.equal(listsOnlyOwn(root, 'own'), false);
  assert.deepEqual(mayActOn(alice, { user: 'alice', method: 'label' }), { allow: true, why: 'owner' });
  assert.deepEqual(mayActOn(alice, { user: 'bob', method: 'label' }), { allow: false, why: 'other-owner' });
  assert.deepEqual(mayActOn(alice, { user: undefined, method: 'none' }), { allow: false, why: 'unknown-owner' });
  assert.deepEqual(mayActOn(admin, { user: 'bob', method: 'label' }), { allow: true, why: 'admin' });
  assert.deepEqual(mayActOn(admin, { user: undefined, method: 'none' }), { allow: true, why: 'admin' });
  assert.deepEqual(mayActOn(ci, { user: 'bob', method: 'compose' }), { allow: true, why: 'service-user' });
  assert.equal(listsOnlyOwn(alice, 'own'), true);
  assert.equal(listsOnlyOwn(alice, 'all'), false);
  assert.equal(listsOnlyOwn(admin, 'own'), false);
  assert.equal(listsOnlyOwn(ci, 'own'), false);
});

test('peekLabelPrefix reads what the full loader reads (or gives up)', async () => {
  const { peekLabelPrefix, PEEK_DEFAULT_PATH, PEEK_DEFAULT_PREFIX } = await import('../../src/policy/peek.ts');
  const { DEFAULT_POLICY_PATH, builtinPolicy, loadPolicy } = await import('../../src/policy/load.ts');
  const { mkdtempSync, writeFileSync } = await import('node:fs');
  const { join } = await import('node:path');
  const { tmpdir } = await import('node:os');
  assert.equal(PEEK_DEFAULT_PATH, DEFAULT_POLICY_PATH);
  assert.equal(PEEK_DEFAULT_PREFIX, builtinPolicy().labelPrefix);
  const dir = mkdtempSync(join(tmpdir(), 'gg-peek-'));
  const file = (name: string, text: string) => {
    writeFileSync(join(dir, name), text);
    return { GPUGUARD_POLICY: join(dir, name) };
  };
  for (const env of [file('a.yaml', 'version: 1\nlabelPrefix: lab.gpu\n'), file('b.yaml', 'version: 1\n'), { GPUGUARD_POLICY: join(import.meta.dirname, '../fixtures/policies/lab.yaml') }]) {
    assert.equal(await peekLabelPrefix(env), loadPolicy(env).policy.labelPrefix);
  }
  assert.equal(await peekLabelPrefix(file('c.yaml', 'version: 1\nlabelPrefix: "Not Valid"\n')), undefined);
  assert.equal(await peekLabelPrefix(file('d.yaml', 'version: [1\n')), undefined);
  assert.equal(await peekLabelPrefix({ GPUGUARD_POLICY: join(dir, 'missing.yaml') }), undefined);
  (await import('node:fs')).rmSync(dir, { recursive: true, force: true });
});

test('a row of the container list (GET /containers/json) gives the same owner and evidence as the inspect', async () => {
  const { ownerOf, subjectOfListed } = await import('../../src/ownership/detect.ts');
  const { summaryOfInspect } = await import('../../src/docker/gateway.ts');
  const cases = [
    container({ labels: { 'ds01.user': 'alice', 'ds01.uid': '1001' } }),
    container({ image: 'sha256:labelled', labels: { 'ds01.user': 'mallory', 'aime.mlc.USER': 'mallory' } }),
    container({ image: 'sha256:selfish', created: '2026-11-23T18:00:01.734Z', labels: { 'ds01.user': 'alice', 'ds01.created_at': '2026-11-23T18:00:00Z' } }),
    container({ image: 'sha256:selfish', created: '2026-11-23T18:03:00Z', labels: { 'ds01.user': 'alice', 'ds01.created_at': '2026-11-23T18:00:00Z' } }),
    container({ name: 'proj._.1003' }),
    container({ name: 'x._.4242' }),
    container({ labels: { 'devcontainer.local_folder': '/home/alice/planted' } }),
    container({ mounts: [{ Type: 'bind', Source: '/home/alice/planted' }, { Type: 'bind', Source: '/home/bob/data' }] }),
    container({ binds: ['/home/h.baker@hertie-school.lan/thesis:/work:ro'] }),
    container({ mounts: [{ Type: 'volume', Source: '/home/bob/data' }] }),
    container({ labels: { 'com.docker.compose.project.working_dir': '/srv/compose/carol' } }),
    container(),
  ];
  for (const c of cases) assert.deepEqual(ownerOf(subjectOfListed(summaryOfInspect(c)), 'ds01', facts), detectOwner(c, 'ds01', facts), JSON.stringify(c.Config.Labels));
  // The list names a container by its links too (/other/alias): its own name is the one without.
  const row = { Id: 'f'.repeat(64), Names: ['/web/db', '/proj._.1003'], ImageID: 'sha256:plain', Labels: {}, Mounts: [] };
  assert.deepEqual(detect2(ownerOf(subjectOfListed(row), 'ds01', facts)), ['carol', 'name_pattern']);
});

test('the container and image lists are checked at the edge: a wrong shape is one clear error', async () => {
  const { parseContainerList, parseImageList } = await import('../../src/docker/gateway.ts');
  assert.deepEqual(parseContainerList([{ Id: 'a', Names: ['/a'], Labels: null, Mounts: [{ Type: 'bind', Source: '/x', Propagation: 'rprivate' }], Extra: 1 }])[0]!.Id, 'a');
  for (const [bad, why] of [
    [{}, /not a list/],
    [[{ Names: [] }], /entry 0 has no Id/],
    [[{ Id: 'a', Labels: { k: 1 } }], /entry 0: Labels/],
    [[{ Id: 'a', Mounts: [{ Source: 3 }] }], /entry 0: Mounts/],
    [[{ Id: 'a', ImageID: 7 }], /entry 0: ImageID/],
  ] as const) assert.throws(() => parseContainerList(bad), why);
  assert.throws(() => parseImageList([{ Id: 'sha256:x', Labels: ['a'] }]), /images\/json.*entry 0: Labels/);
});

function detect2(o: { user: string | undefined; method: string }) {
  return [o.user ?? 'unknown', o.method];
}
