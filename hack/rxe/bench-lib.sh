# shellcheck shell=bash
# shellcheck disable=SC2034 # url, portal, iqn, lun: for the sourcing stage
# The benchmark's pieces in the Soft-RoCE guest, shared by the stages of
# hack/rxe/bench.d (make bench-iser, make demo). Sourced in a "run" phase
# after stage-lib.sh and lio-lib.sh:
#   . "$RXE_REPO/hack/rxe/bench-lib.sh"
#
# Targets (each sets url[NAME-iser] and url[NAME-tcp], iscsi:// and iser://
# URLs of LUN 0 of the same size; BENCH_WORK is the scratch directory):
#   bench_goiserd MIB       goiserd, mem LUN, iSER and TCP on one fresh port
#   bench_lio MIB           LIO, rd_mcp LUN, iSER and TCP on one fresh port
#   bench_tgt MIB           tgt 1.0.85, rdwr LUN on tmpfs: iSER on RDMA CM
#                           port 3260 (its only working port), TCP on a
#                           second target of its own (tgt refuses TCP logins
#                           to an iSER target); LUN 1 (0 is its controller)
#   bench_stop              stop all of them (from an EXIT trap too)
# and portal[NAME-TRANSPORT], iqn[NAME-TRANSPORT], lun[NAME-TRANSPORT] for
# the kernel initiator.
#
# Floors on the same rxe device (one-way microseconds, median or
# t_typical, and p99):
#   bench_perftest TOOL SIZE          perftest ib_send_lat/ib_write_lat/
#                                     ib_read_lat -> "TYPICAL P99"
#   bench_pingpong MODE SIZE          our rdma-pingpong (send, write, or
#                                     tcp: the same exchange over TCP on
#                                     the same addresses) -> "MEDIAN P99"
# Witnesses (clients other than goiser-bench):
#   bench_iscsi_perf URL FLAGS SECS   libiscsi's iscsi-perf -> "IOPS"
#   bench_kernel_login NAME-TRANSPORT the Linux initiator (open-iscsi with
#                                     ib_iser or iscsi_tcp) logs in; prints
#                                     the disk's /dev node
#   bench_kernel_logout NAME-TRANSPORT
#   bench_fio DEV RW BS QD SECS       fio (libaio, O_DIRECT) on that disk ->
#                                     "IOPS MEDIAN_US P99_US P999_US" of the
#                                     total latency (submission to completion)
# Every command runs under timeout; failures return status 1 with the
# reason on stderr.

: "${RXE_ADDR:?}" "${RXE_BIN:?}" "${RXE_DEV:?}"
BENCH_WORK=${BENCH_WORK:-/tmp/bench}
mkdir -p "$BENCH_WORK"
declare -gA url portal iqn lun
bench_gpid='' bench_tgt_pid='' bench_lio=0 bench_iscsid=0
bench_giqn=iqn.2026-11.dev.goiser:rxe-bench
bench_liqn=iqn.2003-01.org.linux-iscsi.rxe:bench
bench_tiqn=iqn.2026-11.dev.goiser:rxe-tgt-bench

bench_goiserd() {
  local mib=$1 p
  p=$(rxe_fresh_port)
  timeout 7200 "$RXE_BIN/goiserd" -listen "$RXE_ADDR:$p" -iser "$RXE_ADDR:$p" -target "$bench_giqn" \
    -lun "mem:${mib}M" >"$BENCH_WORK/goiserd.log" 2>&1 </dev/null &
  bench_gpid=$!
  rxe_wait_listen "$p" 15 || { echo "goiserd does not listen on $p" >&2; return 1; }
  url[goiserd-iser]=iser://$RXE_ADDR:$p/$bench_giqn/0
  url[goiserd-tcp]=iscsi://$RXE_ADDR:$p/$bench_giqn/0
  portal[goiserd-iser]=$RXE_ADDR:$p portal[goiserd-tcp]=$RXE_ADDR:$p
  iqn[goiserd-iser]=$bench_giqn iqn[goiserd-tcp]=$bench_giqn
  lun[goiserd-iser]=0 lun[goiserd-tcp]=0
}

bench_lio() {
  local mib=$1 p
  p=$(rxe_fresh_port)
  bench_lio=1
  lio_load && lio_target "$bench_liqn" "$mib" && lio_portal "$RXE_ADDR:$p" iser &&
    lio_demo_mode && lio_enable || { echo "LIO setup failed" >&2; return 1; }
  rxe_wait_listen "$p" 10 || { echo "LIO does not listen on $p" >&2; return 1; }
  url[lio-iser]=iser://$RXE_ADDR:$p/$bench_liqn/0
  url[lio-tcp]=iscsi://$RXE_ADDR:$p/$bench_liqn/0
  portal[lio-iser]=$RXE_ADDR:$p portal[lio-tcp]=$RXE_ADDR:$p
  iqn[lio-iser]=$bench_liqn iqn[lio-tcp]=$bench_liqn
  lun[lio-iser]=0 lun[lio-tcp]=0
}

bench_tgt() {
  local mib=$1 p i
  p=$(rxe_fresh_port)
  timeout 7200 tgtd -f --iscsi "portal=$RXE_ADDR:$p" --iser pool_sz_mb=128 >"$BENCH_WORK/tgtd.log" 2>&1 </dev/null &
  bench_tgt_pid=$!
  for ((i = 0; i < 100; i++)); do
    timeout 5 tgtadm --lld iser --op show --mode target >/dev/null 2>&1 && break
    sleep 0.1
  done
  truncate -s "${mib}M" "$BENCH_WORK/tgt-lun1.img" "$BENCH_WORK/tgt-lun2.img"
  {
    timeout 10 tgtadm --lld iser --op new --mode target --tid 1 -T "$bench_tiqn" &&
      timeout 10 tgtadm --lld iser --op new --mode logicalunit --tid 1 --lun 1 -b "$BENCH_WORK/tgt-lun1.img" &&
      timeout 10 tgtadm --lld iser --op bind --mode target --tid 1 -I ALL &&
      bench_tgt_names &&
      timeout 10 tgtadm --lld iscsi --op new --mode target --tid 2 -T "$bench_tiqn-tcp" &&
      timeout 10 tgtadm --lld iscsi --op new --mode logicalunit --tid 2 --lun 1 -b "$BENCH_WORK/tgt-lun2.img" &&
      timeout 10 tgtadm --lld iscsi --op bind --mode target --tid 2 -I ALL
  } || { echo "tgtadm setup failed: $(tail -n 3 "$BENCH_WORK/tgtd.log")" >&2; return 1; }
  rxe_wait_listen 3260 10 || { echo "tgtd does not listen on RDMA CM port 3260" >&2; return 1; }
  url[tgt-iser]=iser://$RXE_ADDR:3260/$bench_tiqn/1
  url[tgt-tcp]=iscsi://$RXE_ADDR:$p/$bench_tiqn-tcp/1
  portal[tgt-iser]=$RXE_ADDR:3260 portal[tgt-tcp]=$RXE_ADDR:$p
  iqn[tgt-iser]=$bench_tiqn iqn[tgt-tcp]=$bench_tiqn-tcp
  lun[tgt-iser]=1 lun[tgt-tcp]=1
}

# bench_tgt_names: tgt 1.0.85's iSER also wants an initiator-name ACL
# (-Q) besides the address one: goiser-bench's, iscsi-perf's (bench-witness)
# and the Linux initiator's.
bench_tgt_names() {
  local n
  for n in iqn.2026-11.dev.goiser:bench iqn.2026-11.dev.goiser:witness \
    "$(sed -n 's/^InitiatorName=//p' /etc/iscsi/initiatorname.iscsi 2>/dev/null)"; do
    [ -z "$n" ] || timeout 10 tgtadm --lld iser --op bind --mode target --tid 1 -Q "$n" || return 1
  done
}

bench_stop() {
  local t
  if [ "$bench_iscsid" != 0 ]; then
    for t in "${!iqn[@]}"; do bench_kernel_logout "$t" >/dev/null 2>&1 || true; done
    [ "$bench_iscsid" = 2 ] || rxe_iscsid_stop || true
    bench_iscsid=0
  fi
  if [ -n "$bench_gpid" ] && kill -0 "$bench_gpid" 2>/dev/null; then
    kill -TERM "$(pgrep -P "$bench_gpid" | head -n 1)" 2>/dev/null || true
    rxe_bg_wait "$bench_gpid" 15 >/dev/null 2>&1 || true
  fi
  bench_gpid=''
  if [ -n "$bench_tgt_pid" ]; then
    pkill -KILL -x tgtd 2>/dev/null || true
    rxe_bg_wait "$bench_tgt_pid" 5 >/dev/null 2>&1 || true
    bench_tgt_pid=''
  fi
  if [ "$bench_lio" = 1 ]; then lio_teardown || true; fi
  bench_lio=0
}

bench_perftest() {
  local tool=$1 size=$2 port spid out=$BENCH_WORK/$1.$2
  port=$(rxe_fresh_port)
  timeout 120 "$tool" -d "$RXE_DEV" -R -F -s "$size" -n 5000 -p "$port" >"$out.server" 2>&1 &
  spid=$!
  rxe_wait_listen "$port" 30 >&2 || return 1
  timeout 120 "$tool" -d "$RXE_DEV" -R -F -s "$size" -n 5000 -p "$port" "$RXE_ADDR" >"$out.client" 2>&1 ||
    { tail -n 2 "$out.client" >&2; return 1; }
  rxe_bg_wait "$spid" 30 >&2 || return 1
  # Columns: #bytes #iterations t_min t_max t_typical t_avg t_stdev 99% 99.9%
  awk -v s="$size" '$1 == s && NF >= 8 { print $5, $8; ok = 1 } END { exit !ok }' "$out.client"
}

bench_pingpong() {
  local mode=$1 size=$2 port spid out=$BENCH_WORK/pingpong.$1.$2
  port=$(rxe_fresh_port)
  timeout 120 "$RXE_BIN/rdma-pingpong" -listen "$RXE_ADDR:$port" >"$out.server" 2>&1 &
  spid=$!
  rxe_wait_listen "$port" 30 >&2 || return 1
  timeout 100 "$RXE_BIN/rdma-pingpong" -connect "$RXE_ADDR:$port" -mode "$mode" -sizes "$size" \
    -iters 5000 -warmup 100 -timeout 90s >"$out.client" 2>&1 || { tail -n 2 "$out.client" >&2; kill "$spid"; return 1; }
  kill "$spid" 2>/dev/null
  wait "$spid" 2>/dev/null
  # Columns: mode bytes iters min median avg p99 p99.9 MB/s
  awk -v m="$mode" -v s="$size" '$1 == m && $2 == s { print $5, $7; ok = 1 } END { exit !ok }' "$out.client"
}

bench_iscsi_perf() {
  local u=$1 flags=$2 secs=$3 o
  # shellcheck disable=SC2086
  o=$(timeout -k 5 $((secs + 30)) iscsi-perf -i iqn.2026-11.dev.goiser:witness -t "$secs" $flags "$u" </dev/null 2>&1 | tr '\r' '\n') ||
    { echo "$o" | tail -n 3 >&2; return 1; }
  echo "$o" | awk '/iops average/ { for (i = 1; i <= NF; i++) if ($i == "average") v = $(i + 1) } END { if (v == "") exit 1; print v }' ||
    { echo "$o" | tail -n 3 >&2; return 1; }
}

# bench_kernel_login NAME-TRANSPORT: the node on iface iser or default,
# no digests (ib_iser refuses them; the same on TCP for a fair floor).
bench_kernel_login() {
  local t=$1 tr=${1##*-} iface=default i sid b d
  [ "$tr" = iser ] && iface=iser
  if [ "$bench_iscsid" = 0 ]; then
    if pgrep -x iscsid >/dev/null; then
      bench_iscsid=2 # one runs already (a real host): use it, leave it running
    else
      rxe_iscsid_start || return 1
      bench_iscsid=1
    fi
  fi
  local node=(timeout 30 iscsiadm -m node -T "${iqn[$t]}" -p "${portal[$t]}" -I "$iface")
  "${node[@]}" -o new >/dev/null 2>&1 || true
  "${node[@]}" -o update -n node.session.initial_login_retry_max -v 1 >/dev/null &&
    "${node[@]}" -o update -n 'node.conn[0].iscsi.HeaderDigest' -v None >/dev/null &&
    "${node[@]}" -o update -n 'node.conn[0].iscsi.DataDigest' -v None >/dev/null ||
    { echo "iscsiadm: cannot configure the node of $t" >&2; return 1; }
  "${node[@]}" --login >"$BENCH_WORK/login.$t" 2>&1 || { tail -n 3 "$BENCH_WORK/login.$t" >&2; return 1; }
  sid=$(timeout 10 iscsiadm -m session | awk -v p="${portal[$t]}" -v q="${iqn[$t]}" '$3 ~ "^" p "," && $4 == q { gsub(/[][]/, "", $2); print $2; exit }')
  [ -n "$sid" ] || { echo "no session for $t" >&2; return 1; }
  for ((i = 0; i < 200; i++)); do
    for b in /sys/class/iscsi_session/session"$sid"/device/target*/*:*:*:"${lun[$t]}"/block/*; do
      [ -e "$b/dev" ] || continue
      d=/dev/$(basename "$b")
      [ -b "$d" ] || mknod "$d" b "$(cut -d: -f1 "$b/dev")" "$(cut -d: -f2 "$b/dev")" || return 1
      echo none >"$b/queue/scheduler" 2>/dev/null || true
      echo "$d"
      return 0
    done
    sleep 0.1
  done
  echo "no disk for LUN ${lun[$t]} of $t" >&2
  return 1
}

bench_kernel_logout() {
  local t=$1 iface=default
  [ "${1##*-}" = iser ] && iface=iser
  timeout 30 iscsiadm -m node -T "${iqn[$t]}" -p "${portal[$t]}" -I "$iface" --logout >/dev/null 2>&1
}

bench_fio() {
  local dev=$1 rw=$2 bs=$3 qd=$4 secs=$5 out=$BENCH_WORK/fio.json
  timeout $((secs + 60)) fio --name=w --filename="$dev" --rw="$rw" --bs="$bs" --iodepth="$qd" \
    --ioengine=libaio --direct=1 --time_based --runtime="$secs" --ramp_time=0.5 --size=64M --lat_percentiles=1 \
    --output-format=json --output="$out" >/dev/null 2>&1 || { echo "fio $rw $bs QD$qd on $dev failed" >&2; return 1; }
  local dir=read
  case $rw in *write) dir="write" ;; esac
  # Total latency (submission to completion), not clat: with ib_iser and a
  # kernel target the whole I/O can finish inside io_submit.
  jq -r --arg d "$dir" '.jobs[0][$d] | [.iops, (.lat_ns.percentile["50.000000"] / 1000),
    (.lat_ns.percentile["99.000000"] / 1000), (.lat_ns.percentile["99.900000"] / 1000)] | @tsv' "$out" |
    awk '{ printf "%.0f %.0f %.0f %.0f\n", $1, $2, $3, $4 }'
}
