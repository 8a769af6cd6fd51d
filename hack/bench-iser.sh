#!/usr/bin/env bash
# Benchmark, not a test (make bench-iser): iSER against TCP iSCSI in the
# Soft-RoCE guest, with the same client for every target (our Go
# initiator, cmd/goiser-bench) in one interleaved run: goiserd, LIO and tgt,
# each over iSER and over TCP, plus the floor on the same rxe device
# (perftest, our rdma-pingpong over verbs and over TCP), then two witnesses
# against the same targets: libiscsi's iscsi-perf and fio on the Linux
# initiator's disk. Writes docs/bench/iser.md, iser.svg (percentiles),
# iser-cdf.svg (latency CDFs), iser.json (everything, with the merged
# latency histograms), iser.tsv (raw rounds), iser-witness.tsv and
# iser-breakdown.svg (where goiserd's and tgt's time goes per I/O).
#
#   hack/bench-iser.sh [--rounds N] [--seconds S] [--workloads LIST]
#                      [--targets "goiserd-iser goiserd-tcp lio-iser lio-tcp tgt-iser tgt-tcp"]
#                      [--no-witness]
#
# Defaults: 3 rounds of 2 s per workload and target (BENCH_ROUNDS,
# BENCH_SECONDS); workloads 4 KiB random read and write at QD1, QD8 and
# QD32, 128 KiB sequential read and write at QD8 and 1 MiB sequential
# read at QD4 (tgt 1.0.85's iSER drops commands over 512 KiB: its row says
# so). The guest
# stage is hack/rxe/bench.d/50-bench-iser.sh; numbers are TCG's, so only
# the ratios within one run mean anything. With ISER_TEST_DEVICE and
# ISER_TEST_ADDR set (a host with a RoCE or InfiniBand NIC) the same stage
# runs on this host instead, on that device (hack/rxe/host-stage.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
while [ $# -gt 0 ]; do
  case $1 in
    --rounds) export BENCH_ROUNDS=$2; shift 2 ;;
    --seconds) export BENCH_SECONDS=$2; shift 2 ;;
    --workloads) export BENCH_WORKLOADS=$2; shift 2 ;;
    --targets) export BENCH_TARGETS=$2; shift 2 ;;
    --no-witness) export BENCH_WITNESS=0; shift ;;
    -h|--help) sed -n '2,/^set -e/p' "$0" | sed 's/^# \{0,1\}//;/^set -e/d'; exit 0 ;;
    *) echo "bench-iser: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done
log=$(mktemp)
trap 'rm -f "$log"' EXIT
rc=0
if [ -n "${ISER_TEST_DEVICE:-}" ]; then
  # A host with a real RDMA NIC: the same stage, on this host (hack/rxe/host-stage.sh).
  hack/rxe/host-stage.sh hack/rxe/bench.d/50-bench-iser.sh 2>&1 | tee "$log" || rc=$?
  work=$(sed -n 's/^host-stage: .*; output in //p' "$log" | tail -n 1)
  res=$work/bench
else
  RXE_KEEP=1 RXE_EXTRA_STAGES=hack/rxe/bench.d RXE_STAGES='^50-bench-iser$' RXE_STAGE_TIMEOUT=3300 RXE_TIMEOUT=3500 \
    hack/rxe/test.sh 2>&1 | tee "$log" || rc=$?
  work=$(sed -n 's/^rxe: kept //p' "$log" | tail -n 1)
  res=$work/out/bench
fi
[ $rc -eq 0 ] || { echo "bench-iser: the run failed (logs in ${work:-?})" >&2; exit 1; }
[ -n "$work" ] && [ -s "$res/iser.md" ] || { echo "bench-iser: no results in ${res:-?}" >&2; exit 1; }
mkdir -p docs/bench
cp "$res/iser.md" "$res/iser.svg" "$res/iser-cdf.svg" "$res/iser.json" "$res/iser.tsv" docs/bench/
for f in iser-witness.tsv iser-breakdown.svg; do [ ! -s "$res/$f" ] || cp "$res/$f" docs/bench/; done
rm -rf "$work"
echo "bench-iser: wrote docs/bench/iser.md, iser.svg, iser-cdf.svg, iser.json, iser.tsv, iser-witness.tsv, iser-breakdown.svg"
