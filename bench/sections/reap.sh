# The reaper: `gpuguard reap` on a private dockerd holding 200 containers
# (40 running, 160 stopped), with lifecycle rules that decide every
# container and act on none, against the real CLI listing the same
# containers (`docker ps -a`) and inspecting each of them (`docker inspect
# $(docker ps -aq)`, what a cron script that reads FinishedAt would do).
# Then the Docker API calls one reap makes, counted in dockerd's debug log
# ("Calling GET …"), with 20 and with 200 containers. Root: starts its own
# dockerd with a temp data-root; never the host's.
reap() (
  d=$(mktemp -d /tmp/gg-bench-reap-XXXX)
  sock="$d/docker.sock"
  real=/usr/bin/docker
  cleanup() {
    set +e
    "$real" ps -aq 2>/dev/null | xargs -r "$real" rm -f >/dev/null 2>&1
    kill "$dpid" 2>/dev/null && wait "$dpid" 2>/dev/null
    grep " $d/" /proc/self/mountinfo | awk '{print $5}' | sort -r | xargs -r -n1 umount -l 2>/dev/null
    for _ in 1 2 3 4 5; do rm -rf "$d" 2>/dev/null; [ -e "$d" ] || break; sleep 1; done
  }
  trap cleanup EXIT
  echo '{"exec-opts":["native.cgroupdriver=cgroupfs"],"debug":true}' >"$d/daemon.json"
  dockerd --data-root "$d/data" --exec-root "$d/x" --host "unix://$sock" --pidfile "$d/docker.pid" \
    --config-file "$d/daemon.json" --bridge=none --iptables=false --ip6tables=false --ip-masq=false --storage-driver overlay2 \
    >"$d/dockerd.log" 2>&1 &
  dpid=$!
  export DOCKER_HOST="unix://$sock"
  for _ in $(seq 150); do "$real" version >/dev/null 2>&1 && break; sleep 0.2; done
  mkdir -p "$d/rootfs/bin" && cp /bin/busybox "$d/rootfs/bin/" && ln -s busybox "$d/rootfs/bin/sh" && ln -s busybox "$d/rootfs/bin/sleep" && ln -s busybox "$d/rootfs/bin/true"
  tar -C "$d/rootfs" -cf "$d/bb.tar" . && "$real" import --change 'CMD ["sh"]' "$d/bb.tar" bb >/dev/null
  mkdir -p "$d/smi" && printf '#!/bin/sh\ncase "$1" in -L) cat %s ;; esac\n' "$PWD/test/fixtures/nvidia-smi/a100-7x1g.txt" >"$d/smi/nvidia-smi" && chmod 755 "$d/smi/nvidia-smi"
  printf 'version: 1\nevents: {log: %s/events.jsonl}\nlifecycle: {idleAfter: 1d, maxRuntime: 30d, removeStoppedAfter: 30d, warnBefore: 1h}\n' "$d" >"$d/policy.yaml"
  export GPUGUARD_POLICY="$d/policy.yaml" GPUGUARD_NVIDIA_SMI="$d/smi/nvidia-smi"
  calls() { grep -c 'msg="Calling ' "$d/dockerd.log"; }
  count_reap() {
    local before after
    before=$(calls)
    ./dist/gpuguard reap --state "$d/count.json" >/dev/null
    after=$(calls)
    echo $((after - before))
  }
  make() { # running stopped
    local i
    for i in $(seq "$1"); do "$real" run -d --label "ds01.user=u$((i % 7))" bb sleep 100000 >/dev/null; done
    for i in $(seq "$2"); do "$real" create --label "ds01.user=u$((i % 7))" bb true >/dev/null; done
  }
  make 4 16
  n20=$(count_reap)
  make 36 144
  n200=$(count_reap)
  echo "Docker API calls per reap: $n20 with 20 containers, $n200 with 200 (dockerd debug log)" | tee "$OUT/reap-calls.txt"
  grep -o 'msg="Calling [A-Z]* [^"]*"' "$d/dockerd.log" | tail -n "$n200" | sed 's/msg="Calling //; s/"$//; s/?.*//' | sort | uniq -c | tee -a "$OUT/reap-calls.txt"
  hyperfine -N --style basic --warmup 3 --runs "${BENCH_RUNS_REAP:-30}" --export-markdown "$OUT/reap.md" --export-json "$OUT/reap.json" \
    -n 'gpuguard reap, 200 containers (decides each, acts on none)' "./dist/gpuguard reap --state $d/reap.json" \
    -n 'gpuguard reap --dry-run, 200 containers' "./dist/gpuguard reap --dry-run --state $d/reap.json" \
    -n 'real: docker ps -a, 200 containers' "$real ps -a" \
    -n 'real: docker inspect of every container (200)' "sh -c '$real inspect \$($real ps -aq) >/dev/null'"
  uptime | tee -a "$OUT/reap-calls.txt"
)
