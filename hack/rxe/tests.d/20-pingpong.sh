#!/usr/bin/env bash
# Stage 20-pingpong: our verbs latency floor next to perftest's on the same
# device, sizes and iteration count.
#   build (host): cmd/rdma-pingpong into $RXE_BIN
#   run (guest):  rdma-pingpong server and client (send and write modes,
#                 64 B .. 1 MiB) over RDMA CM on $RXE_ADDR, then
#                 ib_send_lat and ib_write_lat (-R) at the same sizes; prints
#                 both side by side. Fails only when a tool fails, never on
#                 timings (a TCG guest swings 10-100x with host load).
set -euo pipefail
phase=${1:?usage: 20-pingpong.sh build|run}

sizes="64 4096 65536 1048576"
iters=${RXE_PINGPONG_ITERS:-100}
big_iters=${RXE_PINGPONG_BIG_ITERS:-20}

if [ "$phase" = build ]; then
  go build -o "$RXE_BIN/rdma-pingpong" ./cmd/rdma-pingpong
  for t in ib_send_lat ib_write_lat; do
    command -v "$t" >/dev/null || { echo "20-pingpong: $t missing on the host (make deps)"; exit 1; }
  done
  exit 0
fi

. "$RXE_REPO/hack/rxe/stage-lib.sh"
: "${RXE_DEV:?}" "${RXE_ADDR:?}"

# iterations SIZE: fewer round trips for the big sizes (a TCG guest moves
# 1 MiB in tens of milliseconds; the stage must fit its time limit).
iterations() { if [ "$1" -ge 1048576 ]; then echo "$big_iters"; else echo "$iters"; fi; }

# Ours: one server for every plan (2 modes x 4 sizes = 8 connections).
port=$(rxe_fresh_port)
timeout 200 "$RXE_BIN/rdma-pingpong" -listen "$RXE_ADDR:$port" -count 8 >/tmp/pp.server 2>&1 &
spid=$!
rxe_wait_listen "$port" 30
: >/tmp/pp.client
for m in send write; do
  for s in $sizes; do
    timeout 60 "$RXE_BIN/rdma-pingpong" -connect "$RXE_ADDR:$port" -mode "$m" -sizes "$s" \
      -iters "$(iterations "$s")" -warmup 5 -timeout 50s | tee -a /tmp/pp.client
  done
done
rxe_bg_wait "$spid" 30 || { echo "rdma-pingpong server failed:"; cat /tmp/pp.server; exit 1; }
if grep -v 'listening on' /tmp/pp.server | grep -q .; then echo 'rdma-pingpong server complained:'; cat /tmp/pp.server; exit 1; fi

# perftest at the same sizes: TOOL SIZE -> prints "typical p99" (usec).
perf() {
  local tool=$1 size=$2 port spid n
  n=$(iterations "$size")
  port=$(rxe_fresh_port)
  timeout 60 "$tool" -d "$RXE_DEV" -R -F -s "$size" -n "$n" -p "$port" >"/tmp/$tool.$size.server" 2>&1 &
  spid=$!
  rxe_wait_listen "$port" 30 >&2
  timeout 60 "$tool" -d "$RXE_DEV" -R -F -s "$size" -n "$n" -p "$port" "$RXE_ADDR" >"/tmp/$tool.$size.client" 2>&1 ||
    { cat "/tmp/$tool.$size.client" >&2; return 1; }
  rxe_bg_wait "$spid" 30 >&2 || { cat "/tmp/$tool.$size.server" >&2; return 1; }
  # Columns: #bytes #iterations t_min t_max t_typical t_avg t_stdev 99% 99.9%
  awk -v s="$size" '$1 == s && NF >= 8 { print $5, $8 }' "/tmp/$tool.$size.client"
}

echo
echo "one-way latency in usec (median or t_typical / p99), $RXE_DEV, $iters iterations ($big_iters at 1 MiB)"
printf '%-6s %9s %22s %22s\n' mode bytes "rdma-pingpong" "perftest"
for m in send write; do
  for s in $sizes; do
    ours=$(awk -v m="$m" -v s="$s" '$1 == m && $2 == s { print $5 " / " $7 }' /tmp/pp.client)
    theirs=$(perf "ib_${m}_lat" "$s")
    [ -n "$theirs" ] || { echo "ib_${m}_lat -s $s printed no result"; exit 1; }
    [ -n "$ours" ] || { echo "rdma-pingpong printed no $m $s result"; exit 1; }
    printf '%-6s %9s %22s %22s\n' "$m" "$s" "$ours" "$(echo "$theirs" | sed 's| | / |')" | tee -a /tmp/pp.table
  done
done
while read -r line; do echo "pingpong: $line" >>"$RXE_NOTES"; done </tmp/pp.table
