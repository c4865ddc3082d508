package bench

import (
	"testing"

	"github.com/wqsim/wqsim/des"
	"github.com/wqsim/wqsim/kernel"
)

// BenchmarkKernelSwitch: two threads on one processor ping-pong two
// synchronization events, so every iteration is one full context switch
// (set event, wait, dispatcher picks the other thread, resume it). The
// "ideal" case charges no CPU time for kernel calls and switches, so it
// measures the model's own overhead per switch against BenchmarkFloorCoro
// (one btree event plus one coroutine round trip); "default-costs" uses the
// Windows-like call costs, where each call is its own scheduling point.
//
// The measured switches run inside Sim.Run, as every run of model.Run and
// kernel.Run does; "ideal-stepped" drives the same ping-pong one event at
// a time with Sim.Step, as an observer checking every event does (Run may
// save the queue trip of a thread that resumes at once,
// des.Sim.ContinueNow; Step never does).
func BenchmarkKernelSwitch(b *testing.B) {
	b.Run("ideal", func(b *testing.B) { benchSwitch(b, true, true) })
	b.Run("default-costs", func(b *testing.B) { benchSwitch(b, false, true) })
	b.Run("ideal-stepped", func(b *testing.B) { benchSwitch(b, true, false) })
}

func benchSwitch(b *testing.B, ideal, run bool) {
	cfg := kernel.DefaultConfig()
	cfg.Processors = 1
	cfg.Boosts = false
	if ideal {
		cfg.Costs = kernel.Costs{}
	}
	sim := des.New(des.Config{})
	defer sim.Close()
	k := kernel.MustNew(sim, cfg)
	ping := k.KeInitializeEvent("ping", kernel.SynchronizationEvent, false)
	pong := k.KeInitializeEvent("pong", kernel.SynchronizationEvent, false)
	switches, stopAt := 0, -1
	count := func() {
		if switches++; switches == stopAt {
			sim.Stop(nil)
		}
	}
	k.PsCreateSystemThread("a", 8, func() {
		for {
			k.KeSetEvent(ping, 0, false)
			k.KeWaitForSingleObject(pong, kernel.Infinite)
			count()
		}
	})
	k.PsCreateSystemThread("b", 8, func() {
		for {
			k.KeWaitForSingleObject(ping, kernel.Infinite)
			k.KeSetEvent(pong, 0, false)
			count()
		}
	})
	// A Step that fires nothing means the ping-pong stopped: fail instead of
	// spinning forever. (This file uses nothing from the other benchmark
	// files, so that BENCHMARKS.md can build it against older trees.)
	for switches < 1000 { // warm up: slices and btree nodes reach steady size
		if !sim.Step() {
			b.Fatal("the ping-pong stopped: no event left")
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	start, steps := switches, sim.Steps()
	if run {
		stopAt = start + b.N
		if sim.Run(); switches != stopAt {
			b.Fatal("the ping-pong stopped early")
		}
	}
	for switches-start < b.N {
		if !sim.Step() {
			b.Fatal("the ping-pong stopped: no event left")
		}
	}
	b.StopTimer()
	n := float64(switches - start)
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/n, "ns/switch")
	b.ReportMetric(float64(sim.Steps()-steps)/n, "events/switch")
}
