package bench

import (
	"context"
	"runtime"
	"testing"

	"github.com/wqsim/wqsim/des"
	"github.com/wqsim/wqsim/kernel"
	"github.com/wqsim/wqsim/model"
	"github.com/wqsim/wqsim/proptest"
	"github.com/wqsim/wqsim/queues"
)

// reusableCsq is a scenario whose driver code allocates nothing per
// execution, written against the public API only: a driver keeps read IRPs
// in a cancel-safe queue (IoCsq, spin lock) served by its own thread; three
// applications each send a read and wait for it, a canceller arms a timer
// whose DPC cancels the second one, and the unloader, polling with a timed
// wait, stops the service thread once the applications are done. It is what BenchmarkExploreCbdq's scenario would
// be if its driver code built its objects and closures once: each
// simulation (des.Sim, one per exploration worker) gets one reusableDriver,
// kept under the driver's own des.SpareKey, whose callbacks and thread
// bodies are bound when it is made. What an execution still allocates is
// then the simulator's own (BenchmarkExploreReusable,
// TestSimulatorAllocatesNothingPerExecution).
var reusableCsq = &model.Scenario{
	Name:     "bench-reusable-csq",
	Doc:      "a cancel-safe queue driver whose driver code allocates nothing per execution (bench only)",
	Variants: []model.Variant{{Name: "correct", Doc: "every read completes, cancelled or served"}},
	Setup:    setupReusable,
}

const reusableApps = 3

// reusableAppNames are constants, so creating the threads builds no string.
var reusableAppNames = [reusableApps]string{"app0", "app1", "app2"}

// reusableDriver is the driver's device extension plus its workload, one
// per simulation.
type reusableDriver struct {
	k *kernel.Kernel

	csq     queues.IO_CSQ
	lock    *kernel.KSPIN_LOCK
	pending []*kernel.IRP
	sem     *kernel.KSEMAPHORE
	stop    *kernel.Cell
	server  *kernel.Thread

	reads    [reusableApps]*kernel.IRP
	sent     *kernel.KEVENT // the cancelled application's read is queued
	appsLeft *kernel.Cell
	appsDone *kernel.KEVENT

	// Bound once, when the driver is made.
	insert, remove        func(*queues.IO_CSQ, *kernel.IRP)
	peek                  queues.CsqPeekNextIrp
	acquire               queues.CsqAcquireLock
	release               queues.CsqReleaseLock
	complete              queues.CsqCompleteCanceledIrp
	cancelDpc             func(*kernel.KDPC, any, any, any)
	apps                  [reusableApps]func()
	serve, cancel, unload func()
}

var reusableKey = des.NewSpareKey("bench reusable driver")

// reusableOf returns sim's driver, making it on the first execution.
func reusableOf(sim *des.Sim) *reusableDriver {
	d, _ := sim.Spare(reusableKey).(*reusableDriver)
	if d == nil {
		d = newReusableDriver()
		sim.SetSpare(reusableKey, d)
	}
	return d
}

func newReusableDriver() *reusableDriver {
	d := &reusableDriver{}
	d.insert = func(_ *queues.IO_CSQ, irp *kernel.IRP) { d.pending = append(d.pending, irp) }
	d.remove = func(_ *queues.IO_CSQ, irp *kernel.IRP) {
		for i, x := range d.pending {
			if x == irp {
				d.pending = append(d.pending[:i], d.pending[i+1:]...)
				return
			}
		}
	}
	d.peek = func(_ *queues.IO_CSQ, irp *kernel.IRP, _ any) *kernel.IRP {
		i := 0
		if irp != nil {
			for i < len(d.pending) && d.pending[i] != irp {
				i++
			}
			i++
		}
		if i < len(d.pending) {
			return d.pending[i]
		}
		return nil
	}
	d.acquire = func(*queues.IO_CSQ) kernel.IRQL { return d.k.KeAcquireSpinLock(d.lock) }
	d.release = func(_ *queues.IO_CSQ, irql kernel.IRQL) { d.k.KeReleaseSpinLock(d.lock, irql) }
	d.complete = func(_ *queues.IO_CSQ, irp *kernel.IRP) {
		irp.IoStatus = kernel.IO_STATUS_BLOCK{Status: kernel.STATUS_CANCELLED}
		d.k.IoCompleteRequest(irp, kernel.IO_NO_INCREMENT)
	}
	d.cancelDpc = func(*kernel.KDPC, any, any, any) { d.k.IoCancelIrp(d.reads[1]) }
	for i := range d.apps {
		d.apps[i] = func() { d.app(i) }
	}
	d.serve, d.cancel, d.unload = d.serveReads, d.cancelRead, d.unloadDriver
	return d
}

func setupReusable(env *model.Env) error {
	d := reusableOf(env.Sim)
	k := env.K
	d.k = k
	d.pending = d.pending[:0]
	d.reads = [reusableApps]*kernel.IRP{}
	d.lock = k.KeInitializeSpinLock("reusable queue")
	d.sem = k.KeInitializeSemaphore("reusable reads", 0, 1<<30)
	d.stop = k.NewCell("reusable stop", 0)
	d.sent = k.KeInitializeEvent("reusable read1 sent", kernel.NotificationEvent, false)
	d.appsLeft = k.NewCell("reusable apps left", reusableApps)
	d.appsDone = k.KeInitializeEvent("reusable apps done", kernel.NotificationEvent, false)
	d.csq.Name = "reusable"
	if st := queues.IoCsqInitialize(k, &d.csq, d.insert, d.remove, d.peek, d.acquire, d.release, d.complete); st != kernel.STATUS_SUCCESS {
		return errStatus(st)
	}
	d.server = k.PsCreateSystemThread("reusable server", 9, d.serve)
	for i := range d.apps {
		k.PsCreateSystemThread(reusableAppNames[i], 8, d.apps[i])
	}
	k.PsCreateSystemThread("canceller", 8, d.cancel)
	k.PsCreateSystemThread("unloader", 8, d.unload)
	return nil
}

// app sends one read and waits for it.
func (d *reusableDriver) app(i int) {
	k := d.k
	irp := k.IoAllocateIrp(reusableAppNames[i])
	d.reads[i] = irp
	queues.IoCsqInsertIrp(&d.csq, irp, nil) // marks it pending
	k.KeReleaseSemaphore(d.sem, 0, 1, false)
	if i == 1 {
		k.KeSetEvent(d.sent, 0, false)
	}
	k.KeWaitForSingleObject(irp.Done(), kernel.Infinite)
	if k.InterlockedDecrement(d.appsLeft) == 0 {
		k.KeSetEvent(d.appsDone, 0, false)
	}
}

// serveReads takes each counted read from the queue and completes it; a
// count whose read was cancelled finds none.
func (d *reusableDriver) serveReads() {
	k := d.k
	for {
		if k.KeWaitForSingleObject(d.sem, des.Microsecond) == kernel.STATUS_TIMEOUT {
			continue // polls as well
		}
		if k.Read(d.stop) != 0 {
			return
		}
		irp := queues.IoCsqRemoveNextIrp(&d.csq, nil)
		if irp == nil {
			continue
		}
		k.Compute(2 * des.Microsecond)
		irp.IoStatus = kernel.IO_STATUS_BLOCK{Status: kernel.STATUS_SUCCESS, Information: 512}
		k.IoCompleteRequest(irp, kernel.IO_NO_INCREMENT)
	}
}

func (d *reusableDriver) cancelRead() {
	k := d.k
	k.KeWaitForSingleObject(d.sent, kernel.Infinite)
	t := k.KeInitializeTimerEx("reusable cancel", kernel.NotificationEvent)
	k.KeSetTimer(t, 3*des.Microsecond, k.KeInitializeDpc("reusable cancel", d.cancelDpc, nil))
	k.KeWaitForSingleObject(t, kernel.Infinite)
}

func (d *reusableDriver) unloadDriver() {
	k := d.k
	for k.KeWaitForSingleObject(d.appsDone, 2*des.Microsecond) == kernel.STATUS_TIMEOUT {
		// polls: the stalled-timer rule looks at the machine at each timeout
	}
	k.InterlockedExchange(d.stop, 1)
	k.KeReleaseSemaphore(d.sem, 0, 1, false)
	k.KeWaitForSingleObject(d.server.Object(), kernel.Infinite)
}

// errStatus is a failed NTSTATUS as an error.
type errStatus kernel.NTSTATUS

func (e errStatus) Error() string { return kernel.NTSTATUS(e).String() }

// BenchmarkExploreReusable: executions per second and allocations per
// execution of reusableCsq, explored like BenchmarkExploreCbdq (default
// portfolio, every core). b.N is the number of executions; allocs/op is
// what the simulator allocates per execution, since the driver code
// allocates nothing (a worker's first execution builds its objects; over
// b.N executions that rounds to 0).
func BenchmarkExploreReusable(b *testing.B) {
	b.ReportAllocs()
	rep, err := proptest.Explore(context.Background(), proptest.Options{Scenario: reusableCsq, Variant: "correct", Execs: b.N, Seed: 1})
	if err != nil {
		b.Fatal(err)
	}
	if f := rep.First(); f != nil {
		b.Fatalf("correct variant failed: %v", f.Result.Outcome.Err)
	}
	b.ReportMetric(float64(rep.Execs)/b.Elapsed().Seconds(), "execs/s")
}

// TestSimulatorAllocatesNothingPerExecution fails if the simulator's own
// per-execution allocations come back: once a Sim has run reusableCsq
// (whose driver code allocates nothing) under every strategy of the
// default portfolio, further executions on it — new seeds, perturbed
// schedules, each strategy's chooser recycled as an exploration worker
// recycles it — allocate nothing. Allocation counts are exact, not
// timings. testing.AllocsPerRun averages with integer division, so an
// occasional growth of a buffer (a schedule longer than any before) is
// tolerated; one allocation per execution is not.
func TestSimulatorAllocatesNothingPerExecution(t *testing.T) {
	members := proptest.NewPortfolio().Members
	sim := des.New(des.Config{})
	defer sim.Close()
	kept := make([]des.Chooser, len(members))
	exec := 0
	run := func() {
		m := exec % len(members)
		seed := proptest.ExecSeed(1, exec)
		kept[m] = members[m].(proptest.Recycler).Rechoose(kept[m], seed)
		r, err := model.Run(reusableCsq, "correct", model.RunConfig{Seed: seed, Chooser: kept[m], Sim: sim})
		if err != nil || r.Failed() {
			t.Fatalf("execution %d: %v %v", exec, err, r.Outcome.Err)
		}
		exec++
	}
	for range 300 { // warm up: every buffer reaches its size
		run()
	}
	if n := testing.AllocsPerRun(300, run); n != 0 {
		t.Errorf("%v allocations per execution on a recycled Sim; want 0 (profile BenchmarkExploreReusable with -memprofile)", n)
	}
}

// TestExplorationAllocatesNothingPerExecution: the same through
// proptest.Explore (its workers' choosers and coverage record included):
// 2,000 more executions cost fewer than 100 more allocations (buffers that
// grow now and then), not one or more per execution.
func TestExplorationAllocatesNothingPerExecution(t *testing.T) {
	allocs := func(n int) uint64 { return exploreAllocs(t, reusableCsq, n) }
	allocs(500) // warm up the package-level state
	small, large := allocs(1000), allocs(3000)
	t.Logf("allocations: %d for 1,000 executions, %d for 3,000", small, large)
	if large > small && large-small >= 100 {
		t.Errorf("3,000 executions allocated %d objects, 1,000 allocated %d: %d more for 2,000 executions; want < 100", large, small, large-small)
	}
}

// exploreAllocs returns the heap allocations (runtime.MemStats.Mallocs) of
// a serial exploration of s:correct with n executions, which must pass.
func exploreAllocs(t *testing.T, s *model.Scenario, n int) uint64 {
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	rep, err := proptest.Explore(context.Background(), proptest.Options{Scenario: s, Variant: "correct", Execs: n, Seed: 1, Parallel: 1})
	runtime.ReadMemStats(&after)
	if err != nil || rep.First() != nil {
		t.Fatalf("explore %s %d: %v %v", s.Name, n, err, rep.First())
	}
	return after.Mallocs - before.Mallocs
}

// TestCancelSafeAllocationsPerExecution: an execution of the cancelsafe
// minifilter (BenchmarkExploreCbdq's scenario) allocates nothing in steady
// state — 0.02 per execution on 2026-12-05 (names met for the first time),
// 30.1 before its driver code kept its callbacks and the layers cached the
// names they join (bench/BENCHMARKS.md) — so a per-execution allocation
// coming back in the filter manager, which reusableCsq does not use, or in
// the scenario fails here. It logs the exact count: the allocations of
// 4,000 more executions, divided by 4,000 (-v prints it).
func TestCancelSafeAllocationsPerExecution(t *testing.T) {
	if testing.Short() {
		t.Skip("explores 6,500 executions")
	}
	s, err := model.Lookup("cancelsafe")
	if err != nil {
		t.Fatal(err)
	}
	exploreAllocs(t, s, 500)
	small, large := exploreAllocs(t, s, 1000), exploreAllocs(t, s, 5000)
	per := float64(large-small) / 4000
	t.Logf("cancelsafe:correct: %.2f allocations per execution (1,000 executions: %d, 5,000: %d)", per, small, large)
	if per > 0.5 {
		t.Errorf("%.2f allocations per execution; want at most 0.5, none in steady state (profile BenchmarkExploreCbdq with -memprofile)", per)
	}
}
