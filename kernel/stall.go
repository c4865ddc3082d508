package kernel

import (
	"fmt"
	"strings"

	"github.com/wqsim/wqsim/des"
)

// A machine whose threads all wait for ever while a KTIMER keeps firing
// (or a thread polls with a timed wait) never lets the event queue empty,
// so the quiescence check (findHang) never runs and the run would end,
// slowly, on the step budget as a livelock. stall.go decides such a hang at
// a timer's expiry or a wait's timeout instead:
//
//   - the machine is stalled when nothing runs or is ready or queued (no
//     thread, DPC or ISR on a processor, no DPC or ISR queued, every thread
//     waiting or terminated) and every pending event is a KTIMER expiry or
//     a waiting thread's timeout;
//   - exactly: if no armed timer has a DPC or a waiter and no thread waits
//     with a timeout, nothing can ever run again and the hang is certain at
//     the first stalled expiry;
//   - otherwise only the timers' DPCs and the polling threads run, and they
//     are Go code that may keep private state (a countdown), so the rule is
//     a heuristic: the hang is reported once every armed timer and every
//     polling thread has fired HangTimerPeriods times in a stretch in which
//     nothing observable happened: no wait ended but by its timeout, nothing
//     was signalled, queued, completed, allocated, freed or written, no
//     timer was set or cancelled except a timer re-arming itself from its
//     own DPC (see progressOf). Spin locks, IRQL changes and reads do not
//     count: they leave nothing behind. Some thread must wait for ever: a
//     machine where only pollers wait is a livelock, left to the budget.
//
// The counter k.stall.progress is bumped by emit for every trace record
// other than those, and by the few routines that change state without a
// record (KeSetTimer, KeCancelTimer, KeResetEvent, KeRemoveQueueDpc).

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
	// timersOnly is set when the run ended with nothing left but quiet
	// timers and nobody waiting (see timersOnlyEnd): Finish then runs the
	// checks of a run whose event queue emptied.
	timersOnly bool
}

// TimerStall says what was seen when a hang was decided while timers kept
// the event queue busy (Deadlock.Ticking).
type TimerStall struct {
	// Since is when the quiet stretch began: nothing observable happened
	// from then on, and every thread listed in the report has waited at
	// least since then.
	Since des.Time
	// Timers are the armed timers and the polling threads, and how often
	// each fired (expired, timed out) in the stretch.
	Timers []TimerTicks
	// Exact is true when no armed timer had a DPC or a waiter and no thread
	// polled: nothing could run again. Otherwise the verdict is the
	// heuristic of Periods quiet expiries of each (Config.HangTimerPeriods).
	Exact   bool
	Periods int
}

// TimerTicks is one timer or polling thread of a TimerStall.
type TimerTicks struct {
	Timer    string
	DPC      string       // its DPC's name, "" for none
	Interval des.Duration // its period, or the due time it was last set with
	Fired    uint64       // expiries in the quiet stretch
	Thread   bool         // a polling thread: Interval is its wait's timeout
}

func (s *TimerStall) String() string {
	var b strings.Builder
	if s.Exact {
		fmt.Fprintf(&b, "since t=%v only timers without a DPC or a waiter fired (", s.Since)
	} else {
		fmt.Fprintf(&b, "since t=%v nothing was signalled, queued, completed or written and no wait ended but by its timeout, while only these fired (", s.Since)
	}
	for i, t := range s.Timers {
		if i > 0 {
			b.WriteString("; ")
		}
		if t.Thread {
			fmt.Fprintf(&b, "%s timing out every %v", t.Timer, t.Interval)
		} else {
			fmt.Fprintf(&b, "%s every %v", t.Timer, t.Interval)
		}
		if t.DPC != "" {
			fmt.Fprintf(&b, " with dpc %s", t.DPC)
		}
		fmt.Fprintf(&b, ", %d times", t.Fired)
	}
	if s.Exact {
		b.WriteString("): nothing can run again")
	} else {
		fmt.Fprintf(&b, "): decided after %d quiet periods of each (kernel.Config.HangTimerPeriods; a DPC or a polling thread counting down further would be cut short)", s.Periods)
	}
	return b.String()
}

// progressed records an observable change (see the file comment).
func (k *Kernel) progressed() { k.stall.progress++ }

// progressOf bumps the counter for a trace record of kind/what by e unless
// the record leaves nothing behind: IRQL changes, spin and mutex lock
// records, injected perturbations, a DPC context's entry and exit and a
// DPC's run, and a polling thread's cycle (its wake on the timeout, its
// dispatch and its next blocking wait on dispatcher objects).
func (k *Kernel) progressOf(e *exec, kind des.Kind, what des.What) {
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
	case KindWake, KindReady, KindSwitch, KindQuantum:
		if e != nil && e.thread != nil && e.thread.polling {
			return
		}
	case KindWait:
		if e != nil && e.thread != nil && e.thread.polling {
			th := e.thread
			if what != WhatSatisfied && th.wait.lock.name == "" {
				return // it blocks again; blockOn ends the cycle
			}
			th.polling = false // a signal consumed, or a lock: not a poll
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

// timerFiring runs at the start of t's expiry, before any of its effects;
// pollFiring at a thread's wait timeout, before it is readied. Each counts
// the expiry in the current quiet stretch (a new one begins when anything
// observable happened since the last) and, when the machine is stalled,
// decides whether it hangs; they report whether they stopped the run.
// Expiries are counted also while a DPC is still queued or running (two
// timers due at once, a DPC longer than its period): only the verdict waits
// for a stalled machine.
func (k *Kernel) timerFiring(t *KTIMER) bool {
	last := t.period == 0 && t.dpc == nil && k.sim.Pending() == 0 // the queue empties now: quiescence decides
	return k.tickFiring(t, nil, last, &t.quietEpoch, &t.quietFires)
}

func (k *Kernel) pollFiring(th *Thread) bool {
	return k.tickFiring(nil, th, false, &th.quietEpoch, &th.quietFires)
}

func (k *Kernel) tickFiring(t *KTIMER, th *Thread, last bool, epoch, fires *uint64) bool {
	w := &k.stall
	if w.epoch == 0 || w.progress != w.mark {
		w.mark, w.since = w.progress, k.sim.Now()
		w.epoch++
	}
	if !last && k.stalled() {
		if d := k.timerHang(t, th); d != nil {
			k.sim.Stop(d)
			return true
		}
		if k.timersOnlyEnd(t, th) {
			return true
		}
	}
	if *epoch != w.epoch {
		*epoch, *fires = w.epoch, 0
	}
	*fires++
	return false
}

// stalled reports whether nothing but KTIMER expiries and wait timeouts
// can happen: no processor runs or has anything queued, no thread is ready,
// running or new, and every pending event is an armed timer's or a waiting
// thread's timeout (the one firing has already left the queue).
func (k *Kernel) stalled() bool {
	if k.policy.Len() != 0 {
		return false
	}
	for _, c := range k.cpus {
		if c.top() != nil || len(c.dpcQueue) > 0 || len(c.isrQueue) > 0 {
			return false
		}
	}
	armed := 0
	for _, th := range k.threads {
		switch {
		case th.state == Terminated:
		case th.state != Waiting:
			return false
		case th.wait.timer.Active():
			armed++
		}
	}
	for _, tm := range k.stall.timers {
		if tm.timer.Active() {
			armed++
		}
	}
	return k.sim.Pending() == armed
}

// poller reports whether th is a ticking source of a stalled machine: it
// waits with a timeout, or it is the thread whose timeout fires (cur).
func poller(th, cur *Thread) bool {
	return th == cur || (th.state == Waiting && th.wait.timer.Active())
}

// timerHang decides the hang at the expiry of timer t or of thread th's
// timeout in a stalled machine, or returns nil: exactly when no timer can
// run code or wake anyone and no thread polls, by the heuristic when every
// armed timer, t and every polling thread have fired hangPeriods times
// quietly. Some thread must wait for ever (outside idle worker waits): a
// machine where only pollers wait is a livelock, left to the budget. It
// allocates nothing unless it decides: a stalled machine (every thread
// waiting between two releases of a periodic task) passes here often.
func (k *Kernel) timerHang(t *KTIMER, th *Thread) *Deadlock {
	w := &k.stall
	n := k.hangPeriods()
	exact, enough, forever := th == nil, true, false
	quiet := func(epoch, fires uint64) bool { return n > 0 && epoch == w.epoch && fires >= uint64(n) }
	for _, tm := range w.timers {
		if tm == t || tm.timer.Active() {
			exact = exact && tm.dpc == nil && len(tm.waiters) == 0
			enough = enough && quiet(tm.quietEpoch, tm.quietFires)
		}
	}
	for _, p := range k.threads {
		switch {
		case poller(p, th):
			exact = false
			enough = enough && quiet(p.quietEpoch, p.quietFires)
		case p.state == Waiting && !p.idleWait():
			forever = true
		}
	}
	if (!exact && !enough) || !forever {
		return nil
	}
	d := k.findHang()
	if d == nil {
		return nil
	}
	d.Blocked = d.Blocked[:0]
	for _, p := range k.threads {
		if !poller(p, th) && p.state == Waiting && !p.idleWait() {
			ed, _, _ := k.edgeOf(&p.exec)
			d.Blocked = append(d.Blocked, ed)
		}
	}
	d.Ticking = k.timerStall(t, th, exact, n)
	return d
}

// timersOnlyEnd ends a run whose workload is over although timers keep
// ticking: nobody waits (every thread has exited or waits idle, as a
// worker does), nobody polls, and the armed timers either have no DPC and
// no waiter (exact) or have all fired hangPeriods times quietly — the same
// rule as a hang, for a machine where no thread is left to be hung. A
// driver that leaves a heartbeat timer running is not wrong for it, so
// this ends the run as quiescence would (Finish runs the end checks:
// leaks, invariants), with a record saying which timers still ticked,
// instead of running into the step budget and a false livelock. It
// reports whether it stopped the run.
func (k *Kernel) timersOnlyEnd(t *KTIMER, th *Thread) bool {
	if th != nil {
		return false // a thread polls: not over
	}
	w := &k.stall
	n := k.hangPeriods()
	exact, enough := true, true
	for _, tm := range w.timers {
		if tm == t || tm.timer.Active() {
			exact = exact && tm.dpc == nil && len(tm.waiters) == 0
			enough = enough && n > 0 && tm.quietEpoch == w.epoch && tm.quietFires >= uint64(n)
		}
	}
	if !exact && !enough {
		return false
	}
	for _, p := range k.threads {
		if p.state == Waiting && !p.idleWait() || poller(p, nil) {
			return false
		}
	}
	w.timersOnly = true
	k.emit(nil, KindSignal, WhatTimersOnly, t.name, int64(len(w.timers)), int64(n))
	k.sim.Stop(nil)
	return true
}

// timerStall describes the timers and pollers of a decided hang.
func (k *Kernel) timerStall(t *KTIMER, th *Thread, exact bool, n int) *TimerStall {
	w := &k.stall
	st := &TimerStall{Since: w.since, Exact: exact, Periods: n}
	fired := func(epoch, fires uint64) uint64 {
		if epoch == w.epoch {
			return fires
		}
		return 0
	}
	for _, tm := range w.timers {
		if tm == t || tm.timer.Active() {
			tt := TimerTicks{Timer: tm.name, Interval: tm.interval, Fired: fired(tm.quietEpoch, tm.quietFires)}
			if tm.dpc != nil {
				tt.DPC = tm.dpc.Name
			}
			st.Timers = append(st.Timers, tt)
		}
	}
	for _, p := range k.threads {
		if poller(p, th) {
			st.Timers = append(st.Timers, TimerTicks{Timer: "thread " + p.name, Interval: p.pollEvery,
				Thread: true, Fired: fired(p.quietEpoch, p.quietFires)})
		}
	}
	return st
}
