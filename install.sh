#!/usr/bin/env bash
# gpuguard installer (root). Not complete yet: this builds dist/gpuguard and
# says what it would install. See issue "install.sh, uninstall, doctor".
set -euo pipefail
cd "$(dirname "$0")"
if [ ! -x dist/gpuguard ] || [ -n "$(find src package.json -newer dist/gpuguard -print -quit 2>/dev/null)" ]; then
  command -v npm >/dev/null || { echo "install.sh: npm is needed to build gpuguard (apt-get install npm)" >&2; exit 1; }
  [ -d node_modules ] || npm ci --no-audit --no-fund
  npm run --silent build
fi
./dist/gpuguard version
echo "install.sh: built dist/gpuguard; installing the shim and runtime wrapper is not implemented yet" >&2
exit 3
