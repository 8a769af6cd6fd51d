#!/usr/bin/env bash
# Self-test of hack/check-imports.sh: a scratch module with the same module
# path breaks one rule at a time; the check must fail and name the rule.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
export PATH=$PATH:/usr/local/go/bin
mod=$(cd "$here/.." && go list -m)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

setup() {
  rm -rf "$tmp/m" && mkdir -p "$tmp/m"
  printf 'module %s\n\ngo 1.26\n' "$mod" >"$tmp/m/go.mod"
  mkdir -p "$tmp/m/scsi" "$tmp/m/iscsi" "$tmp/m/iser" "$tmp/m/rdma/soft" "$tmp/m/rdma/driver" "$tmp/m/cgo/verbs"
  printf 'package scsi\n' >"$tmp/m/scsi/scsi.go"
  printf 'package iscsi\n\nimport _ "%s/scsi"\n' "$mod" >"$tmp/m/iscsi/iscsi.go"
  printf 'package driver\n' >"$tmp/m/rdma/driver/driver.go"
  printf 'package rdma\n\nimport _ "%s/rdma/driver"\n' "$mod" >"$tmp/m/rdma/rdma.go"
  printf 'package soft\n\nimport _ "%s/rdma/driver"\n' "$mod" >"$tmp/m/rdma/soft/soft.go"
  printf 'package iser\n\nimport (\n\t_ "%s/iscsi"\n\t_ "%s/rdma"\n)\n' "$mod" "$mod" >"$tmp/m/iser/iser.go"
  printf 'package iser\n\nimport _ "%s/rdma/soft"\n' "$mod" >"$tmp/m/iser/soft_test.go"
  printf 'package verbs\n\n// #include <stdlib.h>\nimport "C"\n\nvar _ = C.free\n' >"$tmp/m/cgo/verbs/verbs.go"
}

fail=0
expect() { # expect NAME WANT-STATUS WANT-TEXT
  local out rc=0
  out=$(CHECK_ROOT="$tmp/m" "$here/check-imports.sh" 2>&1) || rc=$?
  if { [ "$2" = ok ] && [ $rc -ne 0 ]; } || { [ "$2" = fail ] && [ $rc -eq 0 ]; } || ! grep -q -- "$3" <<<"$out"; then
    echo "check-imports selftest: $1: want $2 with \"$3\", got rc=$rc:"; echo "$out"; fail=1
  else
    echo "check-imports selftest: $1: ok"
  fi
}

setup
expect "clean tree" ok "imports: ok"

setup
printf 'package scsi\n\n// #include <stdlib.h>\nimport "C"\n\nvar _ = C.free\n' >"$tmp/m/scsi/cgo.go"
expect 'import "C" outside cgo/' fail 'import "C" outside cgo/'

setup
printf 'package scsi\n\nimport _ "%s/iscsi"\n' "$mod" >"$tmp/m/scsi/up.go"
printf 'package iscsi\n' >"$tmp/m/iscsi/iscsi.go"
expect "scsi imports iscsi" fail "must not depend on"

setup
printf 'package iscsi\n\nimport _ "%s/rdma"\n' "$mod" >"$tmp/m/iscsi/iscsi.go"
expect "iscsi imports rdma" fail "must not depend on"

setup
printf 'package rdma\n\nimport _ "%s/rdma/soft"\n' "$mod" >"$tmp/m/rdma/rdma.go"
expect "rdma imports a provider" fail "must not depend on"

setup
printf 'package iser\n\nimport _ "%s/rdma/soft"\n' "$mod" >"$tmp/m/iser/soft.go"
expect "iser imports a provider" fail "must not depend on"

exit $fail
