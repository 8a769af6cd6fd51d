# Parses the verbose CUnit output of one `iscsi-test-cu -t ALL.<Suite>` run
# into one tab-separated line per test:
#
#   <suite> TAB <test> TAB passed|failed|skipped TAB <messages joined by " | ">
#
# Used by hack/conformance.sh; POSIX awk (mawk and gawk both work).
#
# Variables (-v):
#   suite     the suite name, e.g. Inquiry
#   expected  a file with the test names the suite should run, one a line
#             (from `iscsi-test-cu -l`); a test that never reported a result
#             (the tool crashed, hung or lost the connection) is "failed"
#             with the message "no result".
#   note      a message appended to every test without a result (e.g.
#             "suite timed out after 120 s").
#
# What the output looks like (CUnit 2.1 verbose mode, libiscsi 1.19):
#
#   Suite: Inquiry
#     Test: Standard ...passed
#     Test: BlockLimits ...    [SKIPPED] Logical unit is fully provisioned. Skipping test
#   passed
#     Test: BeyondEol ...    [FAILED] GET_LBA_STATUS successful but should have failed ...
#   FAILED
#       1. test_get_lba_status_beyond_eol.c:38  - CU_ASSERT_EQUAL(_r,0)
#   Run Summary: ...
#
# A test that libiscsi skips still counts as "passed" for CUnit; it prints
# "[SKIPPED] <reason>" first, and that is how we tell a skip from a pass.
# Text printed after the result line (cleanup code of the test) is kept as
# messages but does not change the result, as in CUnit.

function flush(   st) {
	if (cur == "") return
	st = result
	if (st == "") { st = "failed"; addmsg("no result" (note != "" ? ": " note : "")) }
	else if (st == "passed" && skipped) st = "skipped"
	gsub(/\t/, " ", msgs)
	print suite "\t" cur "\t" st "\t" msgs
	seen[cur] = 1
	cur = ""
}

function addmsg(m) {
	sub(/^[ \t]+/, "", m)
	sub(/[ \t]+$/, "", m)
	if (m == "") return
	if (nmsg >= 12) { if (nmsg == 12) msgs = msgs " | ..."; nmsg++; return }
	msgs = (msgs == "" ? m : msgs " | " m)
	nmsg++
}

# Handles the text of a test block after "Test: NAME ...", or a later line.
function body(s) {
	if (result == "") {
		if (s ~ /^passed/) { result = "passed"; s = substr(s, 7) }
		else if (s ~ /^FAILED/) { result = "failed"; s = substr(s, 7) }
	}
	if (s ~ /\[SKIPPED\]/ && result == "") skipped = 1
	if (s ~ /^[ \t]*[0-9]+\. [^ ]+:[0-9]+ +- /) { addmsg(s); return }
	if (s ~ /\[(FAILED|SKIPPED)\]/) addmsg(s)
}

BEGIN {
	cur = ""
	while ((getline line < expected) > 0) if (line != "") want[line] = ++nwant
	close(expected)
}

/^  Test: / {
	flush()
	s = substr($0, 9)
	i = index(s, " ...")
	if (i == 0) { cur = s; rest = "" } else { cur = substr(s, 1, i - 1); rest = substr(s, i + 4) }
	result = ""; skipped = 0; msgs = ""; nmsg = 0
	body(rest)
	next
}

/^Run Summary:/ || /^Suite: / { flush(); next }

cur != "" { body($0) }

END {
	flush()
	for (t in want) if (!(t in seen)) order[want[t]] = t
	for (i = 1; i <= nwant; i++) if (i in order) {
		m = "no result" (note != "" ? ": " note : "")
		print suite "\t" order[i] "\tfailed\t" m
	}
}
