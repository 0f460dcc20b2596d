/**
 * A fake `nvidia-smi`: `-L` prints a fixture of real A100 output; the
 * compute-apps query gpuguard makes prints the file `compute-apps.csv` beside
 * the fake (nothing when it does not exist: no GPU process), so a test can
 * list the pids of processes it started. Any other argv fails loudly, so a
 * changed query cannot pass unnoticed.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { FIXTURES } from './tools.ts';

export function fixturePath(name: string, ext = 'txt'): string {
  return name.startsWith('/') ? name : join(FIXTURES, 'nvidia-smi', `${name}.${ext}`);
}

/** The exact query gpuguard runs for GPU processes. */
export const COMPUTE_APPS_QUERY = '--query-compute-apps=pid,gpu_uuid,used_gpu_memory --format=csv,noheader,nounits';

/** Write an executable `nvidia-smi` into dir that prints the named `-L` fixture (or an absolute path); returns its path. */
export function fakeNvidiaSmi(dir: string, fixture: string): string {
  const path = join(dir, 'nvidia-smi');
  writeFileSync(
    path,
    `#!/bin/sh
# fake nvidia-smi for gpuguard tests: -L prints ${fixture}; the compute-apps query prints compute-apps.csv beside this file
case "$*" in
  -L) cat '${fixturePath(fixture)}' ;;
  '${COMPUTE_APPS_QUERY}') [ ! -f '${computeAppsFile(dir)}' ] || cat '${computeAppsFile(dir)}' ;;
  *) echo "fake nvidia-smi: unsupported arguments: $*" >&2; exit 2 ;;
esac
`,
    { mode: 0o755 },
  );
  return path;
}

/** The file the fake prints for the compute-apps query. */
export function computeAppsFile(dir: string): string {
  return join(dir, 'compute-apps.csv');
}

/** Set what the fake in `dir` reports as GPU processes: [pid, gpu uuid, MiB or "[N/A]"]. */
export function setComputeApps(dir: string, apps: [number, string, number | string][]): void {
  writeFileSync(computeAppsFile(dir), apps.map(([pid, uuid, mem]) => `${pid}, ${uuid}, ${mem}\n`).join(''));
}
