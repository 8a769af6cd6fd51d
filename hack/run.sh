#!/usr/bin/env bash
# make run: starts bin/goiserd in the foreground on the built-in default
# (a 1 GiB in-memory LUN 0 under iqn.2026-11.dev.goiser:default on
# 127.0.0.1:3260) and prints how to reach it. Extra arguments go to goiserd
# (make run passes none; try hack/run.sh -listen 127.0.0.1:3261, or
# hack/run.sh -iser ADDR on a host with RDMA). It says whether this host
# could serve iSER too.
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
if [ $# -eq 0 ]; then
  if [ -n "$(ls /sys/class/infiniband 2>/dev/null)" ]; then
    echo "run: this host has RDMA devices ($(ls /sys/class/infiniband | tr '\n' ' ')): add iSER beside TCP with" >&2
    echo "     hack/run.sh -iser ADDR   (ADDR: an IP address of one of them; docs/iser.md)" >&2
  else
    echo "run: serving iSCSI/TCP only: this host has no RDMA device. Where RoCE, InfiniBand or Soft-RoCE" >&2
    echo "     (modprobe rdma_rxe; rdma link add rxe0 type rxe netdev IFACE) is up, add iSER with" >&2
    echo "     hack/run.sh -iser ADDR  (docs/iser.md)" >&2
  fi
fi
exec "$bin" "$@"
