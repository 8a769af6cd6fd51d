#!/bin/bash
# Stage 2 of the Soft-RoCE guest, run as PID 1 after switch_root (see
# initramfs-init.sh). Argument: the path of the writable share (RXE_OUT).
#   1. starts the watchdog: after RXE_GUEST_TIMEOUT seconds it writes
#      $RXE_OUT/watchdog and powers the guest off,
#   2. runs rxe-up (cmd/rxe-up, built on the host into RXE_BIN): modules,
#      dummy interface with an address, rxe link, port ACTIVE; it writes the
#      device's facts to $RXE_OUT/rxe.env, which is exported here,
#   3. runs the job's command ($RXE_OUT/cmd.sh) in the repository, or an
#      interactive shell on ttyS0 for make rxe-shell,
#   4. writes the command's exit status to $RXE_OUT/exit and powers off.
# Whatever happens, the guest powers off: if this script dies, PID 1 exits,
# the kernel panics and QEMU (-no-reboot, panic=-1) exits.

out=$1
# shellcheck source=/dev/null
. "$out/job.env"

poweroff_now() {
  sync
  echo o >/proc/sysrq-trigger
  sleep 10
  exit 1
}

(
  sleep "$RXE_GUEST_TIMEOUT"
  echo "guest watchdog: no result after ${RXE_GUEST_TIMEOUT}s" >"$out/watchdog"
  echo "rxe-guest: watchdog fired after ${RXE_GUEST_TIMEOUT}s, powering off"
  poweroff_now
) &

export PATH=$RXE_BIN:$RXE_REPO/bin:$RXE_HOST_PATH:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export HOME=/root TERM=${RXE_TERM:-linux} LANG=C.UTF-8 TMPDIR=/tmp
export RXE_OUT RXE_BIN RXE_REPO RXE_KVER RXE_STAGE_TIMEOUT
# Go tools and test binaries must not write into the read-only host cache.
export GOCACHE=/tmp/go-cache GOTMPDIR=/tmp GOFLAGS=-buildvcs=false
hostname rxe-guest 2>/dev/null
mkdir -p /dev/pts /dev/shm /root /var/tmp /run/lock
chmod 1777 /run/lock # open-iscsi, tgt and friends lock files there
mount -t devpts -o gid=5,mode=620,ptmxmode=666 devpts /dev/pts 2>/dev/null
mount -t tmpfs -o mode=1777 tmpfs /dev/shm 2>/dev/null
# configfs is a module here (LIO is configured through it).
modprobe -q configfs && mount -t configfs configfs /sys/kernel/config 2>/dev/null
mount -t debugfs debugfs /sys/kernel/debug 2>/dev/null
[ -e /dev/fd ] || ln -s /proc/self/fd /dev/fd
ulimit -l unlimited 2>/dev/null # registered memory is pinned memory
# PID 1 starts with 1024/4096 open files; a daemon gets more from systemd
# (LimitNOFILE). goiserd warns when max_connections does not fit the limit.
ulimit -n 65536 2>/dev/null

echo "rxe-guest: kernel $(uname -r), $(nproc) vCPUs, up $(cut -d' ' -f1 /proc/uptime)s"
# shellcheck disable=SC2086 # RXE_UP_ARGS is a list of flags.
if ! rxe-up -env "$out/rxe.env" $RXE_UP_ARGS; then
  echo "rxe-guest: rxe-up failed"
  : >"$out/rxe-up-failed"
  poweroff_now
fi
set -a
# shellcheck source=/dev/null
. "$out/rxe.env"
set +a
echo "rxe-guest: rxe ready after $(cut -d' ' -f1 /proc/uptime)s"

cd "$RXE_REPO" || poweroff_now
if [ "$RXE_INTERACTIVE" = 1 ]; then
  [ -n "$RXE_ROWS" ] && [ -n "$RXE_COLS" ] && stty -F /dev/ttyS0 rows "$RXE_ROWS" cols "$RXE_COLS" 2>/dev/null
  echo "rxe-guest: shell with $RXE_DEV on $RXE_NETDEV ($RXE_ADDR); exit or Ctrl-D powers off (Ctrl-A x kills QEMU)"
  setsid -c -w bash -i <>/dev/ttyS0 >&0 2>&0
  rc=$?
else
  bash "$out/cmd.sh" </dev/null
  rc=$?
fi
echo "$rc" >"$out/exit.tmp" && mv "$out/exit.tmp" "$out/exit"
echo "rxe-guest: command exited with status $rc after $(cut -d' ' -f1 /proc/uptime)s"
poweroff_now
