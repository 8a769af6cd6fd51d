#!/usr/bin/env bash
# Runs libiscsi's conformance suite (Debian libiscsi-bin: iscsi-test-cu)
# against a target on 127.0.0.1 and checks the result (make conformance).
#
#   hack/conformance.sh [--target goiser|tgt] [--suite REGEX] [--out DIR]
#                       [--timeout SECONDS] [--floor N] [--url URL]
#                       [--backend mem|file|direct]
#
#   --target goiser  (default) starts bin/goiserd on a free port from a
#                    temporary config and stops it. LUN 0 (1 GiB in memory)
#                    serves every suite except those that test a feature a
#                    plain disk does not have: PreventAllow and StartStopUnit
#                    run on LUN 1 (removable), ReadOnly on LUN 2 (read-only),
#                    CompareAndWrite, WriteSame10 and WriteSame16 on LUN 3
#                    (4096-byte physical blocks, so that their tests for
#                    unaligned and mis-sized requests run instead of skipping).
#   --target tgt     starts Debian's tgtd on a private control port and a free
#                    port (1 GiB LUN 1, rdwr on a /dev/shm file); the reference.
#   --backend B      goiser's LUNs: mem (default, in memory), file (sparse
#                    files on /dev/shm) or direct (files opened with O_DIRECT
#                    in $TMPDIR or /var/tmp).
#   --url URL        test an already running target instead (no start/stop).
#   --suite REGEX    only the ALL.<Suite> suites whose name matches (egrep).
#   --timeout S      per-suite limit (default 120 s); a suite that hits it fails.
#   --floor N        fewer passed tests than N fails the run (default: 210 for
#                    goiser, just under today's count so that tests turning
#                    into skips are caught; 150 for tgt; 0 when --suite is given).
#
# Every ALL.<Suite> runs separately with --dataloss, two initiator names (-i,
# -I) and the LUN URL given twice (MultipathIO needs a second path), under
# `timeout -k 5`. The CUnit output is parsed per test (hack/conformance-parse.awk):
# a table per suite, then the line "conformance: N passed, N failed, N skipped".
# Results go to DIR (default bin/conformance/<target>): results.tsv
# (suite, test, status, messages), results.json, and the raw log of each suite.
#
# Exit status: 0 when every failure is listed in the known-failures file
# (hack/conformance-known-failures.txt for goiser, ...-tgt.txt for tgt) and
# at least the floor passed; 1 otherwise (new failure, suite timeout, target
# died, floor missed); 2 on a setup error. Listed failures that now pass are
# printed so the list shrinks.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH=$PATH:/usr/local/go/bin:$HOME/go/bin
. hack/conformance-lib.sh

target=goiser backend=mem suite_re=. out='' suite_timeout=${CONFORMANCE_SUITE_TIMEOUT:-120} floor='' url=''
while [ $# -gt 0 ]; do
  case $1 in
    --target) target=$2; shift 2 ;;
    --suite) suite_re=$2; shift 2 ;;
    --backend) backend=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    --timeout) suite_timeout=$2; shift 2 ;;
    --floor) floor=$2; shift 2 ;;
    --url) url=$2; shift 2 ;;
    -h|--help) sed -n '2,/^set -e/p' "$0" | sed 's/^# \{0,1\}//;/^set -e/d'; exit 0 ;;
    *) die "unknown argument $1 (see --help)" ;;
  esac
done
case $target in
  goiser) known=hack/conformance-known-failures.txt; default_floor=210 ;;
  tgt) known=hack/conformance-known-failures-tgt.txt; default_floor=150 ;;
  *) die "--target must be goiser or tgt, not $target" ;;
esac
if [ -z "$floor" ]; then
  if [ "$suite_re" = . ]; then floor=$default_floor; else floor=0; fi
fi
command -v iscsi-test-cu >/dev/null || die "iscsi-test-cu is missing: run make deps (Debian package libiscsi-bin)"
[ "$backend" = mem ] || [ "$target" = goiser ] || die "--backend is for --target goiser"
if [ -z "$out" ]; then
  out=bin/conformance/$target
  [ "$backend" = mem ] || out=$out-$backend
fi
rm -rf "$out"; mkdir -p "$out/logs"
out=$(cd "$out" && pwd)
trap stop_all EXIT
trap 'exit 130' INT TERM

# lun_of SUITE: the LUN of the goiser config that SUITE runs on (see above).
lun_of() {
  case $1 in
    PreventAllow|StartStopUnit) echo 1 ;;
    ReadOnly) echo 2 ;;
    CompareAndWrite|WriteSame10|WriteSame16) echo 3 ;;
    *) echo 0 ;;
  esac
}
# lun_json N EXTRA: LUN N of the goiser config with the --backend storage.
lun_json() {
  case $backend in
    mem) echo "{\"lun\": $1, \"backend\": \"mem\", \"size\": \"1G\"$2}" ;;
    file|direct)
      local f="$backing_dir/lun$1.img" d=
      [ "$backend" = direct ] && d=', "direct": true'
      rm -f "$f"; truncate -s 1G "$f" # read-only LUNs are not created by goiserd
      echo "{\"lun\": $1, \"backend\": \"file\", \"path\": \"$f\", \"size\": \"1G\"$d$2}" ;;
  esac
}
if [ "$target" = goiser ]; then
  case $backend in
    mem) ;;
    file) backing_dir=$(mktemp -d /dev/shm/goiser-conformance.XXXXXX); CLEANUP_PATHS+=("$backing_dir") ;;
    # O_DIRECT needs a real file system (tmpfs refuses it).
    direct) backing_dir=$(mktemp -d "${TMPDIR:-/var/tmp}/goiser-conformance.XXXXXX"); CLEANUP_PATHS+=("$backing_dir") ;;
    *) die "--backend must be mem, file or direct, not $backend" ;;
  esac
fi
goiser_luns() {
  echo "$(lun_json 0 ''), $(lun_json 1 ', "removable": true'), $(lun_json 2 ', "read_only": true'),"
  echo "        $(lun_json 3 ', "physical_block_size": 4096')"
}
base=
start_target() {
  case $target in
    goiser) GOISER_LUNS=$(goiser_luns) start_goiser "$out" 0; url=$GOISER_URL; base=$GOISER_BASE; tpid=$GOISER_PID ;;
    tgt) start_tgt "$out" "$(free_port)" 1G; url=$TGT_URL; tpid=$TGT_PID ;;
  esac
}
tpid=
if [ -z "$url" ]; then start_target; fi
log "target $target at $url; results in $out"

iscsi-test-cu -l >"$out/list.txt"
suites=$(awk -F. '$1 == "ALL" && NF == 2 { print $2 }' "$out/list.txt" | grep -E -- "$suite_re" || true)
[ -n "$suites" ] || die "no suite matches $suite_re"

: >"$out/results.tsv"
problems=()
for s in $suites; do
  awk -F. -v s="$s" '$1 == "ALL" && $2 == s && NF == 3 { print $3 }' "$out/list.txt" >"$out/logs/$s.expected"
  note=
  u=$url
  [ -z "$base" ] || u=$base/$(lun_of "$s")
  # In the background and waited for, so that INT/TERM reach our trap at
  # once; the suite's own process (timeout puts itself in a new process
  # group) is in PIDS_TO_STOP while it runs.
  timeout -k 5 "$suite_timeout" iscsi-test-cu --dataloss \
    -i iqn.2026-11.dev.goiser:conformance-initiator-1 \
    -I iqn.2026-11.dev.goiser:conformance-initiator-2 \
    -t "ALL.$s" "$u" "$u" </dev/null >"$out/logs/$s.log" 2>&1 &
  suite_pid=$!
  PIDS_TO_STOP=("$suite_pid:6" "${PIDS_TO_STOP[@]}")
  rc=0; wait "$suite_pid" || rc=$?
  PIDS_TO_STOP=("${PIDS_TO_STOP[@]:1}")
  if [ $rc -eq 124 ] || [ $rc -eq 137 ]; then
    note="suite timed out after ${suite_timeout} s"
    problems+=("ALL.$s: $note")
  elif [ $rc -gt 1 ]; then
    note="iscsi-test-cu exited with status $rc"
  fi
  if [ -n "$tpid" ] && ! kill -0 "$tpid" 2>/dev/null; then
    note="${note:+$note; }the target process died"
    problems+=("ALL.$s: the $target process died during this suite (log in $out)")
    start_target
    log "restarted $target at $url for the remaining suites"
  fi
  awk -v suite="$s" -v expected="$out/logs/$s.expected" -v note="$note" \
    -f hack/conformance-parse.awk "$out/logs/$s.log" >>"$out/results.tsv"
done

# Table per suite.
awk -F'\t' '
  $1 != last { printf "\n%s\n", $1; last = $1 }
  { tag = ($3 == "passed" ? "ok  " : $3 == "failed" ? "FAIL" : "skip")
    m = $4; if (length(m) > 160) m = substr(m, 1, 157) "..."
    printf "  %s %-28s %s\n", tag, $2, ($3 == "passed" ? "" : m) }' "$out/results.tsv"
echo

# Known failures: "Suite.Test reason..." a line; # comments.
touch "$out/known.txt"
[ -f "$known" ] && awk '!/^[ \t]*(#|$)/ { print $1 }' "$known" >"$out/known.txt"
new_fail=$(awk -F'\t' 'FILENAME == ARGV[1] { k[$1] = 1; next } $3 == "failed" && !(($1 "." $2) in k) { print $1 "." $2 "\t" $4 }' "$out/known.txt" "$out/results.tsv")
now_pass=$(awk -F'\t' 'FILENAME == ARGV[1] { k[$1] = 1; next } $3 != "failed" && (($1 "." $2) in k) { print $1 "." $2 " (" $3 ")" }' "$out/known.txt" "$out/results.tsv")
read -r passed failed skipped < <(awk -F'\t' '{ n[$3]++ } END { print n["passed"] + 0, n["failed"] + 0, n["skipped"] + 0 }' "$out/results.tsv")

# results.json: the same rows plus the totals.
case $target in
  goiser) build=$(build_of "${GOISERD:-bin/goiserd}") ;;
  tgt) build="tgt $(dpkg-query -W -f '${Version}' tgt 2>/dev/null || echo '?')" ;;
esac
awk -F'\t' -v target="$target" -v url="$url" -v date="$(date -u +%Y-%m-%dT%H:%M:%SZ)" -v build="$build" \
  -v p="$passed" -v f="$failed" -v s="$skipped" '
  function q(x) { gsub(/\\/, "\\\\", x); gsub(/"/, "\\\"", x); gsub(/[\001-\037]/, " ", x); return "\"" x "\"" }
  BEGIN { printf "{\n  \"target\": %s,\n  \"build\": %s,\n  \"url\": %s,\n  \"date\": %s,\n  \"passed\": %d,\n  \"failed\": %d,\n  \"skipped\": %d,\n  \"tests\": [", q(target), q(build), q(url), q(date), p, f, s }
  { printf "%s\n    {\"suite\": %s, \"test\": %s, \"status\": %s, \"messages\": %s}", (NR > 1 ? "," : ""), q($1), q($2), q($3), q($4) }
  END { print "\n  ]\n}" }' "$out/results.tsv" >"$out/results.json"

status=0
if [ -n "$new_fail" ]; then
  echo "conformance: failures not in $known:"
  echo "$new_fail" | awk -F'\t' '{ m = $2; if (length(m) > 200) m = substr(m, 1, 197) "..."; printf "  %s: %s\n", $1, m }'
  status=1
fi
if [ -n "$now_pass" ]; then
  echo "conformance: listed in $known but no longer failing (remove them):"
  echo "$now_pass" | sed 's/^/  /'
fi
for p in "${problems[@]}"; do echo "conformance: $p"; status=1; done
if [ "$passed" -lt "$floor" ]; then
  echo "conformance: only $passed passed, below the floor of $floor"
  status=1
fi
echo "conformance: results in $out/results.tsv and $out/results.json"
echo "conformance: $passed passed, $failed failed, $skipped skipped"
exit $status
