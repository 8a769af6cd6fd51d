# goiser: iSCSI/TCP and iSER target in Go. Every target installs what it
# needs itself (hack/deps.sh is idempotent and quick when nothing is missing).
#
#   make run        build and start the target daemon on the built-in default
#   make test       everything CI runs: lint, unit (-race), fuzz seeds,
#                   libiscsi conformance over TCP, and the Soft-RoCE guest tier
#   make demo       iSER vs TCP in a Soft-RoCE guest, about a minute, no RDMA
#                   hardware needed
#   make bench      benchmarks (never part of make test)

GO        ?= go
export PATH := $(PATH):/usr/local/go/bin:$(HOME)/go/bin
BIN       := bin

.PHONY: all build run deps test test-unit lint conformance test-rxe rxe-shell \
        rxe-selftest fuzz demo bench bench-tcp bench-latency bench-iser bench-go clean

all: build

deps:
	@hack/deps.sh

build:
	@mkdir -p $(BIN)
	$(GO) build -buildvcs=auto -o $(BIN)/ ./cmd/...

run: deps build
	@hack/run.sh

test: deps lint test-unit conformance test-rxe
	@echo "make test: all tiers passed"

lint: deps
	@hack/lint.sh

test-unit: deps
	@hack/test-unit.sh

conformance: deps build
	@hack/conformance.sh

test-rxe: deps
	@hack/rxe/test.sh

rxe-shell: deps
	@hack/rxe/shell.sh

# Checks that the guest harness fails loudly (no QEMU, broken stage, rxe-up
# failure, watchdog); boots several guests, so it is not part of make test.
rxe-selftest: deps
	@hack/rxe/selftest.sh

fuzz: deps
	@hack/fuzz.sh

# One LUN over iSER and TCP in the Soft-RoCE guest, Linux's initiator over
# both, QD1 and QD32 latency beside the verbs floor (hack/demo.sh).
demo: deps
	@hack/demo.sh

bench: bench-go bench-tcp bench-latency

bench-go: deps
	$(GO) test -run '^$$' -bench . -benchmem ./...

bench-tcp: deps build
	@hack/bench-tcp.sh

# Median/p99/p99.9 latency and IOPS, reads and writes, goiserd vs tgt, with
# our Go initiator as the one client (docs/bench/latency.md, .svg, -cdf.svg, .json).
bench-latency: deps build
	@hack/bench-latency.sh

# iSER vs TCP, goiserd vs LIO vs tgt, in the Soft-RoCE guest, one client
# (docs/bench/iser.md, .svg, -cdf.svg, .json, .tsv).
bench-iser: deps
	@hack/bench-iser.sh

clean:
	rm -rf $(BIN)
