/**
 * `docker run --rm bb true` on a private dockerd whose default runtime is the
 * wrapper, against `--runtime runc` on the same daemon, one hyperfine run.
 * Called by bench/sections/runtime.sh (BENCH_TMP holds the wrapper symlink
 * and policy).
 */
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { startDockerd } from '../../test/harness/index.ts';

const tmp = process.env.BENCH_TMP!;
const out = process.env.OUT ?? 'bench/results';
const runs = process.env.BENCH_DOCKER_RUNS ?? '30';
const d = await startDockerd({
  runtimes: { gpuguard: { path: join(tmp, 'gpuguard-runc') } },
  defaultRuntime: 'gpuguard',
  env: { GPUGUARD_POLICY: join(tmp, 'policy.yaml') },
});
try {
  const docker = d.realDocker;
  const wrapped: [string, string] = ['docker run --rm bb true (gpuguard-runc default)', `${docker} run --rm bb true`];
  const direct: [string, string] = ['docker run --rm --runtime runc bb true', `${docker} run --rm --runtime runc bb true`];
  // Both orders: on a shared machine the second benchmark of a run is often the luckier one.
  for (const [suffix, pair] of [['a', [wrapped, direct]], ['b', [direct, wrapped]]] as const) {
    const r = spawnSync(
      'hyperfine',
      [
        '-N', '--warmup', '3', '--runs', runs, '--style', 'basic',
        '--export-markdown', join(out, `runtime-docker-run-${suffix}.md`), '--export-json', join(out, `runtime-docker-run-${suffix}.json`),
        ...pair.flatMap(([name, cmd]) => ['-n', name, cmd]),
      ],
      { stdio: 'inherit', env: { ...process.env, ...d.clientEnv } },
    );
    if (r.status !== 0) process.exitCode = r.status ?? 1;
  }
} finally {
  await d.stop();
}
