#!/usr/bin/env bash
# gpuguard installer. Run as root on the GPU host:
#   sudo ./install.sh                 install (again: changes nothing)
#   sudo ./install.sh --dry-run       print every step, change nothing
#   sudo ./install.sh --api           API mode: dockerd behind gpuguard serve (docs/operations.md)
#   sudo ./install.sh --concourse     also take over /opt/concourse/bin/runc
#   sudo ./install.sh --uninstall     undo every change, byte for byte
# Options (--root DIR for packagers and tests, --daemon-json, --dockerd-pid …):
#   ./install.sh --help, and docs/operations.md.
# This script only builds dist/gpuguard (and its native front,
# dist/gpuguard-front) when missing or older than the sources; the
# installing is `gpuguard install`, which records each change in
# /var/lib/gpuguard/state.json for uninstall and doctor.
set -euo pipefail
cd "$(dirname "$0")"
stale() {
  [ ! -x dist/gpuguard ] || [ ! -x dist/gpuguard-front ] && return 0
  [ -n "$(find src package.json package-lock.json build -newer dist/gpuguard -print -quit 2>/dev/null)" ]
}
if stale; then
  for a in "$@"; do
    if [ "$a" = --dry-run ] || [ "$a" = -n ]; then
      echo "install: would build dist/gpuguard (npm run build)"
    fi
  done
  command -v npm >/dev/null || { echo "install.sh: npm is needed to build gpuguard (apt-get install npm)" >&2; exit 1; }
  [ -d node_modules ] || npm ci --no-audit --no-fund
  npm run --silent build >&2
fi
exec ./dist/gpuguard install "$@"
