#!/usr/bin/env bash
# make demo: for a newcomer on any Linux box, no RDMA hardware needed. Boots
# the Soft-RoCE guest (QEMU, rdma_rxe; hack/rxe), serves one LUN from
# goiserd over iSER and over TCP, logs Linux's initiator in over both, and
# prints QD1 and QD32 latency of 4 KiB random reads over each transport
# with the verbs and TCP floor beside them. The guest stage is
# hack/rxe/bench.d/40-demo.sh. Numbers come from an emulated CPU: compare
# the rows, don't quote them; make bench-iser is the full benchmark. With
# ISER_TEST_DEVICE and ISER_TEST_ADDR set (a host with a RoCE or InfiniBand
# NIC) the stage runs on this host, on that device, instead.
set -euo pipefail
cd "$(dirname "$0")/.."
case ${1:-} in -h|--help) sed -n '2,/^set -e/p' "$0" | sed 's/^# \{0,1\}//;/^set -e/d'; exit 0 ;; esac
log=$(mktemp)
trap 'rm -f "$log"' EXIT
rc=0
if [ -n "${ISER_TEST_DEVICE:-}" ]; then
  # A host with a real RDMA NIC: the same stage, on this host.
  hack/rxe/host-stage.sh hack/rxe/bench.d/40-demo.sh >"$log" 2>&1 || rc=$?
else
  RXE_EXTRA_STAGES=hack/rxe/bench.d RXE_STAGES='^40-demo$' RXE_STAGE_TIMEOUT=600 RXE_TIMEOUT=900 \
    hack/rxe/test.sh >"$log" 2>&1 || rc=$?
fi
if [ $rc -ne 0 ]; then
  cat "$log"
  echo "demo: the run failed (above)" >&2
  exit 1
fi
echo
sed -n 's/^ \{7\}//p' "$log"
