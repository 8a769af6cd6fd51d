#!/usr/bin/env bash
# Stage 37-go-initiator-peers: our Go initiator (goiser-bench over
# iscsi/initiator and iser/, cgo/verbs on rxe0) against targets we did not
# write, and goiserd's daemon-level iSER checks, in every make test
# (alone: RXE_STAGES='^37-' hack/rxe/test.sh):
#   1. round trips with every block checked (goiser-bench -verify: each
#      read compared with the last acknowledged write) at 4 KiB random and
#      128 KiB / 1 MiB sequential, QD1 and QD32, against LIO over iSER
#      (ib_isert) and over TCP, tgt 1.0.85 over iSER (512 KiB at most: it
#      drops the connection on larger commands), and goiserd over iSER and
#      TCP;
#   2. fallback: goiserd with its TCP portal only; an iser:// dial with
#      -fallback completes its verified I/O over TCP and says so, the same
#      dial without -fallback fails;
#   3. idle: 8 sessions of the Linux initiator (ib_iser) logged in to
#      goiserd over iSER and left idle: goiserd's CPU time over 10 s must
#      stay under 25% of one CPU (a poll group that spins takes ~100%; an
#      idle goiserd took 1.7-6.8% under TCG, the more the busier the host);
#   4. QD1 4 KiB read and write latency (median, p99) of goiserd over iSER
#      and TCP, LIO over iSER and TCP and tgt over iSER, same client, one
#      run: in the stage's notes, never asserted.
set -euo pipefail
phase=${1:?usage: 37-go-initiator-peers.sh build|run}
name=37-go-initiator-peers

if [ "$phase" = build ]; then
  go build -o "$RXE_BIN/goiserd" ./cmd/goiserd
  go build -o "$RXE_BIN/goiser-bench" ./cmd/goiser-bench
  "$RXE_BIN/goiser-bench" -h 2>&1 | grep -q -- '-verify' || { echo "$name: goiser-bench has no -verify"; exit 1; }
  for t in tgtd tgtadm iscsiadm iscsid; do
    command -v "$t" >/dev/null || { echo "$name: $t missing on the host (hack/deps.sh)"; exit 1; }
  done
  exit 0
fi

. "$RXE_REPO/hack/rxe/stage-lib.sh"
. "$RXE_REPO/hack/rxe/lio-lib.sh"
work=/tmp/$name
rm -rf "$work"
mkdir -p "$work"
gpid='' fpid='' tgt_pid='' iscsid_up=0 logged_in=''
bench_name=iqn.2026-11.dev.goiser:bench
t0=$(date +%s.%N)
say() { echo "== $(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%5.1fs", b - a }') $*"; }
fail() {
  echo "$name: FAIL: $*"
  for f in "$work"/goiserd.log "$work"/goiserd-tcp.log "$work"/tgtd.log; do
    [ -s "$f" ] && { echo "---- $f (tail) ----"; tail -n 20 "$f"; }
  done
  echo "---- dmesg (tail) ----"
  dmesg | tail -n 20
  exit 1
}
kill_bg() { # kill_bg PID: SIGTERM the timeout-wrapped process and wait
  local pid=$1
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 0
  kill -TERM "$(pgrep -P "$pid" | head -n 1)" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
  rxe_bg_wait "$pid" 15 >/dev/null 2>&1 || true
}
cleanup() {
  local rc=$?
  trap - EXIT
  if [ -n "$logged_in" ]; then timeout 30 iscsiadm -m node -T "$logged_in" --logout >/dev/null 2>&1 || true; fi
  if [ "$iscsid_up" = 1 ]; then rxe_iscsid_stop || true; fi
  kill_bg "$gpid"
  kill_bg "$fpid"
  if [ -n "$tgt_pid" ]; then
    pkill -KILL -x tgtd 2>/dev/null || true
    rxe_bg_wait "$tgt_pid" 5 >/dev/null 2>&1 || true
  fi
  lio_teardown || true
  exit "$rc"
}
trap cleanup EXIT

# ---- the targets ------------------------------------------------------------
gport=$(rxe_fresh_port)
giqn=iqn.2026-11.dev.goiser:rxe-peers
say "goiserd: iSER and TCP on $RXE_ADDR:$gport, mem LUN 0 of 64 MiB"
timeout 900 "$RXE_BIN/goiserd" -listen "$RXE_ADDR:$gport" -iser "$RXE_ADDR:$gport" -target "$giqn" -lun mem:64M \
  >"$work/goiserd.log" 2>&1 </dev/null &
gpid=$!
rxe_wait_listen "$gport" 15 || fail "goiserd does not listen on RDMA CM port $gport"

lport=$(rxe_fresh_port)
liqn=iqn.2003-01.org.linux-iscsi.rxe:peers
say "LIO: iSER and TCP on $RXE_ADDR:$lport, rd_mcp LUN 0 of 64 MiB, demo mode"
lio_load || fail "load LIO"
lio_target "$liqn" 64 || fail "LIO target"
lio_portal "$RXE_ADDR:$lport" iser || fail "LIO portal"
lio_demo_mode || fail "LIO demo mode"
lio_enable || fail "LIO enable"
rxe_wait_listen "$lport" 10 || fail "LIO does not listen on RDMA CM port $lport"

# tgt 1.0.85: iSER on RDMA CM port 3260 only; the target bound to every
# address and to the initiator's name (docs/testing.md, "iSER peers").
tport=$(rxe_fresh_port)
tiqn=iqn.2026-11.dev.goiser:rxe-tgt-peers
say "tgtd: iSER on $RXE_ADDR:3260 (TCP portal $RXE_ADDR:$tport), file LUN 1 of 64 MiB"
timeout 900 tgtd -f --iscsi "portal=$RXE_ADDR:$tport" --iser pool_sz_mb=128 >"$work/tgtd.log" 2>&1 </dev/null &
tgt_pid=$!
for ((i = 0; i < 100; i++)); do
  timeout 5 tgtadm --lld iser --op show --mode target >/dev/null 2>&1 && break
  kill -0 "$tgt_pid" 2>/dev/null || fail "tgtd exited: $(tail -n 5 "$work/tgtd.log")"
  sleep 0.1
done
ta() { timeout 10 tgtadm --lld iser "$@" || fail "tgtadm $*"; }
truncate -s 64M "$work/tgt-lun1.img"
ta --op new --mode target --tid 1 -T "$tiqn"
ta --op new --mode logicalunit --tid 1 --lun 1 -b "$work/tgt-lun1.img"
ta --op bind --mode target --tid 1 -I ALL
ta --op bind --mode target --tid 1 -Q "$bench_name"
rxe_wait_listen 3260 10 || fail "tgtd does not listen on RDMA CM port 3260"

declare -A url=(
  [goiserd-iser]=iser://$RXE_ADDR:$gport/$giqn/0
  [goiserd-tcp]=iscsi://$RXE_ADDR:$gport/$giqn/0
  [lio-iser]=iser://$RXE_ADDR:$lport/$liqn/0
  [lio-tcp]=iscsi://$RXE_ADDR:$lport/$liqn/0
  [tgt-iser]=iser://$RXE_ADDR:3260/$tiqn/1
)
order=(goiserd-iser goiserd-tcp lio-iser lio-tcp tgt-iser)

# ---- 1. verified round trips ---------------------------------------------------
verify_workloads=4k-randwrite-qd1,4k-randread-qd1,4k-randwrite-qd32,4k-randread-qd32,128k-seqwrite-qd32,128k-seqread-qd1,1m-seqwrite-qd1,1m-seqread-qd32
# tgt 1.0.85's iSER refuses a command over 512 KiB ("rdma-rd size:1048576
# too big" in iser_task_alloc_rdma_bufs) by closing the connection; Linux
# ib_iser sends at most 512 KiB by default (max_sectors 1024), so tgt gets
# 512 KiB where the others get 1 MiB.
verified=()
for t in "${order[@]}"; do
  w=$verify_workloads
  [ "$t" = tgt-iser ] && w=${w//1m-/512k-}
  say "goiser-bench -verify against $t (${url[$t]}): $w"
  if ! timeout 180 "$RXE_BIN/goiser-bench" -verify -rounds 1 -seconds 1 -warmup 0 -region-mib 16 \
    -workloads "$w" -target "$t=${url[$t]}" -out "$work/verify.$t.md" \
    >"$work/verify.$t.log" 2>&1 </dev/null; then
    tail -n 20 "$work/verify.$t.log"
    fail "verified round trips against $t failed"
  fi
  grep -iE 'verif' "$work/verify.$t.md" | head -n 3 || true
  verified+=("$t")
done
rxe_note "go initiator: verified round trips (4 KiB random, 128 KiB and 1 MiB sequential (tgt: 512 KiB), QD1 and QD32) ok against ${verified[*]}"

# ---- 2. fallback ------------------------------------------------------------------
fport=$(rxe_fresh_port)
say "goiserd with a TCP portal only on $RXE_ADDR:$fport: iser:// with and without -fallback"
timeout 900 "$RXE_BIN/goiserd" -listen "$RXE_ADDR:$fport" -target "$giqn" -lun mem:16M \
  >"$work/goiserd-tcp.log" 2>&1 </dev/null &
fpid=$!
for ((i = 0; i < 100; i++)); do
  ss -ltn "( sport = :$fport )" | grep -q LISTEN && break
  sleep 0.1
done
furl=iser://$RXE_ADDR:$fport/$giqn/0
if timeout 60 "$RXE_BIN/goiser-bench" -verify -rounds 1 -seconds 0.5 -warmup 0 -region-mib 4 \
  -workloads 4k-randwrite-qd1 -target "nofallback=$furl" -out "$work/nofallback.md" >"$work/nofallback.log" 2>&1 </dev/null; then
  fail "an iser:// dial to a portal without an iSER listener worked without -fallback"
fi
say "without -fallback: $(grep -v '^$' "$work/nofallback.log" | tail -n 1)"
timeout 60 "$RXE_BIN/goiser-bench" -fallback -verify -rounds 1 -seconds 0.5 -warmup 0 -region-mib 4 \
  -workloads 4k-randwrite-qd1,4k-randread-qd32 -target "fallback=$furl" -out "$work/fallback.md" \
  >"$work/fallback.log" 2>&1 </dev/null || { tail -n 20 "$work/fallback.log"; fail "the -fallback run failed"; }
grep -q 'measured over iSCSI/TCP instead' "$work/fallback.md" || fail "the -fallback report does not say it fell back to TCP"
grep -iE 'fall|fallback|TCP instead' "$work/fallback.log" | head -n 2 || true
kill_bg "$fpid"
fpid=
rxe_note "fallback: iser:// to a TCP-only portal fails without -fallback and completes verified I/O over TCP with it (reported)"

# ---- 3. idle CPU with 8 iSER sessions --------------------------------------------
say "8 sessions of the Linux initiator over iSER to goiserd, then idle"
rxe_iscsid_start || fail "iscsid did not start"
iscsid_up=1
gportal=$RXE_ADDR:$gport
timeout 30 iscsiadm -m discovery -t sendtargets -p "$gportal" -I iser >/dev/null 2>&1 || fail "discovery over iSER"
timeout 30 iscsiadm -m node -T "$giqn" -p "$gportal" -I iser --login >/dev/null || fail "login over iSER"
logged_in=$giqn
sid=$(timeout 10 iscsiadm -m session | awk -v t="$giqn" '$4 == t { gsub(/[][]/, "", $2); print $2; exit }')
[ -n "$sid" ] || fail "no session after the login"
for ((i = 2; i <= 8; i++)); do
  timeout 30 iscsiadm -m session -r "$sid" --op new >/dev/null || fail "session $i (iscsiadm -m session -r $sid --op new)"
done
n=$(timeout 10 iscsiadm -m session | awk -v t="$giqn" '$4 == t' | wc -l)
[ "$n" = 8 ] || fail "$n sessions to goiserd, want 8"
gd=$(pgrep -P "$gpid" -x goiserd) || fail "no goiserd process"
sleep 3 # let the logins' follow-up (INQUIRY, partition scans) finish
ticks() { awk '{ print $14 + $15 }' "/proc/$gd/stat"; }
hz=$(getconf CLK_TCK)
a=$(ticks)
sleep 10
b=$(ticks)
cpu_ms=$(((b - a) * 1000 / hz))
say "goiserd used $cpu_ms ms of CPU in 10 s with 8 idle iSER sessions"
[ "$cpu_ms" -lt 2500 ] || fail "goiserd used $cpu_ms ms of CPU in 10 s with 8 idle iSER sessions (a spinning poller?)"
rxe_note "idle: goiserd with 8 idle iSER sessions (Linux initiator) used $cpu_ms ms CPU in 10 s"
timeout 60 iscsiadm -m node -T "$giqn" --logout >/dev/null || fail "logout of the 8 sessions"
logged_in=
rxe_iscsid_stop || fail "iscsid did not stop"
iscsid_up=0

# ---- 4. QD1 latency, one run, same client -------------------------------------------
say "QD1 4 KiB latency: ${order[*]}"
args=()
for t in "${order[@]}"; do args+=(-target "$t=${url[$t]}"); done
timeout 300 "$RXE_BIN/goiser-bench" -rounds 2 -seconds 2 -warmup 0.5 -region-mib 16 \
  -workloads 4k-randread-qd1,4k-randwrite-qd1 "${args[@]}" -baseline lio-iser \
  -out "$work/latency.md" -raw "$work/latency.tsv" >"$work/latency.log" 2>&1 </dev/null ||
  { tail -n 20 "$work/latency.log"; fail "the latency run failed"; }
cat "$work/latency.md" | grep -E '^\|' | head -n 20 || true
# Median over the rounds of each target's median and p99, in microseconds.
lat=$(awk -F'\t' 'NR > 1 { k = $3 " " $2; m[k] = m[k] " " $6; p[k] = p[k] " " $7 }
  function med(s,  a, n, i, j, t) { n = split(s, a, " "); for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (a[j] < a[i]) { t = a[i]; a[i] = a[j]; a[j] = t }; return a[int((n + 1) / 2)] }
  END { for (k in m) printf "%s median %.0f us p99 %.0f us; ", k, med(m[k]) / 1000, med(p[k]) / 1000 }' "$work/latency.tsv" | tr ';' '\n' | sort | tr '\n' ';')
rxe_note "QD1 4 KiB latency (goiser-bench, 2 rounds x 2 s, TCG: compare only within this run): $lat"
say "done"
