# The docker shim: pass-through (`docker --version`) and the rewrite
# (`docker create` on a private dockerd), each against the real CLI in the
# same hyperfine run. Needs root (private dockerd) for the create half.
shim() {
  local tmp real=/usr/bin/docker
  tmp=$(mktemp -d /tmp/gg-bench-shim-XXXX)
  ln -s "$PWD/dist/gpuguard-front" "$tmp/docker" # as installed: the native front, gpuguard beside it
  "${H[@]}" --export-markdown "$OUT/shim-passthrough.md" --export-json "$OUT/shim-passthrough.json" \
    -n 'docker --version (real)' "$real --version" \
    -n 'docker --version (shim, GPUGUARD_REAL_DOCKER)' "env GPUGUARD_REAL_DOCKER=$real $tmp/docker --version" \
    -n 'docker --version (shim, PATH lookup)' "env PATH=$tmp:/usr/bin:/bin $tmp/docker --version" \
    -n 'env docker --version (the env hop, for reference)' "env PATH=/usr/bin:/bin $real --version"
  if [ "$(id -u)" != 0 ]; then
    echo "shim: docker create needs root for the private dockerd; skipped" >&2
    rm -rf "$tmp"
    return 0
  fi
  # A private dockerd from the test harness; its socket and dir on stdout.
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
events: {log: $tmp/events.jsonl}
EOF
  local clean="env DOCKER_HOST=$host sh -c 'ids=\$($real ps -aq); [ -z \"\$ids\" ] || $real rm -f \$ids >/dev/null'"
  DOCKER_HOST=$host GPUGUARD_REAL_DOCKER=$real GPUGUARD_POLICY=$tmp/policy.yaml \
    hyperfine -N --warmup 3 --runs "${BENCH_CREATE_RUNS:-40}" --style basic --prepare "$clean" \
    --export-markdown "$OUT/shim-create.md" --export-json "$OUT/shim-create.json" \
    -n 'docker create bb (real)' "$real create bb" \
    -n 'docker create bb (shim: policy, count, rewrite, event)' "$tmp/docker create bb"
  kill "$pid"
  wait "$pid" 2>/dev/null || true
  rm -rf "$tmp"
}
