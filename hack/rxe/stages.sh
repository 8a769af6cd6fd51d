#!/usr/bin/env bash
# The stage runner of make test-rxe (hack/rxe/test.sh). Three sub-commands,
# all reading and writing the results file RESULTS (one line per stage and
# phase: "NAME PASS|FAIL SECONDS PHASE [REASON]"):
#
#   stages.sh list DIR...              print the stage scripts (*.sh) of the
#                                      DIRs in name order (basename), filtered
#                                      by the regex RXE_STAGES if set
#   stages.sh build RESULTS LIST       host: run "STAGE build" for each stage
#                                      in the file LIST; print the ones that
#                                      built to stdout
#   stages.sh run RESULTS LIST         guest: run "STAGE run" for each stage
#                                      in the file LIST
#   stages.sh summarize RESULTS LIST   print one line per stage and, last,
#                                      exactly "rxe: N passed, N failed";
#                                      exit 1 if any stage failed or did not
#                                      run, or if there was no stage at all
#
# The stage convention (see docs/testing.md, "Adding a stage"): a stage is a
# bash script called twice, with the repository as working directory:
#   STAGE build   on the host before boot: build what it needs into $RXE_BIN
#                 (e.g. go test -c -o "$RXE_BIN/verbs.test" ./cgo/verbs)
#   STAGE run     in the guest, as root, with RXE_BIN, RXE_DEV (rxe0),
#                 RXE_NETDEV, RXE_ADDR, RXE_GID, RXE_GID_INDEX, RXE_OUT, and
#                 RXE_NOTES (a file: lines written there are shown under the
#                 stage's PASS/FAIL line) exported
# Exit status 0 is a pass. Output goes to $RXE_OUT/logs/NAME.PHASE.log; the
# tail of a failed stage's log is printed. Each phase is killed after
# RXE_STAGE_TIMEOUT seconds (default 360), which counts as a failure.
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
export RXE_REPO=${RXE_REPO:-$REPO}
STAGE_TIMEOUT=${RXE_STAGE_TIMEOUT:-360}

now() { date +%s.%N | cut -c1-14; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN{printf "%.1f", b-a}'; }
name_of() { basename "$1" .sh; }

# phase RESULTS STAGE PHASE: run one phase of one stage and record it.
phase() {
  local results=$1 stage=$2 ph=$3 name t0 rc log notes reason=
  name=$(name_of "$stage")
  mkdir -p "$RXE_OUT/logs"
  log=$RXE_OUT/logs/$name.$ph.log
  notes=$RXE_OUT/logs/$name.notes
  [ "$ph" = build ] && : >"$notes"
  t0=$(now)
  (cd "$REPO" && RXE_NOTES=$notes RXE_STAGE=$name timeout -k 5 "$STAGE_TIMEOUT" bash "$stage" "$ph") </dev/null >"$log" 2>&1
  rc=$?
  local secs
  secs=$(since "$t0")
  if [ $rc -eq 0 ]; then
    echo "$name PASS $secs $ph" >>"$results"
    [ "$ph" = run ] && printf 'rxe: PASS %-24s %6ss\n' "$name" "$secs" >&2
  else
    case $rc in 124|137) reason="timed out after ${STAGE_TIMEOUT}s" ;; *) reason="exit status $rc" ;; esac
    echo "$name FAIL $secs $ph $reason" >>"$results"
    printf 'rxe: FAIL %-24s %6ss  (%s: %s; log %s)\n' "$name" "$secs" "$ph" "$reason" "$log" >&2
    tail -n "${RXE_FAIL_TAIL:-30}" "$log" | sed 's/^/  | /' >&2
  fi
  if [ "$ph" = run ] && [ -s "$notes" ]; then sed 's/^/       /' "$notes" >&2; fi
  return $rc
}

cmd=${1:-}
shift || true
case $cmd in
  list)
    for d in "$@"; do
      [ -d "$d" ] || { echo "stages: no stage directory $d" >&2; exit 1; }
      for f in "$d"/*.sh; do [ -e "$f" ] && echo "$(basename "$f")	$(cd "$(dirname "$f")" && pwd)/$(basename "$f")"; done
    done | sort -t '	' -k1,1 | cut -f2 | while read -r f; do
      if [ -z "${RXE_STAGES:-}" ] || [[ $(name_of "$f") =~ $RXE_STAGES ]]; then echo "$f"; fi
    done
    ;;
  build)
    results=$1 list=$2
    while read -r stage; do
      [ -n "$stage" ] || continue
      if phase "$results" "$stage" build; then echo "$stage"; fi
    done <"$list"
    ;;
  run)
    results=$1 list=$2 fail=0
    while read -r stage; do
      [ -n "$stage" ] || continue
      phase "$results" "$stage" run || fail=1
    done <"$list"
    exit $fail
    ;;
  summarize)
    # One awk for the whole table: process start-up is slow in a TCG guest.
    results=$1 list=$2
    touch "$results"
    awk '
      FNR == NR { # the results file: keep the last line per stage and phase
        key = $1 SUBSEP $4; st[key] = $2; secs[key] = $3
        why[key] = ""; for (i = 5; i <= NF; i++) why[key] = why[key] (i > 5 ? " " : "") $i
        next
      }
      NF {
        n = split($0, parts, "/"); name = parts[n]; sub(/\.sh$/, "", name)
        b = name SUBSEP "build"; r = name SUBSEP "run"
        hb = (b in st); hr = (r in st) # test membership first: a reference creates the key
        if (hb && hr && st[b] == "PASS" && st[r] == "PASS") {
          pass++; printf "rxe:   PASS %-24s %6ss (build %ss)\n", name, secs[r], secs[b]; next
        }
        fail++
        if (!hb) w = "not built"
        else if (st[b] == "FAIL") w = "build: " why[b]
        else if (!hr) w = "did not run (the guest stopped before it)"
        else w = "run: " why[r]
        printf "rxe:   FAIL %-24s %s\n", name, w
      }
      END {
        if (pass + fail == 0) { print "rxe: no stages found"; fail = 1 }
        printf "rxe: %d passed, %d failed\n", pass, fail
        exit fail > 0
      }' "$results" "$list"
    ;;
  *)
    sed -n '2,30p' "$0" >&2
    exit 2
    ;;
esac
