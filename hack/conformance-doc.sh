#!/usr/bin/env bash
# Writes docs/conformance.md from the results of the last two conformance
# runs, so the numbers in the docs are the ones measured:
#
#   hack/conformance.sh                  # goiser -> bin/conformance/goiser
#   hack/conformance.sh --target tgt     # tgt    -> bin/conformance/tgt
#   hack/conformance-doc.sh [OUT]        # -> docs/conformance.md (or OUT)
#
# The reasons for skips we do not claim come from hack/conformance-skips.txt
# ("Suite.Test reason" a line; a "Suite.*" line covers a whole suite).
set -euo pipefail
cd "$(dirname "$0")/.."
ours=bin/conformance/goiser/results.tsv theirs=bin/conformance/tgt/results.tsv
out=${1:-docs/conformance.md}
for f in "$ours" "$theirs"; do
  [ -s "$f" ] || { echo "conformance-doc: $f is missing: run hack/conformance.sh (and --target tgt) first" >&2; exit 2; }
done
count() { awk -F'\t' -v s="$2" '$3 == s { n++ } END { print n + 0 }' "$1"; }
json_field() { awk -F'"' -v k="$2" '$2 == k { print $4; exit }' "$(dirname "$1")/results.json"; }

{
cat <<EOF
# Conformance: libiscsi's iscsi-test-cu

\`make conformance\` runs libiscsi's conformance suite (Debian package
\`libiscsi-bin\`, \`iscsi-test-cu\` 1.19) against \`goiserd\` on 127.0.0.1 and fails on
any failure that is not listed in \`hack/conformance-known-failures.txt\`, on a
suite that hangs past its timeout, on a daemon crash, or when fewer than 210
tests pass (a floor just under today's count, so that tests turning into skips
are caught).

\`\`\`sh
make conformance                          # build goiserd, run every suite against it
hack/conformance.sh --target tgt          # the same suites against Debian's tgt (reference)
hack/conformance.sh --suite 'Read|Write'  # only the suites whose name matches
hack/conformance.sh --url iscsi://127.0.0.1:3260/iqn.2026-11.dev.goiser:default/0  # a running target
hack/conformance-doc.sh                   # rewrite this page from the last two runs
\`\`\`

How it runs: each \`ALL.<Suite>\` of \`iscsi-test-cu -l\` runs on its own, as
\`timeout -k 5 120 iscsi-test-cu --dataloss -i <iqn-1> -I <iqn-2> -t ALL.<Suite> URL URL\`
(two initiator names for the reservation tests, the URL twice so
MultipathIO has a second path). The script starts the target on a free port
and stops it afterwards:

- goiserd, from a temporary config with four 1 GiB in-memory LUNs. LUN 0 is a
  plain disk and serves every suite except those that test what a plain disk
  does not have: PreventAllow and StartStopUnit run on LUN 1
  (\`"removable": true\`), ReadOnly on LUN 2 (\`"read_only": true\`), and
  CompareAndWrite, WriteSame10 and WriteSame16 on LUN 3
  (\`"physical_block_size": 4096\`, without which their unaligned and
  mis-sized request tests skip with "LBPPB < 2").
- tgt (\`tgtd -f\` on a private control port), one 1 GiB LUN 1 on a /dev/shm
  file (\`rdwr\`), open to all initiators, for every suite.

CUnit's verbose output is parsed per test (\`hack/conformance-parse.awk\`):
libiscsi reports a skipped test as a CUnit pass that printed \`[SKIPPED]\`; a
test that never reports (crash, hang) is a failure. Results go to
\`bin/conformance/<target>/results.tsv\` and \`results.json\`, raw logs to
\`logs/\`.

## Latest numbers

| target | passed | failed | skipped | total | build | run |
| --- | ---: | ---: | ---: | ---: | --- | --- |
| goiser | $(count "$ours" passed) | $(count "$ours" failed) | $(count "$ours" skipped) | $(wc -l <"$ours") | $(json_field "$ours" build) | $(json_field "$ours" date) |
$(for b in file direct; do f=bin/conformance/goiser-$b/results.tsv; [ -s "$f" ] || continue
  echo "| goiser, --backend $b | $(count "$f" passed) | $(count "$f" failed) | $(count "$f" skipped) | $(wc -l <"$f") | $(json_field "$f" build) | $(json_field "$f" date) |"; done)
| tgt (Debian 12) | $(count "$theirs" passed) | $(count "$theirs" failed) | $(count "$theirs" skipped) | $(wc -l <"$theirs") | $(json_field "$theirs" build) | $(json_field "$theirs" date) |

\`make conformance\` runs the first row (in-memory LUNs). \`--backend file\` puts
the same LUNs in sparse files on /dev/shm (the file backend, pread/pwrite);
\`--backend direct\` in files opened with O_DIRECT on a disk file system.

Per suite (passed/failed/skipped):

| suite | goiser | tgt |
| --- | --- | --- |
EOF
awk -F'\t' '
  FILENAME == ARGV[1] { o[$1, $3]++; if (!($1 in seen)) { seen[$1] = 1; order[++n] = $1 }; next }
  { t[$1, $3]++ }
  END { for (i = 1; i <= n; i++) { s = order[i]
    printf "| %s | %d/%d/%d | %d/%d/%d |\n", s, o[s, "passed"], o[s, "failed"], o[s, "skipped"], t[s, "passed"], t[s, "failed"], t[s, "skipped"] } }' "$ours" "$theirs"

cat <<EOF

## Tests goiser skips, and why

Every skip is a feature goiser does not claim:

| test | libiscsi says | why |
| --- | --- | --- |
EOF
awk -F'\t' '
  FILENAME == ARGV[1] { if ($0 ~ /^[ \t]*(#|$)/) next; k = $0; sub(/[ \t].*/, "", k); r = $0; sub(/^[^ \t]+[ \t]+/, "", r); why[k] = r; next }
  $3 == "skipped" { m = $4; sub(/ \|.*/, "", m); sub(/^\[SKIPPED\] */, "", m)
    if (why[$1 "." $2] == "" && why[$1 ".*"] != "") { # one row per suite
      if (!($1 in suite)) { suite[$1] = ++ns; sname[ns] = $1; smsg[ns] = m }
      scount[$1]++; next }
    w = why[$1 "." $2]; if (w == "") w = "(no reason recorded in hack/conformance-skips.txt)"
    printf "| %s.%s | %s | %s |\n", $1, $2, m, w }
  END { for (i = 1; i <= ns; i++) printf "| %s.* (%d tests) | %s | %s |\n", sname[i], scount[sname[i]], smsg[i], why[sname[i] ".*"] }' hack/conformance-skips.txt "$ours"

cat <<EOF

## Known failures

goiser: $(if awk '!/^[ \t]*(#|$)/ { f = 1 } END { exit !f }' hack/conformance-known-failures.txt; then echo; awk '!/^[ \t]*(#|$)/ { k = $1; $1 = ""; printf "- %s:%s\n", k, $0 }' hack/conformance-known-failures.txt; else echo "none (\`hack/conformance-known-failures.txt\` is empty)."; fi)

$(if grep -q '^iSCSIResiduals.Write10Residuals' hack/conformance-known-failures.txt; then cat <<'TXT'
The six Write*Residuals failures are the test's, not the target's. A WRITE
whose data is shorter than its transfer length (iSCSI EDTL below the CDB's
length) changes nothing on the medium and ends with ILLEGAL REQUEST / INVALID
FIELD IN COMMAND INFORMATION UNIT: FCP-4's choice b), which never leaves a torn
sector (an audit found goiserd writing half a sector and answering GOOD).
Debian's libiscsi 1.19 accepts only choice a), GOOD with the first EDTL bytes
written, partial sector included; upstream libiscsi's
test-tool/test_write_residuals.c accepts choice b) as well (and then checks
that nothing was written). tgt answers GOOD and writes the partial sector.
TXT
fi)

$(f=bin/conformance/goiser-direct/results.tsv; if [ -s "$f" ] && [ "$(count "$f" failed)" -gt 0 ]; then
  echo 'goiser with `--backend direct` (not part of `make conformance` until fixed): the'
  echo "SCSI core's own buffers (VERIFY, COMPARE AND WRITE, ORWRITE, WRITE SAME) and"
  echo 'the data buffers of residual cases (transfers shorter than a block) are not aligned to 512 bytes, and O_DIRECT'
  echo 'refuses them (goiserd logs "O_DIRECT I/O not aligned"). Owner: scsi/backend.'; echo
  awk -F'\t' '$3 == "failed" { m = $4; sub(/ \|.*/, "", m); if (length(m) > 150) m = substr(m, 1, 147) "..."; printf "- %s.%s: %s\n", $1, $2, m }' "$f"; echo; fi)
tgt, for reference (\`hack/conformance-known-failures-tgt.txt\`):

$(awk '!/^[ \t]*(#|$)/ { k = $1; $1 = ""; printf "- %s:%s\n", k, $0 }' hack/conformance-known-failures-tgt.txt)
$(cat hack/conformance-iser.md)
EOF
} | awk '
  # A table row, an empty line (a backend run that is missing), a table row:
  # drop the empty line so the table stays one table.
  held { if (!($0 ~ /^\|/ && last ~ /^\|/)) print ""; held = 0 }
  $0 == "" && last ~ /^\|/ { held = 1; next }
  { print; last = $0 }' >"$out"
echo "conformance-doc: wrote $out"
