/**
 * gpuguard doctor against an installed fixture tree (--root): all checks
 * that need no dockerd, each broken in turn and its fail line asserted. The
 * checks that need a daemon (bypasses, live runtimes, a user's PATH) are in
 * install-dockerd.test.ts.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, readFileSync, renameSync, rmSync, symlinkSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { BINARY, fakeNvidiaSmi, missing, ROOT, run } from '../harness/index.ts';
import { makeTree } from '../fixtures/install/trees.ts';

let root = '';
let smiDir = '';
let smi = '';
const LIB = 'usr/local/lib/gpuguard';

before(async () => {
  root = makeTree('packaged');
  smiDir = mkdtempSync('/tmp/gg-smi-');
  smi = fakeNvidiaSmi(smiDir, 'a100-mig-mixed');
  const r = await run('bash', [join(ROOT, 'install.sh'), '--root', root]);
  if (r.code !== 0) throw new Error(`install failed: ${r.stderr}${r.stdout}`);
});
after(() => {
  if (root) rmSync(root, { recursive: true, force: true });
  if (smiDir) rmSync(smiDir, { recursive: true, force: true });
});

interface Line {
  check: string;
  status: string;
  message: string;
  fix?: string;
}

async function doctor(env: Record<string, string> = {}): Promise<{ code: number; lines: Line[]; text: string }> {
  const base = { GPUGUARD_NVIDIA_SMI: smi, PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' };
  const clean: NodeJS.ProcessEnv = { ...process.env, ...base };
  delete clean.DOCKER_HOST;
  Object.assign(clean, env);
  delete clean.GPUGUARD_POLICY;
  const j = await run(BINARY, ['doctor', '--root', root, '--json'], { env: clean, extendEnv: false });
  const t = await run(BINARY, ['doctor', '--root', root], { env: clean, extendEnv: false });
  const parsed = JSON.parse(j.stdout) as { checks: Line[]; exit: number };
  assert.equal(parsed.exit, j.code);
  assert.equal(t.code, j.code);
  return { code: j.code, lines: parsed.checks, text: t.stdout };
}

function line(lines: Line[], check: string): Line {
  const l = lines.find((x) => x.check === check);
  assert.ok(l, `no ${check} line`);
  return l;
}

/** Break something, assert the fail line (JSON and text), put it back. */
async function breaks(check: string, breakIt: () => void, restore: () => void, message: RegExp, env: Record<string, string> = {}) {
  breakIt();
  try {
    const d = await doctor(env);
    const l = line(d.lines, check);
    assert.equal(l.status, 'fail', `${check}: ${JSON.stringify(l)}`);
    assert.match(l.message, message);
    assert.ok(l.fix, 'a fail line says how to fix it');
    assert.equal(d.code, 2);
    assert.match(d.text, new RegExp(`^fail\\s+${check}\\s+.*— fix: `, 'm'));
  } finally {
    restore();
  }
  const again = await doctor(env);
  assert.equal(line(again.lines, check).status, 'ok', `${check} ok again after restoring`);
}

describe('gpuguard doctor --root on an installed tree', () => {
  test('an installed tree passes every check that needs no daemon', async (t) => {
    if (missing(t, { files: [BINARY] })) return;
    const d = await doctor();
    for (const check of ['policy', 'shim-on-path', 'real-cli', 'runtime-registered', 'runtime-default', 'runtimes-wrapped', 'real-runtime', 'nvidia-smi', 'event-log', 'cgroup-driver']) {
      assert.equal(line(d.lines, check).status, 'ok', `${check}: ${JSON.stringify(line(d.lines, check))}`);
    }
    assert.match(line(d.lines, 'nvidia-smi').message, /GPU\(s\), \d+ MIG device/);
    // Without a daemon the container checks cannot run: a warning, not a pass.
    assert.equal(line(d.lines, 'container-runtimes').status, 'warn');
    assert.equal(d.code, 1);
  });

  test('a DOCKER_HOST nobody answers: live checks warn, daemon.json still decides the rest', async (t) => {
    if (missing(t, { files: [BINARY, '/usr/bin/docker'] })) return;
    const d = await doctor({ DOCKER_HOST: 'unix:///nonexistent/docker.sock', GPUGUARD_REAL_DOCKER: '/usr/bin/docker' });
    assert.equal(line(d.lines, 'runtime-default').status, 'ok');
    assert.match(line(d.lines, 'runtime-default').message, /daemon\.json\)$/);
    assert.equal(line(d.lines, 'owner-labels').status, 'warn');
    assert.match(line(d.lines, 'owner-labels').message, /Cannot connect to the Docker daemon at unix:\/\/\/nonexistent\/docker\.sock/);
  });

  test('policy: an invalid policy file', async (t) => {
    if (missing(t, { files: [BINARY] })) return;
    const f = join(root, 'etc/gpuguard/policy.yaml');
    const orig = readFileSync(f, 'utf8');
    await breaks('policy', () => writeFileSync(f, `${orig}\nbogus: 1\n`), () => writeFileSync(f, orig), /unknown key "bogus"/);
    chmodSync(f, 0o600);
    const d = await doctor();
    chmodSync(f, 0o644);
    assert.equal(line(d.lines, 'policy').status, 'warn');
    assert.match(line(d.lines, 'policy').message, /mode 600: the shim runs as the calling user and cannot read it/);
    writeFileSync(f, orig.replace(/limits: \{cpus: \d+,/, 'limits: {cpus: 4096,'));
    const c = await doctor();
    writeFileSync(f, orig);
    assert.equal(line(c.lines, 'policy').status, 'warn');
    assert.match(line(c.lines, 'policy').message, /groups\.users\.limits\.cpus \(4096\) asks for more CPUs per container than this host has/);
  });

  test('native-front: the faces reach gpuguard through the front; a face straight at the binary is a warning, a missing front a failure', async (t) => {
    if (missing(t, { files: [BINARY] })) return;
    assert.equal(line((await doctor()).lines, 'native-front').status, 'ok');
    const p = join(root, 'usr/bin/docker');
    unlinkSync(p);
    symlinkSync('/usr/local/lib/gpuguard/gpuguard', p);
    try {
      const d = await doctor();
      assert.equal(line(d.lines, 'native-front').status, 'warn');
      assert.match(line(d.lines, 'native-front').message, /points at the gpuguard binary, not at the native front/);
      assert.equal(line(d.lines, 'shim-on-path').status, 'ok', 'still gpuguard');
    } finally {
      unlinkSync(p);
      symlinkSync('/usr/local/lib/gpuguard/gpuguard-front', p);
    }
    const front = join(root, LIB, 'gpuguard-front');
    await breaks('native-front', () => renameSync(front, `${front}.away`), () => renameSync(`${front}.away`, front), /docker is the native front .* which is missing or not executable: docker cannot start/);
  });

  test('shim-on-path: the first docker is not gpuguard', async (t) => {
    if (missing(t, { files: [BINARY] })) return;
    const p = join(root, 'usr/bin/docker');
    await breaks('shim-on-path', () => {
      unlinkSync(p);
      writeFileSync(p, '#!/bin/sh\n', { mode: 0o755 });
    }, () => {
      unlinkSync(p);
      symlinkSync('/usr/local/lib/gpuguard/gpuguard-front', p);
    }, /first docker on root's PATH is .*\/usr\/bin\/docker, not gpuguard/);
  });

  test('real-cli: the real docker CLI is gone', async (t) => {
    if (missing(t, { files: [BINARY] })) return;
    const p = join(root, 'usr/bin/docker.real');
    await breaks('real-cli', () => renameSync(p, `${p}.away`), () => renameSync(`${p}.away`, p), /real docker CLI .*docker\.real is missing/);
  });

  const daemonJson = () => join(root, 'etc/docker/daemon.json');
  const editDaemon = (edit: (d: Record<string, any>) => void) => {
    const orig = readFileSync(daemonJson(), 'utf8');
    const d = JSON.parse(orig);
    edit(d);
    return { breakIt: () => writeFileSync(daemonJson(), JSON.stringify(d)), restore: () => writeFileSync(daemonJson(), orig) };
  };

  test('runtime-registered: daemon.json lost the gpuguard runtime', async (t) => {
    if (missing(t, { files: [BINARY] })) return;
    const e = editDaemon((d) => delete d.runtimes.gpuguard);
    await breaks('runtime-registered', e.breakIt, e.restore, /registers no runtime "gpuguard"/);
  });

  test('runtime-default: the default runtime is runc again', async (t) => {
    if (missing(t, { files: [BINARY] })) return;
    const e = editDaemon((d) => (d['default-runtime'] = 'runc'));
    await breaks('runtime-default', e.breakIt, e.restore, /default runtime "runc", not "gpuguard"/);
  });

  test('runtimes-wrapped: a runtime registered after install goes around the wrapper', async (t) => {
    if (missing(t, { files: [BINARY] })) return;
    const e = editDaemon((d) => (d.runtimes.crun = { path: '/usr/bin/crun' }));
    await breaks('runtimes-wrapped', e.breakIt, e.restore, /not going through gpuguard: crun \(\/usr\/bin\/crun\)/);
  });

  test('real-runtime: the runtime behind a wrapper is gone', async (t) => {
    if (missing(t, { files: [BINARY] })) return;
    const p = join(root, 'usr/bin/nvidia-container-runtime');
    await breaks('real-runtime', () => renameSync(p, `${p}.away`), () => renameSync(`${p}.away`, p), /nvidia \(\/usr\/local\/lib\/gpuguard\/runtimes\/nvidia\/gpuguard-runc\.real → \/usr\/bin\/nvidia-container-runtime\)/);
  });

  test('nvidia-smi: missing, failing, or listing no GPU', async (t) => {
    if (missing(t, { files: [BINARY] })) return;
    let d = await doctor({ GPUGUARD_NVIDIA_SMI: '/bin/false' });
    assert.equal(line(d.lines, 'nvidia-smi').status, 'fail');
    assert.match(line(d.lines, 'nvidia-smi').message, /\/bin\/false -L failed/);
    d = await doctor({ GPUGUARD_NVIDIA_SMI: '/bin/true' });
    assert.match(line(d.lines, 'nvidia-smi').message, /lists no GPU/);
    const env = { ...process.env };
    delete env.GPUGUARD_NVIDIA_SMI;
    const r = await run(BINARY, ['doctor', '--root', root, '--json'], { env: { ...env, PATH: '/nonexistent' }, extendEnv: false });
    const l = (JSON.parse(r.stdout).checks as Line[]).find((x) => x.check === 'nvidia-smi')!;
    assert.equal(l.status, 'fail');
    assert.match(l.message, /nvidia-smi not found/);
  });

  test('event-log: the log directory is gone; a log users cannot append to', async (t) => {
    if (missing(t, { files: [BINARY] })) return;
    const dir = join(root, 'var/log/gpuguard');
    await breaks('event-log', () => renameSync(dir, `${dir}.away`), () => renameSync(`${dir}.away`, dir), /event log directory .* does not exist/);
    const f = join(dir, 'events.jsonl');
    chmodSync(f, 0o600);
    const d = await doctor();
    assert.equal(line(d.lines, 'event-log').status, 'warn');
    assert.match(line(d.lines, 'event-log').message, /mode 600: users' shim events cannot be appended/);
    chmodSync(f, 0o622);
  });

  test('cgroup-driver: a cgroupfs-style parent under the systemd driver', async (t) => {
    if (missing(t, { files: [BINARY] })) return;
    const f = join(root, 'etc/gpuguard/policy.yaml');
    const orig = readFileSync(f, 'utf8');
    await breaks('cgroup-driver', () => writeFileSync(f, orig.replace('"gpuguard-{group}-{user}.slice"', '"/gpuguard/{group}/{user}"')), () => writeFileSync(f, orig),
      /systemd cgroup driver \(daemon\.json\) but cgroup\.parent "\/gpuguard\/\{group\}\/\{user\}" is not a \.slice/);
  });
});

describe('gpuguard doctor --root on a Concourse tree', () => {
  test('concourse: runc replaced by an upgrade, or runc.real gone', async (t) => {
    if (missing(t, { files: [BINARY] })) return;
    const croot = makeTree('concourse');
    try {
      const r = await run('bash', [join(ROOT, 'install.sh'), '--root', croot, '--concourse']);
      assert.equal(r.code, 0, r.stderr);
      const env: NodeJS.ProcessEnv = { ...process.env, GPUGUARD_NVIDIA_SMI: smi };
      delete env.DOCKER_HOST;
      delete env.GPUGUARD_POLICY;
      const check = async () => (JSON.parse((await run(BINARY, ['doctor', '--root', croot, '--json'], { env, extendEnv: false })).stdout).checks as Line[]).find((c) => c.check === 'concourse')!;
      assert.equal((await check()).status, 'ok');
      const bin = join(croot, 'opt/concourse/bin');
      renameSync(join(bin, 'runc.real'), join(bin, 'runc.away'));
      let l = await check();
      assert.equal(l.status, 'fail');
      assert.match(l.message, /runc\.real \(Concourse's own runc\) is missing/);
      renameSync(join(bin, 'runc.away'), join(bin, 'runc.real'));
      unlinkSync(join(bin, 'runc'));
      writeFileSync(join(bin, 'runc'), '#!/bin/sh\n', { mode: 0o755 });
      l = await check();
      assert.equal(l.status, 'fail');
      assert.match(l.message, /runc is not gpuguard \(a Concourse upgrade replaced it\?\)/);
    } finally {
      rmSync(croot, { recursive: true, force: true });
    }
  });
});
