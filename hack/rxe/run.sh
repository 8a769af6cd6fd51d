#!/usr/bin/env bash
# Boots the Soft-RoCE guest, brings rxe up (cmd/rxe-up) and runs CMD in it.
#
#   hack/rxe/run.sh [--shell] [--timeout S] [--keep] -- CMD...
#
# CMD runs as root in the guest, in the repository (the host's / is shared
# read-only, with a tmpfs overlay on top: writes vanish at power-off), with
# PATH starting with $RXE_BIN (Go programs built on the host) and the repo's
# bin/, and with RXE_DEV, RXE_NETDEV, RXE_ADDR, RXE_GID, RXE_GID_INDEX, RXE_OUT
# (writable, shared with the host), RXE_BIN and RXE_REPO exported. The exit
# status is CMD's; 125 means the guest did not deliver one (boot failure,
# watchdog, host timeout), with the tail of the console log on stderr.
#
#   --shell      an interactive shell on the guest console instead of CMD
#   --timeout S  guest watchdog in seconds (default 600; shell: 3600); the
#                host kills QEMU 120 s after that
#   --keep       keep the work directory (console log, results) afterwards
# Environment: RXE_ACCEL=auto|kvm|tcg, RXE_MEM (MiB), RXE_CPUS, RXE_CACHE,
# RXE_UP_ARGS (flags for rxe-up, e.g. "-extra ib_iser,ib_isert"),
# RXE_PREBUILT=DIR (files copied into RXE_BIN before boot).
set -uo pipefail
. "$(dirname "$0")/lib.sh"

shell=0 timeout='' keep=${RXE_KEEP:-0}
while [ $# -gt 0 ]; do
  case $1 in
    --shell) shell=1 ;;
    --timeout) timeout=$2; shift ;;
    --keep) keep=1 ;;
    --) shift; break ;;
    -h|--help) sed -n '2,22p' "$0"; exit 0 ;;
    *) break ;;
  esac
  shift
done
[ $shell = 1 ] || [ $# -gt 0 ] || rxe_die "usage: run.sh [--shell] [--timeout S] -- CMD..."
[ -n "$timeout" ] || { [ $shell = 1 ] && timeout=3600 || timeout=600; }

t0=$(rxe_now)
rxe_prepare
if [ -n "${RXE_PREBUILT:-}" ]; then cp -a "$RXE_PREBUILT"/. "$RXE_BIN"/; fi
[ $shell = 1 ] && set -- bash -i
rxe_job_write "$timeout" "$shell" "$@"
tb=$(rxe_now)
rxe_boot $((timeout + 120)) "$shell"
qs=$?
if rc=$(rxe_job_status $qs); then :; else rc=125; fi
rxe_log "guest finished in $(rxe_elapsed "$tb")s (total $(rxe_elapsed "$t0")s), status $rc"
if [ "$keep" = 1 ]; then rxe_log "kept $RXE_WORK"; else rm -rf "$RXE_WORK"; fi
exit "$rc"
