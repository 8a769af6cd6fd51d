#!/usr/bin/env bash
# Stage 33-lio-tcp: the reference for the goiserd stages: the Linux kernel
# initiator (open-iscsi + iscsi_tcp, CRC32C digests) against LIO
# (iscsi_target_mod, configured through configfs by hack/rxe/lio-lib.sh: two
# rd_mcp ramdisk LUNs of 64 and 16 MiB, demo mode) over TCP, running the
# checks of hack/rxe/linux-initiator-lib.sh that do not need goiserd:
# discovery and login over TCP with both digests, dd round trip,
# parallel dd, LUN reset, SYNCHRONIZE CACHE, fio verify=crc32c (4 KiB
# random, 512 KiB sequential, QD1/QD32), LUN reset during fio, ext4 + fsck,
# logout, then CHAP on the TPG (right secret works, wrong one fails).
# LIO rejects TARGET WARM RESET (the kernel's error handler then resets the
# session), so sg_reset -t is not run against it.
# Not in tests.d (it tests the kernel, not goiser); run it with
#   RXE_EXTRA_STAGES=hack/rxe/tests.iser.d RXE_STAGES='^3[23]-' hack/rxe/test.sh
set -euo pipefail
phase=${1:?usage: 33-lio-tcp.sh build|run}

if [ "$phase" = build ]; then
  for t in iscsiadm iscsid dd sha256sum fio sg_reset mkfs.ext4 e2fsck; do
    command -v "$t" >/dev/null || { echo "33-lio-tcp: $t missing on the host (hack/deps.sh)"; exit 1; }
  done
  exit 0
fi

. "$RXE_REPO/hack/rxe/stage-lib.sh"
LI_NAME=33-lio-tcp LI_TARGET=lio LI_TRANSPORT=tcp LI_DIGESTS=1 LI_DISCOVERY=tcp
LI_FIO=1 LI_FS=1 LI_RESET_IO=1 LI_CHAP=1 LI_TARGET_RESET=0
# shellcheck source=hack/rxe/linux-initiator-lib.sh
. "$RXE_REPO/hack/rxe/linux-initiator-lib.sh"
li_main
rxe_note "lio tcp: discovery over $LI_DISCOVERY, login over tcp, dd round trip ok, LUN reset $resets, fio crc32c $fio_stats, reset during I/O $reset_io, ext4 $fs, CHAP $chap"
rxe_note "$(printf '%s; ' "${li_times[@]}" | tr -s ' ')"
