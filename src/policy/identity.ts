/**
 * Who is acting: the real uid, resolved through the system's user database
 * (NSS in-process, the answers of getent and id, so LDAP/AD names such as
 * h.baker@hertie-school.lan work), and the
 * unix groups that user is in. GPUGUARD_USER and SUDO_* are trusted only
 * from uid 0: anyone can set an environment variable.
 */
import { GpuguardError } from '../errors.ts';
import { groupNames, passwdEntry } from '../sys/nss.ts';

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

/** Look a user up by name or uid in the user database (NSS, in-process: sys/nss.ts). */
export function lookupUser(nameOrUid: string): Identity {
  const entry = passwdEntry(nameOrUid);
  if (!entry) throw new IdentityError(`user "${nameOrUid}" is not in the user database (getent passwd); ask an admin to add the account`, 1);
  return { user: entry.user, uid: entry.uid, unixGroups: groupNames(entry), ...(entry.home?.startsWith('/') ? { home: entry.home } : {}) };
}
