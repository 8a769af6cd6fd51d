#!/usr/bin/env bash
# make run: starts bin/goiserd in the foreground on the built-in default
# (a 1 GiB in-memory LUN 0 under iqn.2026-11.dev.goiser:default on
# 127.0.0.1:3260) and prints how to reach it. Extra arguments go to goiserd
# (make run passes none; try hack/run.sh -listen 127.0.0.1:3261).
# Ctrl-C stops it gracefully.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=bin/goiserd
[ -x "$bin" ] || { echo "run: $bin is missing: run make build first" >&2; exit 2; }
if [ $# -eq 0 ] && ss -Htln 'sport = :3260' 2>/dev/null | grep -q .; then
  echo "run: port 3260 on this host is already in use:" >&2
  ss -Htlnp 'sport = :3260' 2>/dev/null | sed 's/^/  /' >&2 || true
  echo "run: stop that target (tgtd? another goiserd?) or pick another port: hack/run.sh -listen 127.0.0.1:3261" >&2
  exit 1
fi
exec "$bin" "$@"
