/**
 * SEAM for the security rules (issue 12): what a non-admin's container may
 * ask for (binds, privileged, capabilities, devices, host namespaces, other
 * users' containers, unconfined) is decided by src/policy/security.ts
 * decideSecurity, which the security branch lands on main. The face's part
 * is only to build its request from the bodies it already reads, as dockerd
 * reads them (gobody.ts): the create body (HostConfig.Binds, Mounts,
 * Privileged, CapAdd, Devices, DeviceCgroupRules, PidMode/IpcMode/
 * NetworkMode/UTSMode/UsernsMode/CgroupnsMode, SecurityOpt, VolumesFrom),
 * a volume create's Driver/DriverOpts, and an exec create's Privileged.
 * Until decideSecurity is on main these answer no decision; each face
 * calls exactly these three, so wiring the rules in changes this file only.
 */
import type { Decision } from '../policy/decide.ts';
import type { EffectiveUser } from '../policy/effective.ts';
import type { Policy } from '../policy/schema.ts';

type Obj = Record<string, unknown>;

export async function securityOfCreate(_policy: Policy, _who: EffectiveUser, _body: Obj): Promise<Decision[]> {
  return [];
}

export async function securityOfVolumeCreate(_policy: Policy, _who: EffectiveUser, _body: Obj): Promise<Decision[]> {
  return [];
}

export async function securityOfExecCreate(_policy: Policy, _who: EffectiveUser, _body: Obj): Promise<Decision[]> {
  return [];
}
