# Ownership guard: `docker stop` of the user's own running container through
# the shim (inspect over the socket, owner check, execve) against the real CLI
# directly, on a private dockerd (root). Each run stops a freshly started
# container (`--prepare`), with -t 0 so no grace period is measured. Then
# the guard alone (stop of an already stopped container: the daemon has
# nothing to do) and `docker ps` with the own-containers filter.
owner() (
  dir=$(mktemp -d /tmp/gg-bench-owner-XXXX)
  real=/usr/bin/docker
  socket="$dir/docker.sock"
  cleanup() {
    set +e
    kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
    grep " $dir/" /proc/self/mountinfo | awk '{print $5}' | sort -r | xargs -r -n1 umount -l 2>/dev/null
    grep -l "\"path\":\"$dir/policy.yaml\"" /run/gpuguard-policy/*.json 2>/dev/null | xargs -r rm -f
    for _ in 1 2 3 4 5; do rm -rf "$dir" 2>/dev/null; [ -e "$dir" ] || break; sleep 1; done
  }
  trap cleanup EXIT
  dockerd --data-root "$dir/data" --exec-root "$dir/x" --host "unix://$socket" --pidfile "$dir/docker.pid" \
    --bridge=none --iptables=false --ip6tables=false --ip-masq=false --storage-driver overlay2 --group nogroup \
    >"$dir/dockerd.log" 2>&1 &
  pid=$!
  export DOCKER_HOST="unix://$socket"
  for _ in $(seq 150); do "$real" version >/dev/null 2>&1 && break; sleep 0.2; done
  # a busybox image `bb`, as the test harness makes it
  mkdir -p "$dir/rootfs/bin" && cp /bin/busybox "$dir/rootfs/bin/" && ln -s busybox "$dir/rootfs/bin/sh" && ln -s busybox "$dir/rootfs/bin/sleep"
  tar -C "$dir/rootfs" -cf "$dir/bb.tar" . && "$real" import "$dir/bb.tar" bb >/dev/null
  mkdir -p "$dir/shim" && cp dist/gpuguard dist/gpuguard-front "$dir/shim/" && ln -s gpuguard-front "$dir/shim/docker"
  chmod 755 "$dir" "$dir/shim"
  printf 'version: 1\nadmins: ["@ds01-admin"]\ndocker: {realPath: %s}\nevents: {log: %s/events.jsonl}\n' "$real" "$dir" >"$dir/policy.yaml"
  chmod 644 "$dir/policy.yaml"
  # as on a host: root (the runtime wrapper, the admin CLI) keeps a validated copy of the policy
  GPUGUARD_POLICY="$dir/policy.yaml" ./dist/gpuguard ps >/dev/null
  # Both sides run as the unprivileged user nobody (setpriv: no PAM, a plain setuid+exec),
  # so identity comes from the real uid, as on the real host.
  export GPUGUARD_POLICY="$dir/policy.yaml"
  as=(setpriv --reuid=nobody --regid=nogroup --init-groups)
  start="$real rm -f s1 >/dev/null 2>&1; $real run -d --name s1 --label ds01.user=nobody bb sleep 600 >/dev/null"
  eval "$start" # fails loudly here rather than inside hyperfine
  local_h=(hyperfine -N --style basic)
  "${local_h[@]}" --warmup 3 --runs "${BENCH_RUNS_OWNER:-40}" --export-markdown "$OUT/owner.md" --export-json "$OUT/owner.json" \
    --prepare "bash -c '$start'" \
    -n 'docker stop (real CLI)' "${as[*]} $real stop -t 0 s1" \
    -n 'docker stop (gpuguard shim)' "${as[*]} $dir/shim/docker stop -t 0 s1"
  "$real" rm -f s1 >/dev/null 2>&1
  "$real" create --name s2 --label ds01.user=nobody bb true >/dev/null
  for i in $(seq 20); do "$real" create --label ds01.user=other$((i % 3)) bb true >/dev/null; done
  "${local_h[@]}" --warmup 10 --runs "${BENCH_RUNS_OWNER:-100}" --export-markdown "$OUT/owner-noop.md" --export-json "$OUT/owner-noop.json" \
    -n 'docker stop, stopped container (real CLI)' "${as[*]} $real stop s2" \
    -n 'docker stop, stopped container (gpuguard shim)' "${as[*]} $dir/shim/docker stop s2" \
    -n 'docker ps -a, 21 containers (real CLI)' "${as[*]} $real ps -a" \
    -n 'docker ps -a, 21 containers (gpuguard shim, own only)' "${as[*]} $dir/shim/docker ps -a" \
    -n 'docker version (real CLI, pass-through baseline)' "${as[*]} $real version" \
    -n 'docker version (gpuguard shim, pass-through)' "${as[*]} $dir/shim/docker version"
)
