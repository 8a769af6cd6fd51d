#!/usr/bin/env bash
# Stage 35-tgt-iser: the second iSER reference: the Linux kernel initiator
# (open-iscsi + ib_iser, iface "iser") against Debian's tgt 1.0.85 (tgtd,
# --lld iser, two file LUNs 1 and 2 on the guest's tmpfs, iSER on RDMA CM
# port 3260, TCP portal on a fresh port for discovery), running the checks
# of hack/rxe/linux-initiator-lib.sh that do not need goiserd (as stage 32
# does for LIO). tgt 1.0.85 needs two things to work over iSER, see
# start_tgt in the library and docs/testing.md ("iSER peers"): the target
# bound to the initiator's name as well as to ALL addresses, and no
# "--iser port=N". tgt has no TARGET WARM RESET (LUN reset only).
# Not in tests.d (it tests tgt, not goiser); run it with
#   RXE_EXTRA_STAGES=hack/rxe/tests.iser.d RXE_STAGES='^35-' hack/rxe/test.sh
set -euo pipefail
phase=${1:?usage: 35-tgt-iser.sh build|run}

if [ "$phase" = build ]; then
  for t in tgtd tgtadm iscsiadm iscsid dd sha256sum fio sg_reset mkfs.ext4 e2fsck; do
    command -v "$t" >/dev/null || { echo "35-tgt-iser: $t missing on the host (hack/deps.sh)"; exit 1; }
  done
  exit 0
fi

. "$RXE_REPO/hack/rxe/stage-lib.sh"
LI_NAME=35-tgt-iser LI_TARGET=tgt LI_TRANSPORT=iser LI_DIGESTS=0 LI_DISCOVERY="tcp iser"
LI_FIO=1 LI_FS=1 LI_RESET_IO=1 LI_CHAP=1 LI_TARGET_RESET=0
# shellcheck source=hack/rxe/linux-initiator-lib.sh
. "$RXE_REPO/hack/rxe/linux-initiator-lib.sh"
li_main
rxe_note "tgt iser: discovery over $LI_DISCOVERY, login over iser, dd round trip ok, LUN reset $resets, fio crc32c $fio_stats, reset during I/O $reset_io, ext4 $fs, CHAP $chap"
rxe_note "$(printf '%s; ' "${li_times[@]}" | tr -s ' ')"
