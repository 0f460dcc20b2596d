# The security policy's cost on `docker create`: five -v binds (each
# resolved as dockerd will, symlinks followed) against the same create
# without binds, through the shim and through the real CLI in the same
# hyperfine run, on a private dockerd. The shim acts for alice
# (GPUGUARD_USER, honoured for root), a non-admin, so every bind is judged.
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
  cat >"$tmp/dockerd.mts" <<EOF
import { startDockerd } from '$PWD/test/harness/index.ts';
const d = await startDockerd();
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
  # Every line must create (a refusal would measure nothing): check once first.
  DOCKER_HOST=$host GPUGUARD_REAL_DOCKER=$real GPUGUARD_POLICY=$tmp/policy.yaml GPUGUARD_USER=alice "$tmp/docker" create $binds bb >/dev/null
  DOCKER_HOST=$host GPUGUARD_REAL_DOCKER=$real GPUGUARD_POLICY=$tmp/policy.yaml GPUGUARD_USER=alice \
    hyperfine -N --warmup 3 --runs "${BENCH_CREATE_RUNS:-40}" --style basic --prepare "$clean" \
    --export-markdown "$OUT/security-create.md" --export-json "$OUT/security-create.json" \
    -n 'docker create bb (real)' "$real create bb" \
    -n 'docker create 5x-v bb (real)' "$real create $binds bb" \
    -n 'docker create bb (shim, security policy)' "$tmp/docker create bb" \
    -n 'docker create 5x-v bb (shim, security policy)' "$tmp/docker create $binds bb"
  kill "$pid"
  wait "$pid" 2>/dev/null || true
  rm -rf "$tmp"
}
