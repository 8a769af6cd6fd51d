#!/usr/bin/env bash
# Stage 34-libiscsi-iser: libiscsi's user-space iSER initiator (Debian
# libiscsi-bin 1.19, iser:// URLs) against goiserd and against LIO
# (ib_isert, the reference) over iSER on rxe0, in the same stage and boot:
# for each target, RXE_LIBISCSI_LOGINS (default 20) logins in a row with
# iscsi-inq, each a fresh RDMA CM connection, login, INQUIRY and logout,
# counted; then iscsi-test-cu over iser:// for the suites
# RXE_LIBISCSI_SUITES (a regex on the ALL.<Suite> names, default a small
# read/write set) with the flags of hack/conformance.sh (--dataloss, two
# initiator names, the URL twice), each under a timeout, with its CUnit
# counts. libiscsi 1.19's iSER client is unreliable on rxe against LIO
# itself (docs/conformance.md), so the stage does not demand perfection: it
# demands that goiserd does at least as well as LIO on logins that worked
# and on iscsi-test-cu tests that passed (which suites run to their end is
# the crashing client's luck, so it is reported, not compared), and that at
# least one login to goiserd worked.
# The RXE_LIBISCSI_* variables are read on the host in the build phase (the
# guest does not see the host's environment) and passed on in $RXE_BIN.
# In every make test; alone:
#   RXE_STAGES='^34-' hack/rxe/test.sh
set -euo pipefail
phase=${1:?usage: 34-libiscsi-iser.sh build|run}
name=34-libiscsi-iser
conf=$RXE_BIN/$name.env

if [ "$phase" = build ]; then
  go build -o "$RXE_BIN/goiserd" ./cmd/goiserd
  for t in iscsi-inq iscsi-test-cu; do
    command -v "$t" >/dev/null || { echo "$name: $t missing on the host (libiscsi-bin, hack/deps.sh)"; exit 1; }
  done
  {
    printf 'targets=%q\n' "${RXE_LIBISCSI_TARGETS:-goiserd lio}"
    printf 'logins=%q\n' "${RXE_LIBISCSI_LOGINS:-20}"
    printf 'suites=%q\n' "${RXE_LIBISCSI_SUITES:-^(Inquiry|ReadCapacity10|TestUnitReady|Read10|Write10)\$}"
  } >"$conf"
  exit 0
fi

. "$RXE_REPO/hack/rxe/stage-lib.sh"
. "$RXE_REPO/hack/rxe/lio-lib.sh"
targets="goiserd lio" logins=20 suites=. # defaults; the build phase wrote the real values
# shellcheck source=/dev/null
. "$conf"
work=/tmp/$name
rm -rf "$work"
mkdir -p "$work"
gpid=
t0=$(date +%s.%N)
say() { echo "== $(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%5.1fs", b - a }') $*"; }
fail() {
  echo "$name: FAIL: $*"
  tail -n 30 "$work/target.log" 2>/dev/null || true
  dmesg | tail -n 20
  exit 1
}
stop_goiserd() {
  if [ -n "$gpid" ] && kill -0 "$gpid" 2>/dev/null; then
    kill -TERM "$(pgrep -P "$gpid" -x goiserd)" 2>/dev/null || true
    rxe_bg_wait "$gpid" 15 >/dev/null 2>&1 || true
  fi
  gpid=
}
cleanup() {
  local rc=$?
  trap - EXIT
  stop_goiserd
  lio_teardown || true
  exit "$rc"
}
trap cleanup EXIT

iscsi-test-cu -l >"$work/list" 2>&1 || true
mapfile -t todo < <(awk -F. '$1 == "ALL" && NF == 2 { print $2 }' "$work/list" | grep -E -- "$suites" || true)
[ ${#todo[@]} -gt 0 ] || fail "no iscsi-test-cu suite matches $suites"

declare -A r_ok r_passed r_passed1
# run TARGET: one target's logins and suites; results in the r_* arrays.
run() {
  local target=$1 port portal iqn url ok=0 i s rc counts completed=0 passed=0 failed=0 completed1=0 passed1=0 summary=() errs
  port=$(rxe_fresh_port)
  portal=$RXE_ADDR:$port
  : >"$work/target.log"
  if [ "$target" = lio ]; then
    iqn=iqn.2003-01.org.linux-iscsi.rxe:libiscsi
    say "LIO over iSER on $portal, rd_mcp LUN 0 of 64 MiB"
    lio_load || fail "load LIO"
    lio_target "$iqn" 64 || fail "LIO target"
    lio_portal "$portal" iser || fail "LIO iSER portal"
    lio_demo_mode || fail "LIO demo mode"
    lio_enable || fail "LIO enable"
  else
    iqn=iqn.2026-11.dev.goiser:rxe-libiscsi
    say "goiserd over iSER on $portal, mem LUN 0 of 64 MiB"
    timeout 900 "$RXE_BIN/goiserd" -listen "$portal" -iser "$portal" -target "$iqn" -lun mem:64M \
      >"$work/target.log" 2>&1 </dev/null &
    gpid=$!
  fi
  rxe_wait_listen "$port" 15 || fail "nothing listens on RDMA CM port $port"
  url=iser://$portal/$iqn/0

  say "$logins logins with iscsi-inq $url"
  : >"$work/errors.$target"
  for ((i = 1; i <= logins; i++)); do
    if timeout 20 iscsi-inq "$url" >"$work/inq.$target.$i" 2>&1 </dev/null; then
      ok=$((ok + 1))
    else
      echo "try $i (status $?): $(grep -v '^$' "$work/inq.$target.$i" | tail -n 2 | tr '\n' ' ')" | tee -a "$work/errors.$target"
    fi
  done
  say "$target: iscsi-inq over iSER: $ok of $logins logins worked"
  errs=$(sed 's/^try [0-9]* //' "$work/errors.$target" | sort | uniq -c | sort -rn | head -n 3 | sed 's/^ *//' | tr '\n' ';')

  # Twice: with the flags of hack/conformance.sh (two initiator names, the
  # URL twice: two iSER contexts in one process), then with one URL (one
  # context), to tell a crash of the two-context case apart.
  local mode urls
  for mode in two one; do
    urls=("$url" "$url")
    [ "$mode" = one ] && urls=("$url")
    for s in "${todo[@]}"; do
      say "$target: iscsi-test-cu ALL.$s over $url ($mode URL(s))"
      rc=0
      timeout -k 5 120 iscsi-test-cu --dataloss \
        -i iqn.2026-11.dev.goiser:conformance-initiator-1 \
        -I iqn.2026-11.dev.goiser:conformance-initiator-2 \
        -t "ALL.$s" "${urls[@]}" </dev/null >"$work/cu.$target.$mode.$s" 2>&1 || rc=$?
      # CUnit's "Run Summary" line for tests: Total Ran Passed Failed Inactive.
      counts=$(awk '$1 == "tests" { print $3, $4, $5; exit }' "$work/cu.$target.$mode.$s")
      # Completed: CUnit's summary, an exit status of 0 or 1, and tests that
      # ran (a client that could not connect prints a summary of 0 tests).
      if [ -n "$counts" ] && [ $rc -le 1 ] && [ "${counts%% *}" -gt 0 ]; then
        read -r _ p f <<<"$counts"
        if [ "$mode" = two ]; then
          completed=$((completed + 1)) passed=$((passed + p)) failed=$((failed + f))
        else
          completed1=$((completed1 + 1)) passed1=$((passed1 + p))
        fi
        summary+=("$s/$mode: ran/passed/failed $counts")
      else
        summary+=("$s/$mode: did not complete (status $rc: $(grep -v '^$' "$work/cu.$target.$mode.$s" | tail -n 1))")
      fi
      echo "    ${summary[-1]}"
      # The failed tests and the reasons CUnit printed, for the log.
      grep -E 'FAILED|Test: .*\.\.\.' "$work/cu.$target.$mode.$s" | grep -B1 -E 'FAILED' | head -n 12 | sed 's/^/      /' || true
    done
  done
  r_ok[$target]=$ok r_passed[$target]=$passed r_passed1[$target]=$passed1
  rxe_note "libiscsi iser:// against $target: $ok/$logins logins; iscsi-test-cu suites completed $completed/${#todo[@]} (two URLs), $completed1/${#todo[@]} (one URL); tests passed $passed (two URLs), $passed1 (one URL)"
  rxe_note "  $(printf '%s; ' "${summary[@]}")"
  [ -z "$errs" ] || rxe_note "  login failures: $errs"
  if [ "$target" = lio ]; then lio_teardown || fail "LIO teardown"; else stop_goiserd; fi
}

for t in $targets; do run "$t"; done

# libiscsi's iSER client crashes at random against both targets, so which
# suites run to their end is the client's luck: the comparison is on the
# logins and on the tests that passed (both modes together).
if [ -n "${r_ok[goiserd]:-}" ]; then
  [ "${r_ok[goiserd]}" -ge 1 ] || fail "no login to goiserd worked"
  if [ -n "${r_ok[lio]:-}" ]; then
    [ "${r_ok[goiserd]}" -ge "${r_ok[lio]}" ] || fail "goiserd: ${r_ok[goiserd]} logins worked, LIO ${r_ok[lio]}"
    g=$((r_passed[goiserd] + r_passed1[goiserd])) l=$((r_passed[lio] + r_passed1[lio]))
    [ "$g" -ge "$l" ] || fail "goiserd: $g iscsi-test-cu tests passed, LIO $l"
  fi
fi
say "done"
