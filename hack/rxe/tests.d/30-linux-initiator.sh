#!/usr/bin/env bash
# Stage 30-linux-initiator: the Linux kernel initiator (open-iscsi + iscsi_tcp)
# against goiserd over TCP, with CRC32C header and data digests.
#   build (host): cmd/goiserd into $RXE_BIN; checks that open-iscsi is there
#   run (guest):  hack/rxe/linux-initiator-lib.sh with LI_TRANSPORT=tcp:
#                 goiserd on $RXE_ADDR (the guest's private dummy netdev) with
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
# The same checks over iSER: hack/rxe/tests.iser.d/31-linux-iser.sh.
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
LI_NAME=30-linux-initiator LI_TARGET=goiserd LI_TRANSPORT=tcp LI_DIGESTS=1 LI_DISCOVERY=tcp
# shellcheck source=hack/rxe/linux-initiator-lib.sh
. "$RXE_REPO/hack/rxe/linux-initiator-lib.sh"
li_main
rxe_note "linux initiator: login with CRC32C header+data digests, 8 MiB mem + 4 MiB file LUN round trip ok, 4 parallel dd ok, LUN+target reset $resets, discard $discard, clean SIGTERM exit; data intact after a restart, initiator logged out on shutdown"
