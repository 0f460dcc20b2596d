# The security policy's cost on `docker create`: five -v binds (each
# resolved as dockerd will, symlinks followed) against the same create
# without binds, through the shim and through the real CLI in the same
# hyperfine run, on a private dockerd. Every command runs as alice (runuser,
# the same hop for the real CLI and the shim), a non-admin, so every bind is
# judged as the shim judges a user's: resolved and checked with access(2).
# Target (issue 12): the five binds add no more than 3 ms over what they add
# to the real CLI's create. Needs root (private dockerd).
security() {
  if [ "$(id -u)" != 0 ]; then
    echo "security: needs root for the private dockerd; skipped" >&2
    return 0
  fi
  local tmp real=/usr/bin/docker
  tmp=$(mktemp -d /tmp/gg-bench-sec-XXXX)
  chmod 755 "$tmp"
  ln -s "$PWD/dist/gpuguard" "$tmp/docker"
  mkdir -p "$tmp/srv/data/a/b" "$tmp/srv/models" "$tmp/srv/runs/2026" "$tmp/srv/cache" "$tmp/srv/out"
  ln -s "$tmp/srv/data/a" "$tmp/srv/link"
  chown -R alice: "$tmp/srv"
  cat >"$tmp/dockerd.mts" <<EOF
import { startDockerd } from '$PWD/test/harness/index.ts';
const d = await startDockerd({ socketGroup: 'gg-docker' });
console.log(d.host);
process.on('SIGTERM', async () => { await d.stop(); process.exit(0); });
setInterval(() => {}, 1 << 30);
EOF
  node --import tsx "$tmp/dockerd.mts" >"$tmp/host" 2>"$tmp/dockerd.err" &
  local pid=$!
  for _ in $(seq 300); do [ -s "$tmp/host" ] && break; sleep 0.1; done
  local host
  host=$(head -1 "$tmp/host")
  [ -n "$host" ] || { cat "$tmp/dockerd.err" >&2; kill "$pid"; return 1; }
  cat >"$tmp/policy.yaml" <<EOF
version: 1
labelPrefix: ds01
defaults: {group: students}
groups:
  students:
    limits: {cpus: 1, memory: 256m, pids: 512, shmSize: 64m, containers: 100000}
cgroup: {parent: "/ds01/{group}/{user}"}
security:
  capAdd: [SYS_PTRACE]
  binds: ["{home}", "$tmp/srv/*", "/scratch/{user}"]
events: {log: $tmp/events.jsonl}
EOF
  local binds="-v $tmp/srv/data/a/b:/d -v $tmp/srv/models:/m -v $tmp/srv/runs/2026:/r -v $tmp/srv/link/b:/l -v $tmp/srv/out/new:/o"
  local clean="env DOCKER_HOST=$host sh -c 'ids=\$($real ps -aq); [ -z \"\$ids\" ] || $real rm -f \$ids >/dev/null'"
  local as="runuser -u alice --"
  : >"$tmp/events.jsonl"
  chmod 666 "$tmp/events.jsonl"
  export DOCKER_HOST=$host GPUGUARD_REAL_DOCKER=$real GPUGUARD_POLICY=$tmp/policy.yaml
  # Root's first load writes the validated policy to the cache every face reads (the runtime wrapper does it on a host).
  "$tmp/docker" create bb >/dev/null
  # Every line must create (a refusal would measure nothing): check once first.
  $as "$tmp/docker" create $binds bb >/dev/null
  hyperfine -N --warmup 3 --runs "${BENCH_CREATE_RUNS:-40}" --style basic --prepare "$clean" \
    --export-markdown "$OUT/security-create.md" --export-json "$OUT/security-create.json" \
    -n 'docker create bb (real)' "$as $real create bb" \
    -n 'docker create 5x-v bb (real)' "$as $real create $binds bb" \
    -n 'docker create bb (shim, security policy)' "$as $tmp/docker create bb" \
    -n 'docker create 5x-v bb (shim, security policy)' "$as $tmp/docker create $binds bb"
  # The shim's own work alone: the same two lines with /bin/true as the "real" CLI (no docker, no daemon
  # work to add noise), many more runs, in both orders (hyperfine runs one command after the other, and
  # the load of a shared machine drifts between them).
  local none="$as $tmp/docker create bb" five="$as $tmp/docker create $binds bb"
  GPUGUARD_REAL_DOCKER=/bin/true hyperfine -N --warmup 5 --runs "${BENCH_RUNS:-200}" --style basic \
    --export-markdown "$OUT/security-own-a.md" --export-json "$OUT/security-own-a.json" \
    -n 'shim create bb, real CLI = /bin/true' "$none" -n 'shim create 5x-v bb, real CLI = /bin/true' "$five"
  GPUGUARD_REAL_DOCKER=/bin/true hyperfine -N --warmup 5 --runs "${BENCH_RUNS:-200}" --style basic \
    --export-markdown "$OUT/security-own-b.md" --export-json "$OUT/security-own-b.json" \
    -n 'shim create 5x-v bb, real CLI = /bin/true' "$five" -n 'shim create bb, real CLI = /bin/true' "$none"
  unset DOCKER_HOST GPUGUARD_REAL_DOCKER GPUGUARD_POLICY
  # The cache entry root wrote for this policy file (keyed by its path) goes with the file.
  rm -f "$(node --import tsx -e "import('$PWD/src/policy/cache.ts').then((m) => console.log(m.POLICY_CACHE_DIR + '/policy-' + m.fnv1a('$tmp/policy.yaml') + '.json'))")"
  kill "$pid"
  wait "$pid" 2>/dev/null || true
  # The policy's own part, without process starts and Docker: the same five binds, in one Bun process.
  # Each line a fresh process (the first call is what a create pays), without and with the five binds, alternating.
  : >"$OUT/security-decide.txt"
  for _ in $(seq "${BENCH_DECIDE_PROCS:-15}"); do
    for n in 0 5; do $as node_modules/.bin/bun bench/sections/security-decide.ts "$tmp/srv" "$n" >>"$OUT/security-decide.txt"; done
  done
  for n in 0 5; do
    grep "decision, $n binds" "$OUT/security-decide.txt" | sed -E 's/.*first call ([0-9.]+) ms.*median ([0-9.]+) ms.*/\1 \2/' | sort -n |
      awk -v n="$n" '{c[NR]=$1; w[NR]=$2} END {printf "security decision, %s binds, %d processes: first call median %.3f ms (min %.3f), warm median %.3f ms\n", n, NR, c[int((NR+1)/2)], c[1], w[int((NR+1)/2)]}'
  done | tee -a "$OUT/security-decide.txt"
  rm -rf "$tmp"
}
