#!/usr/bin/env bash
# Runs one guest stage (a hack/rxe/*.d/*.sh script) directly on this host,
# on a real RDMA device instead of Soft-RoCE in the QEMU guest: how make
# bench-iser and make demo run unchanged on a host with RoCE or InfiniBand
# NICs. Needs root (LIO's configfs, tgtd, open-iscsi), the device's IP
# address for RDMA CM, and nothing else of the guest harness.
#
#   ISER_TEST_DEVICE=mlx5_0 ISER_TEST_ADDR=192.0.2.10 hack/rxe/host-stage.sh STAGE.sh
#
# The stage gets the environment the guest gives it: RXE_DEV, RXE_ADDR,
# RXE_NETDEV, RXE_GID_INDEX (ISER_TEST_GID_INDEX, default 0), RXE_BIN (a
# fresh bin directory its build phase fills), RXE_OUT (kept; printed at the
# end), RXE_REPO, RXE_STAGE, RXE_NOTES. Its notes are printed at the end,
# as test.sh prints them, indented by 7 spaces.
set -euo pipefail
cd "$(dirname "$0")/../.."
stage=${1:?usage: ISER_TEST_DEVICE=DEV ISER_TEST_ADDR=IP hack/rxe/host-stage.sh STAGE.sh}
: "${ISER_TEST_DEVICE:?set ISER_TEST_DEVICE to the RDMA device (rdma link show)}"
: "${ISER_TEST_ADDR:?set ISER_TEST_ADDR to the IP address of the port of that device (for RDMA CM)}"
[ "$(id -u)" -eq 0 ] || { echo "host-stage: run as root (LIO, tgtd and open-iscsi need it)" >&2; exit 1; }
[ -e "/sys/class/infiniband/$ISER_TEST_DEVICE" ] || { echo "host-stage: no RDMA device $ISER_TEST_DEVICE in /sys/class/infiniband" >&2; exit 1; }
name=$(basename "$stage" .sh)
RXE_OUT=$(mktemp -d "/tmp/goiser-$name.XXXXXX")
RXE_BIN=$RXE_OUT/bin
mkdir -p "$RXE_BIN" "$RXE_OUT/logs"
RXE_NETDEV=$(rdma link show "$ISER_TEST_DEVICE/1" 2>/dev/null | sed -n 's/.*netdev \([^ ]*\).*/\1/p')
export RXE_DEV=$ISER_TEST_DEVICE RXE_ADDR=$ISER_TEST_ADDR RXE_NETDEV RXE_GID_INDEX=${ISER_TEST_GID_INDEX:-0}
export RXE_OUT RXE_BIN RXE_REPO=$PWD RXE_STAGE=$name RXE_NOTES=$RXE_OUT/logs/$name.notes
export PATH=$RXE_BIN:$PATH:/usr/local/go/bin
ulimit -l unlimited 2>/dev/null || echo "host-stage: cannot lift the memlock limit; registrations may fail" >&2
: >"$RXE_NOTES"
echo "host-stage: $name build"
bash "$stage" build
echo "host-stage: $name run on $RXE_DEV ($RXE_ADDR${RXE_NETDEV:+, $RXE_NETDEV})"
rc=0
bash "$stage" run || rc=$?
sed 's/^/       /' "$RXE_NOTES" >&2
echo "host-stage: $name exited with status $rc; output in $RXE_OUT"
exit "$rc"
