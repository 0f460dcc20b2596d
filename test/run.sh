#!/usr/bin/env bash
# The whole test suite: provisions prerequisites, builds dist/gpuguard, runs
# unit tests and the integration tests against real dockerd/containerd/runc.
#   bash test/run.sh          everything (root needed for the integration tests)
#   bash test/run.sh unit     unit tests only
set -euo pipefail
cd "$(dirname "$0")/.."
bash test/setup.sh
shopt -s nullglob
case "${1:-all}" in
  unit) files=(test/unit/*.test.ts) ;;
  integration) files=(test/integration/*.test.ts) ;;
  all) files=(test/unit/*.test.ts test/integration/*.test.ts) ;;
  *) files=("$@") ;;
esac
npx --no-install tsc -p .
exec node --import tsx --test --test-reporter=spec --test-concurrency="${TEST_CONCURRENCY:-2}" "${files[@]}"
