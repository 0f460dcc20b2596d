/**
 * Running the real docker CLI and capturing its output, and the error kind
 * for what Docker answers. Kept apart from gateway.ts (which loads zod for
 * the inspect shapes) so that paths that only run the CLI load nothing else.
 */
import { execFile } from 'node:child_process';
import { GpuguardError } from '../errors.ts';

export class DockerError extends GpuguardError {
  override name = 'DockerError';
}

/** Run the real docker CLI and capture its output. Environment is passed as is (DOCKER_HOST, contexts). */
export function dockerCLI(realDocker: string, args: string[], env: NodeJS.ProcessEnv = process.env): Promise<{ stdout: string; stderr: string; code: number }> {
  return new Promise((resolve) => {
    execFile(realDocker, args, { env, maxBuffer: 64 * 1024 * 1024, encoding: 'utf8' }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? ((err as { code: number }).code) : 1) : 0;
      resolve({ stdout, stderr, code });
    });
  });
}

/** The daemon's socket cannot be reached (not running, no permission): the real CLI would fail too. */
export class DaemonUnreachable extends DockerError {
  override name = 'DaemonUnreachable';
}
