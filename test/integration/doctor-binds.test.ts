/**
 * doctor `bind-mounts` on this host's real mounts: a bind root on a tmpfs
 * mounted nosuid,nodev is ok; one on a tmpfs without them fails, naming the
 * root, the mount and what to mount, and root in a container really can
 * leave a setuid-root file there (checked with the private dockerd); no
 * line without a security block or for another --root.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { BINARY, missing, run, startDockerd, type PrivateDockerd } from '../harness/index.ts';

const dir = mkdtempSync('/tmp/gg-binds-');
chmodSync(dir, 0o755);
const guarded = join(dir, 'guarded');
const open = join(dir, 'open');
let mounted: string[] = [];
let d: PrivateDockerd | undefined;

before(async () => {
  if (process.getuid?.() !== 0) return;
  for (const [where, opts] of [[guarded, 'nosuid,nodev'], [open, 'rw']] as const) {
    mkdirSync(where);
    const r = await run('mount', ['-t', 'tmpfs', '-o', `${opts},size=8m,mode=0755`, 'tmpfs', where]);
    if (r.code !== 0) throw new Error(`mount tmpfs on ${where}: ${r.stderr}`);
    mounted.push(where);
    mkdirSync(join(where, 'alice'));
  }
});

after(async () => {
  await d?.stop();
  for (const m of mounted.reverse()) await run('umount', ['-l', m]);
  mounted = [];
  rmSync(dir, { recursive: true, force: true });
});

function policy(name: string, binds: string[]): string {
  const file = join(dir, `${name}.yaml`);
  writeFileSync(file, `version: 1\nsecurity:\n  binds: ${JSON.stringify(binds)}\n`, { mode: 0o644 });
  return file;
}

async function bindMounts(file: string, extra: string[] = []): Promise<{ status: string; message: string; fix?: string } | undefined> {
  const r = await run(BINARY, ['doctor', '--json', '--policy', file, '--user', 'alice', ...extra], { env: { DOCKER_HOST: 'unix:///nonexistent/docker.sock' } });
  const checks = (JSON.parse(r.stdout) as { checks: { check: string; status: string; message: string; fix?: string }[] }).checks;
  return checks.find((c) => c.check === 'bind-mounts');
}

test('a bind root on a nosuid,nodev file system is ok; one without fails naming root, mount and fix', async (t) => {
  if (missing(t, { root: true, commands: ['mount'] })) return;
  const ok = await bindMounts(policy('guarded', [`${guarded}/*`]));
  assert.equal(ok?.status, 'ok', ok?.message);
  assert.match(ok!.message, new RegExp(`every root in security\\.binds is on a nosuid,nodev mount \\(${guarded}/\\*: ${guarded}\\)`));

  const bad = await bindMounts(policy('open', [`${guarded}/*`, `${open}/{user}`]));
  assert.equal(bad?.status, 'fail');
  assert.match(bad!.message, new RegExp(`^security\\.binds lets users bind ${open}/\\{user\\} \\(${open}/alice on ${open}, mounted rw,relatime\\): root in their container can leave a setuid-root program or a device node there and use it on the host \\(roots as alice gets them\\)$`));
  assert.match(bad!.fix!, new RegExp(`^mount ${open} nosuid,nodev `));
  assert.match(bad!.fix!, /userns-remap/);
});

test('what the check is about: root in a container leaves a setuid-root program in an allowed bind', async (t) => {
  if (missing(t, { root: true, commands: ['dockerd', 'mount', 'cc', 'runuser'] })) return;
  d = await startDockerd();
  // A program that says whose rights it runs with (busybox drops a setuid bit by itself).
  const src = join(dir, 'euid.c');
  writeFileSync(src, '#include <stdio.h>\n#include <unistd.h>\nint main(void) { printf("%d\\n", (int)geteuid()); return 0; }\n');
  for (const where of [open, guarded]) {
    const cc = await run('cc', ['-static', '-o', join(where, 'alice/euid'), src]);
    assert.equal(cc.code, 0, cc.stderr);
    const r = await d.docker(['run', '--rm', '-v', `${where}/alice:/w`, 'bb', 'chmod', '4755', '/w/euid']);
    assert.equal(r.code, 0, r.stderr);
    const st = statSync(join(where, 'alice/euid'));
    assert.equal(st.uid, 0);
    assert.equal(st.mode & 0o4000, 0o4000, 'the container made it setuid root');
  }
  const euidAsAlice = async (where: string) => (await run('runuser', ['-u', 'alice', '--', join(where, 'alice/euid')])).stdout.trim();
  assert.equal(await euidAsAlice(open), '0', 'without nosuid alice runs it as root on the host');
  assert.equal(await euidAsAlice(guarded), (await run('id', ['-u', 'alice'])).stdout.trim(), 'on the nosuid mount the bit is ignored');
});

test('no line without a security block, nor for another --root', async (t) => {
  if (missing(t, { root: true })) return;
  const none = join(dir, 'none.yaml');
  writeFileSync(none, 'version: 1\n', { mode: 0o644 });
  assert.equal(await bindMounts(none), undefined);
  const tree = join(dir, 'tree');
  mkdirSync(tree);
  assert.equal(await bindMounts(policy('tree', [`${open}/*`]), ['--root', tree]), undefined);
});
