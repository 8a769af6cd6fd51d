# shellcheck shell=bash
# shellcheck disable=SC2154 # out, targets, seconds, url, floor_*: set by the stage
# The witnesses of make bench-iser, sourced by bench.d/50-bench-iser.sh
# after goiser-bench has run (targets up, url/portal/iqn/lun set by
# bench-lib.sh, $targets, $out, $seconds, $rounds, $floor_iser and
# $floor_tcp set): two clients that are not ours measure the same targets.
#
#   iscsi-perf (libiscsi): 4 KiB random read at QD1 and QD32, over iser://
#     and iscsi:// alike; it prints IOPS only, so its latency is the mean by
#     Little's law (QD / IOPS). Targets in forward then reverse order, two
#     rounds, the mean of the two. libiscsi 1.19's iSER client is fragile on
#     rxe: a failed run is reported as such, not retried into a number.
#   fio on the Linux initiator's disk (open-iscsi; ib_iser for -iser
#     targets, iscsi_tcp for -tcp ones, no digests): 4 KiB random read and
#     write at QD1, 4 KiB random read at QD32, 128 KiB sequential read at
#     QD8 and 1 MiB sequential read at QD4 (512 KiB for tgt over iSER, whose
#     iSER drops larger commands), $seconds s each after 0.5 s of ramp.
#
# Writes $out/iser-witness.tsv (tool, workload, target, iops, median_us,
# p99_us, p999_us; "-" where the tool has no such number) and appends a
# section to $out/iser.md: the three clients side by side, and our client's
# own overhead as the ratio of its QD1 median to iscsi-perf's QD1 mean on
# the same target.

wtsv=$out/iser-witness.tsv
printf 'tool\tworkload\ttarget\tiops\tmedian_us\tp99_us\tp999_us\n' >"$wtsv"
read -r -a fwd <<<"$targets"
mapfile -t rev < <(printf '%s\n' "${fwd[@]}" | tac)
wsecs=$(awk -v s="$seconds" 'BEGIN { s = int(s + 0.5); print (s < 2 ? 2 : s) }')

# iscsi-perf: name | flags | QD
declare -A ip_sum ip_n
for r in 1 2; do
  order=("${fwd[@]}")
  [ "$r" = 2 ] && order=("${rev[@]}")
  for row in "4k-randread-qd1|-r -m 1 -b 8|1" "4k-randread-qd32|-r -m 32 -b 8|32"; do
    IFS='|' read -r w flags qd <<<"$row"
    for t in "${order[@]}"; do
      if v=$(bench_iscsi_perf "${url[$t]}" "$flags" "$wsecs" 2>"$BENCH_WORK/iscsi-perf.err"); then
        say "iscsi-perf round $r $w $t: $v IOPS"
        ip_sum[$w.$t]=$(awk -v a="${ip_sum[$w.$t]:-0}" -v b="$v" 'BEGIN { print a + b }')
        ip_n[$w.$t]=$((${ip_n[$w.$t]:-0} + 1))
      else
        say "iscsi-perf round $r $w $t: failed ($(tail -n 1 "$BENCH_WORK/iscsi-perf.err"))"
      fi
    done
  done
done
for t in "${fwd[@]}"; do
  for row in 4k-randread-qd1:1 4k-randread-qd32:32; do
    w=${row%:*} qd=${row#*:}
    if [ -n "${ip_n[$w.$t]:-}" ]; then
      awk -v s="${ip_sum[$w.$t]}" -v n="${ip_n[$w.$t]}" -v qd="$qd" -v w="$w" -v t="$t" \
        'BEGIN { iops = s / n; printf "iscsi-perf\t%s\t%s\t%.0f\t%.0f\t-\t-\n", w, t, iops, qd / iops * 1e6 }' >>"$wtsv"
    else
      printf 'iscsi-perf\t%s\t%s\t-\t-\t-\t-\n' "$w" "$t" >>"$wtsv"
    fi
  done
done

# fio on the kernel initiator: one login per target.
for t in "${fwd[@]}"; do
  say "fio: Linux initiator over ${t##*-} to $t"
  if ! dev=$(bench_kernel_login "$t" 2>"$BENCH_WORK/login.err"); then
    say "  login failed: $(tail -n 1 "$BENCH_WORK/login.err")"
    for w in 4k-randread-qd1 4k-randwrite-qd1 4k-randread-qd32 128k-seqread-qd8 1m-seqread-qd4; do
      printf 'fio\t%s\t%s\t-\t-\t-\t-\n' "$w" "$t" >>"$wtsv"
    done
    continue
  fi
  big=1m big_bs=1M
  [ "$t" = tgt-iser ] && big=512k big_bs=512k
  for row in "4k-randread-qd1 randread 4k 1" "4k-randwrite-qd1 randwrite 4k 1" "4k-randread-qd32 randread 4k 32" \
    "128k-seqread-qd8 read 128k 8" "$big-seqread-qd4 read $big_bs 4"; do
    read -r w rw bs qd <<<"$row"
    if r=$(bench_fio "$dev" "$rw" "$bs" "$qd" "$wsecs" 2>"$BENCH_WORK/fio.err"); then
      say "  $w: $r (IOPS, median, p99, p99.9 µs)"
      printf 'fio\t%s\t%s\t%s\n' "$w" "$t" "$(echo "$r" | tr ' ' '\t')" >>"$wtsv"
    else
      say "  $w: failed ($(tail -n 1 "$BENCH_WORK/fio.err"))"
      printf 'fio\t%s\t%s\t-\t-\t-\t-\n' "$w" "$t" >>"$wtsv"
    fi
  done
  bench_kernel_logout "$t" || say "  logout of $t failed"
done

# The section: goiser-bench's medians (iser.tsv, rounds) beside the two
# witnesses.
{
  echo
  echo "## Witnesses: the same targets measured by other clients"
  echo
  echo "goiser-bench: median over its rounds of the per-round median latency and IOPS (the table above)."
  echo "iscsi-perf (libiscsi $(dpkg-query -W -f '${Version}' libiscsi-bin 2>/dev/null || echo '?')): mean latency = QD / IOPS, two rounds (targets in forward, then reverse order)."
  echo "fio $(fio --version 2>/dev/null | sed 's/^fio-//') on the Linux initiator's disk (open-iscsi $(dpkg-query -W -f '${Version}' open-iscsi 2>/dev/null || echo '?'), ib_iser or iscsi_tcp, no digests, libaio, O_DIRECT): median and p99 of the latency from submission to completion, one run of $wsecs s."
  echo "Floor of this exchange: ${floor_iser} µs over verbs, ${floor_tcp} µs over TCP (the notes above)."
  echo
  echo "| workload | target | goiser-bench IOPS | goiser-bench median | iscsi-perf IOPS | iscsi-perf mean | fio IOPS | fio median | fio p99 | goiser-bench / iscsi-perf |"
  echo "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
  awk -F'\t' -v ws="4k-randread-qd1 4k-randwrite-qd1 4k-randread-qd32 128k-seqread-qd8 1m-seqread-qd4 512k-seqread-qd4" -v ts="$targets" '
    function fmt(us) { if (us == "" || us == "-") return "-"; if (us >= 1000) return sprintf("%.2f ms", us / 1000); return sprintf("%.0f µs", us) }
    function med(list,   n, a, i, j, t) { n = split(list, a, " "); if (n == 0) return ""
      for (i = 2; i <= n; i++) { t = a[i]; for (j = i - 1; j >= 1 && a[j] > t; j--) a[j + 1] = a[j]; a[j + 1] = t }
      return (n % 2) ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2 }
    FNR == 1 { f++; for (i = 1; i <= NF; i++) col[f, $i] = i; next }
    f == 1 { k = $col[1, "workload"] SUBSEP $col[1, "target"]
      gi[k] = gi[k] " " $col[1, "iops"]; gm[k] = gm[k] " " $col[1, "median_ns"] / 1000; next }
    f == 2 { k = $2 SUBSEP $3; if ($1 == "iscsi-perf") { pi[k] = $4; pm[k] = $5 } else { fi_[k] = $4; fm[k] = $5; fp[k] = $6 }; seen[$2] = 1 }
    END { nw = split(ws, W, " "); nt = split(ts, T, " ")
      for (i = 1; i <= nw; i++) for (j = 1; j <= nt; j++) { k = W[i] SUBSEP T[j]
        if (!((k in gi) || (k in pi) || (k in fi_))) continue
        g = med(gi[k]); m = med(gm[k])
        r = (m != "" && pm[k] != "" && pm[k] != "-") ? sprintf("%.2f", m / pm[k]) : "-"
        printf "| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", W[i], T[j], (g == "" ? "-" : sprintf("%.0f", g)), fmt(m),
          (k in pi ? pi[k] : "-"), fmt(pm[k]), (k in fi_ ? fi_[k] : "-"), fmt(fm[k]), fmt(fp[k]), r } }' \
    "$out/iser.tsv" "$wtsv"
  echo
  echo "The last column divides goiser-bench's median by iscsi-perf's mean latency on the same target; on the QD1 rows (one session, one command in flight on both) it is our client's own overhead. iscsi-perf only reads, and libiscsi's iSER client is the one of 1.19."
} >>"$out/iser.md"
sed -n '/^## Witnesses/,$p' "$out/iser.md" | grep -E '^\|' || true
