#!/usr/bin/env bash
# Benchmark, not a test (make bench-tcp): libiscsi's iscsi-perf against
# goiserd and against Debian's tgt on this machine, in one interleaved run,
# and the table in docs/bench/tcp.md.
#
#   hack/bench-tcp.sh [--rounds N] [--seconds S] [--targets "goiser tgt"] [--out FILE]
#
# Rows: 4 KiB random read at QD1 and QD32, 128 KiB sequential read at QD8
# (iscsi-perf only reads). Each round runs every row on both targets, one
# after the other (the order alternates per round so neither side always
# goes first), for S seconds each; the table shows the median of the rounds
# and the ratio ours/tgt. Both targets serve a 1 GiB LUN backed by a file on
# /dev/shm (goiser: file backend, pread/pwrite; tgt: rdwr backing store).
# Defaults: 5 rounds of 5 s; BENCH_ROUNDS and BENCH_SECONDS work too.
# Raw numbers go to bin/bench/tcp.tsv; --out FILE (default docs/bench/tcp.md)
# gets the table, "-" prints it only.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH=$PATH:/usr/local/go/bin:$HOME/go/bin
. hack/conformance-lib.sh

rounds=${BENCH_ROUNDS:-5} seconds=${BENCH_SECONDS:-5} targets="goiser tgt" out=docs/bench/tcp.md
while [ $# -gt 0 ]; do
  case $1 in
    --rounds) rounds=$2; shift 2 ;;
    --seconds) seconds=$2; shift 2 ;;
    --targets) targets=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    -h|--help) sed -n '2,/^set -e/p' "$0" | sed 's/^# \{0,1\}//;/^set -e/d'; exit 0 ;;
    *) die "unknown argument $1 (see --help)" ;;
  esac
done
command -v iscsi-perf >/dev/null || die "iscsi-perf is missing: run make deps (Debian package libiscsi-bin)"
work=$(mktemp -d /tmp/goiser-bench.XXXXXX)
CLEANUP_PATHS+=("$work")
trap stop_all EXIT
trap 'exit 130' INT TERM
mkdir -p bin/bench
raw=bin/bench/tcp.tsv

declare -A url
for t in $targets; do
  case $t in
    goiser)
      img=$(mktemp -u /dev/shm/goiser-bench.XXXXXX); CLEANUP_PATHS+=("$img")
      GOISER_LOG_LEVEL=warn start_goiser "$work" 0 1G "$img"; url[goiser]=$GOISER_URL ;;
    tgt) start_tgt "$work" "$(free_port)" 1G; url[tgt]=$TGT_URL ;;
    *) die "unknown target $t (goiser or tgt)" ;;
  esac
  log "$t at ${url[$t]}"
done

# name | iscsi-perf flags | queue depth | bytes per I/O
rows=(
  "4k-randread-qd1|-r -m 1 -b 8|1|4096"
  "4k-randread-qd32|-r -m 32 -b 8|32|4096"
  "128k-seqread-qd8|-m 8 -b 256|8|131072"
)

# perf URL FLAGS: prints the average IOPS of one iscsi-perf run.
perf() {
  local u=$1 flags=$2 o
  # shellcheck disable=SC2086
  o=$(timeout -k 5 $((seconds + 30)) iscsi-perf -t "$seconds" $flags "$u" </dev/null 2>&1 | tr '\r' '\n') ||
    { echo "$o" | tail -5 >&2; die "iscsi-perf failed against $u"; }
  echo "$o" | awk '/iops average/ { for (i = 1; i <= NF; i++) if ($i == "average") v = $(i + 1) } END { if (v == "") exit 1; print v }' ||
    { echo "$o" | tail -5 >&2; die "no result from iscsi-perf against $u"; }
}

load1=$(cut -d' ' -f1 /proc/loadavg)
gbin=${GOISERD:-bin/goiserd}
rev=$(build_of "$gbin")
printf 'round\trow\ttarget\tiops\n' >"$raw"
read -r -a order <<<"$targets"
for r in $(seq 1 "$rounds"); do
  for row in "${rows[@]}"; do
    IFS='|' read -r name flags qd bs <<<"$row"
    seq_targets=("${order[@]}")
    if [ $((r % 2)) -eq 0 ]; then mapfile -t seq_targets < <(printf "%s\n" "${order[@]}" | tac); fi
    for t in "${seq_targets[@]}"; do
      v=$(perf "${url[$t]}" "$flags")
      printf '%s\t%s\t%s\t%s\n' "$r" "$name" "$t" "$v" >>"$raw"
      log "round $r/$rounds $name $t: $v IOPS"
    done
  done
done

# median ROW TARGET
median() {
  awk -F'\t' -v row="$1" -v t="$2" 'NR > 1 && $2 == row && $3 == t { print $4 }' "$raw" | sort -n |
    awk '{ v[NR] = $1 } END { if (NR == 0) { print "-"; exit } if (NR % 2) print v[(NR + 1) / 2]; else printf "%.0f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

table() {
  echo "| workload | IOPS goiser | IOPS tgt | goiser/tgt | MB/s goiser | MB/s tgt | mean latency goiser | mean latency tgt |"
  echo "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
  for row in "${rows[@]}"; do
    IFS='|' read -r name flags qd bs <<<"$row"
    g=$(median "$name" goiser) t=$(median "$name" tgt)
    awk -v n="$name" -v g="$g" -v t="$t" -v qd="$qd" -v bs="$bs" 'BEGIN {
      ratio = (g != "-" && t != "-" && t > 0) ? sprintf("%.2f", g / t) : "-"
      mb_g = (g != "-") ? sprintf("%.0f", g * bs / 1e6) : "-"; mb_t = (t != "-") ? sprintf("%.0f", t * bs / 1e6) : "-"
      lat_g = (g != "-" && g > 0) ? sprintf("%.0f µs", qd / g * 1e6) : "-"; lat_t = (t != "-" && t > 0) ? sprintf("%.0f µs", qd / t * 1e6) : "-"
      printf "| %s | %s | %s | %s | %s | %s | %s | %s |\n", n, g, t, ratio, mb_g, mb_t, lat_g, lat_t }'
  done
}

report() {
  cat <<EOF
# iSCSI/TCP benchmark: goiser vs tgt

Made by \`make bench-tcp\` (\`hack/bench-tcp.sh --rounds $rounds --seconds $seconds\`) on $(date -u +%Y-%m-%d) at $(date -u +%H:%M) UTC.

$(table)

- Client: libiscsi's \`iscsi-perf\` ($(dpkg-query -W -f '${Version}' libiscsi-bin 2>/dev/null || echo '?')), one session, over 127.0.0.1.
  Rows: \`-r -m 1 -b 8\` (4 KiB random read, QD1), \`-r -m 32 -b 8\` (QD32),
  \`-m 8 -b 256\` (128 KiB sequential read, QD8); 512-byte blocks.
  iscsi-perf only reads, so there are no write rows.
- Each number is the median of $rounds rounds of $seconds s. Within a round, every
  row runs on both targets back to back; the order alternates per round.
- Targets: goiserd (\`$gbin\` built from $rev, file backend) and Debian's tgt
  $(dpkg-query -W -f '${Version}' tgt 2>/dev/null || echo '?') (\`tgtd\`, rdwr backing store), each with a 1 GiB LUN backed
  by a sparse file on /dev/shm (tmpfs): same storage on both sides.
- iscsi-perf prints IOPS only; the latency column is derived (Little's law:
  queue depth / IOPS), a mean, not a percentile.
- Machine: $(nproc) CPUs ($(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo)), Linux $(uname -r),
  $(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo) RAM; client, both targets and anything else
  running share these CPUs, so absolute numbers swing with load (load average
  $load1 when the run started); the ratio is what counts.

Raw rounds (IOPS):

| round | workload | target | IOPS |
| ---: | --- | --- | ---: |
$(awk -F'\t' 'NR > 1 { printf "| %s | %s | %s | %s |\n", $1, $2, $3, $4 }' "$raw")
EOF
}

if [ "$out" = - ]; then
  report
else
  mkdir -p "$(dirname "$out")"
  report >"$out"
  log "wrote $out"
  table
fi
