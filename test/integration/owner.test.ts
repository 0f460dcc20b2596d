/**
 * Ownership against a real dockerd: containers made with the raw docker CLI
 * (bypassing the shim) by each of the six detection paths, read back by the
 * compiled `gpuguard ps --json` / `gpuguard who`; and isolation through the
 * compiled shim, run as real unix users (runuser), identity from the uid.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { chownSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { execFileSync } from 'node:child_process';
import { BINARY, FIXTURES, IS_ROOT, ensureTestUsers, missing, run, runAs, startDockerd, type PrivateDockerd } from '../harness/index.ts';

let d: PrivateDockerd | undefined;
let dir: string;
const homeDirs: string[] = [];
const lab = join(FIXTURES, 'policies/lab.yaml');

const lookupUid = (user: string) => Number(execFileSync('id', ['-u', user], { encoding: 'utf8' }).trim());

function ownedDir(path: string, user: string): string {
  mkdirSync(path, { recursive: true });
  const uid = lookupUid(user);
  chownSync(path, uid, uid);
  return path;
}

before(async () => {
  if (!IS_ROOT) return;
  ensureTestUsers();
  d = await startDockerd({ socketGroup: 'gg-docker' });
  dir = mkdtempSync('/tmp/gg-owner-');
  // The shim's faces: symlinks named docker / gpuguard to the compiled binary.
  symlinkSync(BINARY, join(dir, 'docker'));
  writeFileSync(join(dir, 'policy.yaml'), `${await import('node:fs').then((fs) => fs.readFileSync(lab, 'utf8'))}docker: {realPath: ${d.realDocker}}\nevents: {log: ${dir}/events.jsonl}\n`);
});

after(async () => {
  await d?.stop();
  for (const h of homeDirs) rmSync(h, { recursive: true, force: true });
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const env = () => ({ ...d!.clientEnv, GPUGUARD_POLICY: join(dir, 'policy.yaml') });
const gg = (args: string[]) => run(BINARY, args, { env: env() });
const raw = async (args: string[]) => {
  const r = await d!.docker(args);
  assert.equal(r.code, 0, `docker ${args.join(' ')}: ${r.stderr}`);
  return r.stdout.trim();
};

test('gpuguard ps --json: owner and method for containers made with raw docker, by each detection path', async (t) => {
  if (missing(t, { root: true }) || !d) return;
  const aliceUid = lookupUid('alice');
  const stamp = Date.now().toString(36);
  const devFolder = ownedDir(`/home/alice/gg-dev-${stamp}`, 'alice');
  const bobData = ownedDir(`/home/bob/gg-data-${stamp}`, 'bob');
  const planted = ownedDir(`/home/alice/gg-planted-${stamp}`, 'bob');
  const composeDir = ownedDir(join(dir, 'carol-project'), 'carol');
  homeDirs.push(devFolder, bobData, planted);

  // An image that carries an owner label: building it must not make its containers mallory's.
  await raw(['create', '--name', 'labelled-src', 'bb', 'true']);
  await raw(['commit', '--change', 'LABEL ds01.user=mallory', '--change', 'LABEL aime.mlc.USER=mallory', 'labelled-src', 'bb-labelled']);
  await raw(['rm', 'labelled-src']);

  const sleep = ['sleep', '600'];
  await raw(['run', '-d', '--name', `proj._.${aliceUid}`, 'bb', ...sleep]);
  await raw(['run', '-d', '--name', 'vsc-dev', '--label', `devcontainer.local_folder=${devFolder}`, 'bb', ...sleep]);
  await raw(['run', '-d', '--name', 'bind-bob', '-v', `${bobData}:/data`, 'bb', ...sleep]);
  await raw(['run', '-d', '--name', 'bind-planted', '--mount', `type=bind,source=${planted},target=/x`, 'bb', ...sleep]);
  await raw(['run', '-d', '--name', 'compose-web', '--label', 'com.docker.compose.project=carolproj', '--label', `com.docker.compose.project.working_dir=${composeDir}`, 'bb', ...sleep]);
  await raw(['run', '-d', '--name', 'image-label', 'bb-labelled', ...sleep]);
  await raw(['create', '--name', 'image-label-own', '--label', 'ds01.user=carol', 'bb-labelled', 'true']);
  await raw(['create', '--name', 'labelled', '--label', 'ds01.user=alice', '--label', 'ds01.uid=1234', 'bb', 'true']);
  await raw(['create', '--name', 'aime', '--label', 'aime.mlc.USER=bob', 'bb', 'true']);
  await raw(['create', '--name', 'nobody', 'bb', 'true']);
  await raw(['create', '--name', 'gpu', '--gpus', 'device=GPU-4f9a2c1e-8b3d-4e71-a2f0-6c5d9e8b1a20', 'bb', 'true']);

  const r = await gg(['ps', '--json']);
  assert.equal(r.code, 0, r.stderr);
  const rows = JSON.parse(r.stdout) as { name: string; owner: string; method: string; rejected: string[]; interface: string; gpus: string[]; state: string; uid: number | null }[];
  const by = (name: string) => {
    const row = rows.find((x) => x.name === name);
    assert.ok(row, `${name} is listed`);
    return row;
  };
  const expect: [string, string, string][] = [
    [`proj._.${aliceUid}`, 'alice', 'name_pattern'],
    ['vsc-dev', 'alice', 'devcontainer'],
    ['bind-bob', 'bob', 'mount_path'],
    ['bind-planted', 'unknown', 'none'],
    ['compose-web', 'carol', 'compose'],
    ['image-label', 'unknown', 'none'],
    ['image-label-own', 'carol', 'label'],
    ['labelled', 'alice', 'label'],
    ['aime', 'bob', 'aime_label'],
    ['nobody', 'unknown', 'none'],
  ];
  for (const [name, owner, method] of expect) {
    const row = by(name);
    assert.deepEqual([row.owner, row.method], [owner, method], `${name}: ${JSON.stringify(row)}`);
  }
  assert.match(by('bind-planted').rejected.join('\n'), /owned by bob, not alice/);
  assert.match(by('image-label').rejected.join('\n'), /ds01\.user=mallory comes from the image/);
  assert.match(by('image-label').rejected.join('\n'), /aime\.mlc\.USER=mallory comes from the image/);
  assert.equal(by('labelled').uid, 1234);
  assert.equal(by('compose-web').interface, 'compose');
  assert.equal(by('vsc-dev').interface, 'devcontainer');
  assert.deepEqual(by('gpu').gpus, ['GPU-4f9a2c1e-8b3d-4e71-a2f0-6c5d9e8b1a20']);
  assert.equal(by('bind-bob').state, 'running');
  assert.equal(by('nobody').state, 'created');

  const mine = JSON.parse((await gg(['ps', '--json', '--user', 'alice'])).stdout) as { owner: string }[];
  assert.ok(mine.length >= 3 && mine.every((x) => x.owner === 'alice'));

  const table = await gg(['ps']);
  assert.match(table.stdout, /^CONTAINER +ID +OWNER +METHOD +INTERFACE +GPUS +STATE +AGE$/m);
  assert.match(table.stdout, /^compose-web +[0-9a-f]{12} +carol +compose +compose +- +running +\d+[smhd]$/m);

  const who = await gg(['who', 'bind-planted']);
  assert.equal(who.code, 0, who.stderr);
  assert.match(who.stdout, /^owner: +unknown$/m);
  assert.match(who.stdout, /^rejected: +bind mount .*gg-planted.*: owned by bob, not alice$/m);
  const whoJson = JSON.parse((await gg(['who', '--json', 'vsc-dev'])).stdout);
  assert.deepEqual([whoJson.owner, whoJson.method], ['alice', 'devcontainer']);
  const none = await gg(['who', 'no-such-container']);
  assert.equal(none.code, 1);
  assert.match(none.stderr, /no such container: no-such-container/);
});
