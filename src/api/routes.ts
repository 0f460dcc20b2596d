/**
 * The API face's one ordered route table: (method, path pattern) → what to
 * decide, after the version prefix is split off and the path cleaned
 * (target.ts). Patterns mirror dockerd's router (api/server/router/*, where
 * `{name:.*}` may hold slashes: the container is resolved by asking dockerd,
 * never by guessing from the path). Anything not in the table is refused,
 * naming method and path: a new Engine API endpoint is closed until someone
 * decides what it needs. Pure.
 */

export type Route =
  /** The face's own status (doctor, install). */
  | { kind: 'status' }
  /** Anything else under /_gpuguard/. */
  | { kind: 'face-not-found' }
  /** Shared or harmless (ping, version, images, auth): proxied as is. */
  | { kind: 'allow'; what: string; hijack?: boolean }
  /** Host-wide operations only admins may do. */
  | { kind: 'admin'; what: string }
  /** One container named in the path: only its owner (or an admin) may act on it. */
  | { kind: 'container'; verb: string; ref: string; hijack?: boolean }
  | { kind: 'containers-list' }
  | { kind: 'containers-create' }
  | { kind: 'containers-prune' }
  /** An exec instance: decided by the container it runs in. */
  | { kind: 'exec'; verb: 'json' | 'start' | 'resize'; id: string }
  /** POST /commit?container=…: decided by the container. */
  | { kind: 'commit' }
  | { kind: 'events' }
  | { kind: 'system-df' }
  | { kind: 'build' }
  | { kind: 'volumes-list' }
  | { kind: 'volumes-create' }
  | { kind: 'volumes-prune' }
  | { kind: 'volume'; verb: 'inspect' | 'remove' | 'update'; name: string }
  | { kind: 'networks-list' }
  | { kind: 'networks-create' }
  | { kind: 'networks-prune' }
  | { kind: 'network'; verb: 'inspect' | 'remove' | 'connect' | 'disconnect'; id: string }
  | { kind: 'unknown' };

type Entry = [methods: string, pattern: RegExp, route: (m: RegExpExecArray) => Route];

const allow = (what: string, hijack = false) => (): Route => ({ kind: 'allow', what, ...(hijack ? { hijack } : {}) });
const admin = (what: string) => (): Route => ({ kind: 'admin', what });
const container = (verb: string, hijack = false) => (m: RegExpExecArray): Route => ({ kind: 'container', verb, ref: m[1]!, ...(hijack ? { hijack } : {}) });
const fixed = (route: Route) => (): Route => route;

/** Container verbs: path suffix → verb, for GET/POST/… as dockerd registers them. */
const CONTAINER_GET = ['export', 'changes', 'json', 'top', 'logs', 'stats', 'archive', 'checkpoints'];
const CONTAINER_POST = ['kill', 'pause', 'unpause', 'restart', 'start', 'stop', 'wait', 'resize', 'copy', 'exec', 'rename', 'update', 'checkpoints'];

const TABLE: Entry[] = [
  // the face itself
  ['GET', /^\/_gpuguard\/status$/, fixed({ kind: 'status' })],
  ['*', /^\/_gpuguard(\/.*)?$/, fixed({ kind: 'face-not-found' })],

  // system
  ['GET HEAD', /^\/_ping$/, allow('ping')],
  ['GET', /^\/version$/, allow('version')],
  ['GET', /^\/info$/, allow('info')],
  ['POST', /^\/auth$/, allow('registry login check')],
  ['GET', /^\/events$/, fixed({ kind: 'events' })],
  ['GET', /^\/system\/df$/, fixed({ kind: 'system-df' })],
  ['OPTIONS', /^\/.*$/, allow('CORS preflight')],

  // containers (dockerd's order: the list and create before {name:.*} routes)
  ['GET', /^\/containers\/json$/, fixed({ kind: 'containers-list' })],
  ['POST', /^\/containers\/create$/, fixed({ kind: 'containers-create' })],
  ['POST', /^\/containers\/prune$/, fixed({ kind: 'containers-prune' })],
  ['GET', /^\/containers\/(.*)\/attach\/ws$/, container('attach', true)],
  ['GET', /^\/exec\/(.*)\/json$/, (m) => ({ kind: 'exec', verb: 'json', id: m[1]! })],
  ['POST', /^\/exec\/(.*)\/start$/, (m) => ({ kind: 'exec', verb: 'start', id: m[1]! })],
  ['POST', /^\/exec\/(.*)\/resize$/, (m) => ({ kind: 'exec', verb: 'resize', id: m[1]! })],
  ...CONTAINER_GET.map((verb): Entry => ['GET', new RegExp(`^/containers/(.*)/${verb}$`), container(verb)]),
  ['HEAD', /^\/containers\/(.*)\/archive$/, container('archive')],
  ['PUT', /^\/containers\/(.*)\/archive$/, container('archive-put')],
  ['POST', /^\/containers\/(.*)\/attach$/, container('attach', true)],
  ...CONTAINER_POST.map((verb): Entry => ['POST', new RegExp(`^/containers/(.*)/${verb}$`), container(verb)]),
  ['DELETE', /^\/containers\/(.*)\/checkpoints\/[^/]+$/, container('checkpoints')],
  ['DELETE', /^\/containers\/(.*)$/, container('remove')],
  ['POST', /^\/commit$/, fixed({ kind: 'commit' })],

  // images: shared by everyone; removing every unused one is for admins
  ['POST', /^\/images\/prune$/, admin('image prune removes every user\'s unused images')],
  ['GET', /^\/images\/(json|search|get)$/, allow('images')],
  ['GET', /^\/images\/.*\/(get|history|json)$/, allow('images')],
  ['POST', /^\/images\/(create|load)$/, allow('images')],
  ['POST', /^\/images\/.*\/(push|tag)$/, allow('images')],
  ['DELETE', /^\/images\/.*$/, allow('images')],
  ['GET', /^\/distribution\/.*\/json$/, allow('registry lookup')],

  // build
  ['POST', /^\/build$/, fixed({ kind: 'build' })],
  ['POST', /^\/build\/prune$/, admin('build cache prune removes every user\'s build cache')],
  ['POST', /^\/build\/cancel$/, allow('build cancel')],
  ['POST', /^\/session$/, allow('BuildKit session', true)],
  ['POST', /^\/grpc$/, allow('BuildKit gRPC', true)],

  // volumes
  ['GET', /^\/volumes$/, fixed({ kind: 'volumes-list' })],
  ['POST', /^\/volumes\/create$/, fixed({ kind: 'volumes-create' })],
  ['POST', /^\/volumes\/prune$/, fixed({ kind: 'volumes-prune' })],
  ['GET', /^\/volumes\/(.+)$/, (m) => ({ kind: 'volume', verb: 'inspect', name: m[1]! })],
  ['PUT', /^\/volumes\/(.+)$/, (m) => ({ kind: 'volume', verb: 'update', name: m[1]! })],
  ['DELETE', /^\/volumes\/(.+)$/, (m) => ({ kind: 'volume', verb: 'remove', name: m[1]! })],

  // networks
  ['GET', /^\/networks\/?$/, fixed({ kind: 'networks-list' })],
  ['POST', /^\/networks\/create$/, fixed({ kind: 'networks-create' })],
  ['POST', /^\/networks\/prune$/, fixed({ kind: 'networks-prune' })],
  ['POST', /^\/networks\/(.+)\/connect$/, (m) => ({ kind: 'network', verb: 'connect', id: m[1]! })],
  ['POST', /^\/networks\/(.+)\/disconnect$/, (m) => ({ kind: 'network', verb: 'disconnect', id: m[1]! })],
  ['GET', /^\/networks\/(.+)$/, (m) => ({ kind: 'network', verb: 'inspect', id: m[1]! })],
  ['DELETE', /^\/networks\/(.+)$/, (m) => ({ kind: 'network', verb: 'remove', id: m[1]! })],

  // host-wide: swarm, plugins, secrets, configs
  ['*', /^\/(swarm|nodes|services|tasks|secrets|configs)(\/.*)?$/, admin('swarm (services, nodes, tasks, secrets, configs)')],
  ['*', /^\/plugins(\/.*)?$/, admin('plugins run with host privileges')],
];

export function route(method: string, path: string): Route {
  for (const [methods, pattern, make] of TABLE) {
    if (methods !== '*' && !methods.split(' ').includes(method)) continue;
    const m = pattern.exec(path);
    if (m) return make(m);
  }
  return { kind: 'unknown' };
}
