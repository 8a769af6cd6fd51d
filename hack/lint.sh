#!/usr/bin/env bash
# gofmt, go vet, staticcheck, and the import rules of docs/architecture.md.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH=$PATH:/usr/local/go/bin:$HOME/go/bin
fail=0
unformatted=$(gofmt -l $(git ls-files '*.go' 2>/dev/null; git ls-files -o --exclude-standard '*.go' 2>/dev/null) 2>/dev/null || true)
if [ -n "$unformatted" ]; then echo "lint: gofmt would change:"; echo "$unformatted"; fail=1; fi
go vet ./... || fail=1
staticcheck ./... || fail=1
hack/check-imports.sh || fail=1
[ $fail -eq 0 ] && echo "lint: ok"
exit $fail
