#!/usr/bin/env bash
# Stage 32-lio-iser: the reference for the goiserd stages: the Linux kernel
# initiator (open-iscsi + ib_iser, iface "iser") against LIO
# (ib_isert, configured through configfs by hack/rxe/lio-lib.sh: two
# rd_mcp ramdisk LUNs of 64 and 16 MiB, demo mode) over iSER on rxe0, running the
# checks of hack/rxe/linux-initiator-lib.sh that do not need goiserd:
# discovery over TCP and iSER, login over iSER (digests None), dd round trip,
# parallel dd, LUN reset, SYNCHRONIZE CACHE, fio verify=crc32c (4 KiB
# random, 512 KiB sequential, QD1/QD32), LUN reset during fio, ext4 + fsck,
# logout, then CHAP on the TPG (right secret works, wrong one fails).
# LIO rejects TARGET WARM RESET (the kernel's error handler then resets the
# session), so sg_reset -t is not run against it.
# Not in tests.d (it tests the kernel, not goiser); run it with
#   RXE_EXTRA_STAGES=hack/rxe/tests.iser.d RXE_STAGES='^3[23]-' hack/rxe/test.sh
set -euo pipefail
phase=${1:?usage: 32-lio-iser.sh build|run}

if [ "$phase" = build ]; then
  for t in iscsiadm iscsid dd sha256sum fio sg_reset mkfs.ext4 e2fsck; do
    command -v "$t" >/dev/null || { echo "32-lio-iser: $t missing on the host (hack/deps.sh)"; exit 1; }
  done
  exit 0
fi

. "$RXE_REPO/hack/rxe/stage-lib.sh"
LI_NAME=32-lio-iser LI_TARGET=lio LI_TRANSPORT=iser LI_DIGESTS=0 LI_DISCOVERY="tcp iser"
LI_FIO=1 LI_FS=1 LI_RESET_IO=1 LI_CHAP=1 LI_TARGET_RESET=0
# shellcheck source=hack/rxe/linux-initiator-lib.sh
. "$RXE_REPO/hack/rxe/linux-initiator-lib.sh"
li_main
rxe_note "lio iser: discovery over $LI_DISCOVERY, login over iser, dd round trip ok, LUN reset $resets, fio crc32c $fio_stats, reset during I/O $reset_io, ext4 $fs, CHAP $chap"
rxe_note "$(printf '%s; ' "${li_times[@]}" | tr -s ' ')"
