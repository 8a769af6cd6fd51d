#!/usr/bin/env bash
# Benchmark, not a test (make bench-latency): latency percentiles and IOPS of
# goiserd and Debian's tgt, reads and writes, measured by one client (our Go
# initiator, cmd/goiser-bench) in one interleaved run; writes the table to
# docs/bench/latency.md, the percentile plot to docs/bench/latency.svg, the
# latency CDFs to docs/bench/latency-cdf.svg and everything, histograms
# included, as JSON to docs/bench/latency.json.
#
#   hack/bench-latency.sh [--rounds N] [--seconds S] [--workloads LIST]
#                         [--targets "goiser tgt"] [--out FILE] [--svg FILE]
#                         [--cdf-svg FILE] [--json FILE] [--breakdown-svg FILE]
#                         [--no-attribute]
#
# Rows (default): 4 KiB random read and write at QD1 and QD32, 128 KiB
# sequential read and write at QD8. Each round runs every row on both targets
# back to back (ABBA order: reversed every other round) for S seconds after
# 0.5 s of warm-up; the table shows medians over the rounds with their
# spread, and ratios ours/tgt. Progress goes to stderr, a line per run. Both
# targets serve a 1 GiB LUN backed by a sparse file on /dev/shm (goiser: file
# backend, pread/pwrite; tgt: rdwr backing store), written once before the
# first round. Defaults: 5 rounds of 5 s (BENCH_ROUNDS, BENCH_SECONDS work
# too). Raw rounds go to bin/bench/latency.tsv. --out - prints the table only
# (no plots, no JSON); an empty --svg, --cdf-svg or --json skips that file.
#
# Each daemon's process is traced during the measured seconds
# (goiser-bench -attribute, eBPF on tracepoints; docs/bench/README.md): the
# report gets a section on where the target's time goes per I/O and the
# chart goes to docs/bench/latency-breakdown.svg (--breakdown-svg). Without
# root (or where the tracer cannot attach) goiser-bench says why on one line
# and the report says attribution was unavailable. Tracing adds a fraction of
# a microsecond to every syscall on the machine: --no-attribute measures
# without it.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH=$PATH:/usr/local/go/bin:$HOME/go/bin
. hack/conformance-lib.sh

rounds=${BENCH_ROUNDS:-5} seconds=${BENCH_SECONDS:-5} targets="goiser tgt"
workloads=4k-randread-qd1,4k-randwrite-qd1,4k-randread-qd32,4k-randwrite-qd32,128k-seqread-qd8,128k-seqwrite-qd8
out=docs/bench/latency.md svg=docs/bench/latency.svg cdf=docs/bench/latency-cdf.svg json=docs/bench/latency.json
breakdown=docs/bench/latency-breakdown.svg attribute=1
while [ $# -gt 0 ]; do
  case $1 in
    --rounds) rounds=$2; shift 2 ;;
    --seconds) seconds=$2; shift 2 ;;
    --workloads) workloads=$2; shift 2 ;;
    --targets) targets=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    --svg) svg=$2; shift 2 ;;
    --cdf-svg) cdf=$2; shift 2 ;;
    --json) json=$2; shift 2 ;;
    --breakdown-svg) breakdown=$2; shift 2 ;;
    --no-attribute) attribute=; shift ;;
    -h|--help) sed -n '2,/^set -e/p' "$0" | sed 's/^# \{0,1\}//;/^set -e/d'; exit 0 ;;
    *) die "unknown argument $1 (see --help)" ;;
  esac
done
[ "$out" != - ] || svg='' cdf='' json='' breakdown=''
[ -n "$attribute" ] || breakdown=
gbin=${GOISERD:-bin/goiserd}
mkdir -p bin/bench
# build PKG: into bin/, stamped with the commit when this is a git checkout.
build() { go build -buildvcs=true -o bin/ "$1" 2>/dev/null || go build -buildvcs=false -o bin/ "$1" || die "cannot build $1"; }
[ -n "${GOISERD:-}" ] || build ./cmd/goiserd
build ./cmd/goiser-bench

# stamp_of BINARY: the commit a Go binary was built from ("commit 1234abc",
# "... plus uncommitted changes"), else $GOISER_BUILD, else "unknown".
stamp_of() {
  local r
  r=$(go version -m "$1" 2>/dev/null | awk '{ split($2, kv, "=") } kv[1] == "vcs.revision" { r = substr(kv[2], 1, 7) }
    kv[1] == "vcs.modified" { m = kv[2] } END { if (r != "") print "commit " r (m == "true" ? " plus uncommitted changes" : "") }')
  echo "${r:-${GOISER_BUILD:-unknown}}"
}

work=$(mktemp -d /tmp/goiser-bench-latency.XXXXXX)
CLEANUP_PATHS+=("$work")
trap stop_all EXIT
trap 'exit 130' INT TERM

args=() notes=()
for t in $targets; do
  case $t in
    goiser)
      img=$(mktemp -u /dev/shm/goiser-bench.XXXXXX); CLEANUP_PATHS+=("$img")
      GOISER_LOG_LEVEL=warn start_goiser "$work" 0 1G "$img"
      url=$GOISER_URL pid=$GOISER_PID
      notes+=(-note "goiser: goiserd (\`$gbin\` built from $(stamp_of "$gbin")), file backend (pread/pwrite) on a sparse 1 GiB file on /dev/shm (tmpfs).") ;;
    tgt)
      start_tgt "$work" "$(free_port)" 1G
      url=$TGT_URL pid=$TGT_PID
      notes+=(-note "tgt: Debian's tgt $(dpkg-query -W -f '${Version}' tgt 2>/dev/null || echo '?') (\`tgtd\`), rdwr backing store on a sparse 1 GiB file on /dev/shm (tmpfs): the same storage as goiser's.") ;;
    *) die "unknown target $t (goiser or tgt)" ;;
  esac
  args+=(-target "$t=$url")
  [ -z "$attribute" ] || args+=(-attribute "$t=$pid")
  log "$t (pid $pid) at $url"
done
notes+=(-note "Made by \`make bench-latency\` (\`hack/bench-latency.sh --rounds $rounds --seconds $seconds\`), which starts both targets on free 127.0.0.1 ports and runs the command above. Client, targets and anything else running share this machine's CPUs, so absolute numbers swing with load; the ratios are what count.")

nwl=$(tr ',' '\n' <<<"$workloads" | grep -c .)
ntg=$(wc -w <<<"$targets")
limit=$(awk -v r="$rounds" -v w="$nwl" -v t="$ntg" -v s="$seconds" 'BEGIN { printf "%d", r * w * t * (s + 1.5) + 180 }')
log "measuring: $rounds rounds x $nwl workloads x $ntg targets x ${seconds} s (time limit ${limit} s)"
timeout -k 10 "$limit" bin/goiser-bench "${args[@]}" -workloads "$workloads" -rounds "$rounds" -seconds "$seconds" \
  -title "iSCSI/TCP latency and IOPS: goiser vs tgt" -commit "$(stamp_of "$gbin")" \
  -out "$out" ${svg:+-svg "$svg"} ${cdf:+-cdf-svg "$cdf"} ${json:+-json "$json"} \
  ${breakdown:+-attribute-svg "$breakdown"} -raw bin/bench/latency.tsv \
  "${notes[@]}" </dev/null ||
  { tail -n 20 "$work"/*.log >&2 2>/dev/null || true; die "goiser-bench failed"; }
[ "$out" = - ] || log "wrote $out${svg:+, $svg}${cdf:+, $cdf}${json:+, $json}${breakdown:+ and $breakdown (when the tracer attached)}"
