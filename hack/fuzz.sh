#!/usr/bin/env bash
# Runs every go test -fuzz target in the module for FUZZTIME each (default
# 20s). The seed corpora already run as ordinary tests in make test-unit;
# this is the long-running search for new crashers. Usage:
#   make fuzz                    all targets
#   FUZZTIME=5m make fuzz        longer
#   FUZZ=FuzzExecute make fuzz   targets whose name matches a regex
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH=$PATH:/usr/local/go/bin:$HOME/go/bin
fuzztime=${FUZZTIME:-20s}
match=${FUZZ:-.}
fail=0
while read -r file name; do
  pkg=./$(dirname "$file")
  [[ $name =~ $match ]] || continue
  echo "fuzz: $pkg $name for $fuzztime"
  if ! go test -run '^$' -fuzz "^${name}\$" -fuzztime "$fuzztime" "$pkg"; then
    echo "fuzz: $pkg $name FAILED (the crasher is in $pkg/testdata/fuzz/$name)"
    fail=1
  fi
done < <(grep -rHo --include='*_test.go' '^func Fuzz[A-Za-z0-9_]*' . | sed 's|^\./||; s|:func | |' | sort -u)
exit $fail
