#!/bin/bash
# Regenerates cmd/wqsim/default.pgo, the CPU profile the Go toolchain uses
# for profile-guided optimisation whenever it builds the wqsim command
# (go build, go install and go run apply a main package's default.pgo by
# default). The profile is the merge of three benchmarks that cover the
# command's hot paths: the context switch, exploration of cancelsafe, and
# the M/M/4 work-item workload.
#
#   bash bench/pgo/profile.sh        # from the repository root
#
# The benchmarks themselves are built without PGO unless asked:
#   go test -pgo=$PWD/cmd/wqsim/default.pgo ./bench -run '^$' -bench ...
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cd "$root"
go test -pgo=off -c -o "$tmp/bench.test" ./bench
cd bench
"$tmp/bench.test" -test.run '^$' -test.bench 'KernelSwitch/ideal$' -test.benchtime 5000000x -test.cpuprofile "$tmp/switch.prof" >/dev/null
"$tmp/bench.test" -test.run '^$' -test.bench 'ExploreCbdq' -test.benchtime 60000x -test.cpuprofile "$tmp/explore.prof" >/dev/null
"$tmp/bench.test" -test.run '^$' -test.bench 'WorkItemMMc/ideal' -test.benchtime 2x -test.cpuprofile "$tmp/mm4.prof" >/dev/null
go tool pprof -proto "$tmp/switch.prof" "$tmp/explore.prof" "$tmp/mm4.prof" > "$root/cmd/wqsim/default.pgo"
echo "wrote cmd/wqsim/default.pgo ($(wc -c < "$root/cmd/wqsim/default.pgo") bytes)"
