#!/usr/bin/env bash
# make test-rxe: runs every stage of hack/rxe/tests.d/*.sh (in name order)
# in ONE boot of the Soft-RoCE guest, and prints per stage PASS/FAIL with
# timings, the total time, and last exactly "rxe: N passed, N failed".
# Exits non-zero if any stage failed, or if the guest could not be prepared
# or booted (QEMU missing, kernel download failed, ...): never skips.
#
# Stage convention (details in stages.sh and docs/testing.md): each stage is
# called as "STAGE build" on the host before boot, then "STAGE run" in the
# guest with RXE_BIN, RXE_DEV, RXE_NETDEV, RXE_ADDR, ... exported.
#
# Environment:
#   RXE_STAGE_DIRS     colon-separated stage directories (default: tests.d)
#   RXE_EXTRA_STAGES   colon-separated directories added to those
#   RXE_STAGES         regex on stage names (e.g. '^00-') to run a subset
#   RXE_STAGE_TIMEOUT  seconds per stage phase (default 360)
#   RXE_TIMEOUT        guest watchdog in seconds (default 1200)
#   RXE_KEEP=1         keep the work directory (logs, console) even on success
# plus those of run.sh (RXE_ACCEL, RXE_MEM, RXE_CPUS, RXE_CACHE, RXE_UP_ARGS).
set -uo pipefail
. "$(dirname "$0")/lib.sh"

t0=$(rxe_now)
stage_dirs=${RXE_STAGE_DIRS:-$RXE_HERE/tests.d}
[ -n "${RXE_EXTRA_STAGES:-}" ] && stage_dirs=$stage_dirs:$RXE_EXTRA_STAGES
IFS=: read -r -a dirs <<<"$stage_dirs"
all=$(mktemp)
summarized=0
# Whatever stops this script early (rxe_die on a missing QEMU, a failed
# kernel download, ...), the last line is the count and the status non-zero.
# shellcheck disable=SC2317 # called by the EXIT trap
on_exit() {
  local rc=$? n
  if [ $summarized = 0 ]; then
    n=$(grep -c . "$all" 2>/dev/null)
    rxe_log "FAIL: the Soft-RoCE guest could not be prepared or booted (see above); no stage ran"
    echo "rxe: 0 passed, $((n > 0 ? n : 1)) failed"
    [ $rc -ne 0 ] || rc=1
  fi
  rm -f "$all"
  exit $rc
}
trap on_exit EXIT
"$RXE_HERE/stages.sh" list "${dirs[@]}" >"$all" || exit 1

rxe_prepare
cp "$all" "$RXE_OUT/stages.all"
results=$RXE_OUT/results
: >"$results"

rxe_log "building $(grep -c . "$all") stage(s) on the host"
tb=$(rxe_now)
"$RXE_HERE/stages.sh" build "$results" "$RXE_OUT/stages.all" >"$RXE_OUT/stages.built"
build_secs=$(rxe_elapsed "$tb")

tg=$(rxe_now)
if [ ! -s "$RXE_OUT/stages.built" ]; then
  rxe_log "no stage built; not booting the guest"
  summary=$("$RXE_HERE/stages.sh" summarize "$results" "$RXE_OUT/stages.all")
  head -n -1 <<<"$summary"
  rxe_log "kept $RXE_WORK"
  summarized=1
  tail -n 1 <<<"$summary"
  exit 1
fi
rxe_log "booting the guest for $(grep -c . "$RXE_OUT/stages.built") stage(s)"
rxe_job_write "${RXE_TIMEOUT:-1200}" 0 "$RXE_HERE/stages.sh" run "$results" "$RXE_OUT/stages.built"
# Not a pipeline: rxe_boot must run in this shell so that its INT/TERM trap
# stops QEMU when this script is interrupted.
rxe_boot $((${RXE_TIMEOUT:-1200} + 120)) 0 > >(tr -d '\r')
qs=$?
guest_ok=1
if grc=$(rxe_job_status "$qs"); then
  rxe_log "guest done in $(rxe_elapsed "$tg")s; its stage runner exited with status $grc"
else
  guest_ok=0
  rxe_log "FAIL: the guest did not finish its run (see above)"
fi
guest_secs=$(rxe_elapsed "$tg")

summary=$("$RXE_HERE/stages.sh" summarize "$results" "$RXE_OUT/stages.all")
ok=$?
[ $guest_ok = 1 ] || ok=1
echo "rxe: stages (logs: $RXE_OUT/logs)"
head -n -1 <<<"$summary"
echo "rxe: total $(rxe_elapsed "$t0")s (stage build ${build_secs}s, guest boot+run ${guest_secs}s, accel $(rxe_accel | cut -d' ' -f2))"
if [ $ok -eq 0 ] && [ "${RXE_KEEP:-0}" != 1 ]; then rm -rf "$RXE_WORK"; else rxe_log "kept $RXE_WORK"; fi
summarized=1
tail -n 1 <<<"$summary"
exit $ok
