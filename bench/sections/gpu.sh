# GPU allocation: `docker create --gpus 1` through the shim (allocation:
# lock, reservations, Docker state over the Engine API, decision, rewrite)
# against the real CLI given the device directly, `docker create --gpus
# device=<uuid>`, on a private dockerd holding 50 containers (3 with GPUs).
# Root: starts its own dockerd with a temp data-root; never the host's.
gpu() {
  local d; d=$(mktemp -d /tmp/gg-bench-gpu-XXXX)
  local sock="$d/docker.sock"
  mkdir -p "$d/bin" "$d/run" && chmod 1777 "$d/run"
  printf '#!/bin/sh\ncat >/dev/null 2>&1\nexit 0\n' >"$d/bin/nvidia-container-runtime-hook"; chmod 755 "$d/bin/nvidia-container-runtime-hook"
  echo '{"exec-opts":["native.cgroupdriver=cgroupfs"]}' >"$d/daemon.json"
  PATH="$d/bin:$PATH" dockerd --data-root "$d/data" --exec-root "$d/x" --host "unix://$sock" --pidfile "$d/docker.pid" \
    --config-file "$d/daemon.json" --bridge=none --iptables=false --ip6tables=false --ip-masq=false --storage-driver overlay2 \
    >"$d/dockerd.log" 2>&1 &
  local dpid=$!
  local real; real=$(command -v /usr/bin/docker || command -v docker)
  export DOCKER_HOST="unix://$sock"
  for _ in $(seq 100); do "$real" version >/dev/null 2>&1 && break; sleep 0.2; done
  local root="$d/rootfs"; mkdir -p "$root/bin"; cp /bin/busybox "$root/bin/"; (cd "$root" && tar -cf "$d/bb.tar" .)
  "$real" import --change 'CMD ["sh"]' "$d/bb.tar" bb >/dev/null
  local fix=test/fixtures/nvidia-smi/a100-mig-mixed.txt
  for i in $(seq 47); do "$real" create bb >/dev/null; done
  for s in 0 1 2; do "$real" create --gpus "device=0:$s" bb >/dev/null; done
  ln -sf "$PWD/dist/gpuguard-front" "$d/bin/docker" # as installed: the native front, gpuguard beside it
  printf 'version: 1\nevents: {log: %s/events.jsonl}\n' "$d" >"$d/policy.yaml"
  local uuid; uuid=$(awk '/Device  3:/ {gsub(/[()]/,""); print $NF; exit}' "$fix")
  export GPUGUARD_REAL_DOCKER="$real" GPUGUARD_POLICY="$d/policy.yaml" GPUGUARD_NVIDIA_SMI="$fix" GPUGUARD_RUN_DIR="$d/run"
  # Each run creates a container: fewer runs than the default (BENCH_GPU_RUNS).
  local h=("${H[@]}") i
  for i in "${!h[@]}"; do [ "${h[$i]}" = --runs ] && h[$((i + 1))]="${BENCH_GPU_RUNS:-60}"; done
  "${h[@]}" --prepare "sh -c '$real rm -f gb >/dev/null 2>&1 || true'" --export-markdown "$OUT/gpu.md" --export-json "$OUT/gpu.json" \
    -n 'shim: docker create --gpus 1' "$d/bin/docker create --name gb --gpus 1 bb" \
    -n 'real: docker create --gpus device=<uuid>' "$real create --name gb --gpus device=$uuid bb" \
    -n 'shim: docker create (no GPU)' "$d/bin/docker create --name gb bb"
  "$real" ps -aq | xargs -r "$real" rm -f >/dev/null
  kill "$dpid"; wait "$dpid" 2>/dev/null || true
  grep " $d/" /proc/self/mountinfo | awk '{print $5}' | sort -r | xargs -r -n1 umount -l 2>/dev/null || true
  rm -rf "$d"
  unset DOCKER_HOST GPUGUARD_REAL_DOCKER GPUGUARD_POLICY GPUGUARD_NVIDIA_SMI GPUGUARD_RUN_DIR
}
