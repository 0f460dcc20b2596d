# The API face (`gpuguard serve`) against dockerd's own socket, in the same
# hyperfine runs, on a private dockerd (root): the same docker CLI, as the
# unprivileged user nobody, once with DOCKER_HOST at the face and once at
# dockerd itself (its socket group is nogroup here so both can be measured
# by the same user; in API mode it is root's alone). `docker ps` with 20
# containers of other users and 3 of nobody's (the face filters the list);
# `docker run --rm bb true`; `docker cp` of 100 MB into and out of a
# container; then 64 concurrent clients each sending 200 `GET
# /containers/json` on one kept-alive connection, against both sockets, with
# the errors counted and the face's peak RSS (VmHWM) read from /proc.
api() (
  dir=$(mktemp -d /tmp/gg-bench-api-XXXX)
  real=/usr/bin/docker
  socket="$dir/docker.sock"
  face="$dir/face.sock"
  cleanup() {
    set +e
    [ -n "${fpid:-}" ] && kill "$fpid" 2>/dev/null && wait "$fpid" 2>/dev/null
    kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
    grep " $dir/" /proc/self/mountinfo | awk '{print $5}' | sort -r | xargs -r -n1 umount -l 2>/dev/null
    grep -l "\"path\":\"$dir/policy.yaml\"" /run/gpuguard-policy/*.json 2>/dev/null | xargs -r rm -f
    for _ in 1 2 3 4 5; do rm -rf "$dir" 2>/dev/null; [ -e "$dir" ] || break; sleep 1; done
  }
  trap cleanup EXIT
  chmod 755 "$dir"
  dockerd --data-root "$dir/data" --exec-root "$dir/x" --host "unix://$socket" --pidfile "$dir/docker.pid" \
    --bridge=none --iptables=false --ip6tables=false --ip-masq=false --storage-driver overlay2 --group nogroup \
    >"$dir/dockerd.log" 2>&1 &
  pid=$!
  for _ in $(seq 150); do DOCKER_HOST="unix://$socket" "$real" version >/dev/null 2>&1 && break; sleep 0.2; done
  mkdir -p "$dir/rootfs/bin" "$dir/rootfs/tmp" && cp /bin/busybox "$dir/rootfs/bin/"
  for a in sh sleep true cat; do ln -s busybox "$dir/rootfs/bin/$a"; done
  tar -C "$dir/rootfs" -cf "$dir/bb.tar" . && DOCKER_HOST="unix://$socket" "$real" import "$dir/bb.tar" bb >/dev/null
  printf 'version: 1\nadmins: ["@ds01-admin"]\nevents: {log: %s/events.jsonl}\n' "$dir" >"$dir/policy.yaml"
  chmod 644 "$dir/policy.yaml"
  GPUGUARD_POLICY="$dir/policy.yaml" ./dist/gpuguard serve --listen "$face" --upstream "$socket" --group nogroup >"$dir/face.log" 2>&1 &
  fpid=$!
  for _ in $(seq 100); do curl -sf --unix-socket "$face" http://d/_gpuguard/status >/dev/null && break; sleep 0.1; done
  as=(setpriv --reuid=nobody --regid=nogroup --init-groups)
  D="DOCKER_HOST=unix://$socket"
  F="DOCKER_HOST=unix://$face"
  # other users' containers straight on dockerd (root), and three of nobody's through the face
  for i in $(seq 20); do DOCKER_HOST="unix://$socket" "$real" create --label ds01.user=other$((i % 3)) bb true >/dev/null; done
  for i in 1 2 3; do env "$F" "${as[@]}" "$real" create bb true >/dev/null; done
  env "$F" "${as[@]}" "$real" run -d --name target bb sleep 3600 >/dev/null
  local_h=(hyperfine -N --style basic)
  "${local_h[@]}" --warmup 10 --runs "${BENCH_RUNS_API:-100}" --export-markdown "$OUT/api-ps.md" --export-json "$OUT/api-ps.json" \
    -n 'docker ps -a (dockerd socket)' "env $D ${as[*]} $real ps -a" \
    -n 'docker ps -a (API face, own only)' "env $F ${as[*]} $real ps -a"
  "${local_h[@]}" --warmup 3 --runs "${BENCH_RUNS_API_RUN:-30}" --export-markdown "$OUT/api-run.md" --export-json "$OUT/api-run.json" \
    -n 'docker run --rm bb true (dockerd socket)' "env $D ${as[*]} $real run --rm bb true" \
    -n 'docker run --rm bb true (API face)' "env $F ${as[*]} $real run --rm bb true"
  head -c 100000000 /dev/urandom >"$dir/big.bin" && chmod 644 "$dir/big.bin"
  mkdir "$dir/out" && chown nobody "$dir/out"
  "${local_h[@]}" --warmup 1 --runs "${BENCH_RUNS_API_CP:-10}" --export-markdown "$OUT/api-cp.md" --export-json "$OUT/api-cp.json" \
    -n 'docker cp 100 MB in (dockerd socket)' "env $D ${as[*]} $real cp $dir/big.bin target:/tmp/big.bin" \
    -n 'docker cp 100 MB in (API face)' "env $F ${as[*]} $real cp $dir/big.bin target:/tmp/big.bin" \
    -n 'docker cp 100 MB out (dockerd socket)' "env $D ${as[*]} $real cp target:/tmp/big.bin $dir/out/big.bin" \
    -n 'docker cp 100 MB out (API face)' "env $F ${as[*]} $real cp target:/tmp/big.bin $dir/out/big.bin"
  cat >"$dir/load.py" <<'EOF'
import http.client, socket, sys, threading, time
path, clients, each = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
class Unix(http.client.HTTPConnection):
    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX); self.sock.connect(path)
errors, done = [], []
def client():
    try:
        c = Unix('docker', timeout=60)
        for _ in range(each):
            c.request('GET', '/v1.41/containers/json?all=1')
            r = c.getresponse(); r.read()
            (done if r.status == 200 else errors).append(r.status)
    except Exception as e:
        errors.append(repr(e))
start = time.time()
ts = [threading.Thread(target=client) for _ in range(clients)]
for t in ts: t.start()
for t in ts: t.join()
print(f'{len(done)} ok, {len(errors)} errors in {time.time() - start:.2f} s {sorted(set(map(str, errors)))[:3]}')
EOF
  {
    echo "| 64 clients × 200 GET /containers/json, one kept-alive connection each | result |"
    echo "|---|---|"
    echo "| dockerd socket | $("${as[@]}" python3 "$dir/load.py" "$socket" 64 200) |"
    echo "| API face | $("${as[@]}" python3 "$dir/load.py" "$face" 64 200) |"
    echo "| API face peak RSS (VmHWM) after all of the above | $(awk '/VmHWM/ {printf "%.1f MiB", $2/1024}' /proc/$fpid/status) |"
    echo "| load average | $(cut -d' ' -f1-3 /proc/loadavg) |"
  } | tee "$OUT/api-load.md"
)
