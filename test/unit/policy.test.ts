import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parsePolicy, resolveUser, renderCgroupParent, systemdEscape, parseSize, parseDuration, ownerLabels, isReservedLabel, builtinPolicy } from '../../src/policy/index.ts';
import { PolicyError } from '../../src/errors.ts';
import { FIXTURES } from '../harness/tools.ts';

const policyFixture = (name: string) => readFileSync(join(FIXTURES, 'policies', name), 'utf8');

test('the DESIGN.md example policy is valid', () => {
  const p = parsePolicy(policyFixture('design-example.yaml'), 'design-example.yaml');
  assert.equal(p.labelPrefix, 'ds01');
  assert.equal(p.runtime.rules?.length, 3);
  assert.equal(p.groups.students?.limits?.memory, '32g');
  assert.deepEqual(p.security?.binds, ['{home}', '/srv/*', '/scratch/{user}']);
  assert.deepEqual(p.api, { listen: '/var/run/docker.sock', upstream: '/run/gpuguard-dockerd/docker.sock', group: 'docker', mode: '0660' });
});

test('api: defaults without the key; an upstream of its own', () => {
  assert.deepEqual(builtinPolicy().api, { listen: '/var/run/docker.sock', upstream: '/run/gpuguard-dockerd/docker.sock', group: 'docker', mode: '0660' });
  assert.equal(parsePolicy('version: 1\napi: {listen: /run/face.sock}\n', 'p.yaml').api.upstream, '/run/gpuguard-dockerd/docker.sock');
});

const invalid: [string, string, string][] = [
  ['bad YAML', 'version: 1\ngroups:\n  a: [1, 2\n', 'p.yaml:4:1: invalid YAML: Flow sequence in block collection must be sufficiently indented and end with a ]'],
  ['unknown key', 'version: 1\nmdoe: enforce\n', 'p.yaml:2:1: mdoe: unknown key "mdoe" (see `gpuguard policy schema` for the keys)'],
  ['wrong type', 'version: 1\ngroups:\n  students:\n    limits: {cpus: "eight"}\n', 'p.yaml:4:20: groups.students.limits.cpus: expected number, got "eight"'],
  ['unknown group', 'version: 1\ngroups:\n  students: {}\ndefaults: {group: staff}\n', 'p.yaml:4:19: defaults.group: unknown group "staff" (groups defined: students)'],
  ['unknown user group', 'version: 1\nusers:\n  carol: {group: researchers}\n', 'p.yaml:3:18: users.carol.group: unknown group "researchers" (groups defined: none)'],
  ['negative limit', 'version: 1\ngroups:\n  students:\n    limits:\n      cpus: -2\n', 'p.yaml:5:13: groups.students.limits.cpus: expected a number greater than 0, got -2'],
  ['bad memory size', 'version: 1\ngroups:\n  students:\n    limits:\n      memory: 12q\n', 'p.yaml:5:15: groups.students.limits.memory: expected a size such as 512m or 32g, got "12q"'],
  ['bad enum', 'version: 1\nmode: strict\n', 'p.yaml:2:7: mode: expected one of "enforce", "audit", got "strict"'],
  ['missing version', 'mode: audit\n', 'p.yaml:1:1: version: missing; expected 1'],
  ['duplicate key', 'version: 1\nversion: 1\n', 'p.yaml:2:1: invalid YAML: Map keys must be unique'],
  ['fractional pids', 'version: 1\ngroups:\n  s:\n    limits: {pids: 1.5}\n', 'p.yaml:4:20: groups.s.limits.pids: expected a whole number, got 1.5'],
  ['bad bind root', 'version: 1\nsecurity:\n  binds: [srv/x]\n', 'p.yaml:3:11: security.binds.0: expected an absolute path or one starting with {home}, with {home} and {user} as the only placeholders and "*" only as "dir/*", got "srv/x"'],
  ['not a mapping', '- a\n- b\n', 'p.yaml:1:1: expected a mapping of policy keys (version, groups, …), got a list'],
  ['bad duration', 'version: 1\ngpu: {holdAfterStop: soon}\n', 'p.yaml:2:22: gpu.holdAfterStop: expected a duration such as 10s, 30m or 1h, got "soon"'],
  ['unquoted socket mode', 'version: 1\napi: {mode: 0660}\n', 'p.yaml:2:13: api.mode: expected an octal mode in quotes, such as "0660"'],
  ['upstream is the listen socket', 'version: 1\napi: {listen: /run/d.sock, upstream: /run/d.sock}\n', 'p.yaml:2:38: api.upstream: the same path as api.listen (/run/d.sock): dockerd needs a socket of its own behind the face'],
  ['relative mount source', 'version: 1\nruntime:\n  rules:\n    - name: x\n      mounts: [{source: srv, destination: /srv}]\n', 'p.yaml:5:25: runtime.rules.0.mounts.0.source: expected an absolute path, got "srv"'],
];
for (const [name, text, message] of invalid) {
  test(`invalid policy: ${name}`, () => {
    assert.throws(() => parsePolicy(text, 'p.yaml'), (err: unknown) => {
      assert.ok(err instanceof PolicyError);
      assert.equal(err.message, message);
      assert.equal(err.exitCode, 2);
      return true;
    });
  });
}

test('effective user: group by unix group, user overrides merged over the group', () => {
  const p = parsePolicy(policyFixture('design-example.yaml'), 'x');
  const alice = resolveUser(p, { user: 'alice', uid: 1001, unixGroups: ['alice'] });
  assert.equal(alice.group, 'students');
  assert.equal(alice.groupFrom, 'members');
  assert.equal(alice.limits.memory, '32g');
  assert.equal(alice.gpus.max, 1);
  assert.equal(alice.gpus.fullGpu, false);
  assert.equal(alice.cgroupParent, 'ds01-students-alice.slice');
  const dave = resolveUser(p, { user: 'dave', uid: 1004, unixGroups: ['researchers'] });
  assert.equal(dave.group, 'researchers');
  const carol = resolveUser(p, { user: 'carol', uid: 1003, unixGroups: [] });
  assert.deepEqual([carol.group, carol.groupFrom, carol.gpus.max, carol.gpus.fullGpu, carol.gpus.priority], ['researchers', 'users', 4, true, 50]);
  const eve = resolveUser(p, { user: 'eve', uid: 1005, unixGroups: [] });
  assert.deepEqual([eve.group, eve.groupFrom], ['students', 'defaults']);
  const admin = resolveUser(p, { user: 'zed', uid: 1006, unixGroups: ['ds01-admin'] });
  assert.equal(admin.isAdmin, true);
  assert.equal(eve.isAdmin, false);
});

test('built-in policy: no quotas, datasets rule by default, implicit group', () => {
  const p = builtinPolicy();
  const u = resolveUser(p, { user: 'x', uid: 5, unixGroups: [] });
  assert.equal(u.group, 'default');
  assert.equal(u.gpus.max, Infinity);
  assert.equal(u.cgroupParent, undefined);
  assert.deepEqual(u.limits, {});
});

test('cgroup parent: systemd slices escape what would nest', () => {
  assert.equal(renderCgroupParent('ds01-{group}-{user}.slice', { user: 'h.baker@hertie-school.lan', group: 'students', uid: 1 }), 'ds01-students-h.baker\\x40hertie\\x2dschool.lan.slice');
  assert.equal(renderCgroupParent('/ds01/{group}/{user}', { user: 'a-b', group: 'g', uid: 1 }), '/ds01/g/a-b');
  assert.equal(systemdEscape('.x-y'), '\\x2ex\\x2dy');
});

test('sizes and durations read like docker flags', () => {
  assert.equal(parseSize('32g'), 32 * 1024 ** 3);
  assert.equal(parseSize('512M'), 512 * 1024 ** 2);
  assert.equal(parseSize('1.5GiB'), 1.5 * 1024 ** 3);
  assert.equal(parseSize('100'), 100);
  assert.equal(parseSize('12q'), undefined);
  assert.equal(parseDuration('30m'), 1_800_000);
  assert.equal(parseDuration('250ms'), 250);
  assert.equal(parseDuration(10), 10_000);
  assert.equal(parseDuration('soon'), undefined);
});

test('owner labels and reserved label detection', () => {
  const p = builtinPolicy();
  const u = resolveUser(p, { user: 'alice', uid: 1001, unixGroups: [] });
  assert.deepEqual(ownerLabels('ds01', u, 'docker', new Date('2026-11-23T18:04:05.123Z')), [
    ['ds01.managed', 'true'], ['ds01.user', 'alice'], ['ds01.uid', '1001'], ['ds01.group', 'default'], ['ds01.interface', 'docker'], ['ds01.created_at', '2026-11-23T18:04:05Z'],
  ]);
  assert.ok(isReservedLabel('ds01', 'ds01.user'));
  assert.ok(isReservedLabel('ds01', 'ds01'));
  assert.ok(!isReservedLabel('ds01', 'ds012.user'));
});
