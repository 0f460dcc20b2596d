/**
 * The user database as a long-running face sees it: every answer expires
 * after TTL_MS (so a new group membership or account counts within a
 * minute) and everything is dropped on SIGHUP. Identities (name, home and
 * unix groups, for the policy's groups, admins and bind roots) come from
 * policy/identity.ts (NSS in-process); the owner evidence rules ask
 * synchronously (ownership/detect.ts is pure), answered from /etc/passwd
 * when the name is there (NSS reads `files` first) and from getent
 * otherwise.
 */
import { readFileSync, statSync } from 'node:fs';
import { lookupUser, type Identity } from '../policy/identity.ts';
import { getentLookup, parsePasswd } from '../ownership/facts.ts';
import type { UserEntry } from '../ownership/detect.ts';

const TTL_MS = 60_000;

export class UserDb {
  private identities = new Map<number, { at: number; identity: Promise<Identity> }>();
  private passwd: { mtimeMs: number; size: number; byName: Map<string, UserEntry>; byUid: Map<number, UserEntry> } | undefined;
  private getent = getentLookup();
  private getentAt = Date.now();

  constructor(private readonly passwdPath = '/etc/passwd') {}

  /** Forget everything (SIGHUP). */
  clear(): void {
    this.identities.clear();
    this.passwd = undefined;
    this.getent = getentLookup();
    this.getentAt = Date.now();
  }

  /** The identity of a uid; rejects with IdentityError when it is not in the user database. */
  identity(uid: number): Promise<Identity> {
    const now = Date.now();
    const hit = this.identities.get(uid);
    if (hit && now - hit.at < TTL_MS) return hit.identity;
    const identity = new Promise<Identity>((resolve) => resolve(lookupUser(String(uid))));
    this.identities.set(uid, { at: now, identity });
    identity.catch(() => this.identities.delete(uid));
    return identity;
  }

  /** A user by name or uid (as text), synchronously: for owner evidence. */
  readonly lookup = (key: string): UserEntry | undefined => {
    const p = this.passwdTable();
    const local = /^\d+$/.test(key) ? p?.byUid.get(Number(key)) : p?.byName.get(key);
    if (local) return local;
    if (Date.now() - this.getentAt > TTL_MS) {
      this.getent = getentLookup();
      this.getentAt = Date.now();
    }
    return this.getent(key);
  };

  private passwdTable() {
    try {
      const st = statSync(this.passwdPath);
      if (this.passwd && this.passwd.mtimeMs === st.mtimeMs && this.passwd.size === st.size) return this.passwd;
      const byName = new Map<string, UserEntry>();
      const byUid = new Map<number, UserEntry>();
      for (const line of readFileSync(this.passwdPath, 'utf8').split('\n')) {
        const e = parsePasswd(line);
        if (!e) continue;
        if (!byName.has(e.user)) byName.set(e.user, e);
        if (!byUid.has(e.uid)) byUid.set(e.uid, e);
      }
      this.passwd = { mtimeMs: st.mtimeMs, size: st.size, byName, byUid };
      return this.passwd;
    } catch {
      return undefined;
    }
  }
}
