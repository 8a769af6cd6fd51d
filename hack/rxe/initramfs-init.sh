#!/bin/busybox sh
# shellcheck shell=dash
# Stage 1 of the Soft-RoCE guest: the /init of the busybox initramfs that
# hack/rxe/lib.sh builds. It
#   1. loads the virtio, 9p and overlay modules listed in /modules/order
#      (dependencies first: busybox insmod does not resolve them),
#   2. mounts the writable share "rxeout" and reads job.env from it,
#   3. mounts the host's / (share "hostroot") read-only with a tmpfs overlay,
#   4. binds the unpacked kernel modules onto /lib/modules/KVER,
#   5. moves proc, sys, dev and the writable share (at its host path) into
#      the new root and switch_roots into hack/rxe/guest-init.sh (stage 2).
# Any failure powers the guest off at once; if this script ever exits, the
# kernel panics and, with panic=-1 and QEMU's -no-reboot, QEMU exits too.

/bin/busybox mkdir -p /sbin /usr/bin /usr/sbin
/bin/busybox --install -s

fail() {
  echo "rxe-init: FATAL: $*"
  echo "rxe-init: $*" >/share/init-failed 2>/dev/null
  sync
  echo o >/proc/sysrq-trigger
  sleep 5
  exit 1
}

mount -t proc proc /proc || fail "mount /proc"
mount -t sysfs sysfs /sys || fail "mount /sys"
mount -t devtmpfs devtmpfs /dev || fail "mount /dev"
exec </dev/console >/dev/console 2>&1

for m in $(cat /modules/order); do
  insmod "/modules/$m" || fail "insmod $m"
done

opts=trans=virtio,version=9p2000.L,msize=262144
mount -t 9p -o "$opts" rxeout /share || fail "mount the rxeout share"
[ -r /share/job.env ] || fail "no job.env in the rxeout share"
. /share/job.env

mount -t 9p -o "$opts,ro,cache=loose" hostroot /lower || fail "mount the hostroot share"
mount -t tmpfs -o mode=0755 tmpfs /rw || fail "mount tmpfs for the overlay"
mkdir -p /rw/upper /rw/work
mount -t overlay -o lowerdir=/lower,upperdir=/rw/upper,workdir=/rw/work overlay /newroot ||
  fail "mount the overlay root"

# /tmp and /run are fresh in the guest; the work directory (RXE_OUT, RXE_BIN)
# lives in the host's cache directory, so it stays visible.
mkdir -p /newroot/tmp /newroot/run
mount -t tmpfs -o mode=1777 tmpfs /newroot/tmp || fail "mount /tmp"
mount -t tmpfs -o mode=0755 tmpfs /newroot/run || fail "mount /run"
# A repository that lives under /tmp or /run (a CI clone, say) would be hidden
# by those fresh mounts: give it back, as a writable overlay of the host's copy.
case "$RXE_REPO" in
/tmp/* | /run/*)
  mkdir -p /rw/repo/upper /rw/repo/work "/newroot$RXE_REPO" || fail "mkdir for the repository overlay"
  mount -t overlay -o "lowerdir=/lower$RXE_REPO,upperdir=/rw/repo/upper,workdir=/rw/repo/work" overlay "/newroot$RXE_REPO" ||
    fail "mount the repository $RXE_REPO"
  ;;
esac
mkdir -p "/newroot/lib/modules/$RXE_KVER" "/newroot$RXE_OUT" || fail "mkdir in the new root"
mount -o bind "/newroot$RXE_MODDIR" "/newroot/lib/modules/$RXE_KVER" || fail "bind $RXE_MODDIR"
mount --move /share "/newroot$RXE_OUT" || fail "move the share to $RXE_OUT"
mount --move /proc /newroot/proc || fail "move /proc"
mount --move /sys /newroot/sys || fail "move /sys"
mount --move /dev /newroot/dev || fail "move /dev"

init=$RXE_REPO/hack/rxe/guest-init.sh
[ -x "/newroot$init" ] || fail "no guest init at $init"
exec switch_root /newroot "$init" "$RXE_OUT"
