#!/usr/bin/env bash
# Stage 00-sanity: the Soft-RoCE device works end to end with the reference
# tools before anything of ours runs on it.
#   build (host): checks that the tools exist on the host (the guest runs the
#                 host's binaries over the read-only root share); builds the
#                 tests of cmd/rxe-up into $RXE_BIN/rxe-up.test
#   run (guest):  ibv_devinfo shows the port ACTIVE; perftest ib_send_lat and
#                 ib_write_lat, server and client over RDMA CM (-R) on
#                 $RXE_ADDR, at 2 B and 4 KiB; rping once; rxe-up again
#                 (idempotent on a ready device); rxe-up's TestUpInGuest
#                 (a second device from scratch, twice, then removed).
# The t_typical latencies go to the notes: they are the raw-verbs floor of
# docs/bench, for this guest (TCG: never compare with hardware).
set -euo pipefail
phase=${1:?usage: 00-sanity.sh build|run}

if [ "$phase" = build ]; then
  for t in ibv_devinfo ib_send_lat ib_write_lat rping rdma; do
    command -v "$t" >/dev/null || { echo "00-sanity: $t missing on the host (make deps)"; exit 1; }
  done
  go test -c -o "$RXE_BIN/rxe-up.test" ./cmd/rxe-up
  exit 0
fi

. "$RXE_REPO/hack/rxe/stage-lib.sh"
: "${RXE_DEV:?}" "${RXE_ADDR:?}"

echo "== ibv_devinfo -d $RXE_DEV"
ibv_devinfo -d "$RXE_DEV" | tee /tmp/devinfo
grep -q 'state:.*PORT_ACTIVE' /tmp/devinfo || { echo "port of $RXE_DEV is not ACTIVE"; exit 1; }

# perf_once TOOL SIZE: server and client of a perftest latency tool over
# RDMA CM on a fresh port; status 0 when both succeed and a result printed.
perf_once() {
  local tool=$1 size=$2 port spid typ
  port=$(rxe_fresh_port)
  echo "== $tool -s $size on $RXE_ADDR port $port"
  timeout 60 "$tool" -d "$RXE_DEV" -R -F -s "$size" -n 100 -p "$port" >"/tmp/$tool.$size.server" 2>&1 &
  spid=$!
  rxe_wait_listen "$port" 30 || { kill "$spid"; wait "$spid"; return 1; }
  if ! timeout 60 "$tool" -d "$RXE_DEV" -R -F -s "$size" -n 100 -p "$port" "$RXE_ADDR" >"/tmp/$tool.$size.client" 2>&1; then
    cat "/tmp/$tool.$size.client"
    kill "$spid" 2>/dev/null; wait "$spid"
    return 1
  fi
  cat "/tmp/$tool.$size.client"
  rxe_bg_wait "$spid" 30 || { echo "$tool server failed:"; cat "/tmp/$tool.$size.server"; return 1; }
  # Columns: #bytes #iterations t_min t_max t_typical t_avg ...
  typ=$(awk -v s="$size" '$1 == s && NF >= 6 { print $5 }' "/tmp/$tool.$size.client")
  [ -n "$typ" ] || { echo "$tool: no result line for size $size"; return 1; }
  rxe_note "$(printf '%-12s %6s B  t_typical %8s us' "$tool" "$size" "$typ")"
}

# perf TOOL SIZE: perf_once, retried once. Under heavy host load perftest's
# client has been seen to get RDMA_CM_EVENT_REJECTED from a server that
# rdma res already showed listening (and then crash); one retry on a fresh
# port keeps that from failing CI, and the note keeps it visible.
perf() {
  perf_once "$1" "$2" && return 0
  echo "== $1 -s $2 failed; retrying once on a fresh port"
  rxe_note "$1 -s $2: first attempt failed ($(grep -m1 -E 'error|ERR|fault' "/tmp/$1.$2.client" | tr -s ' \t' ' ')), retried"
  perf_once "$1" "$2"
}
for size in 2 4096; do
  perf ib_send_lat "$size"
  perf ib_write_lat "$size"
done

port=$(rxe_fresh_port)
echo "== rping on $RXE_ADDR port $port"
timeout 30 rping -s -a "$RXE_ADDR" -p "$port" -C 10 -v >/tmp/rping.server 2>&1 &
spid=$!
rxe_wait_listen "$port" 30
timeout 30 rping -c -a "$RXE_ADDR" -p "$port" -C 10 -v | tee /tmp/rping.client
rxe_bg_wait "$spid" 30 || { echo "rping server failed:"; cat /tmp/rping.server; exit 1; }
n=$(grep -c '^ping data: rdma-ping-' /tmp/rping.client || true)
[ "$n" -eq 10 ] || { echo "rping: $n of 10 pings echoed"; exit 1; }
rxe_note "rping        10 pings echoed"

echo "== rxe-up again (must reuse the ready device)"
rxe-up | tee /tmp/rxe-up.again
grep -q "device   $RXE_DEV " /tmp/rxe-up.again

echo "== rxe-up tests in the guest"
RXE_UP_TEST=1 "$RXE_BIN/rxe-up.test" -test.v -test.count=1 -test.timeout=120s
