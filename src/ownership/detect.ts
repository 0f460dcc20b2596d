/**
 * Who owns a container, from what Docker knows about it, for containers
 * gpuguard made and for those it did not (raw docker, compose, VS Code).
 * The seeds' six methods, in their priority order; the first that yields
 * evidence wins, and every result says which method it came from.
 *
 * Pure: the container's inspect data and a few host facts (image labels,
 * the user database, file owners) come in through `OwnerFacts`.
 *
 * A label is evidence only if the container got it at create time: a label
 * that the container's image carries with the same value was inherited, and
 * anyone can build an image that says `ds01.user=alice`.
 */
import { posix } from 'node:path';
import type { ContainerDetails } from '../docker/gateway.ts';

export type OwnerMethod =
  | 'label' // <p>.user
  | 'aime_label' // aime.mlc.USER
  | 'name_pattern' // <name>._.<uid>
  | 'devcontainer' // devcontainer.local_folder under /home/<user>, owned by <user>
  | 'mount_path' // bind mount source under /home/<user>, owned by <user>
  | 'compose' // owner of com.docker.compose.project.working_dir
  | 'none';

export const METHOD_ORDER: readonly OwnerMethod[] = ['label', 'aime_label', 'name_pattern', 'devcontainer', 'mount_path', 'compose'];

export interface UserEntry {
  user: string;
  uid: number;
}

export interface OwnerFacts {
  /** Labels of the image with this id; undefined when the image cannot be read. */
  imageLabels(imageId: string): Record<string, string> | undefined;
  userByUid(uid: number): UserEntry | undefined;
  userByName(name: string): UserEntry | undefined;
  /** The uid that owns this host path (following symlinks), or undefined if it does not exist. */
  ownerUid(path: string): number | undefined;
}

export interface Owner {
  /** The owning user, or undefined: nobody could be shown to own it ("unknown"). */
  user: string | undefined;
  uid: number | undefined;
  method: OwnerMethod;
  /** What the evidence was, for `gpuguard who` and refusal messages. */
  evidence: string;
  /** Evidence that was present but not accepted, and why. */
  rejected: string[];
}

export const AIME_USER_LABEL = 'aime.mlc.USER';
export const DEVCONTAINER_FOLDER_LABEL = 'devcontainer.local_folder';
export const COMPOSE_WORKDIR_LABEL = 'com.docker.compose.project.working_dir';
export const COMPOSE_PROJECT_LABEL = 'com.docker.compose.project';
const NAME_PATTERN = /^(.+)\._\.(\d+)$/;

/**
 * What owner detection reads of a container: the same few facts whether they
 * come from `docker inspect` (ContainerDetails) or from one row of the Engine
 * API's container list (`GET /containers/json`, which carries labels, names,
 * the image id, the creation time and the mounts), so that a listing decides
 * owners without inspecting each container.
 */
export interface OwnerSubject {
  id: string;
  /** Without the leading slash. */
  name: string;
  /** The image id (sha256:…), the key of image labels. */
  imageId: string;
  /** The image as the user named it, for messages. */
  imageRef?: string;
  /** Creation time, ms since the epoch (NaN when unknown). */
  createdMs: number;
  labels: Record<string, string>;
  /** Host paths bind-mounted into the container. */
  bindSources: string[];
}

export function subjectOfInspect(c: ContainerDetails): OwnerSubject {
  return {
    id: c.Id,
    name: c.Name.replace(/^\//, ''),
    imageId: c.Image,
    ...(c.Config.Image ? { imageRef: c.Config.Image } : {}),
    createdMs: Date.parse(c.Created),
    labels: c.Config.Labels ?? {},
    bindSources: bindSources(c),
  };
}

/** One row of `GET /containers/json` (validated in docker/gateway.ts): what owner detection reads of it. */
export interface ListedContainer {
  Id: string;
  Names?: string[] | null;
  Image?: string;
  ImageID?: string;
  /** Seconds since the epoch. */
  Created?: number;
  Labels?: Record<string, string> | null;
  Mounts?: { Type?: string; Source?: string }[] | null;
}

/** A listed container's own name: the one without a link alias (`/other/alias` names come from legacy links). */
export function listedName(c: Pick<ListedContainer, 'Id' | 'Names'>): string {
  const names = c.Names ?? [];
  return (names.find((n) => /^\/[^/]+$/.test(n)) ?? names[0] ?? c.Id.slice(0, 12)).replace(/^\//, '');
}

export function subjectOfListed(c: ListedContainer): OwnerSubject {
  const binds: string[] = [];
  for (const m of c.Mounts ?? []) if (m.Type === 'bind' && m.Source && !binds.includes(m.Source)) binds.push(m.Source);
  return {
    id: c.Id,
    name: listedName(c),
    imageId: c.ImageID ?? '',
    ...(c.Image ? { imageRef: c.Image } : {}),
    // Whole seconds: the one use (created_at within a minute of creation) does not need more.
    createdMs: typeof c.Created === 'number' ? c.Created * 1000 : NaN,
    labels: c.Labels ?? {},
    bindSources: binds,
  };
}

export function detectOwner(c: ContainerDetails, prefix: string, facts: OwnerFacts): Owner {
  return ownerOf(subjectOfInspect(c), prefix, facts);
}

/** The rule itself, on either source of container facts. */
export function ownerOf(c: OwnerSubject, prefix: string, facts: OwnerFacts): Owner {
  const rejected: string[] = [];
  const labels = c.labels;
  const found = (user: string, uid: number | undefined, method: OwnerMethod, evidence: string): Owner => ({ user, uid, method, evidence, rejected });

  // 1, 2: owner labels, unless inherited from the image.
  for (const [key, method] of [[`${prefix}.user`, 'label'], [AIME_USER_LABEL, 'aime_label']] as const) {
    const value = labels[key];
    if (value === undefined || value === '') continue;
    const uidLabel = method === 'label' ? labels[`${prefix}.uid`] : undefined;
    const uid = uidLabel !== undefined && /^\d+$/.test(uidLabel) ? Number(uidLabel) : undefined;
    if (facts.imageLabels(c.imageId)?.[key] === value) {
      // Equal to the image's: inherited, unless the labels were demonstrably set
      // at create (the shim's <p>.created_at, not the image's, at the container's
      // creation time), as when alice's own Dockerfile says LABEL <p>.user=alice.
      if (method === 'label' && setAtCreate(c, prefix, facts)) return found(value, uid, method, `label ${key}=${value}, set at create (${prefix}.created_at)`);
      rejected.push(`label ${key}=${value} comes from the image ${shortImage(c)}, so it proves nothing`);
      continue;
    }
    return found(value, uid, method, `label ${key}=${value}`);
  }

  // 3: name pattern <name>._.<uid>
  const name = c.name;
  const m = NAME_PATTERN.exec(name);
  if (m) {
    const uid = Number(m[2]);
    const entry = facts.userByUid(uid);
    if (entry) return found(entry.user, entry.uid, 'name_pattern', `name ${name} ends in ._.${uid}`);
    rejected.push(`name ${name} names uid ${uid}, which is not in the user database`);
  }

  // 4: VS Code's folder, under the home of the user who owns it.
  const folder = labels[DEVCONTAINER_FOLDER_LABEL];
  if (folder) {
    const v = homeOwner(folder, facts);
    if (v.entry) return found(v.entry.user, v.entry.uid, 'devcontainer', `label ${DEVCONTAINER_FOLDER_LABEL}=${folder} (owned by ${v.entry.user})`);
    rejected.push(`label ${DEVCONTAINER_FOLDER_LABEL}=${folder}: ${v.why}`);
  }

  // 5: bind mounts under /home/<user>/, each validated by the source's real owner.
  const validated = new Map<string, { entry: UserEntry; source: string }>();
  for (const source of c.bindSources) {
    if (!underHome(source)) continue;
    const v = homeOwner(source, facts);
    if (v.entry) {
      if (!validated.has(v.entry.user)) validated.set(v.entry.user, { entry: v.entry, source });
    } else rejected.push(`bind mount ${source}: ${v.why}`);
  }
  if (validated.size === 1) {
    const [{ entry, source }] = [...validated.values()] as [{ entry: UserEntry; source: string }];
    return found(entry.user, entry.uid, 'mount_path', `bind mount ${source} (owned by ${entry.user})`);
  }
  if (validated.size > 1) rejected.push(`bind mounts from the homes of ${[...validated.keys()].join(' and ')}: ambiguous`);

  // 6: the compose project's working directory, by its owner.
  const workdir = labels[COMPOSE_WORKDIR_LABEL];
  if (workdir) {
    const uid = facts.ownerUid(workdir);
    const entry = uid === undefined ? undefined : facts.userByUid(uid);
    if (entry) return found(entry.user, entry.uid, 'compose', `label ${COMPOSE_WORKDIR_LABEL}=${workdir} (owned by ${entry.user})`);
    rejected.push(`label ${COMPOSE_WORKDIR_LABEL}=${workdir}: ${uid === undefined ? 'no such directory on this host' : `owned by uid ${uid}, not in the user database`}`);
  }

  return { user: undefined, uid: undefined, method: 'none', evidence: 'no evidence of an owner', rejected };
}

/** `<p>.created_at` differs from the image's and is within a minute of the container's creation. */
function setAtCreate(c: OwnerSubject, prefix: string, facts: OwnerFacts): boolean {
  const key = `${prefix}.created_at`;
  const stamp = c.labels[key];
  if (!stamp || facts.imageLabels(c.imageId)?.[key] === stamp) return false;
  const [labelled, created] = [Date.parse(stamp), c.createdMs];
  return Number.isFinite(labelled) && Number.isFinite(created) && Math.abs(created - labelled) <= 60_000;
}

/** Host paths bind-mounted into the container (`-v /a:/b`, `--mount type=bind`). */
export function bindSources(c: ContainerDetails): string[] {
  const out: string[] = [];
  for (const m of c.Mounts ?? []) if (m.Type === 'bind' && m.Source) out.push(m.Source);
  for (const b of c.HostConfig.Binds ?? []) {
    const source = b.split(':')[0];
    if (source?.startsWith('/') && !out.includes(source)) out.push(source);
  }
  return out;
}

function underHome(path: string): boolean {
  return /^\/home\/[^/]+(\/|$)/.test(posix.normalize(path));
}

/**
 * A path /home/<name>/… counts for <name> only if <name> is a user and the
 * path itself is owned by that user: a bind of /home/alice/x that bob owns
 * (or that does not exist) is nobody's evidence.
 */
function homeOwner(path: string, facts: OwnerFacts): { entry?: UserEntry; why: string } {
  const norm = posix.normalize(path);
  const m = /^\/home\/([^/]+)(\/|$)/.exec(norm);
  if (!m) return { why: 'not under /home/<user>' };
  const entry = facts.userByName(m[1]!);
  if (!entry) return { why: `${m[1]} is not in the user database` };
  const uid = facts.ownerUid(norm);
  if (uid === undefined) return { why: 'no such path on this host' };
  if (uid !== entry.uid) {
    const actual = facts.userByUid(uid)?.user ?? `uid ${uid}`;
    return { why: `owned by ${actual}, not ${entry.user}` };
  }
  return { entry, why: '' };
}

function shortImage(c: OwnerSubject): string {
  return c.imageRef || c.imageId.replace(/^sha256:/, '').slice(0, 12);
}

/** How the container was made: the label gpuguard set, else what its labels say. */
export function interfaceOf(c: ContainerDetails, prefix: string, facts: Pick<OwnerFacts, 'imageLabels'>): string {
  const labels = c.Config.Labels ?? {};
  const own = labels[`${prefix}.interface`];
  if (own && facts.imageLabels(c.Image)?.[`${prefix}.interface`] !== own) return own;
  if (labels[COMPOSE_PROJECT_LABEL]) return 'compose';
  if (labels[DEVCONTAINER_FOLDER_LABEL]) return 'devcontainer';
  if (labels[AIME_USER_LABEL]) return 'aime';
  return 'docker';
}

/** The GPUs a container asked Docker for: device ids, "all", or a count. */
export function gpusOf(c: ContainerDetails): string[] {
  const out: string[] = [];
  for (const r of c.HostConfig.DeviceRequests ?? []) {
    const gpu = r.Driver === 'nvidia' || (r.Capabilities ?? []).some((set) => set.includes('gpu'));
    if (!gpu) continue;
    if (r.DeviceIDs?.length) out.push(...r.DeviceIDs);
    else if (r.Count === -1) out.push('all');
    else if (r.Count) out.push(`count:${r.Count}`);
  }
  return out;
}
