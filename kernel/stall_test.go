package kernel_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wqsim/wqsim/des"
	"github.com/wqsim/wqsim/kernel"
)

// The stalled-timer hang rule (kernel/stall.go, README pitfalls): a hang
// kept busy by timers is decided at a timer's expiry, exactly when the
// timers can run no code and wake nobody, by HangTimerPeriods quiet
// periods otherwise; a driver whose timers lead somewhere is never cut.

// stallMachine is a 1-processor machine with a budget far above what the
// rule needs, so an outcome other than a hang is not the budget's doing
// unless the test says so.
func stallMachine(t *testing.T, periods int, budget uint64) *kernel.Kernel {
	cfg := oneCPU()
	cfg.HangTimerPeriods = periods
	return budgetMachine(t, cfg, budget).Kernel
}

func requireTimerHang(t *testing.T, o des.Outcome) *kernel.Deadlock {
	t.Helper()
	var d *kernel.Deadlock
	require.ErrorAs(t, o.Err, &d, "want a hang")
	require.NotNil(t, d.Ticking, "decided while the timer fired: %v", d)
	assert.Equal(t, "hang", d.Signature())
	return d
}

// A thread waits for ever on an event nobody sets while a periodic
// timer's DPC does nothing visible: a hang after HangTimerPeriods periods,
// long before the budget (which would take some 250,000 periods here).
func TestPeriodicTimerHangIsDecidedAfterQuietPeriods(t *testing.T) {
	k := stallMachine(t, 1000, 1_000_000)
	never := k.KeInitializeEvent("never", kernel.NotificationEvent, false)
	beats := 0 // the DPC's private state: invisible to the kernel
	tick := k.KeInitializeDpc("tick", func(*kernel.KDPC, any, any, any) { beats++ }, nil)
	timer := k.KeInitializeTimer("ticker")
	k.PsCreateSystemThread("stuck", 8, func() {
		k.KeSetTimerEx(timer, 10*des.Microsecond, 10*des.Microsecond, tick)
		k.KeWaitForSingleObject(never, kernel.Infinite)
	})
	o := k.Run()
	d := requireTimerHang(t, o)
	assert.False(t, d.Ticking.Exact)
	require.Len(t, d.Ticking.Timers, 1)
	assert.Equal(t, uint64(1000), d.Ticking.Timers[0].Fired)
	assert.Equal(t, 1000, beats, "the DPC ran once per quiet period")
	assert.Contains(t, d.Error(), "hang: nothing can wake the waiting threads: stuck waits for event never")
	assert.Contains(t, d.Error(), "timer ticker every 10µs with dpc tick, 1000 times")
	assert.Contains(t, d.Error(), "HangTimerPeriods")
	assert.Less(t, o.Steps+o.Calls, uint64(20_000), "decided in a few steps per period")
}

// The default threshold applies when the configuration leaves it zero.
func TestDefaultHangTimerPeriods(t *testing.T) {
	k := stallMachine(t, 0, 1_000_000)
	never := k.KeInitializeEvent("never", kernel.NotificationEvent, false)
	tick := k.KeInitializeDpc("tick", func(*kernel.KDPC, any, any, any) {}, nil)
	timer := k.KeInitializeTimer("ticker")
	k.PsCreateSystemThread("stuck", 8, func() {
		k.KeSetTimerEx(timer, 10*des.Microsecond, 10*des.Microsecond, tick)
		k.KeWaitForSingleObject(never, kernel.Infinite)
	})
	d := requireTimerHang(t, k.Run())
	assert.Equal(t, uint64(kernel.DefaultHangTimerPeriods), d.Ticking.Timers[0].Fired)
}

// A periodic timer without a DPC, that nobody waits on, can run no code:
// the hang is exact and decided at its first expiry once everyone waits.
func TestTimerWithoutDpcHangIsExact(t *testing.T) {
	k := stallMachine(t, -1, 1_000_000) // the heuristic is off: only the exact rule
	never := k.KeInitializeEvent("never", kernel.NotificationEvent, false)
	timer := k.KeInitializeTimer("ticker")
	k.PsCreateSystemThread("stuck", 8, func() {
		k.KeSetTimerEx(timer, 5*des.Microsecond, 5*des.Microsecond, nil)
		k.KeWaitForSingleObject(never, kernel.Infinite)
	})
	o := k.Run()
	d := requireTimerHang(t, o)
	assert.True(t, d.Ticking.Exact)
	assert.Contains(t, d.Error(), "only timers without a DPC or a waiter fired")
	assert.Less(t, o.End, des.Time(15*des.Microsecond), "decided at the first expiry")
}

// A watchdog DPC that counts down privately and signals after fewer quiet
// periods than the threshold is a correct driver: never flagged, however
// long the countdown runs below it. With the threshold below the countdown
// the same driver is (falsely) reported: the heuristic's documented limit.
func TestCountdownWatchdogBelowThresholdIsNotFlagged(t *testing.T) {
	run := func(periods, countdown int) des.Outcome {
		k := stallMachine(t, periods, 1_000_000)
		expired := k.KeInitializeEvent("expired", kernel.NotificationEvent, false)
		timer := k.KeInitializeTimer("watchdog")
		left := countdown
		dpc := k.KeInitializeDpc("watchdog", func(*kernel.KDPC, any, any, any) {
			if left--; left == 0 {
				k.KeSetEvent(expired, kernel.IO_NO_INCREMENT, false)
			}
		}, nil)
		k.PsCreateSystemThread("waiter", 8, func() {
			k.KeSetTimerEx(timer, 10*des.Microsecond, 10*des.Microsecond, dpc)
			k.KeWaitForSingleObject(expired, kernel.Infinite)
			k.KeCancelTimer(timer)
			k.KeFlushQueuedDpcs()
		})
		return k.Run()
	}
	assert.NoError(t, run(1000, 999).Err, "999 quiet periods, then the signal")
	assert.NoError(t, run(0, 5000).Err, "5,000 periods under the default")
	d := requireTimerHang(t, run(100, 999))
	assert.Equal(t, uint64(100), d.Ticking.Timers[0].Fired)
}

// A timer whose DPC wakes a thread each period, which then waits again,
// keeps every stretch short: the threads make progress, so no verdict,
// and the run ends when the thread stops the timer.
func TestTimerThatWakesThreadsIsNotFlagged(t *testing.T) {
	k := stallMachine(t, 10, 1_000_000)
	kick := k.KeInitializeEvent("kick", kernel.SynchronizationEvent, false)
	timer := k.KeInitializeTimer("poll")
	dpc := k.KeInitializeDpc("poll", func(*kernel.KDPC, any, any, any) {
		k.KeSetEvent(kick, kernel.IO_NO_INCREMENT, false)
	}, nil)
	rounds := 0
	k.PsCreateSystemThread("poller", 8, func() {
		k.KeSetTimerEx(timer, 10*des.Microsecond, 10*des.Microsecond, dpc)
		for rounds = 0; rounds < 200; rounds++ {
			k.KeWaitForSingleObject(kick, kernel.Infinite)
		}
		k.KeCancelTimer(timer)
		k.KeFlushQueuedDpcs()
	})
	assert.NoError(t, k.Run().Err)
	assert.Equal(t, 200, rounds)
}

// A thread that waits on the periodic timer object itself is woken by each
// expiry: progress, never a hang, even with no DPC.
func TestWaitingOnThePeriodicTimerIsProgress(t *testing.T) {
	k := stallMachine(t, 10, 1_000_000)
	timer := k.KeInitializeTimerEx("tick", kernel.SynchronizationTimer)
	n := 0
	k.PsCreateSystemThread("sleeper", 8, func() {
		k.KeSetTimerEx(timer, 10*des.Microsecond, 10*des.Microsecond, nil)
		for n = 0; n < 100; n++ {
			k.KeWaitForSingleObject(timer, kernel.Infinite)
		}
		k.KeCancelTimer(timer)
	})
	assert.NoError(t, k.Run().Err)
	assert.Equal(t, 100, n)
}

// A thread that waits with a timeout is a poller, not stuck: with nobody
// waiting for ever there is no hang to report, so a DPC-less ticking timer
// does not cut its wait short.
func TestTimedWaitIsNotAStall(t *testing.T) {
	k := stallMachine(t, 10, 1_000_000)
	never := k.KeInitializeEvent("never", kernel.NotificationEvent, false)
	timer := k.KeInitializeTimer("tick")
	var st kernel.NTSTATUS
	k.PsCreateSystemThread("patient", 8, func() {
		k.KeSetTimerEx(timer, des.Microsecond, des.Microsecond, nil)
		st = k.KeWaitForSingleObject(never, 5*des.Millisecond) // 5,000 expiries
		k.KeCancelTimer(timer)
	})
	assert.NoError(t, k.Run().Err)
	assert.Equal(t, kernel.STATUS_TIMEOUT, st)
}

// A one-shot timer that its own DPC re-arms is a periodic timer in effect:
// the re-arm is its period, not progress, so the hang is decided too.
func TestSelfRearmingDpcHangIsDecided(t *testing.T) {
	k := stallMachine(t, 500, 1_000_000)
	never := k.KeInitializeEvent("never", kernel.NotificationEvent, false)
	timer := k.KeInitializeTimer("again")
	var dpc *kernel.KDPC
	dpc = k.KeInitializeDpc("again", func(*kernel.KDPC, any, any, any) {
		k.KeSetTimer(timer, 20*des.Microsecond, dpc)
	}, nil)
	k.PsCreateSystemThread("stuck", 8, func() {
		k.KeSetTimer(timer, 20*des.Microsecond, dpc)
		k.KeWaitForSingleObject(never, kernel.Infinite)
	})
	d := requireTimerHang(t, k.Run())
	assert.Equal(t, uint64(500), d.Ticking.Timers[0].Fired)
}

// A DPC that writes shared state each period makes visible progress: the
// rule never fires, and the run ends on the budget as before (a livelock
// listing the waiters).
func TestDpcWritingStateIsNotCut(t *testing.T) {
	k := stallMachine(t, 10, 20_000)
	never := k.KeInitializeEvent("never", kernel.NotificationEvent, false)
	count := k.NewCell("samples", 0)
	tick := k.KeInitializeDpc("sample", func(*kernel.KDPC, any, any, any) { k.InterlockedIncrement(count) }, nil)
	timer := k.KeInitializeTimer("sampler")
	k.PsCreateSystemThread("stuck", 8, func() {
		k.KeSetTimerEx(timer, des.Microsecond, des.Microsecond, tick)
		k.KeWaitForSingleObject(never, kernel.Infinite)
	})
	var ll *kernel.Livelock
	require.ErrorAs(t, k.Run().Err, &ll)
	assert.Contains(t, ll.Error(), "waiting: stuck waits for event never")
}

// Two timers: the verdict waits until the slower one has fired the
// threshold too, and the report lists both.
func TestEveryTimerMustFireTheThreshold(t *testing.T) {
	k := stallMachine(t, 50, 1_000_000)
	never := k.KeInitializeEvent("never", kernel.NotificationEvent, false)
	fast := k.KeInitializeTimer("fast")
	slow := k.KeInitializeTimer("slow")
	nop := func(*kernel.KDPC, any, any, any) {}
	fd := k.KeInitializeDpc("fast", nop, nil)
	sd := k.KeInitializeDpc("slow", nop, nil)
	k.PsCreateSystemThread("stuck", 8, func() {
		k.KeSetTimerEx(fast, 10*des.Microsecond, 10*des.Microsecond, fd)
		k.KeSetTimerEx(slow, 1000*des.Microsecond, 1000*des.Microsecond, sd)
		k.KeWaitForSingleObject(never, kernel.Infinite)
	})
	o := k.Run()
	d := requireTimerHang(t, o)
	require.Len(t, d.Ticking.Timers, 2)
	assert.GreaterOrEqual(t, o.End, des.Time(50*1000*des.Microsecond), "the slow timer fired 50 times")
	assert.Contains(t, d.Error(), "timer slow every 1ms with dpc slow, 50 times")
}

// A thread that polls a flag nobody sets, with a timed wait, while another
// waits for ever: the polls are the period, and the hang is decided after
// HangTimerPeriods timeouts; the report names the poller apart from the
// thread that waits for ever.
func TestPollingThreadHangIsDecided(t *testing.T) {
	k := stallMachine(t, 300, 1_000_000)
	never := k.KeInitializeEvent("never", kernel.NotificationEvent, false)
	ready := k.KeInitializeEvent("ready", kernel.NotificationEvent, false)
	flag := false // set by nobody: the bug
	polls := 0
	k.PsCreateSystemThread("poller", 8, func() {
		for !flag {
			polls++
			k.KeWaitForSingleObject(ready, 100*des.Microsecond)
		}
	})
	k.PsCreateSystemThread("stuck", 8, func() { k.KeWaitForSingleObject(never, kernel.Infinite) })
	d := requireTimerHang(t, k.Run())
	require.Len(t, d.Ticking.Timers, 1)
	assert.True(t, d.Ticking.Timers[0].Thread)
	assert.Equal(t, uint64(300), d.Ticking.Timers[0].Fired)
	require.Len(t, d.Blocked, 1, "the poller is not listed as blocked")
	assert.Equal(t, "stuck", d.Blocked[0].Waiter)
	assert.Contains(t, d.Error(), "thread poller timing out every 100µs, 300 times")
	assert.GreaterOrEqual(t, polls, 300)
}

// KeDelayExecutionThread in a loop is a poll too.
func TestDelayLoopHangIsDecided(t *testing.T) {
	k := stallMachine(t, 200, 1_000_000)
	never := k.KeInitializeEvent("never", kernel.NotificationEvent, false)
	k.PsCreateSystemThread("sleeper", 8, func() {
		for {
			k.KeDelayExecutionThread(50 * des.Microsecond)
		}
	})
	k.PsCreateSystemThread("stuck", 8, func() { k.KeWaitForSingleObject(never, kernel.Infinite) })
	d := requireTimerHang(t, k.Run())
	assert.Contains(t, d.Error(), "thread sleeper timing out every 50µs, 200 times")
}

// A poller alone, with nobody waiting for ever, is a livelock, not a hang:
// the rule leaves it to the budget.
func TestPollerAloneIsLeftToTheBudget(t *testing.T) {
	k := stallMachine(t, 10, 20_000)
	ready := k.KeInitializeEvent("ready", kernel.NotificationEvent, false)
	k.PsCreateSystemThread("poller", 8, func() {
		for {
			k.KeWaitForSingleObject(ready, 10*des.Microsecond)
		}
	})
	var ll *kernel.Livelock
	require.ErrorAs(t, k.Run().Err, &ll)
}

// A retry loop that gives up after fewer polls than the threshold and then
// signals is a correct driver: not flagged. A poller that consumes a
// signal each time (a synchronization event a DPC sets) makes progress.
func TestBoundedRetryLoopIsNotFlagged(t *testing.T) {
	k := stallMachine(t, 100, 1_000_000)
	reply := k.KeInitializeEvent("reply", kernel.NotificationEvent, false)
	gaveUp := k.KeInitializeEvent("gave up", kernel.NotificationEvent, false)
	k.PsCreateSystemThread("retrier", 8, func() {
		for range 99 {
			if k.KeWaitForSingleObject(reply, 20*des.Microsecond) == kernel.STATUS_WAIT_0 {
				return
			}
		}
		k.KeSetEvent(gaveUp, kernel.IO_NO_INCREMENT, false)
	})
	k.PsCreateSystemThread("caller", 8, func() { k.KeWaitForSingleObject(gaveUp, kernel.Infinite) })
	assert.NoError(t, k.Run().Err)
}

// Watching a stalled machine allocates nothing per expiry: a run twice as
// long (twice the quiet timeouts of a poller, below the threshold)
// allocates no more. (A poller, not a timer DPC: queueing a DPC builds its
// record's name, which is not this rule's cost.)
func TestStalledExpiriesAllocateNothing(t *testing.T) {
	allocs := func(budget uint64) float64 {
		return testing.AllocsPerRun(1, func() {
			cfg := oneCPU()
			cfg.HangTimerPeriods = 1 << 30
			sim := des.New(des.Config{StepBudget: budget})
			defer sim.Close()
			k := kernel.MustNew(sim, cfg)
			never := k.KeInitializeEvent("never", kernel.NotificationEvent, false)
			k.PsCreateSystemThread("poller", 8, func() {
				for {
					k.KeWaitForSingleObject(never, 10*des.Microsecond)
				}
			})
			k.PsCreateSystemThread("stuck", 8, func() { k.KeWaitForSingleObject(never, kernel.Infinite) })
			k.Run()
		})
	}
	short, long := allocs(20_000), allocs(40_000)
	assert.Less(t, long-short, 50.0, "%v allocations for 20,000 steps, %v for 40,000", short, long)
}

// A driver that leaves a heartbeat timer running after every thread has
// finished is not wrong: the run ends as quiescence would, with a
// timers-only record, once the timer has ticked HangTimerPeriods times
// quietly (or at once for a timer with no DPC and no waiter), and the end
// checks still run: an IRP left pending is still a leak. Before, such runs
// ran into the step budget and were reported as a livelock.
func TestTimersOnlyRunEndsCleanly(t *testing.T) {
	for _, withDpc := range []bool{true, false} {
		rec := &des.RecordSink{}
		sim := des.New(des.Config{StepBudget: 1_000_000, Sink: rec})
		t.Cleanup(sim.Close)
		cfg := oneCPU()
		cfg.HangTimerPeriods = 1000
		k := kernel.MustNew(sim, cfg)
		beats := 0
		var dpc *kernel.KDPC
		if withDpc {
			dpc = k.KeInitializeDpc("heartbeat", func(*kernel.KDPC, any, any, any) { beats++ }, nil)
		}
		timer := k.KeInitializeTimerEx("hb", kernel.NotificationTimer)
		k.PsCreateSystemThread("app", 8, func() {
			k.KeSetTimerEx(timer, 10*des.Microsecond, 10*des.Microsecond, dpc)
		})
		o := k.Run()
		require.NoError(t, o.Err, "dpc %v", withDpc)
		last := rec.Records[len(rec.Records)-1]
		assert.Equal(t, kernel.WhatTimersOnly, last.What, "dpc %v", withDpc)
		if withDpc {
			assert.Equal(t, 1000, beats, "ended after HangTimerPeriods quiet periods")
		} else {
			assert.Less(t, o.Steps+o.Calls, uint64(100), "a timer without a DPC or waiter: over at once")
		}
	}

	// the end checks still run
	k := stallMachine(t, 1000, 1_000_000)
	dpc := k.KeInitializeDpc("heartbeat", func(*kernel.KDPC, any, any, any) {}, nil)
	timer := k.KeInitializeTimerEx("hb", kernel.NotificationTimer)
	k.PsCreateSystemThread("app", 8, func() {
		irp := k.IoAllocateIrp("forgotten")
		k.IoMarkIrpPending(irp)
		k.KeSetTimerEx(timer, 10*des.Microsecond, 10*des.Microsecond, dpc)
	})
	var leak *kernel.Leak
	require.ErrorAs(t, k.Run().Err, &leak)
	assert.Contains(t, leak.Error(), "forgotten")
}
