/**
 * The host facts owner detection needs: the user database (NSS, so LDAP
 * users resolve), file owners (stat), and image labels read beforehand from
 * Docker, once per distinct image. Lookups are cached for one process.
 */
import { execFile } from 'node:child_process';
import { passwdEntry } from '../sys/nss.ts';
import { readFileSync, statSync } from 'node:fs';
import type { ContainerDetails, DockerReader } from '../docker/gateway.ts';
import { AIME_USER_LABEL, ownerOf, subjectOfInspect, subjectOfListed, type ListedContainer, type Owner, type OwnerFacts, type OwnerSubject, type UserEntry } from './detect.ts';

export function parsePasswd(line: string): UserEntry | undefined {
  const [user, , uid] = line.split('\n')[0]!.split(':');
  return user && uid !== undefined && /^\d+$/.test(uid) ? { user, uid: Number(uid) } : undefined;
}

/**
 * The user with this uid, without blocking (the shim looks it up while it
 * waits for Docker). /etc/passwd first: NSS consults `files` first on Debian
 * and with sssd/LDAP alike, and reading it costs no process; getent (LDAP/AD
 * users) only when the uid is not there.
 */
export function userByUidAsync(uid: number): Promise<UserEntry | undefined> {
  try {
    for (const line of readFileSync('/etc/passwd', 'utf8').split('\n')) {
      const entry = parsePasswd(line);
      if (entry?.uid === uid) return Promise.resolve(entry);
    }
  } catch {
    /* no /etc/passwd: ask NSS */
  }
  return new Promise((resolve) => {
    execFile('getent', ['passwd', String(uid)], { encoding: 'utf8' }, (err, stdout) => resolve(err ? undefined : parsePasswd(stdout)));
  });
}

/** A user by name or uid (as text) from getent, cached for the life of this lookup function. */
export function getentLookup(): (key: string) => UserEntry | undefined {
  const byKey = new Map<string, UserEntry | undefined>();
  return (key) => {
    if (byKey.has(key)) return byKey.get(key);
    // The user database in-process (sys/nss.ts): a `docker ps` over many containers asks it often.
    const found = passwdEntry(key);
    const entry: UserEntry | undefined = found ? { user: found.user, uid: found.uid } : undefined;
    byKey.set(key, entry);
    return entry;
  };
}

/** `lookup` answers by name or uid (the API face passes one whose answers expire; a shim process lives too briefly to care). */
export function hostFacts(images: Map<string, Record<string, string>>, lookup: (key: string) => UserEntry | undefined = getentLookup()): OwnerFacts {
  return {
    imageLabels: (id) => images.get(id),
    userByUid: (uid) => lookup(String(uid)),
    // A purely numeric "name" would be looked up as a uid by getent: not a name.
    userByName: (name) => (/^\d+$/.test(name) ? undefined : lookup(name)),
    ownerUid: (path) => {
      try {
        return statSync(path).uid;
      } catch {
        return undefined;
      }
    },
  };
}

/** Images whose labels matter: those of containers that carry an owner or interface label. */
export function imagesToCheck(containers: readonly OwnerSubject[], prefix: string): string[] {
  const keys = [`${prefix}.user`, `${prefix}.interface`, AIME_USER_LABEL];
  return [...new Set(containers.filter((c) => keys.some((k) => c.labels[k] !== undefined)).map((c) => c.imageId))];
}

/** Owners of these subjects: one image-label read for all of them (the reader decides how: see gateway.ts). */
async function ownersOfSubjects(
  reader: Pick<DockerReader, 'imageLabels'>,
  subjects: OwnerSubject[],
  prefix: string,
  lookup?: (key: string) => UserEntry | undefined,
): Promise<{ owners: Owner[]; facts: OwnerFacts }> {
  const wanted = imagesToCheck(subjects, prefix);
  const images = wanted.length ? await reader.imageLabels(wanted) : new Map<string, Record<string, string>>();
  const facts = hostFacts(images, lookup);
  return { owners: subjects.map((c) => ownerOf(c, prefix, facts)), facts };
}

/** Owners of inspected containers, reading each distinct image's labels once. */
export async function ownersOf(reader: Pick<DockerReader, 'imageLabels'>, containers: ContainerDetails[], prefix: string): Promise<{ owners: Owner[]; facts: OwnerFacts }> {
  return ownersOfSubjects(reader, containers.map(subjectOfInspect), prefix);
}

/**
 * Owners of a container list as the Engine API gives it (`GET
 * /containers/json?all=1`, rows validated by gateway.ts `parseContainerList`):
 * no inspect per container, and one image-label read for the image rule
 * (`reader.imageLabels`: the socket reader lists the images once). So the
 * number of Docker calls does not grow with the number of containers. The
 * same rule and evidence as for inspected containers (detect.ts `ownerOf`).
 * For `docker ps`, `docker stats`, the API face's list filter and the reaper.
 */
export async function ownersOfList(
  reader: Pick<DockerReader, 'imageLabels'>,
  list: readonly ListedContainer[],
  prefix: string,
  lookup?: (key: string) => UserEntry | undefined,
): Promise<{ owners: Owner[]; facts: OwnerFacts }> {
  return ownersOfSubjects(reader, list.map(subjectOfListed), prefix, lookup);
}
