#!/usr/bin/env bash
# Side-by-side M/M/4: wqsim (WorkItemMMc/ideal and /default-costs), its floor
# (FloorCoroMM4) and SimPy 2.3.1 on the same workload, alternating so that
# every tool sees the same host conditions; prints medians and ratios.
# Needs Debian's python3-simpy (apt-get install python3-simpy).
# Usage: bash bench/simpy/compare.sh [ROUNDS] [ITEMS_FOR_SIMPY]
set -euo pipefail
cd "$(dirname "$0")/../.."
rounds=${1:-6}
simpy_items=${2:-1000000}
out=$(mktemp)
trap 'rm -f "$out"' EXIT
go test -c -o "$out.test" ./bench
for _ in $(seq "$rounds"); do
  "$out.test" -test.run '^$' -test.bench '^Benchmark(WorkItemMMc|FloorCoroMM4)$' -test.benchtime 1x | grep '^Benchmark' >>"$out"
  /usr/bin/python3 bench/simpy/mm4.py "$simpy_items" 1 2>/dev/null >>"$out"
done
rm -f "$out.test"
# median ns/item per benchmark (the field before the "ns/item" unit)
median() {
  awk -v name="$1" '{ sub(/-[0-9]+$/, "", $1) } $1 == name { for (i = 1; i < NF; i++) if ($(i+1) == "ns/item") print $i }' "$out" |
    sort -g | awk '{ a[NR] = $1 } END { if (NR == 0) exit 1; print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2 }'
}
floor=$(median BenchmarkFloorCoroMM4)
simpy=$(median BenchmarkSimPyMM4)
for name in BenchmarkFloorCoroMM4 BenchmarkWorkItemMMc/ideal BenchmarkWorkItemMMc/default-costs BenchmarkSimPyMM4; do
  m=$(median "$name")
  awk -v n="$name" -v m="$m" -v f="$floor" -v s="$simpy" -v r="$rounds" 'BEGIN {
    printf "%-36s %d runs  median %8.1f ns/item  %6.2fx floor  SimPy is %.2fx this\n", n, r, m, m / f, s / m }'
done
