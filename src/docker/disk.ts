/**
 * dockerd's own record of a container, read from its data root
 * (`<DockerRootDir>/containers/<id>/config.v2.json` and `hostconfig.json`),
 * for root-run admin commands that need every container's full facts
 * (start and finish times, pid, device requests) without one API inspect
 * per container. dockerd writes both files whole (write to a temp file,
 * rename) before a state change becomes visible through its API, and they
 * are what it reloads itself from at start; their shape has been stable
 * since Docker 1.10. Validated with zod here, and any container whose
 * files are missing, unreadable, malformed or disagree with the API's list
 * is left to the caller to inspect over the API instead.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import type { ContainerDetails } from './gateway.ts';

const State = z.looseObject({
  Running: z.boolean(),
  Paused: z.boolean().optional(),
  Restarting: z.boolean().optional(),
  RemovalInProgress: z.boolean().optional(),
  Dead: z.boolean().optional(),
  Pid: z.number().int(),
  StartedAt: z.string(),
  FinishedAt: z.string(),
});

const ConfigV2 = z.looseObject({
  ID: z.string(),
  Name: z.string(),
  Created: z.string(),
  Image: z.string(),
  State,
  Config: z.looseObject({
    Image: z.string().optional(),
    Labels: z.record(z.string(), z.string()).nullable().optional(),
    Env: z.array(z.string()).nullable().optional(),
    StopTimeout: z.number().int().nullable().optional(),
  }),
  MountPoints: z
    .record(z.string(), z.looseObject({ Source: z.string().optional(), Destination: z.string().optional(), Type: z.string().optional() }))
    .nullable()
    .optional(),
});

const HostConfig = z.looseObject({
  Runtime: z.string().optional(),
  CgroupParent: z.string().optional(),
  Binds: z.array(z.string()).nullable().optional(),
  AutoRemove: z.boolean().optional(),
  DeviceRequests: z
    .array(z.looseObject({ Driver: z.string().optional(), Count: z.number().optional(), DeviceIDs: z.array(z.string()).nullable().optional(), Capabilities: z.array(z.array(z.string())).nullable().optional() }))
    .nullable()
    .optional(),
});

/** What a root-run command reads of a container: the inspect view, plus the pid and stop timeout. */
export interface ContainerRecord {
  details: ContainerDetails;
  /** The init process on the host (0 when not running). */
  pid: number;
  /** The container's own --stop-timeout, seconds. */
  stopTimeout?: number;
}

/** Docker's state word for a state record (moby container/state.go StateString). */
export function stateString(s: z.infer<typeof State>): string {
  if (s.Running) return s.Paused ? 'paused' : s.Restarting ? 'restarting' : 'running';
  if (s.RemovalInProgress) return 'removing';
  if (s.Dead) return 'dead';
  return isZeroTime(s.StartedAt) ? 'created' : 'exited';
}

/** Go's zero time, as dockerd writes an unset one. */
export function isZeroTime(t: string | undefined): boolean {
  return !t || t.startsWith('0001-01-01');
}

/** Parse the two files' text into a record (pure); undefined when either is not the expected shape. */
export function parseContainerFiles(configText: string, hostConfigText: string): ContainerRecord | undefined {
  let config, host;
  try {
    config = ConfigV2.safeParse(JSON.parse(configText));
    host = HostConfig.safeParse(JSON.parse(hostConfigText));
  } catch {
    return undefined;
  }
  if (!config.success || !host.success) return undefined;
  const c = config.data;
  const mounts = Object.values(c.MountPoints ?? {}).map((m) => ({
    ...(m.Type !== undefined ? { Type: m.Type } : {}),
    ...(m.Source !== undefined ? { Source: m.Source } : {}),
    ...(m.Destination !== undefined ? { Destination: m.Destination } : {}),
  }));
  const details: ContainerDetails = {
    Id: c.ID,
    Name: c.Name,
    Created: c.Created,
    Image: c.Image,
    State: {
      Status: stateString(c.State),
      Running: c.State.Running,
      Pid: c.State.Pid,
      StartedAt: c.State.StartedAt,
      FinishedAt: c.State.FinishedAt,
    },
    Config: { ...(c.Config.Image !== undefined ? { Image: c.Config.Image } : {}), Labels: c.Config.Labels ?? {}, Env: c.Config.Env ?? [] },
    HostConfig: {
      ...(host.data.Runtime !== undefined ? { Runtime: host.data.Runtime } : {}),
      ...(host.data.CgroupParent !== undefined ? { CgroupParent: host.data.CgroupParent } : {}),
      Binds: host.data.Binds ?? [],
      DeviceRequests: host.data.DeviceRequests ?? [],
      ...(host.data.AutoRemove !== undefined ? { AutoRemove: host.data.AutoRemove } : {}),
    },
    Mounts: mounts,
  };
  return { details, pid: c.State.Running ? c.State.Pid : 0, ...(typeof c.Config.StopTimeout === 'number' ? { stopTimeout: c.Config.StopTimeout } : {}) };
}

/** Read one container's record from the data root; undefined when it cannot be read or understood. */
export function readContainerRecord(dataRoot: string, id: string): ContainerRecord | undefined {
  if (!/^[0-9a-f]{64}$/.test(id)) return undefined;
  const dir = join(dataRoot, 'containers', id);
  let configText: string;
  let hostText: string;
  try {
    configText = readFileSync(join(dir, 'config.v2.json'), 'utf8');
    hostText = readFileSync(join(dir, 'hostconfig.json'), 'utf8');
  } catch {
    return undefined;
  }
  const r = parseContainerFiles(configText, hostText);
  return r && r.details.Id === id ? r : undefined;
}
