#!/usr/bin/env bash
# Stage 50-bench-iser: the benchmark of hack/bench-iser.sh (make
# bench-iser), never part of make test. In the Soft-RoCE guest, one
# interleaved goiser-bench run (our Go initiator, the same client for all)
# against goiserd over iSER and TCP, LIO over iSER and TCP (ib_isert,
# rd_mcp) and tgt 1.0.85 over iSER and TCP (rdwr on the guest's tmpfs), all
# with LUNs of the same size; then the floor on the same rxe device:
# perftest ib_send_lat, ib_write_lat and ib_read_lat at 4 KiB. Results go
# to $RXE_OUT/bench (iser.md, iser.svg, iser-cdf.svg, iser.json, iser.tsv),
# which the host script copies to docs/bench; goiser-bench's progress
# lines, one per measured run, are in the stage's bench.log. Parameters come from the host in the build phase
# (BENCH_ROUNDS, BENCH_SECONDS, BENCH_WORKLOADS, BENCH_TARGETS).
set -euo pipefail
phase=${1:?usage: 50-bench-iser.sh build|run}
name=50-bench-iser
conf=$RXE_BIN/$name.env

if [ "$phase" = build ]; then
  go build -o "$RXE_BIN/goiserd" ./cmd/goiserd
  go build -o "$RXE_BIN/goiser-bench" ./cmd/goiser-bench
  for t in tgtd tgtadm ib_send_lat ib_write_lat ib_read_lat; do
    command -v "$t" >/dev/null || { echo "$name: $t missing on the host (hack/deps.sh)"; exit 1; }
  done
  {
    printf 'rounds=%q\n' "${BENCH_ROUNDS:-3}"
    printf 'seconds=%q\n' "${BENCH_SECONDS:-2}"
    printf 'workloads=%q\n' "${BENCH_WORKLOADS:-4k-randread-qd1,4k-randwrite-qd1,4k-randread-qd8,4k-randwrite-qd8,4k-randread-qd32,4k-randwrite-qd32,128k-seqread-qd8,128k-seqwrite-qd8,512k-seqread-qd4}"
    printf 'targets=%q\n' "${BENCH_TARGETS:-goiserd-iser goiserd-tcp lio-iser lio-tcp tgt-iser tgt-tcp}"
    printf 'commit=%q\n' "$(git rev-parse --short HEAD 2>/dev/null || echo unknown)$(git diff --quiet 2>/dev/null || echo -dirty)"
  } >"$conf"
  exit 0
fi

. "$RXE_REPO/hack/rxe/stage-lib.sh"
. "$RXE_REPO/hack/rxe/lio-lib.sh"
rounds=3 seconds=2 workloads=4k-randread-qd1 targets=goiserd-iser commit=unknown
# shellcheck source=/dev/null
. "$conf"
work=/tmp/$name
rm -rf "$work"
mkdir -p "$work" "$RXE_OUT/bench"
gpid='' tgt_pid=''
lun_mib=256
t0=$(date +%s.%N)
say() { echo "== $(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%6.1fs", b - a }') $*"; }
fail() {
  echo "$name: FAIL: $*"
  for f in "$work"/goiserd.log "$work"/tgtd.log "$work"/bench.log; do
    [ -s "$f" ] && { echo "---- $f (tail) ----"; tail -n 20 "$f"; }
  done
  exit 1
}
cleanup() {
  local rc=$?
  trap - EXIT
  if [ -n "$gpid" ] && kill -0 "$gpid" 2>/dev/null; then
    kill -TERM "$(pgrep -P "$gpid" | head -n 1)" 2>/dev/null || true
    rxe_bg_wait "$gpid" 15 >/dev/null 2>&1 || true
  fi
  if [ -n "$tgt_pid" ]; then
    pkill -KILL -x tgtd 2>/dev/null || true
    rxe_bg_wait "$tgt_pid" 5 >/dev/null 2>&1 || true
  fi
  lio_teardown || true
  exit "$rc"
}
trap cleanup EXIT

bench_name=iqn.2026-11.dev.goiser:bench
gport=$(rxe_fresh_port) lport=$(rxe_fresh_port) tport=$(rxe_fresh_port)
giqn=iqn.2026-11.dev.goiser:rxe-bench liqn=iqn.2003-01.org.linux-iscsi.rxe:bench tiqn=iqn.2026-11.dev.goiser:rxe-tgt-bench

say "goiserd: iSER and TCP on $RXE_ADDR:$gport, mem LUN of $lun_mib MiB"
timeout 3600 "$RXE_BIN/goiserd" -listen "$RXE_ADDR:$gport" -iser "$RXE_ADDR:$gport" -target "$giqn" \
  -lun "mem:${lun_mib}M" >"$work/goiserd.log" 2>&1 </dev/null &
gpid=$!
rxe_wait_listen "$gport" 15 || fail "goiserd does not listen on $gport"

say "LIO: iSER and TCP on $RXE_ADDR:$lport, rd_mcp LUN of $lun_mib MiB"
lio_load || fail "load LIO"
lio_target "$liqn" "$lun_mib" || fail "LIO target"
lio_portal "$RXE_ADDR:$lport" iser || fail "LIO portal"
lio_demo_mode || fail "LIO demo mode"
lio_enable || fail "LIO enable"
rxe_wait_listen "$lport" 10 || fail "LIO does not listen on $lport"

say "tgtd: iSER on $RXE_ADDR:3260, TCP on $RXE_ADDR:$tport, rdwr LUN of $lun_mib MiB on tmpfs"
timeout 3600 tgtd -f --iscsi "portal=$RXE_ADDR:$tport" --iser pool_sz_mb=128 >"$work/tgtd.log" 2>&1 </dev/null &
tgt_pid=$!
for ((i = 0; i < 100; i++)); do
  timeout 5 tgtadm --lld iser --op show --mode target >/dev/null 2>&1 && break
  sleep 0.1
done
ta() { timeout 10 tgtadm --lld iser "$@" || fail "tgtadm $*"; }
truncate -s "${lun_mib}M" "$work/tgt-lun1.img"
ta --op new --mode target --tid 1 -T "$tiqn"
ta --op new --mode logicalunit --tid 1 --lun 1 -b "$work/tgt-lun1.img"
ta --op bind --mode target --tid 1 -I ALL
ta --op bind --mode target --tid 1 -Q "$bench_name"
rxe_wait_listen 3260 10 || fail "tgtd does not listen on RDMA CM port 3260"
# tgt 1.0.85 refuses a TCP login to a target made with --lld iser ("Target
# ... is RDMA, but conn ... is TCP"): TCP gets a target of its own.
tt() { timeout 10 tgtadm --lld iscsi "$@" || fail "tgtadm --lld iscsi $*"; }
truncate -s "${lun_mib}M" "$work/tgt-lun2.img"
tt --op new --mode target --tid 2 -T "$tiqn-tcp"
tt --op new --mode logicalunit --tid 2 --lun 1 -b "$work/tgt-lun2.img"
tt --op bind --mode target --tid 2 -I ALL

declare -A url=(
  [goiserd-iser]=iser://$RXE_ADDR:$gport/$giqn/0
  [goiserd-tcp]=iscsi://$RXE_ADDR:$gport/$giqn/0
  [lio-iser]=iser://$RXE_ADDR:$lport/$liqn/0
  [lio-tcp]=iscsi://$RXE_ADDR:$lport/$liqn/0
  [tgt-iser]=iser://$RXE_ADDR:3260/$tiqn/1
  [tgt-tcp]=iscsi://$RXE_ADDR:$tport/$tiqn-tcp/1
)

# The floor: perftest on the same device, 4 KiB, t_typical and p99 (us).
floor() {
  local tool=$1 port spid
  port=$(rxe_fresh_port)
  timeout 120 "$tool" -d "$RXE_DEV" -R -F -s 4096 -n 5000 -p "$port" >"$work/$tool.server" 2>&1 &
  spid=$!
  rxe_wait_listen "$port" 30 >&2 || return 1
  timeout 120 "$tool" -d "$RXE_DEV" -R -F -s 4096 -n 5000 -p "$port" "$RXE_ADDR" >"$work/$tool.client" 2>&1 || return 1
  rxe_bg_wait "$spid" 30 >&2 || return 1
  awk '$1 == 4096 && NF >= 8 { printf "t_typical %s us, p99 %s us", $5, $8 }' "$work/$tool.client"
}
notes=()
for tool in ib_send_lat ib_write_lat ib_read_lat; do
  say "floor: $tool -s 4096"
  r=$(floor "$tool") || r="failed: $(tail -n 1 "$work/$tool.client" 2>/dev/null)"
  say "  $r"
  notes+=(-note "floor on the same rxe device, perftest $tool 4 KiB (one-way for send/write, round trip for read): $r")
done

args=()
for t in $targets; do args+=(-target "$t=${url[$t]}"); done
load=$(cut -d' ' -f1-3 /proc/loadavg)
say "goiser-bench: $rounds rounds x $seconds s, $workloads, targets $targets"
timeout 3000 "$RXE_BIN/goiser-bench" -rounds "$rounds" -seconds "$seconds" -region-mib "$lun_mib" \
  -workloads "$workloads" "${args[@]}" -baseline lio-iser -commit "$commit" \
  -title "iSER and TCP latency in the Soft-RoCE guest: goiserd, LIO, tgt (one client, interleaved)" \
  -note "Soft-RoCE (rdma_rxe) inside a QEMU TCG guest (2 vCPUs, kernel $(uname -r)) on a 2-core host; load average at the start $load. Absolute numbers are TCG's, not hardware's: compare ratios within this run only." \
  -note "LUNs of $lun_mib MiB: goiserd mem, LIO rd_mcp, tgt rdwr on tmpfs. tgt serves iSER on RDMA CM port 3260 only, and its TCP target is a second one (tgt 1.0.85 refuses TCP logins to an iSER target)." \
  "${notes[@]}" \
  -out "$RXE_OUT/bench/iser.md" -svg "$RXE_OUT/bench/iser.svg" -raw "$RXE_OUT/bench/iser.tsv" \
  -cdf-svg "$RXE_OUT/bench/iser-cdf.svg" -json "$RXE_OUT/bench/iser.json" \
  >"$work/bench.log" 2>&1 </dev/null || fail "goiser-bench failed: $(tail -n 3 "$work/bench.log")"
grep -E '^\|' "$RXE_OUT/bench/iser.md" | head -n 30 || true
rxe_note "bench-iser: $RXE_OUT/bench/iser.md"
say "done"
