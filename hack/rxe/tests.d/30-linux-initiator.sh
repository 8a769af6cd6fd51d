#!/usr/bin/env bash
# Stage 30-linux-initiator: the Linux kernel initiator (open-iscsi + iscsi_tcp)
# against goiserd over TCP, with CRC32C header and data digests.
#   build (host): cmd/goiserd into $RXE_BIN; checks that open-iscsi is there
#   run (guest):  goiserd on $RXE_ADDR (the guest's private dummy netdev) with
#                 a 64 MiB memory LUN 0 and a 16 MiB file LUN 1 on the guest's
#                 tmpfs; iscsid; sendtargets discovery; the node set to
#                 HeaderDigest=CRC32C and DataDigest=CRC32C; login; both SCSI
#                 disks found through sysfs (no udev), sizes checked; a random
#                 pattern written with dd oflag=direct at several block sizes
#                 (incl. the last blocks of the disk), read back with
#                 iflag=direct after dropping caches, checksums compared;
#                 four writers and four readers in parallel; LUN and target
#                 reset (sg_reset) with the data intact after each;
#                 blkdiscard when the kernel offers it; SYNCHRONIZE CACHE
#                 with sg_sync; digests checked on both sides (iscsiadm's
#                 negotiated parameters and goiserd's login line) and no
#                 connection error in dmesg; logout; iscsid stopped; goiserd
#                 stopped with SIGTERM and must exit 0; then the backing file
#                 of LUN 1 must hold exactly what the initiator wrote;
#                 a second goiserd on that file: login, the data reads back,
#                 then SIGTERM with the session logged in (goiserd asks the
#                 initiator to log out; it must, and goiserd exits 0).
# Any failure prints the step, goiserd's log tail, iscsid's log and dmesg.
set -euo pipefail
phase=${1:?usage: 30-linux-initiator.sh build|run}

if [ "$phase" = build ]; then
  go build -o "$RXE_BIN/goiserd" ./cmd/goiserd
  for t in iscsiadm iscsid dd sha256sum cmp; do
    command -v "$t" >/dev/null || { echo "30-linux-initiator: $t missing on the host (make deps)"; exit 1; }
  done
  exit 0
fi

. "$RXE_REPO/hack/rxe/stage-lib.sh"
: "${RXE_ADDR:?}" "${RXE_BIN:?}"

iqn=iqn.2026-11.dev.goiser:rxe-linux
work=/tmp/30-linux-initiator
glog=$work/goiserd.log # the log of the goiserd running now
lunfile=$work/lun1.img
mem_mib=64
file_mib=16
rm -rf "$work"
mkdir -p "$work"

gpid=
portal=
logged_in=0
iscsid_up=0
step=setup
dmesg_start=$(dmesg | wc -l)

t0=$(date +%s.%N)
# say TEXT: a progress line with the seconds since the stage started.
say() { echo "== $(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%5.1fs", b - a }') $*"; }
# diagnostics: what a reader needs to see after a failure.
diagnostics() {
  echo "---- goiserd log (tail) ----"
  tail -n 40 "$glog" 2>/dev/null || true
  echo "---- iscsid log (tail) ----"
  tail -n 20 /tmp/iscsid.log 2>/dev/null || true
  echo "---- iscsiadm -m session -P 3 ----"
  timeout 5 iscsiadm -m session -P 3 2>&1 | tail -n 40 || true
  echo "---- dmesg since the stage started ----"
  dmesg | tail -n +"$((dmesg_start + 1))" | tail -n 40 || true
}
fail() {
  echo "30-linux-initiator: FAIL at step '$step': $*"
  diagnostics
  exit 1
}
cleanup() {
  local rc=$?
  trap - EXIT
  if [ "$logged_in" = 1 ]; then timeout 20 iscsiadm -m node -T "$iqn" -p "$portal" --logout >/dev/null 2>&1 || true; fi
  if [ "$iscsid_up" = 1 ]; then rxe_iscsid_stop || true; fi
  if [ -n "$gpid" ] && kill -0 "$gpid" 2>/dev/null; then
    kill -TERM "$gpid" 2>/dev/null || true
    rxe_bg_wait "$gpid" 15 >/dev/null 2>&1 || true
  fi
  exit "$rc"
}
trap cleanup EXIT

modprobe -a iscsi_tcp sd_mod || fail "modprobe iscsi_tcp sd_mod"

# start_goiserd LOG LUNSPEC...: goiserd on a fresh port of $RXE_ADDR; sets
# gpid, port, portal and glog, and waits until it listens.
start_goiserd() {
  local i lun args=()
  glog=$1
  shift
  for lun in "$@"; do args+=(-lun "$lun"); done
  say "goiserd on $RXE_ADDR, port 0 (a free one): $*"
  rm -f "$glog.addr"
  # The outer timeout only guards against a hang; the stage stops it with SIGTERM.
  timeout 150 "$RXE_BIN/goiserd" -listen "$RXE_ADDR:0" -addr-file "$glog.addr" -target "$iqn" "${args[@]}" >"$glog" 2>&1 </dev/null &
  gpid=$!
  # goiserd writes its -addr-file ("tcp HOST:PORT") once it listens.
  for ((i = 0; i < 100; i++)); do
    if [ -s "$glog.addr" ]; then
      portal=$(awk 'NR == 1 { print $2 }' "$glog.addr")
      port=${portal##*:}
      say "goiserd listens on $portal"
      return 0
    fi
    kill -0 "$gpid" 2>/dev/null || fail "goiserd exited before listening"
    sleep 0.1
  done
  fail "goiserd does not listen on $RXE_ADDR after 10s"
}

# login: sendtargets discovery against $portal, digests required, login;
# both digests must show in iscsiadm's negotiated parameters. Sets sid.
login() {
  step="discovery"
  say "iscsiadm sendtargets discovery against $portal"
  timeout 30 iscsiadm -m discovery -t sendtargets -p "$portal" >"$work/discovery" 2>&1 ||
    fail "sendtargets discovery failed: $(cat "$work/discovery")"
  cat "$work/discovery"
  grep -qE "^$RXE_ADDR:$port,[0-9]+ $iqn\$" "$work/discovery" || fail "discovery did not list $iqn at $portal"

  step="configure node"
  # Digests required (not "CRC32C,None"): a login without them must fail here.
  node -o update -n 'node.conn[0].iscsi.HeaderDigest' -v CRC32C || fail "set HeaderDigest"
  node -o update -n 'node.conn[0].iscsi.DataDigest' -v CRC32C || fail "set DataDigest"
  # Fail fast instead of open-iscsi's retries (a failed login must not eat the stage's time).
  node -o update -n node.session.initial_login_retry_max -v 1 || fail "set initial_login_retry_max"
  node -o update -n 'node.conn[0].timeo.login_timeout' -v 10 || fail "set login_timeout"
  node -o show | grep -E 'Digest|login_retry' || true

  step="login"
  say "login to $iqn at $portal"
  logged_in=1 # from here on, cleanup logs out
  timeout 40 iscsiadm -m node -T "$iqn" -p "$portal" --login || fail "login failed"
  timeout 10 iscsiadm -m session -P 2 >"$work/session" 2>&1 || fail "iscsiadm -m session -P 2"
  grep -E 'HeaderDigest|DataDigest' "$work/session" || true
  grep -qE 'HeaderDigest: CRC32C' "$work/session" || fail "initiator did not negotiate HeaderDigest=CRC32C: $(grep Digest "$work/session")"
  grep -qE 'DataDigest: CRC32C' "$work/session" || fail "initiator did not negotiate DataDigest=CRC32C: $(grep Digest "$work/session")"
  sid=$(timeout 10 iscsiadm -m session | awk -v p="$portal" -v t="$iqn" '$3 ~ "^" p "," && $4 == t { gsub(/[][]/, "", $2); print $2; exit }')
  [ -n "$sid" ] || fail "no session id for $iqn at $portal in: $(iscsiadm -m session 2>&1)"
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
node() { timeout 10 iscsiadm -m node -T "$iqn" -p "$portal" "$@"; }

# ---- goiserd, iscsid, login -------------------------------------------------
step="start goiserd"
start_goiserd "$work/goiserd.log" "mem:${mem_mib}M" "file:$lunfile,size=${file_mib}M"

step="start iscsid"
say "start iscsid"
rxe_iscsid_start || fail "iscsid did not start"
iscsid_up=1

login

# ---- the disks --------------------------------------------------------------
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
step="find disks"
say "find disks"
d0=$(disk 0) || fail "no block device for LUN 0 of session $sid after 20s: $(find /sys/class/iscsi_session/session"$sid"/device/ -maxdepth 3 2>&1 | head -20)"
d1=$(disk 1) || fail "no block device for LUN 1 of session $sid after 20s"
say "LUN 0 is $d0, LUN 1 is $d1"

step="check sizes"
size0=$(timeout 10 blockdev --getsize64 "$d0") || fail "blockdev --getsize64 $d0"
size1=$(timeout 10 blockdev --getsize64 "$d1") || fail "blockdev --getsize64 $d1"
[ "$size0" = $((mem_mib << 20)) ] || fail "$d0 has $size0 bytes, want $((mem_mib << 20))"
[ "$size1" = $((file_mib << 20)) ] || fail "$d1 has $size1 bytes, want $((file_mib << 20))"
say "sizes ok: $d0 $size0 bytes, $d1 $size1 bytes, logical block $(blockdev --getss "$d0")"

# ---- data round trip ---------------------------------------------------------
MiB=1048576
pat=$work/pattern
head -c $((8 * MiB)) /dev/urandom >"$pat"
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

step="write LUN 0"
say "write 8 MiB to $d0 (bs 4 KiB, 64 KiB, 1 MiB) and the last 256 KiB (bs 512, 128 KiB)"
put "$d0" 4096 0 0 $((1 * MiB))
put "$d0" 65536 1 $((1 * MiB)) $((3 * MiB))
put "$d0" 1M 4 $((4 * MiB)) $((4 * MiB))
tail0=$((size0 - 256 * 1024))
put "$d0" 512 0 "$tail0" $((128 * 1024))
put "$d0" 131072 1 $((tail0 + 128 * 1024)) $((128 * 1024))

step="write LUN 1"
say "write 4 MiB to $d1 at 1 MiB (bs 16 KiB, 512 KiB)"
put "$d1" 16384 0 $((1 * MiB)) $((2 * MiB))
put "$d1" 524288 2 $((3 * MiB)) $((2 * MiB))

step="read back"
say "read back"
sync
echo 3 >/proc/sys/vm/drop_caches
blockdev --flushbufs "$d0" "$d1"
check() {
  local what=$1 got=$2 exp=$3
  [ "$got" = "$exp" ] || fail "data mismatch: $what: read sha256 $got, wrote $exp"
}
check "$d0 0..8 MiB (bs 1M)" "$(get "$d0" 1M 0 $((8 * MiB)))" "$(want 0 $((8 * MiB)))"
check "$d0 0..2 MiB (bs 4K)" "$(get "$d0" 4096 0 $((2 * MiB)))" "$(want 0 $((2 * MiB)))"
check "$d0 0..256 KiB (bs 512)" "$(get "$d0" 512 0 $((256 * 1024)))" "$(want 0 $((256 * 1024)))"
check "$d0 tail 128 KiB (bs 4K)" "$(get "$d0" 4096 "$tail0" $((128 * 1024)))" "$(want 0 $((128 * 1024)))"
check "$d0 tail+128 KiB (bs 64K)" "$(get "$d0" 65536 $((tail0 + 128 * 1024)) $((128 * 1024)))" "$(want 1 $((128 * 1024)))"
check "$d1 1..5 MiB (bs 256K)" "$(get "$d1" 262144 $((1 * MiB)) $((4 * MiB)))" "$(want 0 $((4 * MiB)))"
zeros1=$(head -c "$MiB" /dev/zero | sha256sum | cut -d' ' -f1)
check "$d1 0..1 MiB never written (bs 64K)" "$(get "$d1" 65536 0 "$MiB")" "$zeros1"
say "read back ok: every checksum matches"

# Several commands in flight at once: four writers, then four readers, each
# on its own 512 KiB range of LUN 0 (16..18 MiB).
step="parallel I/O"
say "4 parallel writers, then 4 parallel readers on $d0"
half=$((MiB / 2))
pids=()
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

# Task management from the kernel's error handler: LOGICAL UNIT RESET and
# TARGET WARM RESET; the data stays and the disk keeps working.
step="task management"
resets=skipped
if command -v sg_reset >/dev/null; then
  say "sg_reset -d (LOGICAL UNIT RESET) and -t (TARGET WARM RESET) on $d0"
  timeout 30 sg_reset -d "$d0" || fail "sg_reset -d $d0"
  check "$d0 0..1 MiB after a LUN reset" "$(get "$d0" 1M 0 "$MiB")" "$(want 0 "$MiB")"
  timeout 30 sg_reset -t "$d0" || fail "sg_reset -t $d0"
  check "$d0 0..1 MiB after a target reset" "$(get "$d0" 1M 0 "$MiB")" "$(want 0 "$MiB")"
  # A target reset reaches every LUN: LUN 1 now holds a unit attention,
  # which the kernel's own I/O retries through (SG_IO would see it).
  check "$d1 1..2 MiB after a target reset" "$(get "$d1" 1M "$MiB" "$MiB")" "$(want 0 "$MiB")"
  grep -q 'function="LOGICAL UNIT RESET"' "$glog" || fail "goiserd logged no LOGICAL UNIT RESET"
  grep -q 'function="TARGET WARM RESET"' "$glog" || fail "goiserd logged no TARGET WARM RESET"
  resets=ok
else
  say "no sg_reset (sg3-utils): task management not tested"
fi

step="synchronize cache"
if command -v sg_sync >/dev/null; then
  timeout 20 sg_sync "$d0" || fail "sg_sync $d0 (SYNCHRONIZE CACHE)"
  timeout 20 sg_sync "$d1" || fail "sg_sync $d1 (SYNCHRONIZE CACHE)"
  say "sg_sync ok on both LUNs"
else
  say "no sg_sync (sg3-utils): SYNCHRONIZE CACHE not tested"
fi

step="discard"
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

# ---- digests on the target's side, no connection errors ------------------------
step="check digests in goiserd's log"
say "check digests in goiserd's log"
grep -E 'msg="iscsi: login".*session=normal' "$glog" >"$work/logins" || fail "goiserd logged no normal-session login"
cat "$work/logins"
grep -q 'header_digest=true data_digest=true' "$work/logins" ||
  fail "goiserd's login line does not show header_digest=true data_digest=true"
if grep -qvE 'header_digest=true data_digest=true' "$work/logins"; then
  fail "a normal session logged in without both digests"
fi
step="check dmesg"
if dmesg | tail -n +"$((dmesg_start + 1))" | grep -iE 'conn(ection)? error|digest|detected conn|iscsi.*(fail|err)|I/O error' >"$work/dmesg.bad"; then
  fail "the kernel logged iSCSI errors: $(cat "$work/dmesg.bad")"
fi
if grep -E 'level=(ERROR|WARN)' "$glog" >"$work/glog.bad"; then
  fail "goiserd logged warnings or errors: $(cat "$work/glog.bad")"
fi

# ---- logout and shutdown ------------------------------------------------------
step="logout"
say "logout"
timeout 30 iscsiadm -m node -T "$iqn" -p "$portal" --logout || fail "logout failed"
logged_in=0
for ((i = 0; i < 100; i++)); do
  [ -e "/sys/block/$(basename "$d0")" ] || break
  sleep 0.1
done
[ -e "/sys/block/$(basename "$d0")" ] && fail "$d0 still there 10s after logout"
grep -q 'msg="iscsi: logout"' "$glog" || fail "goiserd logged no logout"

step="stop goiserd"
say "stop goiserd"
stop_goiserd
[ "$grc" = 0 ] || fail "goiserd exited with status $grc after SIGTERM"
grep -q 'backends flushed and closed' "$glog" || fail "goiserd did not log 'backends flushed and closed'"

step="check the file LUN's backing file"
say "check the file LUN's backing file"
# What the initiator wrote through LUN 1 is in the file, at the same offsets.
cmp -n $((2 * MiB)) -i 0:$((1 * MiB)) "$pat" "$lunfile" || fail "$lunfile at 1 MiB differs from the pattern"
cmp -n $((2 * MiB)) -i $((2 * MiB)):$((3 * MiB)) "$pat" "$lunfile" || fail "$lunfile at 3 MiB differs from the pattern"
[ "$(stat -c %s "$lunfile")" = $((file_mib << 20)) ] || fail "$lunfile is $(stat -c %s "$lunfile") bytes"

# ---- a second goiserd on the same file: the data survived, and SIGTERM ----
# ---- with a session logged in asks the initiator to log out (RFC 7143 11.9.1)
step="restart goiserd on the file"
start_goiserd "$work/goiserd2.log" "file:$lunfile"
login
step="find the disk"
d1=$(disk 0) || fail "no block device for LUN 0 of session $sid after 20s"
size1=$(timeout 10 blockdev --getsize64 "$d1") || fail "blockdev --getsize64 $d1"
[ "$size1" = $((file_mib << 20)) ] || fail "$d1 has $size1 bytes, want $((file_mib << 20))"
step="read back after the restart"
say "read back $d1 after the restart"
check "$d1 1..5 MiB after goiserd restarted (bs 1M)" "$(get "$d1" 1M $((1 * MiB)) $((4 * MiB)))" "$(want 0 $((4 * MiB)))"

step="SIGTERM goiserd with a session logged in"
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
step="logout after the target left"
timeout 30 iscsiadm -m node -T "$iqn" -p "$portal" --logout >/dev/null 2>&1 || true
logged_in=0
sleep 0.2
timeout 10 iscsiadm -m session >/dev/null 2>&1 && fail "a session is left: $(iscsiadm -m session 2>&1)"

step="stop iscsid"
say "stop iscsid"
rxe_iscsid_stop || fail "iscsid did not stop"
iscsid_up=0

say "all steps passed"
rxe_note "linux initiator: login with CRC32C header+data digests, 8 MiB mem + 4 MiB file LUN round trip ok, 4 parallel dd ok, LUN+target reset $resets, discard $discard, clean SIGTERM exit; data intact after a restart, initiator logged out on shutdown"
