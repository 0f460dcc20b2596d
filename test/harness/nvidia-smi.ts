/** A fake `nvidia-smi` that prints a fixture of real A100 output for `-L`. */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { FIXTURES } from './tools.ts';

export function fixturePath(name: string): string {
  return join(FIXTURES, 'nvidia-smi', `${name}.txt`);
}

/** Write an executable `nvidia-smi` into dir that prints the named fixture; returns its path. */
export function fakeNvidiaSmi(dir: string, fixture: string): string {
  const path = join(dir, 'nvidia-smi');
  writeFileSync(
    path,
    `#!/bin/sh\n# fake nvidia-smi for gpuguard tests: fixture ${fixture}\n[ "$1" = "-L" ] || { echo "fake nvidia-smi: only -L is supported" >&2; exit 2; }\ncat '${fixturePath(fixture)}'\n`,
    { mode: 0o755 },
  );
  return path;
}
