package model

import (
	"github.com/wqsim/wqsim/des"
	"github.com/wqsim/wqsim/kernel"
	"github.com/wqsim/wqsim/queues/fltmgr"
)

// The cancelsafe workload: three applications read; one read is cancelled
// a few microseconds after it is issued (a decision picks how many); the
// filter unloads either after the applications finish (natural) or while
// reads are still queued (a decision). The thread bodies are methods bound
// once (csBound), so that a run allocates nothing for them.

// csReadTags names the readers' reads: csReadTags[i-1][j] is reader i's
// j-th read.
var csReadTags = [2][2]string{{"read1.0", "read1.1"}, {"read2.0", "read2.1"}}

// startWorkload creates the workload's objects and threads.
func (cs *csFilter) startWorkload() {
	k := cs.K
	cs.started = k.KeInitializeEvent("filter started", kernel.NotificationEvent, false)
	cs.issuing = k.KeInitializeEvent("victim issuing", kernel.NotificationEvent, false)
	cs.apps.init(k, 3, "apps running", "apps done")
	k.PsCreateSystemThread("app0", 8, cs.fn.victimApp)
	k.PsCreateSystemThread("app1", 8, cs.fn.readerApps[0])
	k.PsCreateSystemThread("app2", 8, cs.fn.readerApps[1])
	k.PsCreateSystemThread("canceller", 8, cs.fn.canceller)
	k.PsCreateSystemThread("unloader", 8, cs.fn.unloader)
}

// victimApp starts filtering, then issues the read the canceller cancels.
func (cs *csFilter) victimApp() {
	k := cs.K
	cs.StartFiltering()
	k.KeSetEvent(cs.started, 0, false)
	k.KeSetEvent(cs.issuing, 0, false)
	cs.victimOp = cs.Volume.Issue(fltmgr.IoRequest{MajorFunction: fltmgr.IRP_MJ_READ, Length: 100, Tag: "victim"})
	cs.victimOp.Wait()
	cs.apps.finish()
}

// readerApp i reads twice once the filter has started.
func (cs *csFilter) readerApp(i int) {
	k := cs.K
	k.KeWaitForSingleObject(cs.started, kernel.Infinite)
	for j := 0; j < 2; j++ {
		cs.Volume.Send(fltmgr.IoRequest{MajorFunction: fltmgr.IRP_MJ_READ, Length: uint32(10*i + j), Tag: csReadTags[i-1][j]})
	}
	cs.apps.finish()
}

// canceller cancels the victim read a decided delay after its pre-op
// starts.
func (cs *csFilter) canceller() {
	k, env := cs.K, cs.Env
	k.KeWaitForSingleObject(cs.issuing, kernel.Infinite)
	// The read reaches the filter unless the filter unloaded first.
	if k.KeWaitForSingleObject(cs.victimEntered, 10*des.Millisecond) == kernel.STATUS_TIMEOUT {
		return
	}
	irp := cs.victim
	k.Compute(des.Duration(env.Choose("cancelsafe: cancel delay (×2µs)", 16)) * 2 * des.Microsecond)
	if !k.IoCancelIrp(irp) && !irp.Completed() {
		// No cancel routine on a read in flight: whoever pends it must
		// see the Cancel flag after setting its routine (§2.2), or the
		// cancel is lost (§2.7A).
		env.Hit(markCsLostCancel)
	}
	// Driver Verifier's check that a cancelled IRP completes in time
	// (§6.1); the deadline is scaled down with the filter's delay.
	k.VerifyCancelCompletes(irp, csCancelDeadline)
}

// unloader unloads the filter after the applications, or (a decision)
// while a read is being issued.
func (cs *csFilter) unloader() {
	k, env := cs.K, cs.Env
	k.KeWaitForSingleObject(cs.started, kernel.Infinite)
	if env.Choose("cancelsafe: unload while a read is being issued", 2) == 1 {
		k.KeWaitForSingleObject(cs.entered, kernel.Infinite)
		k.Compute(des.Duration(env.Choose("cancelsafe: unload delay (×2µs)", 16)) * 2 * des.Microsecond)
	} else {
		k.KeWaitForSingleObject(cs.apps.done, kernel.Infinite)
	}
	env.BeginDrain()
	start := k.Now()
	cs.Unload()
	if took := k.Now().Sub(start); took > csUnloadBound {
		env.Violation("unload latency", "unload took %v (> %v): teardown waited for the worker's sleep instead of draining", took, csUnloadBound)
	}
}
