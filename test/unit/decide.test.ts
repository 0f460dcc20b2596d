/** The policy's create decisions and the pure rewrite: one input line, one expected outcome. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parsePolicy } from '../../src/policy/load.ts';
import { resolveUser } from '../../src/policy/effective.ts';
import { applyMode, decideCreate, overallDecision } from '../../src/policy/decide.ts';
import { scanDockerArgv } from '../../src/docker-shim/argv.ts';
import { createRequest, parseLabelFile, rewriteCreate, type RewriteFacts } from '../../src/docker-shim/rewrite.ts';
import { shellJoin, shellWords } from '../../src/docker-shim/quote.ts';

const POLICY = `version: 1
labelPrefix: ds01
admins: [root2]
defaults: {group: students}
groups:
  students:
    limits: {cpus: 2, memory: 256m, pids: 512, shmSize: 64m, containers: 3}
cgroup: {parent: "/ds01/{group}/{user}"}
`;
const policy = parsePolicy(POLICY, 'test.yaml');
const audit = parsePolicy(`${POLICY}mode: audit\n`, 'test.yaml');
const alice = resolveUser(policy, { user: 'alice', uid: 1001, unixGroups: ['alice'] });
const admin = resolveUser(policy, { user: 'root2', uid: 1002, unixGroups: [] });
const NOW = new Date('2026-11-23T18:00:00.123Z');
const OWNER = '--label ds01.managed=true --label ds01.user=alice --label ds01.uid=1001 --label ds01.group=students --label ds01.interface=docker --label ds01.created_at=2026-11-23T18:00:00Z';
const DEFAULTS = '--cgroup-parent /ds01/students/alice --cpus 2 --memory 256m --pids-limit 512 --shm-size 64m';

function rw(line: string, facts: Partial<RewriteFacts> = {}, p = policy, u = alice) {
  const argv = shellWords(line);
  const scan = scanDockerArgv(argv)!;
  return rewriteCreate(argv, scan, p, u, { now: NOW, labelFiles: {}, containerCount: 0, ...facts });
}

const cases: [string, string][] = [
  ['run --rm -it bb sh', `run --rm -it ${OWNER} ${DEFAULTS} bb sh`],
  ['run --rm -- bb echo x', `run --rm ${OWNER} ${DEFAULTS} -- bb echo x`],
  ['-l debug container create bb', `-l debug container create ${OWNER} ${DEFAULTS} bb`],
  ['run --cpus 1 -m 128m --pids-limit=100 --shm-size 32m bb', `run --cpus 1 -m 128m --pids-limit=100 --shm-size 32m ${OWNER} --cgroup-parent /ds01/students/alice bb`],
  ['run --cgroup-parent /ds01/students/alice bb', `run --cgroup-parent /ds01/students/alice ${OWNER} --cpus 2 --memory 256m --pids-limit 512 --shm-size 64m bb`],
  ['run --cpu-quota 100000 bb', `run --cpu-quota 100000 ${OWNER} --cgroup-parent /ds01/students/alice --memory 256m --pids-limit 512 --shm-size 64m bb`],
  ['run --cpu-period 50000 bb', `run --cpu-period 50000 ${OWNER} --cgroup-parent /ds01/students/alice --cpu-quota 100000 --memory 256m --pids-limit 512 --shm-size 64m bb`],
  ['run bb sh -c "ls -l --label ds01.user=x"', `run ${OWNER} ${DEFAULTS} bb sh -c 'ls -l --label ds01.user=x'`],
];
for (const [line, expected] of cases) {
  test(`rewrite: docker ${line}`, () => {
    const r = rw(line);
    assert.equal(r.refusal, undefined, r.refusal?.reason);
    assert.equal(shellJoin(r.argv), expected);
  });
}

test('rewrite: devcontainer labels make interface devcontainer', () => {
  const r = rw('run -l devcontainer.local_folder=/w -l devcontainer.config_file=/w/.devcontainer/devcontainer.json bb');
  assert.ok(r.argv.includes('ds01.interface=devcontainer'));
});

const refusals: [string, RegExp, Partial<RewriteFacts>?][] = [
  ['run -l ds01.user=bob bb', /^label ds01\.user \(from -l\) is reserved: .*remove it from the command$/],
  ['run --label=ds01.gpu.uuid=x bb', /label ds01\.gpu\.uuid \(from --label\) is reserved/],
  ['run --label-file ./l bb', /label ds01\.managed \(from --label-file \.\/l\) is reserved/, { labelFiles: { './l': '# x\n  ds01.managed=false\n' } }],
  ['run --cgroup-parent /other bb', /^--cgroup-parent \/other is not yours: containers of alice go under \/ds01\/students\/alice; drop --cgroup-parent/],
  ['run --cpus 4 bb', /^--cpus 4 asks for more than the 2 allowed per container to group students; use --cpus 2 or less, or ask an admin to raise limits\.cpus$/],
  ['run --cpus=0 bb', /--cpus 0 asks for no limit/],
  ['run -m 1g bb', /^--memory 1g asks for more than the 256m allowed .*use --memory 256m or less/],
  ['run -itm1g bb', /--memory 1g asks for more/],
  ['run --memory 0 bb', /asks for no limit/],
  ['run --pids-limit -1 bb', /--pids-limit -1 asks for no limit/],
  ['run --shm-size 1g bb', /--shm-size 1g asks for more than the 64m/],
  ['run --cpu-quota 400000 bb', /--cpu-quota 400000 asks for more than the 2/],
  ['run bb', /^alice already has 3 containers \(running or stopped\) and group students allows 3; remove one with docker rm/, { containerCount: 3 }],
];
for (const [line, message, facts] of refusals) {
  test(`refused: docker ${line}`, () => {
    const r = rw(line, facts);
    assert.match(r.refusal?.reason ?? '(not refused)', message);
    assert.equal(r.decision, 'deny');
    const a = rw(line, facts, audit);
    assert.equal(a.refusal, undefined);
    assert.equal(a.decision, 'warn');
    const warned = a.decisions.filter((d) => d.verdict === 'warn');
    assert.equal(warned.length, 1);
    assert.match(warned[0]!.reason, /^audit mode, not refused: /);
    assert.ok(a.argv.includes('ds01.user=alice'), 'audit keeps the owner labels');
    const o = rw(line, facts, policy, admin);
    assert.equal(o.refusal, undefined, 'admins override');
    assert.ok(o.decisions.some((d) => d.verdict === 'override'));
  });
}

test('label files: docker rules (trim left, # comments, blank lines, key without value)', () => {
  assert.deepEqual(parseLabelFile('\uFEFFa=1\n  # c\n\n  b\nc=x=y\r\n'), [
    { key: 'a', value: '1' },
    { key: 'b', value: '' },
    { key: 'c', value: 'x=y' },
  ]);
});

test('request: label files first, then -l, in order', () => {
  const scan = scanDockerArgv(shellWords('run -l z=1 --label-file f bb'))!;
  assert.deepEqual(createRequest(scan, { f: 'y=2\n' }).labels.map((l) => l.key), ['y', 'z']);
});

test('admin: own owner labels kept, the rest added', () => {
  const r = rw('run -l ds01.user=bob bb', {}, policy, admin);
  assert.ok(r.argv.includes('ds01.user=bob'));
  assert.ok(!r.argv.includes('ds01.user=root2'));
  assert.ok(r.argv.includes('ds01.uid=1002'));
});

test('count unknown: a warning, not a refusal', () => {
  const r = rw('run bb', { containerCount: undefined, countError: 'docker ps failed' });
  assert.equal(r.refusal, undefined);
  assert.match(r.decisions.find((d) => d.rule === 'limits.containers')!.reason, /could not count .*docker ps failed/);
});

test('gpu seam: drop the user words, insert the plan', () => {
  const argv = shellWords('run --gpus all --rm bb');
  const scan = scanDockerArgv(argv)!;
  const g = scan.flags.find((f) => f.name === 'gpus')!;
  const r = rewriteCreate(argv, scan, policy, alice, {
    now: NOW,
    labelFiles: {},
    containerCount: 0,
    gpu: { drop: [{ start: g.start, end: g.end }], insert: ['--gpus', 'device=GPU-1'], labels: [['ds01.gpu.allocated', '1.2']], decisions: [{ rule: 'gpu', verdict: 'add', reason: 'MIG 1.2' }] },
  });
  assert.equal(shellJoin(r.argv), `run --rm ${OWNER} ${DEFAULTS} --label ds01.gpu.allocated=1.2 --gpus device=GPU-1 bb`);
});

test('no policy limits, no cgroup: labels only', () => {
  const bare = parsePolicy('version: 1\n', 'b.yaml');
  const u = resolveUser(bare, { user: 'alice', uid: 1001, unixGroups: [] });
  const d = applyMode(decideCreate(bare, u, { labels: [] }, { now: NOW, iface: 'docker' }), bare.mode);
  assert.deepEqual(d.map((x) => x.rule), ['labels.owner']);
  assert.equal(overallDecision(d), 'rewrite');
});

test('--runtime with a built-in name (not wrappable) is refused for users, allowed and logged for admins; nvidia passes', () => {
  for (const name of ['runc', 'io.containerd.runc.v2']) {
    const r = rw(`run --runtime ${name} bb true`);
    assert.equal(r.refusal?.rule, 'runtime.builtin');
    assert.equal(r.refusal?.reason, `--runtime ${name} would start the container without gpuguard's runtime wrapper (dockerd's built-in name cannot be wrapped); leave --runtime out: the default runtime is runc behind the wrapper`);
  }
  const byAdmin = rw('run --runtime=runc bb true', {}, policy, admin);
  assert.equal(byAdmin.refusal, undefined);
  assert.equal(byAdmin.decisions.find((d) => d.rule === 'runtime.builtin')?.verdict, 'override');
  assert.equal(rw('run --runtime nvidia bb true').decisions.some((d) => d.rule === 'runtime.builtin'), false);
  assert.equal(rw('run --runtime runc bb true', {}, audit).refusal, undefined, 'audit mode warns');
});
