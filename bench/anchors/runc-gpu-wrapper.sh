#!/usr/bin/env bash
# Benchmark anchor, written for this project (nothing fetched): an OCI
# runtime wrapper doing what Concourse's runc-gpu-wrapper does (seeds 000
# and 001: bash + jq), installed as the runtime:
#   - finds the subcommand and the bundle (--bundle/-b) in argv;
#   - on create/run: jq adds NVIDIA_VISIBLE_DEVICES=all and
#     NVIDIA_DRIVER_CAPABILITIES=all to the process env and, when
#     /srv/datasets exists, a read-only bind mount of it, writing config.json
#     through a temp file;
#   - then execs the real runtime (`<this path>.real`, or ANCHOR_REAL_RUNTIME).
real=${ANCHOR_REAL_RUNTIME:-$0.real}
cmd=
bundle=
args=("$@")
for ((i = 0; i < ${#args[@]}; i++)); do
  case ${args[i]} in
    create | run) [ -z "$cmd" ] && cmd=${args[i]} ;;
    --bundle | -b) bundle=${args[i + 1]} ;;
    --bundle=*) bundle=${args[i]#--bundle=} ;;
  esac
done
if [ -n "$cmd" ]; then
  config=${bundle:-$PWD}/config.json
  if [ -f "$config" ]; then
    filter='.process.env += ["NVIDIA_VISIBLE_DEVICES=all", "NVIDIA_DRIVER_CAPABILITIES=all"]'
    if [ -d /srv/datasets ]; then
      filter="$filter | .mounts += [{\"destination\": \"/srv/datasets\", \"type\": \"bind\", \"source\": \"/srv/datasets\", \"options\": [\"rbind\", \"ro\"]}]"
    fi
    jq "$filter" "$config" >"$config.tmp" && mv "$config.tmp" "$config"
  fi
fi
exec "$real" "$@"
