package lab

import (
	"fmt"
	"math/big"
	"slices"

	"github.com/wqsim/wqsim/des"
	"github.com/wqsim/wqsim/kernel"
)

// A Fit decides whether a processor can take one more task: share is the
// processor's tasks with the new one last.
type Fit func(share []PeriodicTask) bool

// FitUtilization admits a task while the processor's total utilization
// stays at most 1 (exact rational sum): bin packing, the condition any
// one-processor schedule needs; under fixed priorities a full processor
// may still miss deadlines.
func FitUtilization(share []PeriodicTask) bool { return utilizationAtMostOne(share) }

// FitRTA admits a task while the processor's share passes the exact
// response-time test under o (Schedulable), as rate-monotonic first fit
// does with its schedulability test (Dhall & Liu 1978): a partition it
// builds misses no deadline.
func FitRTA(o PriorityOrder) Fit {
	return func(share []PeriodicTask) bool { return Schedulable(share, o) }
}

// Partition assigns the tasks of ts to m processors by first-fit
// decreasing utilization: in order of decreasing utilization (ties keep
// the order of ts), each task goes to the lowest-numbered processor that
// fit admits it on. It returns each task's processor, indexed as ts, and
// false — with a nil assignment — when some task fits on no processor:
// the set is unpartitionable. Cost: O(n·m) calls of fit.
func Partition(ts []PeriodicTask, m int, fit Fit) ([]int, bool) {
	idx := make([]int, len(ts))
	for i := range idx {
		idx[i] = i
	}
	slices.SortStableFunc(idx, func(a, b int) int {
		// C_a/T_a > C_b/T_b  ⇔  C_a·T_b > C_b·T_a (no rounding)
		l := new(big.Int).Mul(big.NewInt(int64(ts[a].WCET)), big.NewInt(int64(ts[b].Period)))
		r := new(big.Int).Mul(big.NewInt(int64(ts[b].WCET)), big.NewInt(int64(ts[a].Period)))
		return r.Cmp(l)
	})
	shares := make([][]PeriodicTask, m)
	assign := make([]int, len(ts))
	for _, i := range idx {
		placed := false
		for p := range shares {
			if try := append(shares[p], ts[i]); fit(try) {
				shares[p], assign[i], placed = try, p, true
				break
			}
		}
		if !placed {
			return nil, false
		}
	}
	return assign, true
}

// onProcessor returns the tasks of ts that assign puts on processor p, in
// the order of ts.
func onProcessor(ts []PeriodicTask, assign []int, p int) []PeriodicTask {
	var out []PeriodicTask
	for i, t := range ts {
		if assign[i] == p {
			out = append(out, t)
		}
	}
	return out
}

// PartitionSchedulable reports whether every processor's share of a
// partition passes the exact one-processor response-time test under o
// (Schedulable). A task's priority relative to the others on its
// processor is the same as in the whole set, so this is the analysis of
// the partitioned machine.
func PartitionSchedulable(ts []PeriodicTask, assign []int, m int, o PriorityOrder) bool {
	for p := range m {
		if !Schedulable(onProcessor(ts, assign, p), o) {
			return false
		}
	}
	return true
}

// PlacementRun is what one task set did on a multiprocessor machine.
type PlacementRun struct {
	Jobs, Misses int
	// Worst is each task's worst response time, indexed as the set.
	Worst []des.Duration
	// Migrations counts, over the tasks, dispatches of a task's thread on
	// another processor than its previous dispatch. A pinned thread's move
	// to its processor (its own KeSetSystemAffinityThreadEx, before its
	// first job) is not counted: its record restarts the count.
	Migrations int
	// RanOn is, per task, the processors its thread was dispatched on
	// (since it pinned itself, when pinned).
	RanOn []kernel.KAFFINITY
}

// SimulatePlacement runs ts on m processors under the registered
// dispatcher disp with zero kernel-call costs: each task a kernel thread
// at a distinct real-time priority (31 for the first of order, then down),
// released at 0, T, 2T, … (synchronous release) until horizon, every job
// computing exactly its WCET, jobs still pending at horizon run to the
// end. With assign nil the threads may run anywhere (global placement);
// otherwise task i's thread pins itself to processor assign[i] before its
// first job (partitioned placement).
func SimulatePlacement(ts []PeriodicTask, order []int, m int, disp string, assign []int, horizon des.Duration) (PlacementRun, error) {
	if len(ts) > maxRTLevels {
		return PlacementRun{}, fmt.Errorf("%d tasks; the real-time band has %d priorities (16–31), one per task", len(ts), maxRTLevels)
	}
	fn, ok := lookup(dispatchers, disp)
	if !ok {
		return PlacementRun{}, fmt.Errorf("unknown dispatcher %q", disp)
	}
	track := &placementSink{}
	sim := des.New(des.Config{Seed: 1, Sink: track, StepBudget: stepBudget, NoDecisionLog: true})
	cfg := kernel.DefaultConfig()
	cfg.Processors = m
	env := &PolicyEnv{}
	fn(&cfg, env)
	cfg.Processors, cfg.Costs = m, kernel.Costs{}
	k, err := kernel.New(sim, cfg)
	if err != nil {
		return PlacementRun{}, err
	}
	specs := make([]rtSpec, len(ts))
	for rank, i := range order {
		specs[i] = rtSpec{PeriodicTask: ts[i], priority: kernel.HIGH_PRIORITY - rank}
		if assign != nil {
			specs[i].affinity = 1 << uint(assign[i])
		}
	}
	tasks := startRTTasks(k, specs, des.Time(horizon))
	env.bind(tasks)
	for sim.Step() {
	}
	if out := k.Layer().Finish(); out.Err != nil {
		return PlacementRun{}, out.Err
	}
	return track.result(tasks), nil
}

// placementSink follows each thread's dispatches (indexed by thread ID).
type placementSink struct {
	threads []threadTrack
}

type threadTrack struct {
	last       int // processor of the last dispatch, -1 none
	migrations int
	ranOn      kernel.KAFFINITY
}

// Write implements des.Sink.
func (s *placementSink) Write(r *des.Record) {
	if r.Thread <= 0 {
		return
	}
	for int(r.Thread) >= len(s.threads) {
		s.threads = append(s.threads, threadTrack{last: -1})
	}
	t := &s.threads[r.Thread]
	switch {
	case r.Kind == kernel.KindReady && r.What == kernel.WhatAffinity:
		*t = threadTrack{last: -1} // the thread pinned itself: count from here
	case r.Kind == kernel.KindSwitch && r.CPU >= 0:
		if t.last >= 0 && t.last != int(r.CPU) {
			t.migrations++
		}
		t.last = int(r.CPU)
		t.ranOn |= 1 << uint(r.CPU)
	}
}

// result sums the tasks' jobs, misses and migrations.
func (s *placementSink) result(tasks []*rtTask) PlacementRun {
	out := PlacementRun{Worst: make([]des.Duration, len(tasks)), RanOn: make([]kernel.KAFFINITY, len(tasks))}
	for i, t := range tasks {
		out.Jobs += t.resp.n
		out.Misses += t.misses
		out.Worst[i] = t.worst()
		if id := int(t.thread.ID()); id < len(s.threads) {
			out.Migrations += s.threads[id].migrations
			out.RanOn[i] = s.threads[id].ranOn
		}
	}
	return out
}

// partitionHorizon is the horizon that contains every task's worst
// response on a partitioned machine: the longest level-i busy period of
// any processor's share whose response is bounded (as CheckRTA), at least
// the largest deadline.
func partitionHorizon(ts []PeriodicTask, assign []int, m int, o PriorityOrder) des.Duration {
	var h des.Duration
	for _, t := range ts {
		h = max(h, t.deadline())
	}
	for p := range m {
		share := onProcessor(ts, assign, p)
		order := o.Order(share)
		for rank := range order {
			level := make([]PeriodicTask, 0, rank+1)
			for _, j := range order[:rank+1] {
				level = append(level, share[j])
			}
			if bp := BusyPeriod(level); bp != Unbounded {
				h = max(h, bp)
			}
		}
	}
	return h
}
