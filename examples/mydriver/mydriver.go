// Package mydriver is an example of a scenario written outside wqsim's own
// packages, the way a user writes one for their driver: a small driver
// with a correct and a racy variant, a test that checks the first and
// finds the bug in the second (mydriver_test.go), and a five-line command
// (cmd/mydriver) that gives it wqsim's command line.
//
// Start with Scenario. The driver keeps a count of outstanding requests in
// its device extension under a spin lock: the dispatch routine counts a
// request in, the driver's completion thread counts it out, on another
// processor. The racy variant's completion thread updates the count
// without the lock (a read, then a write), so an update the dispatch
// routine makes between the two is lost and the count never returns to
// zero; so is the completion's own update when it falls between the
// dispatch routine's read and write (the lock only excludes code that
// takes it: a stall of the dispatch routine at DISPATCH_LEVEL opens that
// window).
package mydriver

import (
	"fmt"

	"github.com/wqsim/wqsim/kernel"
	"github.com/wqsim/wqsim/model"
)

// markUnlocked is the racy path: the completion thread's unlocked update
// and one of the dispatch routine interleaved, and one overwrote the other.
var markUnlocked = model.NewMark("mydriver: unlocked completion and the dispatch routine's update interleaved (one overwrote the other)")

// Scenario is the driver model, its workload and its invariant.
var Scenario = &model.Scenario{
	Name: "mydriver",
	Doc: "Outstanding requests counted in the device extension: the dispatch routine counts in under the " +
		"spin lock, the completion thread counts out; the racy completion skips the lock.",
	Section: "REFERENCE §4.6 (spin locks)",
	Variants: []model.Variant{
		{Name: "correct", Doc: "the completion thread takes the spin lock"},
		{Name: "racy", Bug: true, Doc: "the completion thread updates the count without the lock",
			Marks: []*model.Mark{markUnlocked}, Want: "outstanding"},
	},
	Setup: setup,
}

type device struct {
	env         *model.Env
	k           *kernel.Kernel
	lock        *kernel.KSPIN_LOCK
	outstanding *kernel.Cell
	completed   *kernel.KSEMAPHORE // one count per request the device finished
	unlocked    int                // unlocked updates so far (plain Go: bookkeeping for the mark)
}

func setup(env *model.Env) error {
	k := env.K
	d := &device{env: env, k: k, lock: k.KeInitializeSpinLock("device extension"), outstanding: k.NewCell("outstanding", 0)}
	d.completed = k.KeInitializeSemaphore("completed", 0, 3)
	k.PsCreateSystemThread("app", 8, func() {
		for range 3 {
			d.dispatch()
		}
	})
	k.PsCreateSystemThread("completion", 8, func() {
		for range 3 {
			k.KeWaitForSingleObject(d.completed, kernel.Infinite)
			d.countOut()
		}
	})
	env.AtEnd("outstanding", func() error {
		if n := d.outstanding.Peek(); n != 0 {
			return fmt.Errorf("outstanding = %d after every request completed, want 0 (an update was lost)", n)
		}
		return nil
	})
	return nil
}

// dispatch counts a request in under the lock and hands it to the device,
// which finishes it at once.
func (d *device) dispatch() {
	k := d.k
	old := k.KeAcquireSpinLock(d.lock)
	before := d.unlocked
	k.Write(d.outstanding, k.Read(d.outstanding)+1)
	if d.unlocked != before {
		d.env.Hit(markUnlocked) // the completion's update fell between the read and the write
	}
	k.KeReleaseSpinLock(d.lock, old)
	k.KeReleaseSemaphore(d.completed, 0, 1, false)
}

// countOut is the completion thread's update.
func (d *device) countOut() {
	k := d.k
	if d.env.Is("correct") {
		old := k.KeAcquireSpinLock(d.lock)
		k.Write(d.outstanding, k.Read(d.outstanding)-1)
		k.KeReleaseSpinLock(d.lock, old)
		return
	}
	v := k.Read(d.outstanding)
	if k.InterlockedExchange(d.outstanding, v-1) != v {
		d.env.Hit(markUnlocked)
	}
	d.unlocked++
}
