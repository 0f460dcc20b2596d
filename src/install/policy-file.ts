/**
 * The policy the installer writes when a host has none (commented, valid as
 * written: `gpuguard policy check` passes), and the two keys it keeps right
 * in a policy that exists: `docker.realPath` (where the real CLI went) and,
 * when absent, `runtime.realPath`. Comments and layout of an existing file
 * are kept (yaml's document model).
 */
import { isMap, parseDocument } from 'yaml';

export interface ExampleFacts {
  realDocker: string;
  realRuntime: string;
  eventsLog: string;
  /** `systemd` or `cgroupfs`: picks the cgroup parent template. */
  cgroupDriver: 'systemd' | 'cgroupfs';
  /** CPUs of the host: dockerd refuses --cpus above it, so no limit may exceed it. */
  cpus: number;
}

export function examplePolicy(f: ExampleFacts): string {
  const perContainer = Math.min(8, f.cpus);
  const perUser = Math.min(16, f.cpus);
  const parent = f.cgroupDriver === 'systemd' ? 'gpuguard-{group}-{user}.slice' : '/gpuguard/{group}/{user}';
  const other = f.cgroupDriver === 'systemd' ? '"/gpuguard/{group}/{user}" (cgroupfs daemons)' : '"gpuguard-{group}-{user}.slice" (systemd daemons)';
  return `# gpuguard site policy, written by install.sh. Every key: docs/policy.md.
# Check after editing:  gpuguard policy check ${'/etc/gpuguard/policy.yaml'}
# See what a user gets: gpuguard policy show --user NAME
version: 1
# enforce: refuse what the policy forbids. audit: decide and log everything,
# refuse nothing (start here on a busy host, read the event log, then switch).
mode: enforce
labelPrefix: ds01            # labels ds01.user, ds01.managed, ds01.gpu.uuid …
# Admins may act on every container and set reserved labels. "@x": members of unix group x.
admins: ["@sudo"]
# Accounts (CI workers, monitoring) that act on every container without being admins.
serviceUsers: []
defaults: {group: users}     # the group of everyone named nowhere else
groups:
  users:
    members: []
    # Per container: injected where the user set none, refused above (cpus: at most this host's ${f.cpus}).
    limits: {cpus: ${perContainer}, memory: 32g, pids: 4096, shmSize: 8g, containers: 5}
    # All of one user's containers together (kernel-enforced on the user's parent cgroup).
    aggregate: {cpus: ${perUser}, memory: 64g}
    # GPU devices (a full GPU or a MIG slice) held at once; fullGpu: false = MIG slices only.
    gpus: {max: 1, perContainer: 1, fullGpu: false, priority: 10}
  # researchers:
  #   members: ["@researchers"]
  #   limits: {cpus: 32, memory: 128g}
  #   gpus: {max: 2, fullGpu: true, priority: 50}
users: {}                    # per-user overrides, e.g. carol: {group: researchers, gpus: {max: 4}}
# Every user's containers go under this parent; this dockerd uses the ${f.cgroupDriver} cgroup driver.
# The other form: ${other}.
cgroup: {parent: "${parent}"}
docker:
  realPath: ${f.realDocker}   # the real docker CLI (not gpuguard's shim)
  psFilter: own              # docker ps shows a user their own containers (all: everything)
  remote: passthrough        # commands for another daemon (-H, DOCKER_HOST) pass untouched
# hostProcesses: GPU processes outside containers: allow, warn (event + notify) or kill
# (gpuguard reap applies it; root and hostProcessUsers are always allowed).
gpu: {inventory: nvidia-smi, holdAfterStop: 30m, hostProcesses: allow, hostProcessUsers: []}
runtime:
  realPath: ${f.realRuntime}   # the OCI runtime the wrapper chains to
  onPolicyError: open        # a broken policy: start containers unmodified and log (closed: refuse)
  gpuEnv: sanitize           # no GPU grant → NVIDIA_VISIBLE_DEVICES=void
  rules:
    - name: datasets         # no match: every container
      mounts: [{source: /srv/datasets, destination: /srv/datasets, readOnly: true, ifExists: true}]
    - name: concourse-gpu    # Concourse workers (containerd namespace "concourse") see every GPU
      match: {namespace: concourse}
      env: {NVIDIA_VISIBLE_DEVICES: all, NVIDIA_DRIVER_CAPABILITIES: all}
# What a user's container may ask for (admins are never refused). Every key: docs/policy.md.
security:
  privileged: false          # --privileged is root on the host
  capAdd: [SYS_PTRACE]       # capabilities a user may add (debuggers); every other, and ALL, is refused
  devices: false             # --device, --device-cgroup-rule: GPUs come only from the allocator
  hostNamespaces: false      # --pid/--ipc/--network/--uts/--userns/--cgroupns host
  otherUsersContainers: false  # --volumes-from, --link, --network/--pid/--ipc container:<another user's>
  unconfined: false          # --security-opt seccomp=/apparmor=/systempaths=unconfined, label=…
  # Host paths a user may mount, however spelled (-v, --mount, volume driver options, compose),
  # judged after resolving symlinks and "..": {home} is the user's home, {user} the name, dir/* what is below dir.
  binds: ["{home}", "/srv/*", "/scratch/{user}"]
events: {log: ${f.eventsLog}}
# gpuguard reap (a systemd timer, every 5 minutes) gives idle and over-age containers'
# GPUs back. Off until you uncomment it; per group too (groups.<g>.lifecycle).
# Durations: 30s, 20m, 2h, 7d, or never. See docs/policy.md, "lifecycle".
# lifecycle:
#   idleAfter: 2h            # no GPU process and CPU under idleCpuPercent this long: stopped
#   idleCpuPercent: 2        # percent of one core
#   maxRuntime: 7d           # running longer: stopped
#   removeStoppedAfter: 3d   # stopped longer: removed (volumes kept)
#   warnBefore: 30m          # the owner is warned this long before (event, and notify)
#   stopTimeout: 60s         # SIGTERM, then SIGKILL after this (containers without --stop-timeout)
#   notify: /usr/local/sbin/gpuguard-notify   # run as: notify USER MESSAGE
`;
}

export interface PolicyEdit {
  text: string;
  changed: string[];
}

/**
 * Set docker.realPath to `realDocker` (unless it already names a path for
 * which `isReal` holds) and runtime.realPath when absent. Returns undefined
 * when the text is not a YAML mapping (the caller warns and leaves it).
 */
export function ensurePolicyKeys(text: string, realDocker: string | undefined, realRuntime: string | undefined, isReal: (path: string) => boolean): PolicyEdit | undefined {
  const doc = parseDocument(text);
  if (doc.errors.length) return undefined;
  const js = doc.toJS() as unknown;
  if (typeof js !== 'object' || js === null || Array.isArray(js)) return undefined;
  const changed: string[] = [];
  const current = doc.getIn(['docker', 'realPath']);
  if (realDocker && (typeof current !== 'string' || !isReal(current))) {
    doc.setIn(['docker', 'realPath'], realDocker);
    changed.push(`docker.realPath: ${realDocker}`);
  }
  if (realRuntime && doc.getIn(['runtime', 'realPath']) === undefined) {
    doc.setIn(['runtime', 'realPath'], realRuntime);
    changed.push(`runtime.realPath: ${realRuntime}`);
  }
  return { text: changed.length ? doc.toString() : text, changed };
}

/**
 * API mode: the policy names the face's and dockerd's sockets, so an admin
 * sees them where every other setting is. Added when absent (appended as a
 * commented block, so the file's layout and comments stay); an existing
 * `api` key is the admin's and is kept.
 */
export function ensureApiKey(text: string, api: { listen: string; upstream: string; group: string; mode: string }): PolicyEdit | undefined {
  const doc = parseDocument(text);
  if (doc.errors.length) return undefined;
  const js = doc.toJS() as unknown;
  if (typeof js !== 'object' || js === null || Array.isArray(js)) return undefined;
  if (doc.has('api')) return { text, changed: [] };
  const line = `api: {listen: ${api.listen}, upstream: ${api.upstream}, group: ${api.group}, mode: "${api.mode}"}`;
  const block = `# API mode (install.sh --api): the face (gpuguard serve) listens on \`listen\` for every
# user's client; dockerd listens behind it on \`upstream\`, a socket only root reaches.
${line}
`;
  const flow = isMap(doc.contents) && doc.contents.flow;
  if (flow) {
    doc.set('api', doc.createNode(api, { flow: true }));
    return { text: doc.toString(), changed: [line] };
  }
  return { text: `${text}${text.endsWith('\n') || text === '' ? '' : '\n'}${block}`, changed: [line] };
}
