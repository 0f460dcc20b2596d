/**
 * Every line of test/fixtures/docker-run/corpus.txt, created through the
 * shim and through the real CLI (as `docker create`, same argv) on a private
 * dockerd, by the real user alice: the two `docker inspect` documents are
 * equal apart from the policy's additions, and the real CLI agrees with the
 * scanner on the image and the command.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { FIXTURES, IS_ROOT, ensureTestUsers, missing, runAs, startDockerd, type PrivateDockerd, installFace } from '../harness/index.ts';
import { scanDockerArgv, type RunScan } from '../../src/docker-shim/argv.ts';
import { shellWords } from '../../src/docker-shim/quote.ts';

const corpus = readFileSync(join(FIXTURES, 'docker-run/corpus.txt'), 'utf8')
  .split('\n')
  .filter((l) => l.trim() && !l.startsWith('#'));

const INVENTORY = ['GPU-4a2d7e4c-1f1c-4c6a-9bd3-3f4a1c2b5d6e', 'GPU-2f304152-6374-4859-abfc-e1f20314253f', 'GPU-30415263-7485-496a-bc0d-f20314253640', 'GPU-41526374-8596-4a7b-cd1e-031425364751'];
const LIMITS = { cpus: 2, memory: 64 * 1024 ** 3, pids: 100000, shm: 8 * 1024 ** 3 };
let d: PrivateDockerd | undefined;
let dir: string;
let shim: string;
let env: Record<string, string>;

before(async () => {
  if (!IS_ROOT) return;
  ensureTestUsers();
  d = await startDockerd({ socketGroup: 'gg-docker' });
  dir = mkdtempSync('/tmp/gg-corpus-');
  chmodSync(dir, 0o777);
  shim = installFace(dir, 'docker');
  for (const f of ['app.env', 'labels.txt']) copyFileSync(join(FIXTURES, 'docker-run/files', f), join(dir, f));
  writeFileSync(
    join(dir, 'policy.yaml'),
    `version: 1\nlabelPrefix: ds01\ndefaults: {group: students}\ngroups:\n  students:\n    limits: {cpus: 2, memory: 64g, pids: 100000, shmSize: 8g, containers: 1000}\ncgroup: {parent: "/ds01/{group}/{user}"}\nevents: {log: ${dir}/events.jsonl}\n`,
  );
  // GPU lines are allocated (src/gpu) from this inventory: 4 whole GPUs, GPU 0 the UUID a corpus line names.
  writeFileSync(join(dir, 'nvidia-smi-L.txt'), INVENTORY.map((u, i) => `GPU ${i}: NVIDIA A100 80GB PCIe (UUID: ${u})\n`).join(''), { mode: 0o644 });
  mkdirSync(join(dir, 'run'), { mode: 0o1777 });
  chmodSync(join(dir, 'run'), 0o1777);
  env = {
    ...d.clientEnv,
    GPUGUARD_REAL_DOCKER: d.realDocker,
    GPUGUARD_POLICY: join(dir, 'policy.yaml'),
    GPUGUARD_NVIDIA_SMI: join(dir, 'nvidia-smi-L.txt'),
    GPUGUARD_RUN_DIR: join(dir, 'run'),
    HOME: dir,
  };
  const r = await d.docker(['create', '--name', 'gg-corpus-data', '-v', '/data', 'bb']);
  assert.equal(r.code, 0, r.stderr);
});

after(async () => {
  await d?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const RUN_ONLY = new Set(['detach', 'sig-proxy', 'detach-keys']);

/** The same line as `docker create`: run → create, run-only flags dropped (letters out of clusters), @TMP@ filled. */
function asCreate(argv: string[], scan: RunScan, tmp: string): string[] {
  const out = [...argv];
  const sub = out.indexOf('run', scan.globals.commandIndex);
  if (sub >= 0 && sub < scan.flagsFrom) out[sub] = 'create';
  const drop = new Set<number>();
  for (const f of scan.flags) {
    if (!RUN_ONLY.has(f.name)) continue;
    if (f.cluster) out[f.start] = out[f.start]!.replace(f.spelled.slice(1), '');
    else for (let i = f.start; i < f.end; i++) drop.add(i);
  }
  return out.filter((_, i) => !drop.has(i)).map((w) => w.replaceAll('@TMP@', tmp));
}

type Doc = Record<string, any>;

function normalize(doc: Doc): Doc {
  const c = structuredClone(doc);
  const id: string = c.Id;
  for (const k of ['Id', 'Created', 'HostnamePath', 'HostsPath', 'ResolvConfPath', 'LogPath', 'GraphDriver']) delete c[k];
  if (c.Config.Hostname === id.slice(0, 12)) c.Config.Hostname = '<id>';
  if (/^\/[a-z]+_[a-z]+$/.test(c.Name)) c.Name = '<generated>';
  for (const m of c.Mounts ?? []) {
    if (/^[0-9a-f]{64}$/.test(m.Name ?? '')) {
      m.Name = '<anonymous>';
      m.Source = '<anonymous>';
    }
  }
  // Filled from Go maps somewhere between the CLI and the daemon: order is random from run to run.
  c.HostConfig.Binds?.sort();
  c.Config.Env?.sort();
  c.Mounts?.sort((a: Doc, b: Doc) => String(a.Destination).localeCompare(String(b.Destination)));
  return c;
}

/** The inspect document, or the failure (code and stderr) when docker refuses the line. */
async function createAndInspect(cmd: string, argv: string[]): Promise<Doc> {
  const r = await runAs('alice', cmd, argv, { env, cwd: dir });
  if (r.code !== 0) return { failed: { code: r.code, stderr: r.stderr } };
  const id = r.stdout.trim().split('\n').at(-1)!;
  const i = await d!.docker(['inspect', id]);
  assert.equal(i.code, 0, i.stderr);
  await d!.docker(['rm', '-f', '-v', id]);
  return JSON.parse(i.stdout)[0];
}

/** Corpus lines the test policy refuses (everything else must create the same container). */
const POLICY_REFUSES = new Map<string, RegExp>([['docker run --rm --runtime runc bb true', /^gpuguard: --runtime runc would start the container without gpuguard's runtime wrapper/]]);

for (const [n, line] of corpus.entries()) {
  test(`corpus ${n + 1}: ${line.slice(0, 100)}`, async (t) => {
    if (missing(t, { root: true, commands: ['dockerd', 'runuser'] })) return;
    const argv = shellWords(line).slice(1);
    const scan = scanDockerArgv(argv)!;
    const tmp = join(dir, `cid-${n}`);
    const args = asCreate(argv, scan, tmp);
    const direct = await createAndInspect(d!.realDocker, args);
    rmSync(tmp, { force: true });
    const viaShim = await createAndInspect(shim, args);
    rmSync(tmp, { force: true });

    const refusal = POLICY_REFUSES.get(line);
    if (refusal) {
      // A real-world line the policy refuses: the real CLI creates it, the shim says why and creates nothing.
      assert.equal(direct.failed, undefined, direct.failed?.stderr);
      assert.equal(viaShim.failed?.code, 125);
      assert.match(viaShim.failed!.stderr, refusal);
      return;
    }
    if (direct.failed) {
      // docker refuses this line (e.g. a one-letter --name): the shim must fail the same way.
      assert.deepEqual(viaShim, direct);
      return;
    }
    assert.equal(viaShim.failed, undefined, `the shim failed where the real CLI did not: ${viaShim.failed?.stderr}`);
    // The real CLI agrees with the scanner: image and command.
    assert.equal(direct.Config.Image, argv[scan.image!]);
    if (scan.command.length) assert.deepEqual(direct.Config.Cmd, scan.command);

    // The policy's additions, then everything else equal.
    const labels: Record<string, string> = viaShim.Config.Labels ?? {};
    assert.equal(labels['ds01.user'], 'alice');
    assert.equal(labels['ds01.managed'], 'true');
    const iface = argv.some((w) => w.startsWith('devcontainer.local_folder=')) ? 'devcontainer' : 'docker';
    assert.equal(labels['ds01.interface'], iface);
    for (const k of Object.keys(labels)) if (k.startsWith('ds01.')) delete labels[k];
    assert.equal(viaShim.HostConfig.CgroupParent, '/ds01/students/alice');
    viaShim.HostConfig.CgroupParent = direct.HostConfig.CgroupParent;
    const asked = (...names: string[]) => scan.flags.some((f) => names.includes(f.name));
    const expect = (key: string, value: number, ...flags: string[]) => {
      if (asked(...flags)) return;
      assert.equal(viaShim.HostConfig[key], value, `${key} injected`);
      viaShim.HostConfig[key] = direct.HostConfig[key];
    };
    expect('NanoCpus', LIMITS.cpus * 1e9, 'cpus', 'cpu-quota', 'cpu-period');
    if (!asked('memory', 'memory-swap')) expect('MemorySwap', 2 * LIMITS.memory, 'memory'); // docker's default swap: twice the memory
    expect('Memory', LIMITS.memory, 'memory');
    expect('PidsLimit', LIMITS.pids, 'pids-limit');
    expect('ShmSize', LIMITS.shm, 'shm-size');
    // GPU requests become explicit devices of the inventory (src/gpu), and an NVIDIA_VISIBLE_DEVICES the user set is set to them.
    const granted = (viaShim.HostConfig.DeviceRequests ?? []).flatMap((r: Doc) => r.DeviceIDs ?? []);
    if (granted.length) {
      for (const id of granted) assert.ok(INVENTORY.includes(id), `GPU ${id} granted`);
      viaShim.HostConfig.DeviceRequests = direct.HostConfig.DeviceRequests;
      const askedEnv = (direct.Config.Env ?? []).find((e: string) => e.startsWith('NVIDIA_VISIBLE_DEVICES='));
      if (Array.isArray(viaShim.Config.Env)) {
        viaShim.Config.Env = viaShim.Config.Env.map((e: string) => (e === `NVIDIA_VISIBLE_DEVICES=${granted.join(',')}` ? askedEnv : e)).filter(Boolean);
      }
    }
    if (viaShim.Config.Labels && !Object.keys(viaShim.Config.Labels).length && direct.Config.Labels && !Object.keys(direct.Config.Labels).length) {
      viaShim.Config.Labels = direct.Config.Labels;
    }
    assert.deepEqual(normalize(viaShim), normalize(direct));
  });
}
