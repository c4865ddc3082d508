package queues_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"pgregory.net/rapid"

	"github.com/wqsim/wqsim/des"
	"github.com/wqsim/wqsim/kernel"
	"github.com/wqsim/wqsim/queues"
)

// REFERENCE §3.1–3.2: the defaults are the ReactOS model.
func TestDefaultPoolConfig(t *testing.T) {
	c := queues.DefaultPoolConfig()
	require.NoError(t, c.Validate())
	assert.Equal(t, 5, c.Static[queues.CriticalWorkQueue])
	assert.Equal(t, 3, c.Static[queues.DelayedWorkQueue])
	assert.Equal(t, 1, c.Static[queues.HyperCriticalWorkQueue])
	assert.Equal(t, 16, c.MaxDynamic)
	assert.Equal(t, 10*des.Minute, c.DynamicIdleTimeout)
	assert.Equal(t, des.Second, c.BalancePeriod)
	assert.Nil(t, c.Policy, "nil means ReactOS")
	r := newWIRig(t, wiCPUs(2), c)
	assert.Equal(t, "reactos", r.sys.Policy().Name())
}

func TestPoolConfigValidateSaysWhatToDo(t *testing.T) {
	c := queues.DefaultPoolConfig()
	c.Static[queues.DelayedWorkQueue] = -1
	c.Priority[queues.CriticalWorkQueue] = 40
	c.DynamicIdleTimeout = 0
	c.BalancePriority = 0
	err := c.Validate()
	require.Error(t, err)
	for _, want := range []string{"Static[DelayedWorkQueue] = -1", "Priority[CriticalWorkQueue] = 40: worker priorities are 1..31",
		"DynamicIdleTimeout = 0s: must be positive (ReactOS: 10m0s)", "BalancePriority = 0"} {
		assert.Contains(t, err.Error(), want)
	}
	k := kernel.MustNew(des.New(des.Config{}), kernel.DefaultConfig())
	_, err = queues.NewSystem(k, c)
	assert.ErrorContains(t, err, "queues: invalid pool config")
}

// REFERENCE §3.1: workers run at the documented priorities by default; the
// CriticalRealTime switch moves the critical queues into the real-time
// class, keeping their order.
func TestWorkerPriorities(t *testing.T) {
	prios := func(realTime bool) map[string]int {
		c := queues.DefaultPoolConfig()
		c.CriticalRealTime = realTime
		r := newWIRig(t, wiCPUs(1), c)
		out := map[string]int{}
		for _, th := range r.k.Layer().Threads() {
			out[th.Name()] = th.BasePriority()
		}
		return out
	}
	p := prios(false)
	assert.Equal(t, 13, p["worker.critical.0"])
	assert.Equal(t, 12, p["worker.delayed.2"])
	assert.Equal(t, 15, p["worker.hypercritical.0"])
	assert.Equal(t, 14, p["worker.balance"])
	p = prios(true)
	assert.Equal(t, 16, p["worker.critical.4"])
	assert.Equal(t, 12, p["worker.delayed.0"])
	assert.Equal(t, 18, p["worker.hypercritical.0"])
}

// An idle system quiesces: the balance manager's timer is not armed and the
// idle workers are not a hang (REFERENCE §3.3, brief: quiescence).
func TestIdleSystemQuiesces(t *testing.T) {
	r := newWIRig(t, wiCPUs(2), queues.DefaultPoolConfig())
	out := r.run(t)
	require.NoError(t, out.Err)
	assert.Less(t, out.End, des.Time(des.Millisecond))
	assert.NotContains(t, r.trace.String(), "timer-armed")
}

// exhaustion builds the classic deadlock of REFERENCE §3.4/§6.10: n items on
// typ each wait for an event that only item n+1 sets. It returns when item
// n+1 ran (0 if never).
func exhaustion(r *wiRig, typ queues.WORK_QUEUE_TYPE, n int) *des.Time {
	k, sys := r.k, r.sys
	done := k.KeInitializeEvent("last-item-ran", kernel.NotificationEvent, false)
	items := make([]queues.WORK_QUEUE_ITEM, n+1)
	ranAt := new(des.Time)
	r.driver(8, func() {
		for i := 0; i < n; i++ {
			queues.ExInitializeWorkItem(&items[i], func(any) { k.KeWaitForSingleObject(done, kernel.Infinite) }, nil)
			sys.ExQueueWorkItem(&items[i], typ)
		}
		queues.ExInitializeWorkItem(&items[n], func(any) {
			*ranAt = k.Now()
			k.KeSetEvent(done, kernel.IO_NO_INCREMENT, false)
		}, nil)
		sys.ExQueueWorkItem(&items[n], typ)
	})
	return ranAt
}

// REFERENCE §3.4, §6.10: with static threads only, N delayed workers each
// waiting for an event set by a later item is a hang, reported with the
// waiting workers.
func TestPoolExhaustionDeadlocksWithFixedPolicy(t *testing.T) {
	r := newWIRig(t, wiCPUs(2), wiPool(queues.Fixed()))
	ranAt := exhaustion(r, queues.DelayedWorkQueue, 3)
	out := r.run(t)
	var d *kernel.Deadlock
	require.ErrorAs(t, out.Err, &d)
	assert.Zero(t, *ranAt)
	require.Len(t, d.Blocked, 3, d.Error())
	for i, e := range d.Blocked {
		assert.Equal(t, fmt.Sprintf("worker.delayed.%d", i), e.Waiter)
		assert.Equal(t, "event last-item-ran", e.Object)
	}
	assert.Equal(t, 1, r.sys.Queue(queues.DelayedWorkQueue).Depth)
	// The report names the item the waiters count on and why it never ran
	// (before, it listed only the waits: "nothing can wake" with the
	// queued item nowhere in it).
	require.Len(t, d.Pending, 1, d.Error())
	assert.Contains(t, d.Pending[0], "1 work item queued on DelayedWorkQueue, first #4")
	assert.Contains(t, d.Pending[0], "no worker free to run them: its 3 workers (3 static, 0 dynamic, at most 16 dynamic) are all running or waiting")
	assert.Contains(t, d.Error(), "; still pending: 1 work item queued on DelayedWorkQueue")
	assert.NotContains(t, d.Pending[0], "github.com/", "the routine is named without its import path")
	assert.NotContains(t, d.Pending[0], "-fm")
}

// REFERENCE §3.2, §3.4: under ReactOS the delayed queue does not grow on
// insert, but the 1-second deadlock detector adds a dynamic thread after a
// whole pass without progress, so the hang resolves after ≥ 1 s; the
// dynamic thread exits after 10 minutes idle.
func TestReactOSDetectorResolvesExhaustion(t *testing.T) {
	r := newWIRig(t, wiCPUs(2), queues.DefaultPoolConfig())
	ranAt := exhaustion(r, queues.DelayedWorkQueue, 3)
	out := r.run(t)
	require.NoError(t, out.Err)
	assert.GreaterOrEqual(t, *ranAt, des.Time(des.Second), "resolved by the periodic pass, not on insert")
	assert.Less(t, *ranAt, des.Time(2100*des.Millisecond), "first pass records the backlog, the second adds a thread")
	st := r.sys.Queue(queues.DelayedWorkQueue)
	assert.Equal(t, 1, st.Created)
	assert.Equal(t, 0, st.Dynamic, "the dynamic thread exited")
	assert.Contains(t, r.trace.String(), "deadlock-detected")
	dyn := wiThread(r.k, "worker.delayed.dyn1")
	require.NotNil(t, dyn)
	assert.Equal(t, kernel.Terminated, dyn.State())
	assert.GreaterOrEqual(t, out.End, *ranAt+des.Time(10*des.Minute), "idle exit after 10 minutes")
	assert.Less(t, out.End, *ranAt+des.Time(10*des.Minute+des.Second))
}

// REFERENCE §3.2: the research policy grows any queue on insert, so the
// same exhaustion resolves at once.
func TestGrowOnDemandResolvesAtOnce(t *testing.T) {
	r := newWIRig(t, wiCPUs(2), wiPool(queues.GrowOnDemand(4)))
	ranAt := exhaustion(r, queues.DelayedWorkQueue, 3)
	require.NoError(t, r.run(t).Err)
	assert.NotZero(t, *ranAt)
	assert.Less(t, *ranAt, des.Time(des.Millisecond))
	assert.NotContains(t, r.trace.String(), "timer-armed", "no periodic pass")
}

// REFERENCE §1.1 step (d), §3.2: the critical queue grows on insert when
// its workers are blocked and items wait.
//
// Under the global dispatcher the woken workers run (and block) at once on
// the other processor, so the sixth insert finds them all blocked. With
// per-processor queues (REFERENCE §4.7) the workers the driver wakes join
// the queue of their ideal processor behind an equal-priority worker while
// the driver's own processor runs the driver: they are ready, not blocked,
// when the sixth item arrives, so the pool grows only at the balance
// manager's deadlock pass, 2 s later.
func TestCriticalQueueGrowsOnInsert(t *testing.T) {
	global := wiCPUs(2)
	global.Policy = kernel.NewNTDispatcher()
	r := newWIRig(t, global, queues.DefaultPoolConfig())
	ranAt := exhaustion(r, queues.CriticalWorkQueue, 5)
	require.NoError(t, r.run(t).Err)
	assert.NotZero(t, *ranAt)
	assert.Less(t, *ranAt, des.Time(des.Millisecond), "no need to wait for the periodic pass")
	assert.Regexp(t, `grow-on-insert +CriticalWorkQueue`, r.trace.String())
	assert.Equal(t, 1, r.sys.Queue(queues.CriticalWorkQueue).Created)

	perCPU := wiCPUs(2)
	perCPU.Policy = kernel.NewPerProcessorDispatcher()
	r = newWIRig(t, perCPU, queues.DefaultPoolConfig())
	ranAt = exhaustion(r, queues.CriticalWorkQueue, 5)
	require.NoError(t, r.run(t).Err)
	assert.Greater(t, *ranAt, des.Time(2*des.Second), "grown by the deadlock pass")
	assert.Regexp(t, `deadlock-detected +CriticalWorkQueue`, r.trace.String())
	assert.Equal(t, 1, r.sys.Queue(queues.CriticalWorkQueue).Created)
}

// REFERENCE §3.2: a dynamic thread exits DynamicIdleTimeout after it last
// went idle, not before; an item in the meantime restarts its wait.
func TestDynamicThreadIdleExit(t *testing.T) {
	c := queues.DefaultPoolConfig()
	c.DynamicIdleTimeout = 5 * des.Second
	r := newWIRig(t, wiCPUs(2), c)
	k, sys := r.k, r.sys
	release := k.KeInitializeEvent("release", kernel.NotificationEvent, false)
	items := make([]queues.WORK_QUEUE_ITEM, 7)
	var by []string
	r.driver(8, func() {
		for i := 0; i < 5; i++ { // the five static workers block until 4s
			queues.ExInitializeWorkItem(&items[i], func(any) { k.KeWaitForSingleObject(release, kernel.Infinite) }, nil)
			sys.ExQueueWorkItem(&items[i], queues.CriticalWorkQueue)
		}
		note := func(any) { by = append(by, wiCurrent(k)) }
		queues.ExInitializeWorkItem(&items[5], note, nil) // grows the queue
		sys.ExQueueWorkItem(&items[5], queues.CriticalWorkQueue)
		k.KeDelayExecutionThread(3 * des.Second)
		queues.ExInitializeWorkItem(&items[6], note, nil) // only the dynamic thread is idle
		sys.ExQueueWorkItem(&items[6], queues.CriticalWorkQueue)
		k.KeDelayExecutionThread(des.Second)
		k.KeSetEvent(release, 0, false)
	})
	out := r.run(t)
	require.NoError(t, out.Err)
	assert.Equal(t, []string{"worker.critical.dyn1", "worker.critical.dyn1"}, by)
	var lastIdle, exit des.Time
	for _, rec := range r.recs.Records {
		if rec.Actor == "worker.critical.dyn1" && rec.What == "KeRemoveQueue" {
			lastIdle = rec.At
		}
		if rec.Kind == queues.KindWorker && rec.What == "worker-exit" {
			exit = rec.At
		}
	}
	assert.Greater(t, lastIdle, des.Time(3*des.Second))
	assert.GreaterOrEqual(t, exit.Sub(lastIdle), 5*des.Second)
	assert.Less(t, exit.Sub(lastIdle), 5*des.Second+10*des.Microsecond)
	assert.Equal(t, 0, sys.Queue(queues.CriticalWorkQueue).Dynamic)
}

// REFERENCE §3.2: MaxDynamic caps growth; a queue stuck at the cap lets
// the balance manager disarm, so the run quiesces and the hang is reported.
func TestGrowthCapThenHang(t *testing.T) {
	c := queues.DefaultPoolConfig()
	c.MaxDynamic = 2
	r := newWIRig(t, wiCPUs(2), c)
	exhaustion(r, queues.DelayedWorkQueue, 5) // 3 static + 2 dynamic all wait
	out := r.run(t)
	var d *kernel.Deadlock
	require.ErrorAs(t, out.Err, &d)
	assert.Len(t, d.Blocked, 5)
	assert.Equal(t, 2, r.sys.Queue(queues.DelayedWorkQueue).Dynamic)
	assert.Contains(t, r.trace.String(), "timer-disarmed")
}

// REFERENCE §3.2–3.3: QueueState reports a queue's threads, idle workers and
// limit; a queue not created yet reads as empty.
func TestQueueStateSnapshot(t *testing.T) {
	r := newWIRig(t, wiCPUs(2), wiPool(queues.Fixed()))
	st := r.sys.Queue(queues.BackgroundWorkQueue)
	assert.Equal(t, queues.BackgroundWorkQueue, st.Type)
	assert.Zero(t, st.Threads)
	require.NoError(t, r.run(t).Err)
	st = r.sys.Queue(queues.CriticalWorkQueue)
	assert.Equal(t, 5, st.Static)
	assert.Equal(t, 5, st.Idle)
	assert.Equal(t, 2, st.Limit)
}

// mixedScenario exercises Ex and Io items, dynamic growth and unload; used
// by the determinism tests.
func mixedScenario(r *wiRig) {
	k, sys := r.k, r.sys
	done := k.KeInitializeEvent("done", kernel.NotificationEvent, false)
	items := make([]queues.WORK_QUEUE_ITEM, 8)
	r.driver(8, func() {
		drv, _ := sys.LoadDriver("mixed", func(d *queues.DRIVER_OBJECT) kernel.NTSTATUS {
			dev, _ := sys.IoCreateDevice(d, "mixed0")
			d.DriverUnload = func(d *queues.DRIVER_OBJECT) { sys.IoDeleteDevice(dev) }
			d.DriverExtension = dev
			return kernel.STATUS_SUCCESS
		})
		dev := drv.DriverExtension.(*queues.DEVICE_OBJECT)
		for i := range items {
			typ := queues.DelayedWorkQueue
			if i%3 == 0 {
				typ = queues.CriticalWorkQueue
			}
			drv.ExInitializeWorkItem(&items[i], func(p any) {
				if p.(int) < 6 {
					k.KeWaitForSingleObject(done, 50*des.Millisecond)
				}
				k.Compute(des.Duration(p.(int)+1) * 100 * des.Microsecond)
			}, i)
			sys.ExQueueWorkItem(&items[i], typ)
		}
		iw := sys.IoAllocateWorkItem(dev)
		sys.IoQueueWorkItem(iw, func(d *queues.DEVICE_OBJECT, _ any) {
			k.Compute(des.Millisecond)
			k.KeSetEvent(done, 0, false)
			sys.IoFreeWorkItem(iw)
		}, queues.DelayedWorkQueue, nil)
		k.KeDelayExecutionThread(2 * des.Second)
		sys.UnloadDriver(drv)
	})
}

// STYLE 12: the same scenario gives the same trace, natural schedule and a
// seeded perturbed one alike.
func TestDeterministicTraceHash(t *testing.T) {
	for _, perturb := range []bool{false, true} {
		t.Run(fmt.Sprint("perturb=", perturb), func(t *testing.T) {
			hash := func() (uint64, error) {
				kcfg := wiCPUs(2)
				o := wiOpts{seed: 9}
				if perturb {
					kcfg.InjectPreemption = true
					kcfg.JitterLevels = 4
					o.chooser = des.NewSeededBiased(7, 9, 10)
				}
				r := newWIRigOpts(t, kcfg, queues.DefaultPoolConfig(), o)
				mixedScenario(r)
				out := r.run(t)
				return out.Hash, out.Err
			}
			h1, err1 := hash()
			h2, err2 := hash()
			require.NoError(t, err1)
			require.NoError(t, err2)
			assert.Equal(t, h1, h2)
		})
	}
}

// Property (REFERENCE §3.3): whatever the processors, static threads,
// policy and workload, every queued item runs exactly once, no finding is
// raised, and the run is deterministic. Routines compute or block briefly
// (never on each other), so no policy can deadlock.
func TestPropertyEveryItemRunsOnce(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		cpus := rapid.IntRange(1, 4).Draw(rt, "cpus")
		pcfg := queues.DefaultPoolConfig()
		pcfg.Static[queues.DelayedWorkQueue] = rapid.IntRange(1, 4).Draw(rt, "delayed")
		pcfg.Static[queues.CriticalWorkQueue] = rapid.IntRange(1, 5).Draw(rt, "critical")
		pcfg.Policy = []queues.PoolPolicy{queues.Fixed(), queues.ReactOS(), queues.GrowOnDemand(3)}[rapid.IntRange(0, 2).Draw(rt, "policy")]
		n := rapid.IntRange(1, 30).Draw(rt, "items")
		kinds := rapid.SliceOfN(rapid.IntRange(0, 3), n, n).Draw(rt, "kinds")
		run := func() (des.Outcome, []int) {
			r := newWIRigOpts(t, wiCPUs(cpus), pcfg, wiOpts{sink: &des.RecordSink{}})
			k, sys := r.k, r.sys
			ran := make([]int, n)
			items := make([]queues.WORK_QUEUE_ITEM, n)
			r.driver(8, func() {
				for i, kind := range kinds {
					typ := []queues.WORK_QUEUE_TYPE{queues.DelayedWorkQueue, queues.CriticalWorkQueue}[kind%2]
					queues.ExInitializeWorkItem(&items[i], func(any) {
						ran[i]++
						if kind >= 2 {
							k.KeDelayExecutionThread(des.Duration(i+1) * des.Millisecond)
						} else {
							k.Compute(des.Duration(i+1) * 50 * des.Microsecond)
						}
					}, nil)
					sys.ExQueueWorkItem(&items[i], typ)
					if i%4 == 3 {
						k.KeDelayExecutionThread(200 * des.Microsecond)
					}
				}
			})
			return r.k.Run(), ran
		}
		out1, ran := run()
		if out1.Err != nil {
			rt.Fatalf("finding: %v", out1.Err)
		}
		for i, c := range ran {
			if c != 1 {
				rt.Fatalf("item %d ran %d times", i, c)
			}
		}
		out2, _ := run()
		if out1.Hash != out2.Hash {
			rt.Fatalf("trace hash differs between identical runs")
		}
	})
}

// The policies' names identify them in experiment output.
func TestPolicyNames(t *testing.T) {
	var names []string
	for _, p := range []queues.PoolPolicy{queues.Fixed(), queues.ReactOS(), queues.GrowOnDemand(2)} {
		names = append(names, p.Name())
	}
	assert.Equal(t, "fixed reactos grow-on-demand", strings.Join(names, " "))
}
