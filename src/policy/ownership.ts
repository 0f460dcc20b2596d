/**
 * May this user act on that container? The one rule, pure: admins and the
 * policy's service users act on every container, and so does root acting
 * as itself (it owns the socket anyway); anyone else only on containers
 * shown to be theirs. A container nobody can be shown to own is
 * not theirs either (an admin can act on it, or attribute it).
 */
import type { EffectiveUser } from './effective.ts';

export interface OwnerClaim {
  /** The detected owner, or undefined when there is no evidence. */
  user: string | undefined;
  /** How it was detected (see ownership/detect.ts), for the message. */
  method: string;
}

export type ActDecision = { allow: true; why: 'root' | 'admin' | 'service-user' | 'owner' } | { allow: false; why: 'other-owner' | 'unknown-owner' };

type Actor = Pick<EffectiveUser, 'user' | 'uid' | 'isAdmin' | 'isServiceUser'>;

export function mayActOn(actor: Actor, owner: OwnerClaim): ActDecision {
  if (actor.uid === 0) return { allow: true, why: 'root' };
  if (actor.isAdmin) return { allow: true, why: 'admin' };
  if (actor.isServiceUser) return { allow: true, why: 'service-user' };
  if (owner.user === undefined) return { allow: false, why: 'unknown-owner' };
  if (owner.user === actor.user) return { allow: true, why: 'owner' };
  return { allow: false, why: 'other-owner' };
}

/** Whether `docker ps` shows this user only their own containers. */
export function listsOnlyOwn(actor: Actor, psFilter: 'own' | 'all'): boolean {
  return psFilter === 'own' && !mayActOn(actor, { user: undefined, method: 'none' }).allow;
}
