/**
 * Who is acting: the real uid, resolved through the system's user database
 * (getent, so LDAP/AD names such as h.baker@hertie-school.lan work), and the
 * unix groups that user is in. GPUGUARD_USER and SUDO_* are trusted only
 * from uid 0: anyone can set an environment variable.
 */
import { execFile, execFileSync } from 'node:child_process';
import { GpuguardError } from '../errors.ts';

export interface Identity {
  user: string;
  uid: number;
  /** Names of every unix group the user is in, primary included. */
  unixGroups: string[];
  /** The home directory the user database gives (never $HOME, which the user sets). */
  home?: string;
}

export class IdentityError extends GpuguardError {
  override name = 'IdentityError';
}

export function currentIdentity(env: NodeJS.ProcessEnv = process.env, realUid: number = process.getuid?.() ?? 0): Identity {
  if (realUid === 0) {
    const claimed = env.GPUGUARD_USER || env.SUDO_USER;
    if (claimed) return lookupUser(claimed);
    if (env.SUDO_UID) return lookupUser(env.SUDO_UID);
  }
  return lookupUser(String(realUid));
}

/** Look a user up by name or uid in the user database. */
export function lookupUser(nameOrUid: string): Identity {
  let entry: string;
  try {
    entry = execFileSync('getent', ['passwd', nameOrUid], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
  } catch (err) {
    throw notInDatabase(nameOrUid, err);
  }
  const { user, uid, home } = passwdEntry(nameOrUid, entry);
  return { user, uid, unixGroups: unixGroupsOf(user), ...(home ? { home } : {}) };
}

/** The same lookup without blocking (a long-running face must not stall every connection on getent). */
export async function lookupUserAsync(nameOrUid: string): Promise<Identity> {
  const run = (args: string[]) =>
    new Promise<string>((resolve, reject) => execFile(args[0]!, args.slice(1), { encoding: 'utf8' }, (err, stdout) => (err ? reject(err) : resolve(stdout))));
  let entry: string;
  try {
    entry = await run(['getent', 'passwd', nameOrUid]);
  } catch (err) {
    throw notInDatabase(nameOrUid, err);
  }
  const { user, uid, home } = passwdEntry(nameOrUid, entry);
  const groups = await run(['id', '-Gn', '--', user]).catch(() => '');
  return { user, uid, unixGroups: groups.trim().split(/\s+/).filter(Boolean), ...(home ? { home } : {}) };
}

function notInDatabase(nameOrUid: string, cause: unknown): IdentityError {
  return new IdentityError(`user "${nameOrUid}" is not in the user database (getent passwd); ask an admin to add the account`, 1, { cause });
}

/** Name, uid and (when absolute) home of a passwd line. */
function passwdEntry(nameOrUid: string, entry: string): { user: string; uid: number; home?: string } {
  const [user, , uid, , , home] = entry.split('\n')[0]!.split(':');
  if (!user || uid === undefined) throw new IdentityError(`getent passwd ${nameOrUid}: unreadable entry "${entry.trim()}"`);
  return { user, uid: Number(uid), ...(home?.startsWith('/') ? { home } : {}) };
}

function unixGroupsOf(user: string): string[] {
  try {
    return execFileSync('id', ['-Gn', '--', user], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim().split(/\s+/).filter(Boolean);
  } catch {
    return [];
  }
}
