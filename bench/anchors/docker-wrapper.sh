#!/usr/bin/env bash
# Benchmark anchor, written for this project (nothing fetched): a docker CLI
# wrapper doing what DS01's docker-wrapper.sh does (seed 003: "universal
# Docker wrapper enforcement", bash + python), installed as `docker`:
#   - every call: bash starts, finds the subcommand after the global
#     options, and execs the real CLI;
#   - `ps`: adds a server-side owner filter (--filter label=ds01.user=$USER);
#   - `run`/`create`: a python helper computes the owner labels, which are
#     added before the image.
# ANCHOR_REAL_DOCKER: the real CLI (default /usr/bin/docker).
real=${ANCHOR_REAL_DOCKER:-/usr/bin/docker}
i=1
cmd=
while [ "$i" -le $# ]; do
  case ${!i} in
    -H | --host | -c | --context | --config | -l | --log-level | --tlscacert | --tlscert | --tlskey) i=$((i + 2)) ;;
    -*) i=$((i + 1)) ;;
    *) cmd=${!i}; break ;;
  esac
done
case $cmd in
  ps)
    exec "$real" "${@:1:i}" --filter "label=ds01.user=$(id -un)" "${@:i+1}" ;;
  run | create)
    mapfile -t labels < <(python3 -c '
import datetime, grp, os, pwd
u = pwd.getpwuid(os.getuid())
for k, v in (("user", u.pw_name), ("uid", u.pw_uid), ("group", grp.getgrgid(u.pw_gid).gr_name), ("managed", "true"),
             ("interface", "docker"), ("created_at", datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"))):
    print("--label"); print(f"ds01.{k}={v}")
')
    exec "$real" "${@:1:i}" "${labels[@]}" "${@:i+1}" ;;
  *)
    exec "$real" "$@" ;;
esac
