#!/usr/bin/env bash
# Stage 50-bench-iser: the benchmark of hack/bench-iser.sh (make
# bench-iser), never part of make test. In the Soft-RoCE guest, one
# interleaved goiser-bench run (our Go initiator, the same client for all)
# against goiserd over iSER and TCP, LIO over iSER and TCP (ib_isert,
# rd_mcp) and tgt 1.0.85 over iSER and TCP (rdwr on the guest's tmpfs), all
# with LUNs of the same size; the floor on the same rxe device (perftest
# ib_send_lat, ib_write_lat and ib_read_lat, our rdma-pingpong's send and
# write modes, and its tcp mode: the same exchange over TCP on the same
# addresses); then two witnesses against the same targets: libiscsi's
# iscsi-perf (iser:// and iscsi://) and fio on the Linux initiator's disk
# (open-iscsi with ib_iser and with iscsi_tcp). Results go to
# $RXE_OUT/bench (iser.md with the witnesses' section, iser.svg,
# iser-cdf.svg, iser.json, iser.tsv, iser-witness.tsv), which the host
# script copies to docs/bench; goiser-bench's progress lines, one per
# measured run, are in the stage's bench.log. goiser-bench traces goiserd
# and tgtd with eBPF (-attribute; the 6.1 kernel has no sock tracepoints,
# so no socket wait) for iser-breakdown.svg. Parameters come from the host
# in the build phase (BENCH_ROUNDS, BENCH_SECONDS, BENCH_WORKLOADS,
# BENCH_TARGETS, BENCH_WITNESS=0 to skip the witnesses).
# shellcheck disable=SC2154 # bench_gpid, url: set by bench-lib.sh
set -euo pipefail
phase=${1:?usage: 50-bench-iser.sh build|run}
name=50-bench-iser
conf=$RXE_BIN/$name.env

if [ "$phase" = build ]; then
  go build -o "$RXE_BIN/goiserd" ./cmd/goiserd
  go build -o "$RXE_BIN/goiser-bench" ./cmd/goiser-bench
  go build -o "$RXE_BIN/rdma-pingpong" ./cmd/rdma-pingpong
  for t in tgtd tgtadm ib_send_lat ib_write_lat ib_read_lat iscsi-perf iscsiadm iscsid fio jq; do
    command -v "$t" >/dev/null || { echo "$name: $t missing on the host (hack/deps.sh)"; exit 1; }
  done
  {
    printf 'rounds=%q\n' "${BENCH_ROUNDS:-3}"
    printf 'seconds=%q\n' "${BENCH_SECONDS:-2}"
    printf 'workloads=%q\n' "${BENCH_WORKLOADS:-4k-randread-qd1,4k-randwrite-qd1,4k-randread-qd8,4k-randwrite-qd8,4k-randread-qd32,4k-randwrite-qd32,128k-seqread-qd8,128k-seqwrite-qd8,1m-seqread-qd4}"
    printf 'targets=%q\n' "${BENCH_TARGETS:-goiserd-iser goiserd-tcp lio-iser lio-tcp tgt-iser tgt-tcp}"
    printf 'witness=%q\n' "${BENCH_WITNESS:-1}"
    printf 'attribute=%q\n' "${BENCH_ATTRIBUTE:-0}"
    printf 'commit=%q\n' "$(git rev-parse --short HEAD 2>/dev/null || echo unknown)$(git diff --quiet 2>/dev/null || echo -dirty)"
  } >"$conf"
  exit 0
fi

. "$RXE_REPO/hack/rxe/stage-lib.sh"
. "$RXE_REPO/hack/rxe/lio-lib.sh"
rounds=3 seconds=2 workloads=4k-randread-qd1 targets=goiserd-iser commit=unknown witness=1 attribute=0
# shellcheck source=/dev/null
. "$conf"
BENCH_WORK=/tmp/$name
rm -rf "$BENCH_WORK"
. "$RXE_REPO/hack/rxe/bench-lib.sh"
mkdir -p "$RXE_OUT/bench"
out=$RXE_OUT/bench
lun_mib=256
t0=$(date +%s.%N)
say() { echo "== $(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%6.1fs", b - a }') $*"; }
fail() {
  echo "$name: FAIL: $*"
  for f in "$BENCH_WORK"/goiserd.log "$BENCH_WORK"/tgtd.log "$BENCH_WORK"/bench.log /tmp/iscsid.log; do
    [ -s "$f" ] && { echo "---- $f (tail) ----"; tail -n 20 "$f"; }
  done
  exit 1
}
cleanup() {
  local rc=$?
  trap - EXIT
  bench_stop
  exit "$rc"
}
trap cleanup EXIT

say "goiserd: iSER and TCP, mem LUN of $lun_mib MiB"
bench_goiserd "$lun_mib" || fail "goiserd"
say "LIO: iSER and TCP, rd_mcp LUN of $lun_mib MiB"
bench_lio "$lun_mib" || fail "LIO"
say "tgtd: iSER on $RXE_ADDR:3260, TCP on a target of its own, rdwr LUN of $lun_mib MiB on tmpfs"
bench_tgt "$lun_mib" || fail "tgt"

# The floor. For a 4 KiB read, iSER's exchange is a small SEND (the
# command), a 4 KiB RDMA WRITE and a small SEND (the response) posted
# together: one small message one way and 4 KiB back, i.e. the one-way
# latencies of a 64-byte and a 4 KiB SEND added.
notes=()
declare -A fl
for f in "ib_send_lat 64" "ib_send_lat 4096" "ib_write_lat 4096" "ib_read_lat 4096"; do
  read -r tool size <<<"$f"
  say "floor: perftest $tool -s $size"
  fl[$tool.$size]=$(bench_perftest "$tool" "$size") || fl[$tool.$size]="- -"
  say "  ${fl[$tool.$size]}"
done
for f in "send 64" "send 4096" "write 4096" "tcp 64" "tcp 4096"; do
  read -r m size <<<"$f"
  say "floor: rdma-pingpong -mode $m -sizes $size"
  fl[pp-$m.$size]=$(bench_pingpong "$m" "$size") || fl[pp-$m.$size]="- -"
  say "  ${fl[pp-$m.$size]}"
done
# floor_rt A B: the sum of the first fields of two "TYPICAL P99" results.
floor_rt() { awk -v a="$1" -v b="$2" 'BEGIN { split(a, x, " "); split(b, y, " "); if (x[1] == "-" || y[1] == "-") print "-"; else printf "%.1f", x[1] + y[1] }'; }
floor_iser=$(floor_rt "${fl[ib_send_lat.64]}" "${fl[ib_send_lat.4096]}")
floor_tcp=$(floor_rt "${fl[pp-tcp.64]}" "${fl[pp-tcp.4096]}")
notes+=(-note "The floor on the same rxe device, one-way µs (median or perftest's t_typical / p99): perftest ib_send_lat 64 B ${fl[ib_send_lat.64]/ / / }, 4 KiB ${fl[ib_send_lat.4096]/ / / }; ib_write_lat 4 KiB ${fl[ib_write_lat.4096]/ / / }; ib_read_lat 4 KiB (round trip) ${fl[ib_read_lat.4096]/ / / }; rdma-pingpong send 64 B ${fl[pp-send.64]/ / / }, 4 KiB ${fl[pp-send.4096]/ / / }, write 4 KiB ${fl[pp-write.4096]/ / / }; the same exchange over TCP on the same addresses, 64 B ${fl[pp-tcp.64]/ / / }, 4 KiB ${fl[pp-tcp.4096]/ / / }.")
notes+=(-note "Floor of a QD1 4 KiB read (a small SEND one way, 4 KiB back): ${floor_iser} µs over verbs (perftest ib_send_lat 64 B + 4 KiB), ${floor_tcp} µs over TCP (rdma-pingpong tcp 64 B + 4 KiB).")

args=()
for t in $targets; do args+=(-target "$t=${url[$t]}"); done
# Where each user-space target's time goes per I/O (eBPF on tracepoints,
# goiser-bench -attribute): goiserd and tgtd over both transports. LIO
# runs in the kernel, with no process of its own to trace.
gd=$(pgrep -P "$bench_gpid" -x goiserd | head -n 1) || true
td=$(pgrep -x tgtd | head -n 1) || true
# tgt 1.0.85's iSER drops the connection on a command over 512 KiB.
case " $targets " in *" tgt-iser "*) args+=(-max-io tgt-iser=512k) ;; esac
for t in $targets; do
  [ "$attribute" = 1 ] || break
  case $t in
    goiserd-*) [ -z "$gd" ] || args+=(-attribute "$t=$gd") ;;
    tgt-*) [ -z "$td" ] || args+=(-attribute "$t=$td") ;;
  esac
done
if [ "$attribute" = 1 ]; then args+=(-attribute-svg "$out/iser-breakdown.svg"); fi
load=$(cut -d' ' -f1-3 /proc/loadavg)
say "goiser-bench: $rounds rounds x $seconds s, $workloads, targets $targets"
timeout 3000 "$RXE_BIN/goiser-bench" -rounds "$rounds" -seconds "$seconds" -region-mib "$lun_mib" \
  -workloads "$workloads" "${args[@]}" -baseline lio-iser -commit "$commit" \
  -title "iSER and TCP latency in the Soft-RoCE guest: goiserd, LIO, tgt (one client, interleaved)" \
  -note "Soft-RoCE (rdma_rxe) inside a QEMU TCG guest (2 vCPUs, kernel $(uname -r)) on a 2-core host; load average at the start $load. Absolute numbers are TCG's, not hardware's: compare ratios within this run only." \
  -note "LUNs of $lun_mib MiB: goiserd mem, LIO rd_mcp, tgt rdwr on tmpfs. tgt serves iSER on RDMA CM port 3260 only, and its TCP target is a second one (tgt 1.0.85 refuses TCP logins to an iSER target)." \
  "${notes[@]}" \
  -out "$out/iser.md" -svg "$out/iser.svg" -raw "$out/iser.tsv" \
  -cdf-svg "$out/iser-cdf.svg" -json "$out/iser.json" \
  >"$BENCH_WORK/bench.log" 2>&1 </dev/null || fail "goiser-bench failed: $(tail -n 3 "$BENCH_WORK/bench.log")"
grep -E '^\|' "$out/iser.md" | head -n 30 || true
rxe_note "bench-iser: $out/iser.md"

if [ "$witness" = 1 ]; then
  . "$RXE_REPO/hack/rxe/bench-witness.sh"
fi
say "done"
