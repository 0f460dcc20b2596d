# The hot paths of issue 14 in one run: docker --version, docker ps (10),
# docker create, docker ps -a (200) as alice; the runtime's --version and
# state, and docker run --rm with each runtime, as root. Each row: the real
# tool, the anchor (bench/anchors: what DS01's bash docker wrapper and
# Concourse's bash + jq runtime wrapper do) and gpuguard through its native
# front, in one hyperfine run. Root (private dockerd, test users).
hotpaths() {
  if [ "$(id -u)" != 0 ]; then
    echo "hotpaths: needs root (private dockerd, runs as alice)" >&2
    return 1
  fi
  OUT="$OUT" node --import tsx bench/sections/hotpaths.ts
}
