/**
 * The platform floor for the wrapper's pass-through: a Bun-compiled binary
 * that does nothing but execve its arguments through libc (src/sys/exec.ts,
 * as the wrapper's hand-over does). Compiled by bench/sections/runtime.sh.
 */
import { execve } from '../../src/sys/exec.ts';

execve(process.argv[2]!, process.argv.slice(2), process.env, []);
