#!/usr/bin/env bash
# Enforces the import graph of docs/architecture.md:
#   - import "C" only in cgo/...
#   - scsi never imports iscsi, iser, rdma or cgo; iscsi never imports iser, rdma or cgo
#   - rdma never imports a provider (rdma/soft, cgo/verbs)
#   - iser never imports a provider either (its tests may use rdma/soft)
#   - everything but cgo/... builds with CGO_ENABLED=0
# CHECK_ROOT runs the check on another module tree (its self-test does).
set -euo pipefail
cd "${CHECK_ROOT:-$(dirname "$0")/..}"
export PATH=$PATH:/usr/local/go/bin
mod=$(go list -m)
fail=0
bad=$(grep -rl --include='*.go' '^import "C"' . | grep -v '^\./cgo/' || true)
if [ -n "$bad" ]; then echo "imports: import \"C\" outside cgo/: $bad"; fail=1; fi

check() { # check PKGPATTERN FORBIDDEN-REGEX
  local out
  out=$(go list -deps -f '{{.ImportPath}}' "$1" 2>/dev/null | grep -E "^$mod/($2)(/|\$)" || true)
  if [ -n "$out" ]; then echo "imports: $1 must not depend on: $(echo $out)"; fail=1; fi
}
for p in $(go list ./scsi/... 2>/dev/null); do check "$p" 'iscsi|iser|rdma|cgo'; done
for p in $(go list ./iscsi/... 2>/dev/null); do check "$p" 'iser|rdma|cgo'; done
for p in $(go list ./rdma/... 2>/dev/null | grep -v -E '/rdma/(soft|rdmatest)'); do check "$p" 'rdma/soft|cgo'; done
for p in $(go list ./iser/... 2>/dev/null); do check "$p" 'rdma/soft|cgo'; done
for p in $(go list ./rdma/driver/... 2>/dev/null); do check "$p" 'rdma$|iscsi|iser|scsi|cgo'; done

pkgs=$(go list ./... | grep -v "^$mod/cgo/" || true)
if [ -n "$pkgs" ] && ! CGO_ENABLED=0 go build $pkgs; then
  echo "imports: packages outside cgo/ must build with CGO_ENABLED=0"; fail=1
fi
[ $fail -eq 0 ] && echo "imports: ok"
exit $fail
