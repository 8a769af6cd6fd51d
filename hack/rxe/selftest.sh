#!/usr/bin/env bash
# End-to-end self-test of the Soft-RoCE harness: make test-rxe must fail
# loudly, never pass or skip, when
#   1. QEMU is missing (no boot at all),
#   2. a stage is a deliberately broken test (one real boot, with 00-sanity),
#   3. the guest cannot bring rxe up (rxe-up fails; one real boot),
#   4. a stage hangs past the guest watchdog (one real boot, ~40 s).
# Each case runs hack/rxe/test.sh and checks its exit status and its last
# line. About 1.5 minutes on a quiet 2-core TCG host. (make test-rxe itself checks the
# stage runner in the same boot as the real stages: tests.d/00-harness.sh.)
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
pass=0 fail=0
t0=$(date +%s)

# expect NAME WANT_LAST_LINE_REGEX WANT_OUTPUT_REGEX ENV... : run test.sh.
expect() {
  local name=$1 last=$2 grepre=$3 out rc
  shift 3
  echo "selftest: $name"
  out=$(env "$@" RXE_KEEP=0 "$here/test.sh" 2>&1)
  rc=$?
  # Failed runs keep their work directory for debugging; not these.
  sed -n 's/^rxe: kept //p' <<<"$out" | while read -r d; do case $d in */goiser-rxe/work/run.*) rm -rf "$d" ;; esac; done
  if [ $rc -ne 0 ] && [[ $(tail -n 1 <<<"$out") =~ $last ]] && grep -qE "$grepre" <<<"$out"; then
    echo "selftest:   ok (exit status $rc, last line: $(tail -n 1 <<<"$out"))"
    pass=$((pass + 1))
  else
    echo "selftest:   FAILED: exit status $rc; want non-zero, last line =~ /$last/, output =~ /$grepre/. Output:"
    sed 's/^/  | /' <<<"$out"
    fail=$((fail + 1))
  fi
}

expect "QEMU missing" '^rxe: 0 passed, ([2-9]|[1-9][0-9]+) failed$' 'missing on the host: /nonexistent/qemu' \
  RXE_QEMU=/nonexistent/qemu
expect "a deliberately broken stage" '^rxe: 2 passed, 1 failed$' 'FAIL 20-fail .*run: exit status 1' \
  RXE_EXTRA_STAGES="$here/selftest.d" RXE_STAGES='^(00-sanity|10-pass|20-fail)$'
expect "rxe-up fails in the guest" '^rxe: 0 passed, 1 failed$' 'rxe-up could not bring the Soft-RoCE device up' \
  RXE_STAGES='^00-sanity$' RXE_UP_ARGS='-addr not-an-address'
expect "the guest watchdog fires" '^rxe: 0 passed, 1 failed$' 'guest watchdog: no result after 30s' \
  RXE_EXTRA_STAGES="$here/selftest.d" RXE_STAGES='^40-hang$' RXE_STAGE_TIMEOUT=600 RXE_TIMEOUT=30

echo "selftest: $pass passed, $fail failed in $(($(date +%s) - t0))s"
[ $fail -eq 0 ]
