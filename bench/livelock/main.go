// Command livelock measures how long and how much memory wqsim needs to
// report the livelock of a simulated thread that loops over a scheduling
// point for ever (`for { k.Compute(0) }`, the issue's `for { k.Yield() }` before Yield moved to kernel.Layer), with the default budgets and the
// exploration's perturbations on (model.ExploreConfig, natural choice 7/8,
// as `wqsim explore` draws them). It prints the outcome, the wall time of
// the run and the Go heap figures; run it under /usr/bin/time -v for the
// process's peak memory:
//
//	go build -o /tmp/livelock ./bench/livelock && /usr/bin/time -v /tmp/livelock
//
// See bench/BENCHMARKS.md, "Livelock detection".
package main

import (
	"fmt"
	"os"
	"runtime"
	"time"

	"github.com/wqsim/wqsim/des"
	"github.com/wqsim/wqsim/model"
)

// spin is a driver bug: a thread that polls a bare scheduling point and never waits.
var spin = &model.Scenario{
	Name:     "spin",
	Doc:      "a thread that yields in a loop for ever",
	Section:  "-",
	Variants: []model.Variant{{Name: "bug", Bug: true, Want: "livelock"}},
	Setup: func(env *model.Env) error {
		k := env.K
		k.PsCreateSystemThread("spinner", 8, func() {
			for {
				k.Compute(0) // a bare scheduling point
			}
		})
		k.PsCreateSystemThread("other", 8, func() { k.Compute(des.Millisecond) })
		return nil
	},
}

func main() {
	start := time.Now()
	r, err := model.Run(spin, "bug", model.RunConfig{Seed: 1, Chooser: des.NewSeededBiased(1, 7, 8)})
	wall := time.Since(start)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	o := r.Outcome
	fmt.Printf("outcome: %v\n", o.Err)
	fmt.Printf("run: %v wall, %d events, %d kernel calls, %d decisions\n", wall.Round(time.Millisecond), o.Steps, o.Calls, len(o.Decisions))
	fmt.Printf("heap: %d MB allocated in total, %d MB obtained from the OS\n", ms.TotalAlloc>>20, ms.Sys>>20)
	if o.Err == nil {
		os.Exit(1)
	}
}
