/**
 * Real unix users and groups for the tests (root only): identity in the
 * shim comes from the real uid, so tests run commands as these users.
 */
import { execFileSync } from 'node:child_process';

export const TEST_GROUPS = ['gg-students', 'gg-researchers', 'ds01-admin', 'gg-docker'] as const;
export const TEST_USERS: Record<string, string[]> = {
  alice: ['gg-students', 'gg-docker'],
  bob: ['gg-students', 'gg-docker'],
  carol: ['gg-researchers', 'gg-docker'],
  dsadmin: ['ds01-admin', 'gg-docker'],
};

function exists(db: 'passwd' | 'group', name: string): boolean {
  try {
    execFileSync('getent', [db, name], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/** Create missing groups and users; add memberships. Idempotent. */
export function ensureTestUsers(extraUsers: Record<string, string[]> = {}): void {
  for (const g of TEST_GROUPS) if (!exists('group', g)) execFileSync('groupadd', [g]);
  for (const [user, groups] of Object.entries({ ...TEST_USERS, ...extraUsers })) {
    for (const g of groups) if (!exists('group', g)) execFileSync('groupadd', [g]);
    if (!exists('passwd', user)) execFileSync('useradd', ['--create-home', '--shell', '/bin/sh', user]);
    execFileSync('usermod', ['-a', '-G', groups.join(','), user]);
  }
}
