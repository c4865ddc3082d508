package model_test

import (
	"bytes"
	"errors"
	"maps"
	"os"
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wqsim/wqsim/des"
	"github.com/wqsim/wqsim/kernel"
	"github.com/wqsim/wqsim/model"
)

// wiWorkload takes the given choice at the named workload decisions and
// the natural one everywhere else: the plain schedule with one workload
// perturbation. wiRun checks that each named decision was made with the
// given choice, so a label that drifts from the scenario's fails the test
// instead of silently running the plain workload.
type wiWorkload map[string]int

func (w wiWorkload) Choose(p des.Point, n int) int {
	if c, ok := w[p.Label]; ok && p.Kind == model.PointWorkload && c < n {
		return c
	}
	return 0
}

func wiRun(t *testing.T, spec string, ch des.Chooser) model.Result {
	t.Helper()
	s, v, err := model.Resolve(spec)
	require.NoError(t, err)
	var buf bytes.Buffer
	rc := model.RunConfig{Seed: 1, Chooser: ch}
	if os.Getenv("WI_TRACE") != "" {
		rc.Sink = &des.TextSink{W: &buf}
	}
	r, err := model.Run(s, v, rc)
	require.NoError(t, err)
	if buf.Len() > 0 {
		t.Logf("trace of %s:\n%s", spec, buf.String())
	}
	if w, ok := ch.(wiWorkload); ok {
		for _, label := range slices.Sorted(maps.Keys(w)) {
			i := slices.IndexFunc(r.Outcome.Decisions, func(d des.Decision) bool {
				return d.Kind == model.PointWorkload && d.Label == label
			})
			require.GreaterOrEqual(t, i, 0, "%s made no workload decision %q", spec, label)
			require.Equal(t, int32(w[label]), r.Outcome.Decisions[i].Choice, "%s: choice at %q", spec, label)
		}
	}
	return r
}

func wiBugCheck(t *testing.T, r model.Result) *kernel.BugCheck {
	t.Helper()
	var bc *kernel.BugCheck
	require.True(t, errors.As(r.Outcome.Err, &bc), "want a bug check, got %v", r.Outcome.Err)
	return bc
}

// The workload decision alone puts a request inside the previous one's
// window: the naive driver queues a queued item (0xE4 P1=1, P2 the item,
// P3 the queue type), or without the queue-time check the worker finds the
// NULL link at the second removal (0x96, P1 the item, P2 the queue type);
// the fixed driver serves every request under every think time.
func TestDoubleQueueOneWorkloadDecision(t *testing.T) {
	const label = "doublequeue: think time before the next request"
	bc := wiBugCheck(t, wiRun(t, "doublequeue:no-guard", wiWorkload{label: 1}))
	assert.Equal(t, kernel.WORKER_INVALID, bc.Code)
	assert.Equal(t, []uint64{1, 1, 1}, bc.Params[:3], bc.Error())
	bc = wiBugCheck(t, wiRun(t, "doublequeue:no-guard-nocheck", wiWorkload{label: 1}))
	assert.Equal(t, kernel.INVALID_WORK_QUEUE_ITEM, bc.Code)
	assert.Equal(t, []uint64{1, 1}, bc.Params[:2], bc.Error())
	for c := range 4 {
		assert.NoError(t, wiRun(t, "doublequeue:correct", wiWorkload{label: c}).Outcome.Err, "think time %d", c)
	}
	// Re-queueing while the routine drains is legal, even for the naive
	// driver: the item was dequeued before the routine was called.
	assert.NoError(t, wiRun(t, "doublequeue:no-guard", wiWorkload{label: 3}).Outcome.Err)
}

// Closing a handle at once frees the item while it is queued: 0xE4 P1=2
// (P2 the item) from IoFreeWorkItem in the closing thread, or 0xE4 P1=0
// (P2 the item, P4 the block size) when the worker removes the item from
// the freed pool block.
func TestFreeQueuedOneWorkloadDecision(t *testing.T) {
	read := wiWorkload{"freequeued: think time before closing the read handle": 1}
	write := wiWorkload{"freequeued: think time before closing the write handle": 1}
	bc := wiBugCheck(t, wiRun(t, "freequeued:io-free-queued", read))
	assert.Equal(t, kernel.WORKER_INVALID, bc.Code)
	assert.Equal(t, []uint64{2, 1}, bc.Params[:2], bc.Error())
	assert.Equal(t, "app", bc.Actor)
	bc = wiBugCheck(t, wiRun(t, "freequeued:ex-pool-freed", write))
	assert.Equal(t, kernel.WORKER_INVALID, bc.Code)
	assert.Equal(t, []uint64{0, 2}, bc.Params[:2], bc.Error())
	for _, w := range []wiWorkload{read, write, {"freequeued: think time before closing the read handle": 2,
		"freequeued: think time before closing the write handle": 2}} {
		assert.NoError(t, wiRun(t, "freequeued:correct", w).Outcome.Err, "%v", w)
	}
	// Late closes are harmless even for the buggy cleanup.
	assert.NoError(t, wiRun(t, "freequeued:io-free-queued", nil).Outcome.Err)
	assert.NoError(t, wiRun(t, "freequeued:ex-pool-freed", nil).Outcome.Err)
}

// An early unload leaves the worker calling the routine (item still
// queued) or returning into it (routine running) in an unmapped image:
// 0xCE. The I/O work item's device reference makes both unloads safe.
func TestUnloadWorkEarlyUnload(t *testing.T) {
	const label = "unloadwork: time until the driver is unloaded"
	bc := wiBugCheck(t, wiRun(t, "unloadwork:ex-item", wiWorkload{label: 1}))
	assert.Equal(t, kernel.DRIVER_UNLOADED_WITHOUT_CANCELLING_PENDING_OPERATIONS, bc.Code)
	assert.Contains(t, bc.Detail, "calls routine")
	bc = wiBugCheck(t, wiRun(t, "unloadwork:ex-item", wiWorkload{label: 2}))
	assert.Contains(t, bc.Detail, "returns into routine")
	for c := range 3 {
		r := wiRun(t, "unloadwork:correct", wiWorkload{label: c})
		assert.NoError(t, r.Outcome.Err, "unload choice %d", c)
	}
	// Waiting for the routine's event covers the queued and running cases;
	// only a delay between the signal and the return (an injected stall,
	// found by exploration) shows the remaining window.
	for c := range 3 {
		assert.NoError(t, wiRun(t, "unloadwork:wait-then-unload-ex", wiWorkload{label: c}).Outcome.Err, "unload choice %d", c)
	}
}

// The IOCTL thread waits for the flush while holding the mutex the flush
// routine needs: a hang naming both waits, on the natural schedule.
func TestLockWaitHangs(t *testing.T) {
	r := wiRun(t, "lockwait:wait-holding-mutex", nil)
	var dl *kernel.Deadlock
	require.ErrorAs(t, r.Outcome.Err, &dl)
	assert.Contains(t, dl.Error(), "waits for fast mutex lw config owned by app")
	assert.Contains(t, dl.Error(), "app waits for event lw flushed")
	for c := range 3 {
		w := wiWorkload{"lockwait: query IOCTL arrives": c}
		assert.NoError(t, wiRun(t, "lockwait:correct", w).Outcome.Err, "query choice %d", c)
	}
}

// With three or more requests ahead of the start item, the three static
// delayed workers all wait for it: a hang on a fixed pool; the ReactOS
// balance manager resolves it after its detector's second pass (the first
// pass after arming only records the counters), and the dynamic thread
// exits ten idle minutes later. The parking driver never blocks a worker.
func TestExhaustion(t *testing.T) {
	const label = "exhaustion: requests queued before the device start"
	for c := range 5 {
		w := wiWorkload{label: c}
		fixed := wiRun(t, "exhaustion:fixed-pool", w)
		detector := wiRun(t, "exhaustion:reactos-detector", w)
		assert.NoError(t, wiRun(t, "exhaustion:correct", w).Outcome.Err, "early %d", c)
		assert.NoError(t, detector.Outcome.Err, "early %d", c)
		if c < 3 {
			assert.NoError(t, fixed.Outcome.Err, "early %d: a worker is left for the start", c)
			continue
		}
		var dl *kernel.Deadlock
		require.ErrorAs(t, fixed.Outcome.Err, &dl, "early %d", c)
		assert.Len(t, dl.Blocked, 3, "every static delayed worker waits: %v", dl)
		assert.Contains(t, fixed.Marks, "exhaustion: every delayed worker waits for a queued item")
		assert.Greater(t, detector.Outcome.End, des.Time(2*des.Second), "resolved by the detector's second pass")
	}
}

// A malformed request takes the error path that keeps the spin lock: 0xE1
// with P2 = DISPATCH_LEVEL and P4 the item.
func TestBadIrqlErrorPath(t *testing.T) {
	const label = "badirql: which request is malformed"
	for c := 1; c <= 3; c++ {
		bc := wiBugCheck(t, wiRun(t, "badirql:error-path-keeps-lock", wiWorkload{label: c}))
		assert.Equal(t, kernel.WORKER_THREAD_RETURNED_AT_BAD_IRQL, bc.Code)
		assert.Equal(t, uint64(kernel.DISPATCH_LEVEL), bc.Params[1], bc.Error())
		assert.Equal(t, uint64(c), bc.Params[3], "the item of request %d", c-1)
	}
	for c := range 4 {
		assert.NoError(t, wiRun(t, "badirql:correct", wiWorkload{label: c}).Outcome.Err, "malformed %d", c)
	}
	assert.NoError(t, wiRun(t, "badirql:error-path-keeps-lock", nil).Outcome.Err, "well-formed requests only")
}

// Running on a reused Sim (as exploration and shrinking do) gives the
// same run as a fresh one: nothing of a stopped run leaks into the next.
// This covers deferred kernel calls in simulated code (the cancelsafe and
// cancelremove scenarios have some): they run while Reset unwinds the
// stopped run's coroutines, and their scheduling points must unwind
// further instead of suspending (des.Proc.Yield).
func TestReusedSimMatchesFreshAll(t *testing.T) {
	sim := des.New(des.Config{})
	defer sim.Close()
	for _, s := range model.All() {
		for _, v := range s.Variants {
			bad := 0
			for seed := uint64(1); seed <= 200; seed++ {
				a, err := model.Run(s, v.Name, model.RunConfig{Seed: seed, Chooser: des.NewSeededBiased(seed, 3, 4), Sim: sim})
				require.NoError(t, err)
				b, err := model.Run(s, v.Name, model.RunConfig{Seed: seed, Chooser: des.NewSeededBiased(seed, 3, 4)})
				require.NoError(t, err)
				if a.Outcome.Hash != b.Outcome.Hash {
					bad++
				}
			}
			if bad > 0 {
				t.Errorf("%s:%s: %d of 200 runs differ on a reused Sim", s.Name, v.Name, bad)
			}
		}
	}
}

// REFERENCE §6.8: the watchdog driver's unload. Without KeCancelTimer the
// periodic DPC faults on any schedule; without KeFlushQueuedDpcs an unload
// that lands while the DPC runs lets the image go under it; the full
// sequence is safe whenever the unload comes.
func TestUnloadTimerWindows(t *testing.T) {
	const label = "unloadtimer: time until the driver is unloaded"
	bc := wiBugCheck(t, wiRun(t, "unloadtimer:no-cancel", nil))
	assert.Equal(t, kernel.DRIVER_UNLOADED_WITHOUT_CANCELLING_PENDING_OPERATIONS, bc.Code)
	assert.Contains(t, bc.Detail, "DPC watchdog of driver watchdog")
	assert.NoError(t, wiRun(t, "unloadtimer:no-flush", nil).Outcome.Err, "between two ticks the shortcut works")
	for _, c := range []int{1, 2} {
		r := wiRun(t, "unloadtimer:no-flush", wiWorkload{label: c})
		bc := wiBugCheck(t, r)
		assert.Contains(t, bc.Detail, "returns into its routine", "unload choice %d", c)
		assert.Contains(t, r.Marks, "unloadtimer: watchdog DPC running when its timer was cancelled")
	}
	for c := range 3 {
		assert.NoError(t, wiRun(t, "unloadtimer:correct", wiWorkload{label: c}).Outcome.Err, "unload choice %d", c)
	}
}
