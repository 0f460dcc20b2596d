#!/usr/bin/env bash
# Provision what the test suite needs on a fresh Debian machine, then build.
# As root it installs the Debian packages that are missing (apt-get update
# once first); as anyone else it names what is missing and the tests that
# need it skip (outside CI) or fail (CI=true).
set -euo pipefail
cd "$(dirname "$0")/.."

# gcc and libc6-dev build the native front (npm run build); jq is the bench's anchor runtime wrapper;
# python3-docker is docker-py, one of the SDKs the API face is tested with.
PACKAGES=(docker.io runc containerd busybox-static docker-compose hyperfine gcc libc6-dev jq python3-docker iproute2)
missing=()
for pkg in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
done

if [ "${#missing[@]}" -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then
    echo "setup: installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    # The package starts the host's dockerd where it can; the tests never use it.
  else
    echo "setup: MISSING Debian packages: ${missing[*]} (run as root to install them)" >&2
  fi
fi

if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund
fi
npm run --silent build
