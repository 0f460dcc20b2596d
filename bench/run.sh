#!/usr/bin/env bash
# Benchmarks: hyperfine, each gpuguard figure against the real tool in the
# same run, so the ratio survives a noisy shared machine. Each section is
# bench/sections/NAME.sh defining a function NAME; results land in
# bench/results/ and are copied into bench/README.md with date and machine.
#   bash bench/run.sh [NAME ...]     (default: every section; root for those
#                                      that start the private dockerd)
set -euo pipefail
cd "$(dirname "$0")/.."
{ [ -x dist/gpuguard ] && [ -x dist/gpuguard-front ]; } || npm run --silent build
OUT=${BENCH_OUT:-bench/results}
mkdir -p "$OUT"
H=(hyperfine -N --warmup 10 --runs "${BENCH_RUNS:-200}" --style basic)
for f in bench/sections/*.sh; do source "$f"; done
sections=("$@")
[ ${#sections[@]} -gt 0 ] || sections=($(basename -s .sh bench/sections/*.sh))
for s in "${sections[@]}"; do
  echo "== $s"
  "$s"
done
