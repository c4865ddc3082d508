package kernel

import (
	"fmt"
	"strings"

	"github.com/wqsim/wqsim/des"
)

// A machine whose threads all wait for ever while a KTIMER keeps firing
// never lets the event queue empty, so the quiescence check (findHang)
// never runs and the run would end, slowly, on the step budget as a
// livelock. stall.go decides such a hang at a timer's expiry instead:
//
//   - the machine is stalled when nothing runs or is ready or queued (no
//     thread, DPC or ISR on a processor, no DPC or ISR queued, every thread
//     waiting or terminated) and every pending event is a KTIMER expiry, so
//     no wait has a timeout and nothing else is scheduled;
//   - exactly: if no armed timer has a DPC or a waiter, nothing can ever run
//     again and the hang is certain at the first stalled expiry;
//   - otherwise only the timers' DPCs run, and a DPC is Go code that may
//     keep private state (a countdown), so the rule is a heuristic: the hang
//     is reported once every armed timer has fired HangTimerPeriods times in
//     a stretch in which nothing observable happened: no thread woke or was
//     readied, nothing was signalled, queued, completed, allocated, freed or
//     written, no timer was set or cancelled except a timer re-arming itself
//     from its own DPC (see progressed). Spin locks, IRQL changes and reads
//     do not count: they leave nothing behind.
//
// The counter k.stall.progress is bumped by emit for every trace record
// other than those kinds, and by the few routines that change state without
// a record (KeSetTimer, KeCancelTimer, KeResetEvent, KeRemoveQueueDpc).

// DefaultHangTimerPeriods is the default of Config.HangTimerPeriods:
// generous against driver countdowns (a watchdog counting tens to hundreds
// of periods), small against the step budget (a quiet period costs about
// four steps, so model.DefaultStepBudget lasts some 400,000 periods).
const DefaultHangTimerPeriods = 10_000

// stallWatch is the kernel's state for the stalled-timer rule.
type stallWatch struct {
	timers   []*KTIMER // every timer initialized in this run
	progress uint64    // observable changes so far (see progressed)
	mark     uint64    // progress when the current quiet stretch began
	since    des.Time  // when it began
	epoch    uint64    // numbers the stretches (0: none yet); a timer's count is for one
}

// TimerStall says what was seen when a hang was decided while timers kept
// the event queue busy (Deadlock.Ticking).
type TimerStall struct {
	// Since is when the quiet stretch began: nothing observable happened
	// from then on, and every thread listed in the report has waited at
	// least since then.
	Since des.Time
	// Timers are the armed timers and how often each fired in the stretch.
	Timers []TimerTicks
	// Exact is true when no armed timer had a DPC or a waiter: nothing could
	// run again. Otherwise the verdict is the heuristic of Periods quiet
	// expiries of every timer (Config.HangTimerPeriods).
	Exact   bool
	Periods int
}

// TimerTicks is one timer of a TimerStall.
type TimerTicks struct {
	Timer    string
	DPC      string       // its DPC's name, "" for none
	Interval des.Duration // its period, or the due time it was last set with
	Fired    uint64       // expiries in the quiet stretch
}

func (s *TimerStall) String() string {
	var b strings.Builder
	if s.Exact {
		fmt.Fprintf(&b, "since t=%v only timers without a DPC or a waiter fired (", s.Since)
	} else {
		fmt.Fprintf(&b, "since t=%v nothing woke, was signalled, queued, completed or written while only timers fired (", s.Since)
	}
	for i, t := range s.Timers {
		if i > 0 {
			b.WriteString("; ")
		}
		fmt.Fprintf(&b, "%s every %v", t.Timer, t.Interval)
		if t.DPC != "" {
			fmt.Fprintf(&b, " with dpc %s", t.DPC)
		}
		fmt.Fprintf(&b, ", %d times", t.Fired)
	}
	if s.Exact {
		b.WriteString("): nothing can run again")
	} else {
		fmt.Fprintf(&b, "): decided after %d quiet periods of each timer (kernel.Config.HangTimerPeriods; a DPC counting down further would be cut short)", s.Periods)
	}
	return b.String()
}

// progressed records an observable change (see the file comment).
func (k *Kernel) progressed() { k.stall.progress++ }

// progressOf bumps the counter for a trace record of kind/what unless the
// record leaves nothing behind: IRQL changes, spin and mutex lock records,
// injected perturbations, a DPC context's entry and exit and a DPC's run.
func (k *Kernel) progressOf(kind des.Kind, what des.What) {
	switch kind {
	case KindIrql, KindLock, KindInject:
		return
	case KindInterrupt:
		if what == WhatEnter || what == WhatLeave {
			return
		}
	case KindDPC:
		if what == WhatRunDpc {
			return
		}
	}
	k.stall.progress++
}

// hangPeriods is the configured threshold; ≤ 0 disables the heuristic.
func (k *Kernel) hangPeriods() int {
	if k.cfg.HangTimerPeriods == 0 {
		return DefaultHangTimerPeriods
	}
	return k.cfg.HangTimerPeriods
}

// timerFiring runs at the start of t's expiry, before any of its effects.
// It counts the expiry in the current quiet stretch (a new one begins when
// anything observable happened since the last) and, when the machine is
// stalled, decides whether it hangs. It reports whether it stopped the run.
// Expiries are counted also while a DPC is still queued or running (two
// timers due at once, a DPC longer than its period): only the verdict waits
// for a stalled machine.
func (k *Kernel) timerFiring(t *KTIMER) bool {
	w := &k.stall
	if w.epoch == 0 || w.progress != w.mark {
		w.mark, w.since = w.progress, k.sim.Now()
		w.epoch++
	}
	last := t.period == 0 && t.dpc == nil && k.sim.Pending() == 0 // the queue empties now: quiescence decides
	if !last && k.stalled() {
		if d := k.timerHang(t); d != nil {
			k.sim.Stop(d)
			return true
		}
	}
	if t.quietEpoch != w.epoch {
		t.quietEpoch, t.quietFires = w.epoch, 0
	}
	t.quietFires++
	return false
}

// stalled reports whether nothing but KTIMER expiries can happen: no
// processor runs or has anything queued, no thread is ready, running or
// new, and every pending event is an armed timer's (t's own expiry has
// already left the queue).
func (k *Kernel) stalled() bool {
	if k.policy.Len() != 0 {
		return false
	}
	for _, c := range k.cpus {
		if c.top() != nil || len(c.dpcQueue) > 0 || len(c.isrQueue) > 0 {
			return false
		}
	}
	for _, th := range k.threads {
		if th.state != Waiting && th.state != Terminated {
			return false
		}
	}
	armed := 0
	for _, tm := range k.stall.timers {
		if tm.timer.Active() {
			armed++
		}
	}
	return k.sim.Pending() == armed
}

// timerHang decides the hang at t's expiry in a stalled machine, or
// returns nil: exactly when no timer can run code or wake anyone, by the
// heuristic when every armed timer and t have fired hangPeriods times
// quietly. There must be threads to report: a machine where nobody waits
// is left to run on.
func (k *Kernel) timerHang(t *KTIMER) *Deadlock {
	w := &k.stall
	exact, enough := true, true
	n := k.hangPeriods()
	for _, tm := range w.timers {
		if tm != t && !tm.timer.Active() {
			continue
		}
		if tm.dpc != nil || len(tm.waiters) > 0 {
			exact = false
		}
		if n <= 0 || tm.quietEpoch != w.epoch || tm.quietFires < uint64(n) {
			enough = false
		}
	}
	if !exact && !enough {
		return nil
	}
	d := k.findHang()
	if d == nil {
		return nil
	}
	st := &TimerStall{Since: w.since, Exact: exact, Periods: n}
	for _, tm := range w.timers {
		if tm != t && !tm.timer.Active() {
			continue
		}
		tt := TimerTicks{Timer: tm.name, Interval: tm.interval}
		if tm.dpc != nil {
			tt.DPC = tm.dpc.Name
		}
		if tm.quietEpoch == w.epoch {
			tt.Fired = tm.quietFires
		}
		st.Timers = append(st.Timers, tt)
	}
	d.Ticking = st
	return d
}
