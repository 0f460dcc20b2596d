/**
 * Who the docker face decides for, and how it hands over. As the shim (a
 * process of the user's own) that is this process: its environment, real
 * uid and working directory, its stderr, and execve(2). The decider
 * (src/decider), a resident root process, runs the same face code for a
 * front that asked it over a socket: the caller is then the front's
 * process as the kernel reports it, and handing over means answering the
 * front with the argv to exec. Nothing else in the face differs, so the two
 * cannot drift.
 */
import { homedir } from 'node:os';
import { execve } from '../sys/exec.ts';
import type { RunScan } from './argv.ts';
import type { LocalTarget } from './globals.ts';
import type { ContainerSummary } from '../docker/lists.ts';
import type { Identity } from '../policy/identity.ts';

export interface Caller {
  env: NodeJS.ProcessEnv;
  /** The caller's real uid: identity comes from it alone (policy/identity.ts). */
  uid: number;
  pid: number;
  cwd(): string;
  /** Where `~/.docker` is: $HOME first, as os.homedir() and the docker CLI look. */
  home(): string;
  /** One line (or more) for the caller's stderr. */
  warn(text: string): void;
  /** A file the user named (`--label-file`): read with the user's rights. */
  readUserFile(path: string): string;
  /**
   * Called where the face is about to do what only a process of the user's
   * own can (compose, `start`'s GPU check, `exec --privileged`, `volume
   * create`) and with each scanned run/create before anything is decided:
   * the decider throws {@link Declined} for what it does not serve.
   */
  vet?(point: VetPoint, scan?: RunScan): void;
  /** The daemon the command goes to, once worked out: the decider declines any but its own. */
  vetTarget?(target: LocalTarget): void;
  /**
   * Every container on the local daemon, for the ownership guard's
   * listings (`docker ps`): the decider answers from a list it keeps
   * current with dockerd's events; else the guard asks dockerd.
   */
  listAllContainers?(socket: string): Promise<ContainerSummary[]>;
  /** Image labels by image id (they never change for an id): the decider remembers them. */
  imageLabels?(socket: string, ids: string[]): Promise<Map<string, Record<string, string>>>;
  /** Who `uid` is: the decider keeps the answers a minute, as the API face does (src/api/users.ts). */
  identity?(): Promise<Identity>;
  /** Become the real docker CLI: `argv` without argv[0], which stays the caller's own. */
  handover(real: string, argv: string[]): Promise<never>;
}

export type VetPoint = 'compose' | 'start' | 'exec-privileged' | 'volume-create' | 'create';

/** The decider does not serve this call: the front runs gpuguard itself, as without a decider. */
export class Declined extends Error {
  override name = 'Declined';
}

export function processCaller(): Caller {
  return {
    env: process.env,
    uid: process.getuid?.() ?? 0,
    pid: process.pid,
    cwd: () => process.cwd(),
    home: () => homedir(),
    warn: (text) => void process.stderr.write(text),
    // node:fs on use only: loading it starts a thread pool the pass-through would pay for.
    readUserFile: (path) => process.getBuiltinModule('node:fs').readFileSync(path, 'utf8'),
    handover: (real, argv) => execve(real, [process.argv0, ...argv], process.env),
  };
}
