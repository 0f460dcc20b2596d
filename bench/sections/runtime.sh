# The runtime wrapper against the real runc, same run: pass-through calls
# (--version, state: target +5 ms or less), with the platform floor (a Bun
# binary that only execve's runc) as a reference row; then a whole
# `docker run --rm bb true` on a private dockerd with the wrapper as default
# runtime vs --runtime runc (target ratio 1.10 or less), in both orders.
# Root (runc state root, private dockerd).
runtime() {
  local tmp real
  tmp=$(mktemp -d /tmp/gg-bench-rt-XXXX)
  real=$(command -v runc)
  ln -s "$PWD/dist/gpuguard-front" "$tmp/gpuguard-runc" # as installed: the native front, gpuguard beside it
  npx --no-install bun build --compile --bytecode --minify --format=esm bench/sections/runtime-floor.ts --outfile "$tmp/floor" >/dev/null
  printf 'version: 1\nruntime: {realPath: %s}\nevents: {log: %s/events.jsonl}\n' "$real" "$tmp" > "$tmp/policy.yaml"
  mkdir -p "$tmp/root"
  # Prime the realPath cache (what the first create does on a host).
  GPUGUARD_POLICY="$tmp/policy.yaml" "$tmp/gpuguard-runc" --version >/dev/null
  GPUGUARD_POLICY="$tmp/policy.yaml" "${H[@]}" -i --export-markdown "$OUT/runtime-passthrough.md" --export-json "$OUT/runtime-passthrough.json" \
    -n 'gpuguard-runc --version' "$tmp/gpuguard-runc --version" \
    -n 'floor: bun execve runc --version' "$tmp/floor $real --version" \
    -n 'runc --version' "$real --version" \
    -n 'gpuguard-runc state' "$tmp/gpuguard-runc --root $tmp/root state nope" \
    -n 'runc state' "$real --root $tmp/root state nope"
  BENCH_TMP="$tmp" OUT="$OUT" node --import tsx bench/sections/runtime-docker.ts
  rm -rf "$tmp"
}
