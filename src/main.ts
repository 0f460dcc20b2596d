/**
 * One binary, three faces, chosen by the name it was started as. Each face
 * is imported lazily: the docker pass-through and the runtime wrapper's
 * non-create calls must load nothing they do not need.
 */
import { basename } from 'node:path';

export type FaceName = 'docker' | 'docker-compose' | 'runtime' | 'admin';

export function faceOf(argv0: string): FaceName {
  switch (basename(argv0)) {
    case 'docker':
      return 'docker';
    case 'docker-compose':
      return 'docker-compose';
    case 'gpuguard-runc':
    case 'runc':
      return 'runtime';
    default:
      return 'admin';
  }
}

async function main(): Promise<number> {
  const args = process.argv.slice(2);
  switch (faceOf(process.argv0)) {
    case 'docker':
      return (await import('./docker-shim/index.ts')).main(args);
    case 'docker-compose':
      return (await import('./docker-shim/compose.ts')).composeMain(args);
    case 'runtime':
      return (await import('./oci-hook/index.ts')).main(args);
    case 'admin':
      return (await import('./cli/index.ts')).main(args);
  }
}

main().then(
  (code) => process.exit(code),
  async (err) => {
    const { errorLine, GpuguardError } = await import('./errors.ts');
    process.stderr.write(`gpuguard: ${errorLine(err)}\n`);
    if (!(err instanceof GpuguardError) && process.env.GPUGUARD_DEBUG) console.error(err);
    process.exit(err instanceof GpuguardError ? err.exitCode : 70);
  },
);
