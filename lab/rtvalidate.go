package lab

import (
	"fmt"

	"github.com/wqsim/wqsim/des"
	"github.com/wqsim/wqsim/kernel"
)

// RTAMismatch is a task set whose simulated worst-case response time of
// one task differs from exact response-time analysis. Its message names
// the set in full, so the failure can be re-created.
type RTAMismatch struct {
	Set       []PeriodicTask
	Order     PriorityOrder
	Task      int          // index in Set
	Simulated des.Duration // worst response observed
	Analysed  des.Duration // ResponseTimes
}

func (m *RTAMismatch) Error() string {
	return fmt.Sprintf("task set [%s] under %s priorities, one processor: task %s simulated worst response %d ns, exact analysis %d ns (difference %+d ns)",
		TaskSetString(m.Set), m.Order, m.Set[m.Task].Name, int64(m.Simulated), int64(m.Analysed), int64(m.Simulated-m.Analysed))
}

// maxRTLevels is the number of distinct real-time priorities (16–31).
const maxRTLevels = 16

// SimulateWorstResponses runs ts on a one-processor machine with the NT
// dispatcher and the given kernel-call costs: each task a kernel thread at
// a distinct real-time priority (31 for the first task of order, 30 for
// the next, …), released by its timer's DPC at 0, T, 2T, … (synchronous
// release) until horizon, every job computing exactly its WCET. It returns
// each task's worst observed response time, indexed as ts, and the run's
// finding if it did not end cleanly.
func SimulateWorstResponses(ts []PeriodicTask, order []int, costs kernel.Costs, horizon des.Duration) ([]des.Duration, error) {
	if len(ts) > maxRTLevels {
		return nil, fmt.Errorf("%d tasks; the real-time band has %d priorities (16–31), one per task", len(ts), maxRTLevels)
	}
	sim := des.New(des.Config{Seed: 1, StepBudget: stepBudget})
	cfg := kernel.DefaultConfig()
	cfg.Processors = 1
	cfg.Costs = costs
	k, err := kernel.New(sim, cfg)
	if err != nil {
		return nil, err
	}
	specs := make([]rtSpec, len(ts))
	for rank, i := range order {
		specs[i] = rtSpec{PeriodicTask: ts[i], priority: kernel.HIGH_PRIORITY - rank}
	}
	tasks := startRTTasks(k, specs, des.Time(horizon))
	for sim.Step() {
	}
	if out := k.Layer().Finish(); out.Err != nil {
		return nil, out.Err
	}
	worst := make([]des.Duration, len(ts))
	for i, t := range tasks {
		worst[i] = t.worst()
	}
	return worst, nil
}

// CheckRTA simulates ts under priority order o on one processor with the
// given kernel-call costs and compares every task's worst simulated
// response with exact response-time analysis (ResponseTimes). Releases run
// over the longest level-i busy period of the tasks whose response is
// bounded, which contains every such task's worst case; tasks with an
// unbounded response are simulated but not compared. It returns nil when
// all compared tasks agree to the nanosecond, an *RTAMismatch for the
// first that does not, or the simulation's error.
func CheckRTA(ts []PeriodicTask, o PriorityOrder, costs kernel.Costs) error {
	order := o.Order(ts)
	want := ResponseTimes(ts, order)
	var horizon des.Duration
	for rank, i := range order {
		if want[i] == Unbounded {
			continue
		}
		level := make([]PeriodicTask, 0, rank+1)
		for _, j := range order[:rank+1] {
			level = append(level, ts[j])
		}
		if bp := BusyPeriod(level); bp != Unbounded {
			horizon = max(horizon, bp)
		}
	}
	got, err := SimulateWorstResponses(ts, order, costs, horizon)
	if err != nil {
		return fmt.Errorf("task set [%s] under %s priorities: %w", TaskSetString(ts), o, err)
	}
	for _, i := range order {
		if want[i] != Unbounded && got[i] != want[i] {
			return &RTAMismatch{Set: ts, Order: o, Task: i, Simulated: got[i], Analysed: want[i]}
		}
	}
	return nil
}
