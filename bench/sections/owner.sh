# Ownership guard: `docker stop` of the user's own running container through
# the shim (inspect over the socket, owner check, execve) against the real CLI
# directly, on a private dockerd (root). Each run stops a freshly started
# container (`--prepare`), with -t 0 so no grace period is measured.
owner() {
  local dir real socket pid
  dir=$(mktemp -d /tmp/gg-bench-owner-XXXX)
  real=/usr/bin/docker
  socket="$dir/docker.sock"
  dockerd --data-root "$dir/data" --exec-root "$dir/x" --host "unix://$socket" --pidfile "$dir/docker.pid" \
    --bridge=none --iptables=false --ip6tables=false --ip-masq=false --storage-driver overlay2 \
    >"$dir/dockerd.log" 2>&1 &
  pid=$!
  export DOCKER_HOST="unix://$socket"
  for _ in $(seq 100); do "$real" version >/dev/null 2>&1 && break; sleep 0.2; done
  # busybox image `bb`, as the test harness makes it
  mkdir -p "$dir/rootfs/bin" && cp /bin/busybox "$dir/rootfs/bin/" && ln -s busybox "$dir/rootfs/bin/sh" && ln -s busybox "$dir/rootfs/bin/sleep"
  tar -C "$dir/rootfs" -cf "$dir/bb.tar" . && "$real" import -q "$dir/bb.tar" bb >/dev/null
  mkdir -p "$dir/shim" && ln -s "$PWD/dist/gpuguard" "$dir/shim/docker"
  printf 'version: 1\nadmins: ["@ds01-admin"]\ndocker: {realPath: %s}\nevents: {log: %s/events.jsonl}\n' "$real" "$dir" >"$dir/policy.yaml"
  export GPUGUARD_POLICY="$dir/policy.yaml" GPUGUARD_USER=benchuser
  local start="$real rm -f s1 >/dev/null 2>&1; $real run -d --name s1 --label ds01.user=benchuser bb sleep 600 >/dev/null"
  "${H[@]}" --runs "${BENCH_RUNS_OWNER:-40}" --warmup 3 --export-markdown "$OUT/owner.md" --export-json "$OUT/owner.json" \
    --prepare "$start" -n 'docker stop (real CLI)' "$real stop -t 0 s1" \
    --prepare "$start" -n 'docker stop (gpuguard shim)' "$dir/shim/docker stop -t 0 s1"
  # The guard alone: stop of an already stopped own container (the daemon has nothing to do).
  "$real" rm -f s1 >/dev/null 2>&1; "$real" create --name s2 --label ds01.user=benchuser bb true >/dev/null
  "${H[@]}" --export-markdown "$OUT/owner-noop.md" --export-json "$OUT/owner-noop.json" \
    -n 'docker stop, stopped container (real CLI)' "$real stop s2" \
    -n 'docker stop, stopped container (gpuguard shim)' "$dir/shim/docker stop s2" \
    -n 'docker ps (real CLI)' "$real ps" \
    -n 'docker ps (gpuguard shim, own filter)' "$dir/shim/docker ps"
  unset DOCKER_HOST GPUGUARD_POLICY GPUGUARD_USER
  kill "$pid"; wait "$pid" 2>/dev/null || true
  grep " $dir/" /proc/self/mountinfo | awk '{print $5}' | sort -r | xargs -r -n1 umount -l 2>/dev/null || true
  rm -rf "$dir"
}
