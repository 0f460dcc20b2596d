#!/usr/bin/env bash
# Benchmarks: hyperfine, each gpuguard figure against the real tool in the
# same run, so the ratio survives a noisy shared machine. Results are copied
# by hand into bench/README.md with the date and the machine.
#   bash bench/run.sh [startup ...]     (default: every section)
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x dist/gpuguard ] || npm run --silent build
OUT=${BENCH_OUT:-bench/results}
mkdir -p "$OUT"
H=(hyperfine -N --warmup 10 --runs "${BENCH_RUNS:-200}" --style basic)

startup() {
  "${H[@]}" --export-markdown "$OUT/startup.md" \
    -n 'gpuguard version' './dist/gpuguard version' \
    -n '/bin/true' '/bin/true' \
    -n 'runc --version' "$(command -v runc) --version"
}

sections=("$@")
[ ${#sections[@]} -gt 0 ] || sections=(startup)
for s in "${sections[@]}"; do
  echo "== $s"
  "$s"
done
