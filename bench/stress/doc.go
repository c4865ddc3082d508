// Package stress is the stress-test baseline of bench/BENCHMARKS.md: every
// program of model/sct and every scenario of model/reports written again
// as plain Go (goroutines, sync.Mutex, sync/atomic) and stress-tested the
// way a Go developer would: run it in a loop for a wall-clock budget under
// the race detector, optionally with runtime.Gosched at every shared
// access, and count the executions in which the bug shows.
//
// Everything is behind the build tag "stress", so the normal go test ./...
// neither builds nor runs it:
//
//	go test -race -tags stress ./bench/stress -run TestStress -v -stress.budget=2s
//	go test -race -tags stress ./bench/stress -run TestStress -v -stress.gosched
//	go test -race -tags stress ./bench/stress -run TestDetector -v
//
// Shared words are sync/atomic in the hit-rate runs (the simulated Cells are
// word accesses too), so the race detector stays quiet and the count is of
// the programs' own failures; TestDetector runs each program once more with
// plain words in a child process that halts on the first race report, to
// say which bugs the detector flags as data races instead.
package stress
