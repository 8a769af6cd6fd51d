#!/usr/bin/env bash
# Stage 40-demo: make demo (hack/demo.sh), never part of make test. In the
# Soft-RoCE guest: goiserd serves one memory LUN over iSER and TCP on one
# portal, Linux's initiator (open-iscsi) logs in over each (ib_iser, then
# iscsi_tcp), and fio measures 4 KiB random reads at QD1 and QD32 on the
# disk; beside them the floor on the same rxe device and addresses (our
# rdma-pingpong: a 64-byte SEND one way and 4 KiB back, over verbs and over
# TCP). The table goes into the stage's notes, which make demo prints.
# shellcheck disable=SC2154 # portal: set by bench-lib.sh
set -euo pipefail
phase=${1:?usage: 40-demo.sh build|run}
name=40-demo
if [ "$phase" = build ]; then
  go build -o "$RXE_BIN/goiserd" ./cmd/goiserd
  go build -o "$RXE_BIN/rdma-pingpong" ./cmd/rdma-pingpong
  for t in iscsiadm iscsid fio jq; do
    command -v "$t" >/dev/null || { echo "$name: $t missing on the host (hack/deps.sh)"; exit 1; }
  done
  exit 0
fi

. "$RXE_REPO/hack/rxe/stage-lib.sh"
. "$RXE_REPO/hack/rxe/lio-lib.sh"
BENCH_WORK=/tmp/$name
. "$RXE_REPO/hack/rxe/bench-lib.sh"
t0=$(date +%s.%N)
say() { echo "== $(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%5.1fs", b - a }') $*"; }
fail() {
  echo "$name: FAIL: $*"
  for f in "$BENCH_WORK"/goiserd.log /tmp/iscsid.log; do
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

say "goiserd: one 256 MiB memory LUN over iSER and TCP"
bench_goiserd 256 || fail "goiserd did not start"
declare -A r
for t in goiserd-iser goiserd-tcp; do
  say "Linux initiator: login over ${t#goiserd-} to ${portal[$t]}"
  dev=$(bench_kernel_login "$t") || fail "login over ${t#goiserd-}"
  for qd in 1 32; do
    r[$t.$qd]=$(bench_fio "$dev" randread 4k "$qd" 3) || fail "fio QD$qd over ${t#goiserd-}"
    say "  fio 4 KiB random read QD$qd: ${r[$t.$qd]} (IOPS, median, p99, p99.9 µs)"
  done
  bench_kernel_logout "$t" || fail "logout over ${t#goiserd-}"
done
declare -A f
for m in send tcp; do
  for s in 64 4096; do
    f[$m.$s]=$(bench_pingpong "$m" "$s") || fail "rdma-pingpong $m $s"
  done
  say "floor: rdma-pingpong $m 64 B ${f[$m.64]}, 4 KiB ${f[$m.4096]} (median, p99 µs one-way)"
done
floor() { awk -v a="${f[$1.64]}" -v b="${f[$1.4096]}" 'BEGIN { split(a, x, " "); split(b, y, " "); print x[1] + y[1] }'; }
row() { # row LABEL TARGET FLOOR_US
  awk -v l="$1" -v a="${r[$2.1]}" -v b="${r[$2.32]}" -v fl="$3" '
    function t(us) { return us >= 1000 ? sprintf("%.2f ms", us / 1000) : sprintf("%.0f µs", us) }
    BEGIN { split(a, x, " "); split(b, y, " ")
      printf "%-6s %12s %12s %12s %14s %12s\n", l, t(x[2]), t(x[3]), y[1], t(y[2]), t(fl) }'
}
{
  echo "goiserd, one memory LUN, Linux initiator + fio, 4 KiB random read (Soft-RoCE in a TCG guest: compare rows, don't quote)"
  printf '%-6s %12s %12s %12s %14s %12s\n' "" "QD1 median" "QD1 p99" "QD32 IOPS" "QD32 median" "floor"
  row iSER goiserd-iser "$(floor send)"
  row TCP goiserd-tcp "$(floor tcp)"
  echo "floor: a 64-byte message one way and 4 KiB back on the same device and addresses (rdma-pingpong send / tcp)"
  echo "the full benchmark (goiserd, LIO, tgt; two witnesses; where the time goes): make bench-iser"
} >"$BENCH_WORK/table"
cat "$BENCH_WORK/table"
while IFS= read -r line; do rxe_note "$line"; done <"$BENCH_WORK/table"
say "done"
