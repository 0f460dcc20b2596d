/** The `gpuguard` admin face, compiled binary, real user database. */
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { BINARY, FIXTURES, IS_ROOT, ensureTestUsers, missing, run } from '../harness/index.ts';

const lab = join(FIXTURES, 'policies/lab.yaml');

before(() => {
  if (IS_ROOT) ensureTestUsers();
});

test('version runs with no Node on PATH', async () => {
  const r = await run(BINARY, ['version'], { env: { PATH: '/nonexistent' }, extendEnv: false });
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^gpuguard \d+\.\d+\.\d+\n$/);
});

test('policy check: valid file exits 0', async () => {
  const r = await run(BINARY, ['policy', 'check', join(FIXTURES, 'policies/design-example.yaml')]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /design-example\.yaml: valid/);
});

test('policy check: an invalid file exits 2 with one line naming file:line:col', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'gg-cli-'));
  const file = join(dir, 'policy.yaml');
  writeFileSync(file, 'version: 1\ngroups:\n  students:\n    limits: {memory: 12q}\n');
  const r = await run(BINARY, ['policy', 'check', file]);
  assert.equal(r.code, 2);
  assert.equal(r.stderr, `gpuguard: ${file}:4:22: groups.students.limits.memory: expected a size such as 512m or 32g, got "12q"\n`);
  assert.equal(r.stdout, '');
  rmSync(dir, { recursive: true, force: true });
});

test('policy check: a missing file exits 2 and says so', async () => {
  const r = await run(BINARY, ['policy', 'check', '/nonexistent/policy.yaml']);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /^gpuguard: \/nonexistent\/policy\.yaml: cannot read \(ENOENT\)/);
});

test('policy schema prints the JSON Schema generated from zod', async () => {
  const r = await run(BINARY, ['policy', 'schema']);
  assert.equal(r.code, 0);
  const schema = JSON.parse(r.stdout);
  assert.equal(schema.type, 'object');
  for (const key of ['version', 'mode', 'labelPrefix', 'admins', 'defaults', 'groups', 'users', 'cgroup', 'docker', 'gpu', 'runtime', 'events']) {
    assert.ok(key in schema.properties, key);
  }
});

test('policy show --json: group from a real unix group, merged limits', async (t) => {
  if (missing(t, { root: true, commands: ['useradd', 'getent'] })) return;
  const r = await run(BINARY, ['policy', 'show', '--user', 'alice', '--json'], { env: { GPUGUARD_POLICY: lab } });
  assert.equal(r.code, 0, r.stderr);
  const v = JSON.parse(r.stdout);
  assert.equal(v.group, 'students');
  assert.equal(v.groupFrom, 'members');
  assert.deepEqual(v.limits, { cpus: 2, memory: '256m', pids: 512, shmSize: '64m', containers: 3 });
  assert.equal(v.gpus.max, 1);
  assert.equal(v.cgroupParent, '/ds01/students/alice');
  assert.equal(v.labels['ds01.user'], 'alice');
  const carol = JSON.parse((await run(BINARY, ['policy', 'show', '--user', 'carol', '--json'], { env: { GPUGUARD_POLICY: lab } })).stdout);
  assert.deepEqual([carol.group, carol.gpus.max, carol.gpus.fullGpu], ['researchers', 4, true]);
  const admin = JSON.parse((await run(BINARY, ['policy', 'show', '--user', 'dsadmin', '--json'], { env: { GPUGUARD_POLICY: lab } })).stdout);
  assert.equal(admin.admin, true);
  const text = await run(BINARY, ['policy', 'show', '--user', 'alice'], { env: { GPUGUARD_POLICY: lab } });
  assert.match(text.stdout, /^group: +students \(from members\)$/m);
  assert.match(text.stdout, /^cgroup parent: \/ds01\/students\/alice$/m);
});

test('policy show: an unknown user is a clear error', async () => {
  const r = await run(BINARY, ['policy', 'show', '--user', 'no-such-user-gg', '--json'], { env: { GPUGUARD_POLICY: lab } });
  assert.equal(r.code, 1);
  assert.match(r.stderr, /user "no-such-user-gg" is not in the user database/);
});

test('unknown command exits 2 naming it', async () => {
  const r = await run(BINARY, ['frobnicate']);
  assert.equal(r.code, 2);
  assert.equal(r.stderr, 'gpuguard: unknown command "frobnicate"; run `gpuguard help` for the list\n');
});

test('the user database in-process (NSS through libc) answers as getent and id do: names, uids, groups', async (t) => {
  if (missing(t, { root: true, commands: ['getent', 'id'] })) return;
  const { execFileSync } = await import('node:child_process');
  const dir = mkdtempSync(join(tmpdir(), 'gg-nss-'));
  const file = join(dir, 'policy.yaml');
  writeFileSync(file, 'version: 1\nadmins: ["@ds01-admin"]\ngroups:\n  researchers: {members: ["@gg-researchers"]}\n  dockerusers: {members: ["@gg-docker"]}\n');
  try {
    for (const key of ['alice', 'bob', 'carol', 'dsadmin', 'root', 'nobody', execFileSync('id', ['-u', 'carol'], { encoding: 'utf8' }).trim()]) {
      const [user, , uid] = execFileSync('getent', ['passwd', key], { encoding: 'utf8' }).split(':');
      const groups = execFileSync('id', ['-Gn', '--', user!], { encoding: 'utf8' }).trim().split(/\s+/);
      const r = await run(BINARY, ['policy', 'show', '--user', key, '--json'], { env: { GPUGUARD_POLICY: file } });
      assert.equal(r.code, 0, r.stderr);
      const shown = JSON.parse(r.stdout);
      assert.deepEqual(
        [shown.user, shown.uid, shown.admin, shown.group],
        [user, Number(uid), groups.includes('ds01-admin'), groups.includes('gg-researchers') ? 'researchers' : groups.includes('gg-docker') ? 'dockerusers' : 'default'],
        key,
      );
    }
    const none = await run(BINARY, ['policy', 'show', '--user', 'no-such-user-gg', '--json'], { env: { GPUGUARD_POLICY: file } });
    assert.match(none.stderr, /user "no-such-user-gg" is not in the user database/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
