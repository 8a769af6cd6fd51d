#!/usr/bin/env bash
# Stage 00-harness: the stage runner reports a deliberately broken test as a
# failure, inside the same boot as the real stages (no second boot). It runs
# the stages of hack/rxe/selftest.d through stages.sh, in a results area of
# its own, and checks what stages.sh reports:
#   build (host):  30-buildfail fails its build and is not scheduled to run
#   run (guest):   20-fail (exit 1) and 40-hang (killed by a 3 s stage
#                  timeout) fail, 10-pass passes, a stage without a run result
#                  is "did not run", and the summary is exactly
#                  "rxe: 1 passed, 4 failed" with a non-zero exit status.
# hack/rxe/selftest.sh checks the same end to end (test.sh, boots included).
set -uo pipefail
phase=${1:?usage: 00-harness.sh build|run}
here=$RXE_REPO/hack/rxe
out=$RXE_OUT/harness
export RXE_OUT=$out
unset RXE_STAGES # the filter of the outer run must not hide the self-test stages
fail() { echo "00-harness: FAIL: $*"; exit 1; }

if [ "$phase" = build ]; then
  rm -rf "$out"; mkdir -p "$out"
  "$here/stages.sh" list "$here/selftest.d" >"$out/all" || fail "stages.sh list"
  [ "$(grep -c . "$out/all")" = 4 ] || fail "expected 4 self-test stages, listed: $(cat "$out/all")"
  "$here/stages.sh" build "$out/results" "$out/all" >"$out/built" 2>"$out/build.err"
  cat "$out/build.err"
  grep -q '/30-buildfail.sh$' "$out/built" && fail "a stage whose build failed was scheduled to run"
  [ "$(grep -c . "$out/built")" = 3 ] || fail "expected 3 stages to build: $(cat "$out/built")"
  grep -q '^30-buildfail FAIL .* build exit status 1$' "$out/results" || fail "build failure not recorded: $(cat "$out/results")"
  # A stage that built but never ran (the guest died first) must count too.
  cp "$here/selftest.d/10-pass.sh" "$out/50-missing.sh"
  echo "$out/50-missing.sh" >>"$out/all"
  echo "50-missing PASS 0.0 build" >>"$out/results"
  exit 0
fi

RXE_STAGE_TIMEOUT=3 RXE_FAIL_TAIL=3 "$here/stages.sh" run "$out/results" "$out/built" 2>"$out/run.err"
rc=$?
cat "$out/run.err"
[ $rc -ne 0 ] || fail "stages.sh run exited 0 although stages failed"
grep -q '^rxe: FAIL 20-fail ' "$out/run.err" || fail "20-fail not reported as FAIL"
grep -q '^rxe: PASS 10-pass ' "$out/run.err" || fail "10-pass not reported as PASS"
grep -q '^ *a note from 10-pass$' "$out/run.err" || fail "notes of 10-pass not shown"
grep -q 'deliberately broken test' "$out/run.err" || fail "the tail of the failed stage's log was not shown"
summary=$("$here/stages.sh" summarize "$out/results" "$out/all")
rc=$?
echo "$summary"
[ $rc -ne 0 ] || fail "stages.sh summarize exited 0 although stages failed"
grep -q 'FAIL 20-fail .*run: exit status 1' <<<"$summary" || fail "20-fail missing from the summary"
grep -q 'FAIL 30-buildfail .*build: exit status 1' <<<"$summary" || fail "30-buildfail missing from the summary"
grep -q 'FAIL 40-hang .*run: timed out after 3s' <<<"$summary" || fail "40-hang not reported as timed out"
grep -q 'FAIL 50-missing .*did not run' <<<"$summary" || fail "50-missing not reported as not run"
[ "$(tail -n 1 <<<"$summary")" = "rxe: 1 passed, 4 failed" ] || fail "last line is not 'rxe: 1 passed, 4 failed'"
echo "harness: a broken stage, a broken build, a hang and a lost stage are all reported as failures" >>"$RXE_NOTES"
