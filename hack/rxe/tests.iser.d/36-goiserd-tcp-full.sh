#!/usr/bin/env bash
# Stage 36-goiserd-tcp-full: stage 31's checks over TCP: goiserd with the
# Linux initiator (open-iscsi + iscsi_tcp, CRC32C digests), everything of
# stage 30 plus fio verify=crc32c (4 KiB random, 512 KiB sequential, QD1 and
# QD32), LUN and target reset during a verifying fio job, ext4 + fsck, CHAP
# (right secret logs in, wrong one fails) and kill -9 of goiserd during
# fsync'd writes with a restart on the same port (the initiator reconnects
# by itself, every acknowledged write reads back). It proves the steps of
# 31 against goiserd today, and is the TCP line to compare 31 with.
# Not in tests.d (about 2 minutes; make test's budget); run it with
#   RXE_EXTRA_STAGES=hack/rxe/tests.iser.d RXE_STAGES='^36-' hack/rxe/test.sh
set -euo pipefail
phase=${1:?usage: 36-goiserd-tcp-full.sh build|run}

if [ "$phase" = build ]; then
  go build -o "$RXE_BIN/goiserd" ./cmd/goiserd
  for t in iscsiadm iscsid dd sha256sum cmp fio sg_reset mkfs.ext4 e2fsck; do
    command -v "$t" >/dev/null || { echo "36-goiserd-tcp-full: $t missing on the host (hack/deps.sh)"; exit 1; }
  done
  exit 0
fi

. "$RXE_REPO/hack/rxe/stage-lib.sh"
LI_NAME=36-goiserd-tcp-full LI_TARGET=goiserd LI_TRANSPORT=tcp LI_DIGESTS=1 LI_DISCOVERY=tcp
LI_FIO=1 LI_FS=1 LI_RESET_IO=1 LI_CHAP=1 LI_CRASH=1
# shellcheck source=hack/rxe/linux-initiator-lib.sh
. "$RXE_REPO/hack/rxe/linux-initiator-lib.sh"
li_main
rxe_note "goiserd tcp (31's checks): LUN+target reset $resets, discard $discard, fio crc32c $fio_stats, reset during I/O $reset_io, ext4 $fs, CHAP $chap, kill -9 $crash"
rxe_note "$(printf '%s; ' "${li_times[@]}" | tr -s ' ')"
