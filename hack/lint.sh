#!/usr/bin/env bash
# gofmt, go vet, staticcheck, shellcheck, and the import rules of
# docs/architecture.md.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH=$PATH:/usr/local/go/bin:$HOME/go/bin
fail=0
mapfile -t gofiles < <(git ls-files '*.go'; git ls-files -o --exclude-standard '*.go')
unformatted=$(gofmt -l "${gofiles[@]}" || true)
if [ -n "$unformatted" ]; then echo "lint: gofmt would change:"; echo "$unformatted"; fail=1; fi
go vet ./... || fail=1
staticcheck ./... || fail=1
mapfile -t scripts < <(git ls-files '*.sh' .ci/run; git ls-files -o --exclude-standard '*.sh')
shellcheck -S warning "${scripts[@]}" || fail=1
hack/check-imports.sh || fail=1
hack/check-imports-selftest.sh >/dev/null || { echo "lint: the import check does not catch violations (hack/check-imports-selftest.sh)"; fail=1; }
[ $fail -eq 0 ] && echo "lint: ok"
exit $fail
