/** Running commands in tests: argv arrays, captured output, never a shell. */
import { execa, type Options } from 'execa';

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

export async function run(cmd: string, args: string[], opts: Options = {}): Promise<RunResult> {
  const r = await execa(cmd, args, { reject: false, stripFinalNewline: false, timeout: 120_000, ...opts });
  return { code: r.exitCode ?? (r.signal ? 128 : -1), stdout: String(r.stdout ?? ''), stderr: String(r.stderr ?? '') };
}

/** Run as a unix user (real uid, so identity comes from the kernel, not the environment). */
export function runAs(user: string, cmd: string, args: string[], opts: Options = {}): Promise<RunResult> {
  return run('runuser', ['-u', user, '--', cmd, ...args], opts);
}
