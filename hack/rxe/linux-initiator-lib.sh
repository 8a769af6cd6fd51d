# shellcheck shell=bash
# shellcheck disable=SC2034 # resets, discard, ...: results for the stage's note
# The Linux kernel initiator (open-iscsi + iscsi_tcp or ib_iser) against an
# iSCSI target in the Soft-RoCE guest: the body of the stages
# tests.d/30-linux-initiator.sh (goiserd over TCP),
# tests.iser.d/31-linux-iser.sh (goiserd over iSER) and
# tests.iser.d/32-lio-iser.sh / 33-lio-tcp.sh (LIO, the reference).
# A stage sets the LI_* variables below, sources this file in its "run"
# phase and calls li_main:
#
#   LI_NAME          the stage name, for messages (default $RXE_STAGE)
#   LI_TRANSPORT     tcp (iscsi_tcp, open-iscsi iface "default") or iser
#                    (ib_iser, the built-in iface "iser")
#   LI_TARGET        goiserd (built into $RXE_BIN), lio (configfs, see
#                    lio-lib.sh) or tgt (Debian's tgtd; see start_tgt)
#   LI_DIGESTS       1: HeaderDigest=CRC32C and DataDigest=CRC32C required,
#                    checked on both sides (default 1 for tcp); 0: both must
#                    be None (iser: ib_iser refuses digests)
#   LI_DISCOVERY     sendtargets discovery over these transports, a list of
#                    "tcp" and "iser" (default "tcp"); the node is then
#                    bound to the iface of LI_TRANSPORT and logged in over it
#   LI_FIO=1         fio with verify=crc32c: 4 KiB random and 512 KiB
#                    sequential, writes then verifying reads, at QD1 and QD32
#   LI_FS=1          mkfs.ext4, mount, write files, umount, fsck -f clean,
#                    mount again, the files read back
#   LI_RESET_IO=1    LOGICAL UNIT RESET and TARGET WARM RESET (sg_reset)
#                    while a verifying fio job runs: it must finish clean
#   LI_TARGET_RESET  0: skip sg_reset -t (a target that refuses TARGET WARM
#                    RESET); default 1
#   LI_CHAP=1        after the main session: a target that requires CHAP;
#                    a login with the right secret works, a wrong one fails
#   LI_CRASH=1       (goiserd) kill -9 goiserd during fsync'd writes to a
#                    file LUN, restart it on the same port: the initiator
#                    reconnects by itself and every acknowledged write reads
#                    back intact
#   LI_RESTART=1     (goiserd, default 1) stop goiserd after logout, check
#                    the file LUN's backing file, serve it again, the data
#                    reads back, and SIGTERM with a session logged in makes
#                    the initiator log out
#
# goiserd's flags: TCP: -listen $RXE_ADDR:0 (the port comes back through
# -addr-file, line "tcp HOST:PORT"); iSER: -iser $RXE_ADDR:PORT with a fresh
# port (RDMA CM needs a concrete one) plus -listen on the same port for
# discovery over TCP (-addr-file: "iser HOST:PORT" and "tcp HOST:PORT").
#
# Every step runs under timeout; progress lines carry the seconds since the
# stage started, and the time of every step is listed at the end (li_times).
# A failure names the step and prints the target's log tail, iscsid's log,
# iscsiadm -m session -P 3 and the kernel's messages of the stage.

: "${RXE_ADDR:?}" "${RXE_BIN:?}" "${RXE_OUT:?}"
LI_NAME=${LI_NAME:-${RXE_STAGE:-linux-initiator}}
LI_TRANSPORT=${LI_TRANSPORT:-tcp}
LI_TARGET=${LI_TARGET:-goiserd}
if [ "$LI_TRANSPORT" = tcp ]; then LI_DIGESTS=${LI_DIGESTS:-1}; else LI_DIGESTS=${LI_DIGESTS:-0}; fi
LI_DISCOVERY=${LI_DISCOVERY:-tcp}
LI_FIO=${LI_FIO:-0}
LI_FS=${LI_FS:-0}
LI_RESET_IO=${LI_RESET_IO:-0}
LI_TARGET_RESET=${LI_TARGET_RESET:-1}
LI_CHAP=${LI_CHAP:-0}
LI_CRASH=${LI_CRASH:-0}
LI_RESTART=${LI_RESTART:-1}
case $LI_TRANSPORT in
  tcp) li_iface=default li_module=iscsi_tcp ;;
  iser) li_iface=iser li_module=ib_iser ;;
  *) echo "$LI_NAME: LI_TRANSPORT must be tcp or iser, not '$LI_TRANSPORT'"; exit 1 ;;
esac

case $LI_TARGET in
  goiserd) iqn=iqn.2026-11.dev.goiser:rxe-linux ;;
  lio) iqn=iqn.2003-01.org.linux-iscsi.rxe:lio-$LI_TRANSPORT ;;
  tgt) iqn=iqn.2001-04.com.example.rxe:tgt-$LI_TRANSPORT ;;
  *) echo "$LI_NAME: LI_TARGET must be goiserd, lio or tgt, not '$LI_TARGET'"; exit 1 ;;
esac
# The LUN numbers of the two disks: tgt's LUN 0 is its controller.
lun_a=0 lun_b=1
[ "$LI_TARGET" = tgt ] && lun_a=1 lun_b=2
work=/tmp/$LI_NAME
glog=$work/target.log # the log of the goiserd running now
lunfile=$work/lun1.img
mem_mib=64
file_mib=16
rm -rf "$work"
mkdir -p "$work"
# Results, for the stage's note.
chap_retry='' resets=skipped discard=skipped fio_stats=skipped reset_io=skipped fs=skipped chap=skipped crash=skipped

gpid=
portal=      # the portal the session logs in to (HOST:PORT)
disc_portal= # the TCP portal for discovery
port=
logged_in=0
iscsid_up=0
step=setup
dmesg_start=$(dmesg | wc -l)
MiB=1048576
pat=$work/pattern

t0=$(date +%s.%N)
li_t_step=$t0
li_times=()
# say TEXT: a progress line with the seconds since the stage started.
say() { echo "== $(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%5.1fs", b - a }') $*"; }
# begin NAME: a new step; the previous one's duration goes to li_times.
begin() {
  local now
  now=$(date +%s.%N)
  li_times+=("$(awk -v a="$li_t_step" -v b="$now" -v s="$step" 'BEGIN { printf "%6.1fs  %s", b - a, s }')")
  li_t_step=$now
  step=$1
}
print_times() {
  begin end
  echo "---- time per step ----"
  printf '%s\n' "${li_times[@]}"
}
diagnostics() {
  echo "---- target log (tail) ----"
  tail -n 40 "$glog" 2>/dev/null || true
  echo "---- iscsid log (tail) ----"
  tail -n 20 /tmp/iscsid.log 2>/dev/null || true
  echo "---- iscsiadm -m session -P 3 ----"
  timeout 5 iscsiadm -m session -P 3 2>&1 | tail -n 40 || true
  echo "---- dmesg since the stage started ----"
  dmesg | tail -n +"$((dmesg_start + 1))" | tail -n 40 || true
}
fail() {
  echo "$LI_NAME: FAIL at step '$step': $*"
  diagnostics
  print_times
  exit 1
}
node() { timeout 10 iscsiadm -m node -T "$iqn" -p "$portal" -I "$li_iface" "$@"; }
li_cleanup() {
  local rc=$?
  trap - EXIT
  if [ "$logged_in" = 1 ]; then timeout 20 iscsiadm -m node -T "$iqn" -p "$portal" -I "$li_iface" --logout >/dev/null 2>&1 || true; fi
  if mountpoint -q "$work/mnt" 2>/dev/null; then umount -l "$work/mnt" || true; fi
  if [ "$iscsid_up" = 1 ]; then rxe_iscsid_stop || true; fi
  if [ -n "$gpid" ] && kill -0 "$gpid" 2>/dev/null; then
    kill -TERM "$gpid" 2>/dev/null || true
    rxe_bg_wait "$gpid" 15 >/dev/null 2>&1 || true
  fi
  if [ "$LI_TARGET" = lio ]; then lio_teardown || true; fi
  if [ "$LI_TARGET" = tgt ]; then stop_tgt || true; fi
  exit "$rc"
}

# ---- targets ------------------------------------------------------------------
# start_goiserd LOG LUNSPEC...: goiserd on $RXE_ADDR; sets gpid, port,
# portal, disc_portal and glog, and waits until it listens. The port is
# $li_port when set (a restart on the same port), else 0 (TCP: any free
# port) or a fresh one (iSER). Extra flags in the array li_gflags.
li_port=
li_gflags=()
start_goiserd() {
  local i lun p args=() want=tcp
  glog=$1
  shift
  for lun in "$@"; do args+=(-lun "$lun"); done
  if [ "$LI_TRANSPORT" = iser ]; then
    p=${li_port:-$(rxe_fresh_port)}
    args+=(-listen "$RXE_ADDR:$p" -iser "$RXE_ADDR:$p")
    want=iser
  else
    p=${li_port:-0}
    args+=(-listen "$RXE_ADDR:$p")
  fi
  say "goiserd on $RXE_ADDR, $LI_TRANSPORT port $p${li_gflags[*]:+, ${li_gflags[*]}}: $*"
  rm -f "$glog.addr"
  # The outer timeout only guards against a hang; the stage stops it with SIGTERM.
  timeout 300 "$RXE_BIN/goiserd" "${args[@]}" "${li_gflags[@]}" -addr-file "$glog.addr" -target "$iqn" >"$glog" 2>&1 </dev/null &
  gpid=$!
  # goiserd writes its -addr-file ("tcp HOST:PORT", "iser HOST:PORT") once it listens.
  for ((i = 0; i < 100; i++)); do
    if [ -s "$glog.addr" ]; then
      portal=$(awk -v w="$want" '$1 == w { print $2; exit }' "$glog.addr")
      disc_portal=$(awk '$1 == "tcp" { print $2; exit }' "$glog.addr")
      [ -n "$portal" ] || fail "goiserd's -addr-file has no $want line: $(cat "$glog.addr")"
      port=${portal##*:}
      if [ "$LI_TRANSPORT" = iser ]; then rxe_wait_listen "$port" 10 || fail "no RDMA CM listener on port $port"; fi
      say "goiserd listens on $(tr '\n' ' ' <"$glog.addr")"
      return 0
    fi
    kill -0 "$gpid" 2>/dev/null || fail "goiserd exited before listening: $(tail -n 5 "$glog")"
    sleep 0.1
  done
  fail "goiserd does not listen on $RXE_ADDR after 10s"
}
# stop_goiserd: SIGTERM to goiserd itself, then its exit status in grc.
# Not to the timeout wrapping it: timeout forwards a signal to its child and
# to its whole process group, so goiserd would get SIGTERM twice and rightly
# take the second one as "exit now, without waiting" (exit status 1).
stop_goiserd() {
  local child
  child=$(pgrep -P "$gpid" -x goiserd) || fail "no goiserd process under timeout (pid $gpid)"
  kill -TERM "$child"
  if rxe_bg_wait "$gpid" 30; then grc=0; else grc=$?; fi
  gpid=
}
# start_lio [CHAP_USER CHAP_SECRET]: an LIO target with rd_mcp LUN 0
# ($mem_mib) and LUN 1 ($file_mib), demo mode, a fresh port; iSER adds the
# iSER portal on the same ADDR:PORT.
start_lio() {
  local p
  p=$(rxe_fresh_port)
  say "LIO target $iqn on $RXE_ADDR:$p ($LI_TRANSPORT), rd_mcp LUNs ${mem_mib} and ${file_mib} MiB"
  lio_load || fail "load the LIO modules"
  lio_target "$iqn" "$mem_mib" "$file_mib" || fail "create the LIO target"
  if [ "$LI_TRANSPORT" = iser ]; then
    lio_portal "$RXE_ADDR:$p" iser || fail "LIO iSER portal"
  else
    lio_portal "$RXE_ADDR:$p" || fail "LIO portal"
  fi
  lio_demo_mode || fail "LIO demo mode"
  lio_enable || fail "enable the LIO TPG"
  portal=$RXE_ADDR:$p
  disc_portal=$portal
  port=$p
  if [ "$LI_TRANSPORT" = iser ]; then rxe_wait_listen "$port" 10 || fail "no RDMA CM listener on port $port"; fi
  glog=$work/target.log
  : >"$glog"
}

# start_tgt: Debian's tgtd 1.0.85 in the foreground, its output (with
# LI_TGT_DEBUG=1: debug lines, -d 1) in $glog: TCP portal on a fresh port of $RXE_ADDR; iSER always on
# RDMA CM port 3260 (tgt's "--iser port=N" is rejected: its parser tests a
# stale errno after strtol), with a 128 MiB buffer pool (the default 1 GiB
# falls back from hugepages to valloc and pins half the guest's memory).
# Two file LUNs (1 and 2; LUN 0 is tgt's controller) on the guest's tmpfs.
# The target is bound to every address AND to this initiator's name: tgt
# 1.0.85's iSER login and iSER SendTargets accept an initiator only when
# both an address ACL and a name ACL match ("target not found" otherwise;
# fixed upstream in tgt 1.0.95, commit b73c64d).
tgt_pid=
start_tgt() {
  local p lld=iscsi i name
  p=$(rxe_fresh_port)
  [ "$LI_TRANSPORT" = iser ] && lld=iser
  glog=$work/tgtd.log
  say "tgtd: TCP portal $RXE_ADDR:$p, iSER on port 3260, target $iqn (--lld $lld)"
  timeout 600 tgtd -f -d "${LI_TGT_DEBUG:-0}" --iscsi "portal=$RXE_ADDR:$p" --iser pool_sz_mb=128 >"$glog" 2>&1 </dev/null &
  tgt_pid=$!
  for ((i = 0; i < 100; i++)); do
    timeout 5 tgtadm --lld "$lld" --op show --mode target >/dev/null 2>&1 && break
    kill -0 "$tgt_pid" 2>/dev/null || fail "tgtd exited: $(tail -n 5 "$glog")"
    sleep 0.1
  done
  t() { timeout 10 tgtadm --lld "$lld" "$@" || fail "tgtadm $*"; }
  t --op new --mode target --tid 1 -T "$iqn"
  truncate -s "${mem_mib}M" "$work/tgt-lun1.img"
  truncate -s "${file_mib}M" "$work/tgt-lun2.img"
  t --op new --mode logicalunit --tid 1 --lun 1 -b "$work/tgt-lun1.img"
  t --op new --mode logicalunit --tid 1 --lun 2 -b "$work/tgt-lun2.img"
  t --op bind --mode target --tid 1 -I ALL
  name=$(sed -n 's/^InitiatorName=//p' /etc/iscsi/initiatorname.iscsi)
  [ -n "$name" ] || fail "no InitiatorName in /etc/iscsi/initiatorname.iscsi"
  t --op bind --mode target --tid 1 -Q "$name"
  portal=$RXE_ADDR:$p
  disc_portal=$portal
  port=$p
  if [ "$LI_TRANSPORT" = iser ]; then
    portal=$RXE_ADDR:3260 port=3260
    rxe_wait_listen 3260 10 || fail "tgtd does not listen on RDMA CM port 3260"
  fi
}
# stop_tgt: "tgtadm --op delete --mode system", then SIGKILL after 3 s
# (neither SIGTERM nor that stopped tgtd 1.0.85 within 10 s after an iSER
# session in this guest; it is a reference, its state does not matter).
stop_tgt() {
  [ -n "$tgt_pid" ] || return 0
  local child i
  timeout 5 tgtadm --op delete --mode system --force >/dev/null 2>&1 || true
  for ((i = 0; i < 30; i++)); do
    kill -0 "$tgt_pid" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$tgt_pid" 2>/dev/null; then
    child=$(pgrep -P "$tgt_pid" -x tgtd) && kill -KILL "$child"
  fi
  rxe_bg_wait "$tgt_pid" 5 >/dev/null 2>&1 || true
  tgt_pid=
}
tgt_chap() {
  local lld=iscsi
  [ "$LI_TRANSPORT" = iser ] && lld=iser
  timeout 10 tgtadm --lld "$lld" --op new --mode account --user "$1" --password "$2" || return 1
  timeout 10 tgtadm --lld "$lld" --op bind --mode account --tid 1 --user "$1" || return 1
}

# ---- login ----------------------------------------------------------------------
# discover TRANSPORT: sendtargets discovery against the target over TCP
# (iface default, portal $disc_portal) or iSER (iface iser, $portal); the
# target must be listed at $portal.
discover() {
  local via=$1 iface=default p=$disc_portal
  if [ "$via" = iser ]; then iface=iser p=$portal; fi
  begin "discovery over $via"
  say "iscsiadm sendtargets discovery over $via against $p"
  timeout 30 iscsiadm -m discovery -t sendtargets -p "$p" -I "$iface" >"$work/discovery.$via" 2>&1 ||
    fail "sendtargets discovery over $via failed: $(cat "$work/discovery.$via")"
  cat "$work/discovery.$via"
  grep -qE "^$RXE_ADDR:${p##*:},[0-9]+ $iqn\$" "$work/discovery.$via" || fail "discovery over $via did not list $iqn at $p"
}
# configure_node: the node record on iface $li_iface (created when
# discovery made none for it), digests, fast failure, CHAP from li_chap.
li_chap=()
configure_node() {
  begin "configure node"
  if ! node -o show >/dev/null 2>&1; then
    node -o new >/dev/null || fail "iscsiadm -o new for $iqn at $portal on iface $li_iface"
  fi
  if [ "$LI_DIGESTS" = 1 ]; then
    # Required (not "CRC32C,None"): a login without them must fail here.
    node -o update -n 'node.conn[0].iscsi.HeaderDigest' -v CRC32C || fail "set HeaderDigest"
    node -o update -n 'node.conn[0].iscsi.DataDigest' -v CRC32C || fail "set DataDigest"
  else
    node -o update -n 'node.conn[0].iscsi.HeaderDigest' -v None || fail "set HeaderDigest"
    node -o update -n 'node.conn[0].iscsi.DataDigest' -v None || fail "set DataDigest"
  fi
  # Fail fast instead of open-iscsi's retries (a failed login must not eat the stage's time).
  node -o update -n node.session.initial_login_retry_max -v 1 || fail "set initial_login_retry_max"
  node -o update -n 'node.conn[0].timeo.login_timeout' -v 10 || fail "set login_timeout"
  if [ ${#li_chap[@]} -gt 0 ]; then
    node -o update -n node.session.auth.authmethod -v CHAP || fail "set authmethod"
    node -o update -n node.session.auth.username -v "${li_chap[0]}" || fail "set CHAP username"
    node -o update -n node.session.auth.password -v "${li_chap[1]}" || fail "set CHAP password"
  else
    node -o update -n node.session.auth.authmethod -v None || fail "set authmethod"
  fi
  node -o show | grep -E 'Digest|login_retry|transport_name|authmethod' || true
}
# check_session: the negotiated parameters as iscsiadm shows them.
check_session() {
  timeout 10 iscsiadm -m session -r "$sid" -P 3 >"$work/session" 2>&1 || fail "iscsiadm -m session -r $sid -P 3"
  grep -E 'Iface Transport|HeaderDigest|DataDigest|MaxRecvDataSegmentLength|MaxBurstLength|FirstBurstLength|ImmediateData|InitialR2T' "$work/session" || true
  grep -qE "Iface Transport: $LI_TRANSPORT\$" "$work/session" || fail "the session's transport is not $LI_TRANSPORT: $(grep 'Iface Transport' "$work/session")"
  node -o show | grep -qE "^iface.transport_name = $LI_TRANSPORT\$" || fail "the node's iface.transport_name is not $LI_TRANSPORT"
  local want=None
  [ "$LI_DIGESTS" = 1 ] && want=CRC32C
  grep -qE "HeaderDigest: $want" "$work/session" || fail "initiator did not negotiate HeaderDigest=$want: $(grep Digest "$work/session")"
  grep -qE "DataDigest: $want" "$work/session" || fail "initiator did not negotiate DataDigest=$want: $(grep Digest "$work/session")"
}
# login: discovery (LI_DISCOVERY), the node configured, login over
# $LI_TRANSPORT; the negotiated parameters checked. Sets sid.
login() {
  local via
  for via in $LI_DISCOVERY; do discover "$via"; done
  configure_node
  begin "login"
  say "login to $iqn at $portal over $LI_TRANSPORT"
  logged_in=1 # from here on, cleanup logs out
  timeout 40 iscsiadm -m node -T "$iqn" -p "$portal" -I "$li_iface" --login || fail "login failed"
  sid=$(timeout 10 iscsiadm -m session | awk -v p="$portal" -v t="$iqn" '$3 ~ "^" p "," && $4 == t { gsub(/[][]/, "", $2); print $2; exit }')
  [ -n "$sid" ] || fail "no session id for $iqn at $portal in: $(iscsiadm -m session 2>&1)"
  check_session
}
logout() {
  timeout 30 iscsiadm -m node -T "$iqn" -p "$portal" -I "$li_iface" --logout || fail "logout failed"
  logged_in=0
}

# ---- the disks ----------------------------------------------------------------
# disk LUN: the /dev node of LUN of session $sid, made with mknod if /dev
# lacks it (no udev in the guest). Waits up to 20 s for the scan.
disk() {
  local lun=$1 i b d
  for ((i = 0; i < 200; i++)); do
    for b in /sys/class/iscsi_session/session"$sid"/device/target*/*:*:*:"$lun"/block/*; do
      [ -e "$b/dev" ] || continue
      d=/dev/$(basename "$b")
      [ -b "$d" ] || mknod "$d" b "$(cut -d: -f1 "$b/dev")" "$(cut -d: -f2 "$b/dev")" || return 1
      echo "$d"
      return 0
    done
    sleep 0.1
  done
  return 1
}
# put DEV BS SKIP_MIB SEEK_BYTES BYTES: copy BYTES of the pattern from
# SKIP_MIB into DEV at SEEK_BYTES, in blocks of BS, with O_DIRECT.
put() {
  local dev=$1 bs=$2 skip=$3 seek=$4 bytes=$5
  timeout 60 dd if="$pat" of="$dev" bs="$bs" iflag=skip_bytes,count_bytes oflag=direct,seek_bytes \
    skip=$((skip * MiB)) seek="$seek" count="$bytes" conv=notrunc status=none ||
    fail "dd write bs=$bs ${bytes} B at $seek to $dev"
}
# get DEV BS SEEK_BYTES BYTES: the sha256 of BYTES of DEV at SEEK_BYTES,
# read in blocks of BS with O_DIRECT.
get() {
  local dev=$1 bs=$2 off=$3 bytes=$4
  timeout 60 dd if="$dev" bs="$bs" iflag=direct,skip_bytes,count_bytes skip="$off" count="$bytes" status=none |
    sha256sum | cut -d' ' -f1
}
want() { dd if="$pat" bs=64K iflag=skip_bytes,count_bytes skip=$(($1 * MiB)) count="$2" status=none | sha256sum | cut -d' ' -f1; }
check() {
  local what=$1 got=$2 exp=$3
  [ "$got" = "$exp" ] || fail "data mismatch: $what: read sha256 $got, wrote $exp"
}

# ---- the checks -----------------------------------------------------------------
roundtrip() {
  begin "write LUN 0"
  say "write 8 MiB to $d0 (bs 4 KiB, 64 KiB, 1 MiB) and the last 256 KiB (bs 512, 128 KiB)"
  put "$d0" 4096 0 0 $((1 * MiB))
  put "$d0" 65536 1 $((1 * MiB)) $((3 * MiB))
  put "$d0" 1M 4 $((4 * MiB)) $((4 * MiB))
  tail0=$((size0 - 256 * 1024))
  put "$d0" 512 0 "$tail0" $((128 * 1024))
  put "$d0" 131072 1 $((tail0 + 128 * 1024)) $((128 * 1024))

  begin "write LUN 1"
  say "write 4 MiB to $d1 at 1 MiB (bs 16 KiB, 512 KiB)"
  put "$d1" 16384 0 $((1 * MiB)) $((2 * MiB))
  put "$d1" 524288 2 $((3 * MiB)) $((2 * MiB))

  begin "read back"
  say "read back"
  sync
  echo 3 >/proc/sys/vm/drop_caches
  blockdev --flushbufs "$d0" "$d1"
  check "$d0 0..8 MiB (bs 1M)" "$(get "$d0" 1M 0 $((8 * MiB)))" "$(want 0 $((8 * MiB)))"
  check "$d0 0..2 MiB (bs 4K)" "$(get "$d0" 4096 0 $((2 * MiB)))" "$(want 0 $((2 * MiB)))"
  check "$d0 0..256 KiB (bs 512)" "$(get "$d0" 512 0 $((256 * 1024)))" "$(want 0 $((256 * 1024)))"
  check "$d0 tail 128 KiB (bs 4K)" "$(get "$d0" 4096 "$tail0" $((128 * 1024)))" "$(want 0 $((128 * 1024)))"
  check "$d0 tail+128 KiB (bs 64K)" "$(get "$d0" 65536 $((tail0 + 128 * 1024)) $((128 * 1024)))" "$(want 1 $((128 * 1024)))"
  check "$d1 1..5 MiB (bs 256K)" "$(get "$d1" 262144 $((1 * MiB)) $((4 * MiB)))" "$(want 0 $((4 * MiB)))"
  zeros1=$(head -c "$MiB" /dev/zero | sha256sum | cut -d' ' -f1)
  check "$d1 0..1 MiB never written (bs 64K)" "$(get "$d1" 65536 0 "$MiB")" "$zeros1"
  say "read back ok: every checksum matches"
}

# Several commands in flight at once: four writers, then four readers, each
# on its own 512 KiB range of LUN 0 (16..18 MiB).
parallel_io() {
  local k p half=$((MiB / 2)) pids=()
  begin "parallel I/O"
  say "4 parallel writers, then 4 parallel readers on $d0"
  for k in 0 1 2 3; do
    (timeout 60 dd if="$pat" of="$d0" bs=16384 iflag=skip_bytes,count_bytes oflag=direct,seek_bytes \
      skip=$((4 * MiB + k * half)) seek=$((16 * MiB + k * half)) count="$half" conv=notrunc status=none) &
    pids+=($!)
  done
  for p in "${pids[@]}"; do wait "$p" || fail "a parallel writer failed"; done
  pids=()
  for k in 0 1 2 3; do
    (get "$d0" 65536 $((16 * MiB + k * half)) "$half" >"$work/par.$k") &
    pids+=($!)
  done
  for p in "${pids[@]}"; do wait "$p" || fail "a parallel reader failed"; done
  check "$d0 16..18 MiB written and read by 4 parallel dd" "$(cat "$work"/par.{0,1,2,3} | tr -d '\n')" \
    "$(for k in 0 1 2 3; do dd if="$pat" bs=16384 iflag=skip_bytes,count_bytes skip=$((4 * MiB + k * half)) count="$half" status=none | sha256sum | cut -d' ' -f1; done | tr -d '\n')"
}

# Task management from the kernel's error handler: LOGICAL UNIT RESET and
# TARGET WARM RESET; the data stays and the disk keeps working.
task_management() {
  begin "task management"
  resets=skipped
  if ! command -v sg_reset >/dev/null; then
    say "no sg_reset (sg3-utils): task management not tested"
    return 0
  fi
  local also=
  [ "$LI_TARGET_RESET" = 1 ] && also=" and -t (TARGET WARM RESET)"
  say "sg_reset -d (LOGICAL UNIT RESET)$also on $d0"
  timeout 30 sg_reset -d "$d0" || fail "sg_reset -d $d0"
  check "$d0 0..1 MiB after a LUN reset" "$(get "$d0" 1M 0 "$MiB")" "$(want 0 "$MiB")"
  if [ "$LI_TARGET_RESET" = 1 ]; then
    timeout 30 sg_reset -t "$d0" || fail "sg_reset -t $d0"
    check "$d0 0..1 MiB after a target reset" "$(get "$d0" 1M 0 "$MiB")" "$(want 0 "$MiB")"
    # A target reset reaches every LUN: LUN 1 now holds a unit attention,
    # which the kernel's own I/O retries through (SG_IO would see it).
    check "$d1 1..2 MiB after a target reset" "$(get "$d1" 1M "$MiB" "$MiB")" "$(want 0 "$MiB")"
  fi
  if [ "$LI_TARGET" = goiserd ]; then
    grep -q 'function="LOGICAL UNIT RESET"' "$glog" || fail "goiserd logged no LOGICAL UNIT RESET"
    if [ "$LI_TARGET_RESET" = 1 ]; then grep -q 'function="TARGET WARM RESET"' "$glog" || fail "goiserd logged no TARGET WARM RESET"; fi
  fi
  resets=ok
  [ "$LI_TARGET_RESET" = 1 ] || resets="ok (LUN only)"
}

synchronize_cache() {
  begin "synchronize cache"
  if command -v sg_sync >/dev/null; then
    timeout 20 sg_sync "$d0" || fail "sg_sync $d0 (SYNCHRONIZE CACHE)"
    timeout 20 sg_sync "$d1" || fail "sg_sync $d1 (SYNCHRONIZE CACHE)"
    say "sg_sync ok on both LUNs"
  else
    say "no sg_sync (sg3-utils): SYNCHRONIZE CACHE not tested"
  fi
}

discard_check() {
  local dmax lbprz
  begin "discard"
  discard=skipped
  dmax=$(cat "/sys/block/$(basename "$d0")/queue/discard_max_bytes" 2>/dev/null || echo 0)
  if [ "$dmax" -gt 0 ] && command -v blkdiscard >/dev/null; then
    say "blkdiscard 1 MiB at 8 MiB of $d0 (discard_max_bytes $dmax)"
    put "$d0" 1M 0 $((8 * MiB)) "$MiB"
    check "$d0 8..9 MiB before discard" "$(get "$d0" 1M $((8 * MiB)) "$MiB")" "$(want 0 "$MiB")"
    timeout 30 blkdiscard -o $((8 * MiB)) -l "$MiB" "$d0" || fail "blkdiscard on $d0"
    # The data just before the discarded range is untouched.
    check "$d0 7..8 MiB after discard" "$(get "$d0" 1M $((7 * MiB)) "$MiB")" "$(want 7 "$MiB")"
    timeout 10 sg_readcap -l "$d0" >"$work/readcap" 2>&1 || true
    cat "$work/readcap"
    lbprz=$(grep -oiE 'lbprz=[0-9]' "$work/readcap" | cut -d= -f2 || true)
    if [ "$lbprz" = 1 ]; then
      check "$d0 8..9 MiB after discard (LBPRZ=1: zeros)" "$(get "$d0" 1M $((8 * MiB)) "$MiB")" "$zeros1"
      discard="ok, reads zeros"
    else
      discard="ok (LBPRZ ${lbprz:-unknown})"
    fi
  else
    say "no discard: discard_max_bytes=$dmax"
  fi
}

# fio_verify NAME DEV RW BS QD OFFSET SIZE: one fio job writing with
# verify=crc32c (every block read back and checked after the writes).
fio_verify() {
  local name=$1 dev=$2 rw=$3 bs=$4 qd=$5 off=$6 size=$7
  timeout 150 fio --name="$name" --filename="$dev" --direct=1 --ioengine=libaio --rw="$rw" --bs="$bs" \
    --iodepth="$qd" --offset="$off" --size="$size" --verify=crc32c --verify_fatal=1 --do_verify=1 \
    --randrepeat=1 --norandommap=0 --verify_state_save=0 --output="$work/fio.$name" </dev/null ||
    { cat "$work/fio.$name" 2>/dev/null; fail "fio $name failed"; }
  awk '/IOPS=/ { printf "    %s: %s\n", n, $0 }' n="$name" "$work/fio.$name"
}
fio_checks() {
  begin "fio"
  fio_stats=skipped
  command -v fio >/dev/null || fail "fio missing (hack/deps.sh installs it)"
  say "fio verify=crc32c on $d0: 4 KiB random and 512 KiB sequential writes + verifying reads, QD1 and QD32"
  fio_verify rand4k-qd1 "$d0" randwrite 4k 1 24M 2M
  fio_verify rand4k-qd32 "$d0" randwrite 4k 32 26M 4M
  fio_verify seq512k-qd1 "$d0" write 512k 1 32M 8M
  fio_verify seq512k-qd32 "$d0" write 512k 32 40M 16M
  fio_stats=ok
}

# reset_during_io: LOGICAL UNIT RESET and TARGET WARM RESET while a
# verifying fio job keeps 16 commands in flight: the kernel retries what the
# resets aborted, and fio's verify must pass.
reset_during_io() {
  local fpid
  begin "reset during I/O"
  reset_io=skipped
  command -v sg_reset >/dev/null || return 0
  local also=
  [ "$LI_TARGET_RESET" = 1 ] && also=" and -t"
  say "sg_reset -d$also during a verifying fio job on $d0"
  timeout 150 fio --name=reset-io --filename="$d0" --direct=1 --ioengine=libaio --rw=randwrite --bs=16k \
    --iodepth=16 --offset=24M --size=8M --loops=4 --verify=crc32c --verify_fatal=1 --randrepeat=1 \
    --verify_state_save=0 --output="$work/fio.reset-io" </dev/null &
  fpid=$!
  sleep 1
  timeout 60 sg_reset -d "$d0" || fail "sg_reset -d $d0 during I/O"
  sleep 0.5
  if [ "$LI_TARGET_RESET" = 1 ]; then timeout 60 sg_reset -t "$d0" || fail "sg_reset -t $d0 during I/O"; fi
  wait "$fpid" || { cat "$work/fio.reset-io"; fail "fio failed across the resets"; }
  reset_io=ok
}

fs_checks() {
  local f mnt=$work/mnt
  begin "ext4"
  fs=skipped
  say "mkfs.ext4 on $d0, mount, write files, umount, fsck -f"
  timeout 60 mkfs.ext4 -q -F "$d0" </dev/null || fail "mkfs.ext4 $d0"
  mkdir -p "$mnt"
  timeout 30 mount -t ext4 "$d0" "$mnt" || fail "mount $d0"
  for f in 1 2 3 4; do
    head -c $((f * 512 * 1024)) "$pat" >"$mnt/file$f" || fail "write $mnt/file$f"
  done
  cp -r /etc/iscsi "$mnt/etc-iscsi" 2>/dev/null || true
  (cd "$mnt" && sha256sum file*) >"$work/files.sha256"
  timeout 30 umount "$mnt" || fail "umount $mnt"
  echo 3 >/proc/sys/vm/drop_caches
  timeout 60 e2fsck -f -n "$d0" >"$work/fsck" 2>&1 || { cat "$work/fsck"; fail "e2fsck -f $d0 found problems"; }
  timeout 30 mount -t ext4 -o ro "$d0" "$mnt" || fail "mount $d0 again"
  (cd "$mnt" && timeout 30 sha256sum -c --quiet "$work/files.sha256") || fail "files on ext4 do not read back"
  timeout 30 umount "$mnt" || fail "umount $mnt"
  fs="ok"
}

check_target_log() {
  begin "check the target's log"
  [ "$LI_TARGET" = goiserd ] || return 0
  say "check goiserd's log"
  grep -E 'msg="iscsi: login".*session=normal' "$glog" >"$work/logins" || fail "goiserd logged no normal-session login"
  cat "$work/logins"
  if [ "$LI_DIGESTS" = 1 ]; then
    grep -q 'header_digest=true data_digest=true' "$work/logins" ||
      fail "goiserd's login line does not show header_digest=true data_digest=true"
    if grep -qvE 'header_digest=true data_digest=true' "$work/logins"; then
      fail "a normal session logged in without both digests"
    fi
  fi
  if grep -E 'level=(ERROR|WARN)' "$glog" >"$work/glog.bad"; then
    fail "goiserd logged warnings or errors: $(cat "$work/glog.bad")"
  fi
}
check_dmesg() {
  begin "check dmesg"
  if dmesg | tail -n +"$((dmesg_start + 1))" | grep -iE 'conn(ection)? error|digest|detected conn|iscsi.*(fail|err)|iser.*(fail|err)|I/O error' >"$work/dmesg.bad"; then
    fail "the kernel logged iSCSI errors: $(cat "$work/dmesg.bad")"
  fi
}
logout_main() {
  local i
  begin "logout"
  say "logout"
  logout
  for ((i = 0; i < 100; i++)); do
    [ -e "/sys/block/$(basename "$d0")" ] || break
    sleep 0.1
  done
  [ -e "/sys/block/$(basename "$d0")" ] && fail "$d0 still there 10s after logout"
  if [ "$LI_TARGET" = goiserd ]; then grep -q 'msg="iscsi: logout"' "$glog" || fail "goiserd logged no logout"; fi
  return 0
}

# ---- goiserd: stop, the backing file, a restart on it --------------------------
goiserd_restart() {
  begin "stop goiserd"
  say "stop goiserd"
  stop_goiserd
  [ "$grc" = 0 ] || fail "goiserd exited with status $grc after SIGTERM"
  grep -q 'backends flushed and closed' "$glog" || fail "goiserd did not log 'backends flushed and closed'"

  begin "check the file LUN's backing file"
  say "check the file LUN's backing file"
  # What the initiator wrote through LUN 1 is in the file, at the same offsets.
  cmp -n $((2 * MiB)) -i 0:$((1 * MiB)) "$pat" "$lunfile" || fail "$lunfile at 1 MiB differs from the pattern"
  cmp -n $((2 * MiB)) -i $((2 * MiB)):$((3 * MiB)) "$pat" "$lunfile" || fail "$lunfile at 3 MiB differs from the pattern"
  [ "$(stat -c %s "$lunfile")" = $((file_mib << 20)) ] || fail "$lunfile is $(stat -c %s "$lunfile") bytes"

  # A second goiserd on the same file: the data survived, and SIGTERM with
  # a session logged in asks the initiator to log out (RFC 7143 11.9.1).
  begin "restart goiserd on the file"
  start_goiserd "$work/goiserd2.log" "file:$lunfile"
  login
  begin "find the disk"
  d1=$(disk 0) || fail "no block device for LUN 0 of session $sid after 20s"
  size1=$(timeout 10 blockdev --getsize64 "$d1") || fail "blockdev --getsize64 $d1"
  [ "$size1" = $((file_mib << 20)) ] || fail "$d1 has $size1 bytes, want $((file_mib << 20))"
  begin "read back after the restart"
  say "read back $d1 after the restart"
  check "$d1 1..5 MiB after goiserd restarted (bs 1M)" "$(get "$d1" 1M $((1 * MiB)) $((4 * MiB)))" "$(want 0 $((4 * MiB)))"

  begin "SIGTERM goiserd with a session logged in"
  say "SIGTERM goiserd with a session logged in"
  stop_goiserd
  [ "$grc" = 0 ] || fail "goiserd exited with status $grc after SIGTERM"
  grep -E 'shutting down|iscsi: logout|all sessions ended|flushed' "$glog"
  sed -n '/msg="shutting down"/,$p' "$glog" | grep -q 'msg="iscsi: logout"' ||
    fail "the initiator did not log out when goiserd shut down"
  grep -q 'msg="all sessions ended"' "$glog" || fail "goiserd did not log 'all sessions ended'"
  grep -q 'backends flushed and closed' "$glog" || fail "goiserd did not log 'backends flushed and closed'"
  grep -q 'Target requests logout' /tmp/iscsid.log || fail "iscsid did not log the target's logout request"
  if grep -E 'level=(ERROR|WARN)' "$glog" >"$work/glog.bad"; then
    fail "goiserd logged warnings or errors: $(cat "$work/glog.bad")"
  fi
  # iscsid now retries a target that is gone: end the session.
  begin "logout after the target left"
  timeout 30 iscsiadm -m node -T "$iqn" -p "$portal" -I "$li_iface" --logout >/dev/null 2>&1 || true
  logged_in=0
  sleep 0.2
  if timeout 10 iscsiadm -m session >/dev/null 2>&1; then fail "a session is left: $(iscsiadm -m session 2>&1)"; fi
  return 0
}

# ---- CHAP -----------------------------------------------------------------------
chap_checks() {
  local user=rxe-initiator secret=rxe-chap-secret-1 d
  begin "CHAP target"
  chap=skipped
  if [ "$LI_TARGET" = goiserd ]; then
    [ -n "$gpid" ] && { stop_goiserd; [ "$grc" = 0 ] || fail "goiserd exited with status $grc"; }
    li_gflags=(-chap "$user:$secret" -log-level debug)
    start_goiserd "$work/goiserd-chap.log" "mem:8M"
    li_gflags=()
  elif [ "$LI_TARGET" = tgt ]; then
    say "tgt: CHAP account $user bound to the target"
    tgt_chap "$user" "$secret" || fail "tgt CHAP account"
  else
    say "LIO: CHAP required on the TPG ($user)"
    lio_chap "$user" "$secret" || fail "LIO CHAP"
  fi
  li_chap=("$user" wrong-secret-0000)
  configure_node
  node -o update -n 'node.conn[0].timeo.login_timeout' -v 5 || fail "set login_timeout"
  begin "CHAP login, wrong secret"
  say "CHAP login with a wrong secret must fail"
  if timeout 40 iscsiadm -m node -T "$iqn" -p "$portal" -I "$li_iface" --login >"$work/chap-wrong" 2>&1; then
    logged_in=1
    fail "a login with a wrong CHAP secret succeeded"
  fi
  grep -iE 'auth|login failure|error' "$work/chap-wrong" | head -3 || true
  li_chap=("$user" "$secret")
  configure_node
  glog_mark=$(wc -l <"${glog:-/dev/null}" 2>/dev/null || echo 0)
  begin "CHAP login"
  say "CHAP login with the right secret"
  logged_in=1
  local mark
  mark=$(dmesg | wc -l)
  if ! timeout 40 iscsiadm -m node -T "$iqn" -p "$portal" -I "$li_iface" --login; then
    # A race in the kernel initiator, not the target: libiscsi's
    # __iscsi_complete_pdu hands a Login Response to iscsid
    # (iscsi_recv_pdu) before it frees the login task
    # (iscsi_complete_task). When the vCPU that runs it is preempted
    # there (TCG on a loaded host), iscsid's next Login PDU finds the
    # task busy: the kernel says "Login/Text in progress. Cannot start
    # new task", iscsid "Login I/O error, failed to send a PDU", and its
    # retries on the same session fail the same way. Seen in 2 of ~25
    # CHAP rounds over iSER. It is retried once, only with that kernel
    # message and only when goiserd answered every Login PDU it got.
    dmesg | tail -n +"$((mark + 1))" | grep -q 'Login/Text in progress' ||
      fail "CHAP login failed"
    if [ "$LI_TARGET" = goiserd ]; then
      local got answered
      got=$(awk -v n="$glog_mark" 'NR > n' "$glog" | grep -c 'login PDU received' || true)
      answered=$(awk -v n="$glog_mark" 'NR > n' "$glog" | grep -c 'login response' || true)
      [ "$got" = "$answered" ] || fail "CHAP login failed: goiserd received $got Login PDUs and answered $answered"
    fi
    say "the kernel initiator refused its own Login PDU (Login/Text in progress: its login-task race); one more login"
    chap_retry="the kernel initiator's login-task race hit once (Login/Text in progress), retried"
    timeout 40 iscsiadm -m node -T "$iqn" -p "$portal" -I "$li_iface" --login || fail "CHAP login failed (twice)"
  fi
  sid=$(timeout 10 iscsiadm -m session | awk -v p="$portal" -v t="$iqn" '$3 ~ "^" p "," && $4 == t { gsub(/[][]/, "", $2); print $2; exit }')
  [ -n "$sid" ] || fail "no session after the CHAP login"
  check_session
  d=$(disk "$lun_a") || fail "no block device for LUN $lun_a after the CHAP login"
  put "$d" 64K 0 0 "$MiB"
  check "$d 0..1 MiB over the CHAP session" "$(get "$d" 1M 0 "$MiB")" "$(want 0 "$MiB")"
  begin "CHAP logout"
  logout
  li_chap=()
  node -o delete >/dev/null 2>&1 || true
  if [ "$LI_TARGET" = goiserd ]; then
    stop_goiserd
    [ "$grc" = 0 ] || fail "goiserd (CHAP) exited with status $grc"
  fi
  chap=ok${chap_retry:+ ($chap_retry)}
}

# ---- kill -9 and restart on the same port ----------------------------------------
# A writer writes 64 KiB chunks with O_DIRECT, each followed by fsync (the
# kernel sends SYNCHRONIZE CACHE); a chunk is "acknowledged" once its dd
# returned. goiserd is killed with SIGKILL during the writes and restarted
# on the same port with the same file: the initiator must reconnect by
# itself (no new login from the script), the writer must finish, and every
# acknowledged chunk must read back intact, through the disk and in the file.
crash_checks() {
  local img=$work/crash.img chunks=64 k wpid child acked_at_kill oldsid d
  begin "crash: start"
  crash=skipped
  [ "$LI_TARGET" = goiserd ] || return 0
  li_port=$(rxe_fresh_port)
  start_goiserd "$work/goiserd-crash.log" "file:$img,size=8M"
  discover tcp
  configure_node
  # Queue I/O while the session recovers (instead of failing it at once).
  node -o update -n node.session.timeo.replacement_timeout -v 90 || fail "set replacement_timeout"
  begin "crash: login"
  logged_in=1
  timeout 40 iscsiadm -m node -T "$iqn" -p "$portal" -I "$li_iface" --login || fail "login (crash round) failed"
  sid=$(timeout 10 iscsiadm -m session | awk -v p="$portal" -v t="$iqn" '$3 ~ "^" p "," && $4 == t { gsub(/[][]/, "", $2); print $2; exit }')
  [ -n "$sid" ] || fail "no session (crash round)"
  oldsid=$sid
  d=$(disk 0) || fail "no block device (crash round)"
  begin "crash: writes, kill -9, restart"
  : >"$work/acked"
  (
    for ((k = 0; k < chunks; k++)); do
      timeout 120 dd if="$pat" of="$d" bs=64K skip="$k" seek="$k" count=1 oflag=direct conv=notrunc,fsync status=none || exit 1
      echo "$k" >>"$work/acked"
    done
  ) </dev/null >"$work/writer.log" 2>&1 &
  wpid=$!
  for ((k = 0; k < 300; k++)); do
    [ "$(grep -c . "$work/acked")" -ge 8 ] && break
    kill -0 "$wpid" 2>/dev/null || break
    sleep 0.1
  done
  child=$(pgrep -P "$gpid" -x goiserd) || fail "no goiserd process under timeout (pid $gpid)"
  acked_at_kill=$(grep -c . "$work/acked")
  say "kill -9 goiserd after $acked_at_kill acknowledged chunks"
  kill -KILL "$child"
  wait "$gpid" 2>/dev/null || true
  gpid=
  sleep 1
  say "restart goiserd on port $li_port"
  start_goiserd "$work/goiserd-crash2.log" "file:$img"
  say "waiting for the writer (the initiator reconnects by itself)"
  rxe_bg_wait "$wpid" 150 || fail "the writer failed after goiserd's restart: $(cat "$work/writer.log") ($(grep -c . "$work/acked") chunks acknowledged)"
  [ "$(grep -c . "$work/acked")" = "$chunks" ] || fail "only $(grep -c . "$work/acked") of $chunks chunks acknowledged"
  sid=$(timeout 10 iscsiadm -m session | awk -v p="$portal" -v t="$iqn" '$3 ~ "^" p "," && $4 == t { gsub(/[][]/, "", $2); print $2; exit }')
  [ "$sid" = "$oldsid" ] || fail "the session changed ($oldsid -> $sid): not a reconnect"
  timeout 10 iscsiadm -m session -r "$sid" -P 1 | grep -E 'State' || true
  begin "crash: read back"
  echo 3 >/proc/sys/vm/drop_caches
  check "$d chunks 0..$((chunks - 1)) after kill -9 and restart" "$(get "$d" 64K 0 $((chunks * 64 * 1024)))" \
    "$(want 0 $((chunks * 64 * 1024)))"
  logout
  stop_goiserd
  [ "$grc" = 0 ] || fail "goiserd (after the crash) exited with status $grc"
  cmp -n $((chunks * 64 * 1024)) "$pat" "$img" || fail "$img differs from the acknowledged writes"
  li_port=
  crash="ok ($acked_at_kill chunks acked before kill -9, $chunks after reconnect)"
}

# ---- the whole stage --------------------------------------------------------------
li_main() {
  trap li_cleanup EXIT
  if [ "$LI_TARGET" = lio ]; then
    # shellcheck source=hack/rxe/lio-lib.sh
    . "$RXE_REPO/hack/rxe/lio-lib.sh"
  fi
  modprobe -a "$li_module" sd_mod || fail "modprobe $li_module sd_mod"
  head -c $((8 * MiB)) /dev/urandom >"$pat"

  begin "start target"
  if [ "$LI_TARGET" = goiserd ]; then
    start_goiserd "$work/goiserd.log" "mem:${mem_mib}M" "file:$lunfile,size=${file_mib}M"
  elif [ "$LI_TARGET" = tgt ]; then
    start_tgt
  else
    start_lio
  fi

  begin "start iscsid"
  say "start iscsid"
  rxe_iscsid_start || fail "iscsid did not start"
  iscsid_up=1

  login

  begin "find disks"
  say "find disks"
  d0=$(disk "$lun_a") || fail "no block device for LUN $lun_a of session $sid after 20s: $(find /sys/class/iscsi_session/session"$sid"/device/ -maxdepth 3 2>&1 | head -20)"
  d1=$(disk "$lun_b") || fail "no block device for LUN $lun_b of session $sid after 20s"
  say "LUN $lun_a is $d0, LUN $lun_b is $d1"

  begin "check sizes"
  size0=$(timeout 10 blockdev --getsize64 "$d0") || fail "blockdev --getsize64 $d0"
  size1=$(timeout 10 blockdev --getsize64 "$d1") || fail "blockdev --getsize64 $d1"
  [ "$size0" = $((mem_mib << 20)) ] || fail "$d0 has $size0 bytes, want $((mem_mib << 20))"
  [ "$size1" = $((file_mib << 20)) ] || fail "$d1 has $size1 bytes, want $((file_mib << 20))"
  say "sizes ok: $d0 $size0 bytes, $d1 $size1 bytes, logical block $(blockdev --getss "$d0")"

  roundtrip
  parallel_io
  task_management
  synchronize_cache
  discard_check
  if [ "$LI_FIO" = 1 ]; then fio_checks; fi
  if [ "$LI_RESET_IO" = 1 ]; then reset_during_io; fi
  if [ "$LI_FS" = 1 ]; then fs_checks; fi
  check_target_log
  check_dmesg
  logout_main
  if [ "$LI_TARGET" = goiserd ] && [ "$LI_RESTART" = 1 ]; then goiserd_restart; fi
  if [ "$LI_CHAP" = 1 ]; then chap_checks; fi
  if [ "$LI_CRASH" = 1 ]; then crash_checks; fi

  begin "stop iscsid"
  say "stop iscsid"
  rxe_iscsid_stop || fail "iscsid did not stop"
  iscsid_up=0
  if [ "$LI_TARGET" = lio ]; then
    begin "LIO teardown"
    lio_teardown || fail "LIO teardown"
  fi
  if [ "$LI_TARGET" = tgt ]; then
    begin "stop tgtd"
    stop_tgt
  fi
  say "all steps passed"
  print_times
}
