package model

import (
	"fmt"

	"github.com/wqsim/wqsim/des"
	"github.com/wqsim/wqsim/kernel"
	"github.com/wqsim/wqsim/queues/fltmgr"
)

// csWorkload: three applications read; one read is cancelled a few
// microseconds after it is issued (a decision picks how many); the filter
// unloads either after the applications finish (natural) or while reads
// are still queued (a decision).
func csWorkload(env *Env, cs *csFilter, vol *fltmgr.FLT_VOLUME) {
	k := env.K
	started := k.KeInitializeEvent("filter started", kernel.NotificationEvent, false)
	issuing := k.KeInitializeEvent("victim issuing", kernel.NotificationEvent, false)
	apps := newCountdown(k, 3, "apps running", "apps done")
	var victim *fltmgr.IoOp
	k.PsCreateSystemThread("app0", 8, func() {
		cs.StartFiltering()
		k.KeSetEvent(started, 0, false)
		k.KeSetEvent(issuing, 0, false)
		victim = vol.Issue(fltmgr.IoRequest{MajorFunction: fltmgr.IRP_MJ_READ, Length: 100, Tag: "victim"})
		victim.Wait()
		apps.finish()
	})
	for i := 1; i <= 2; i++ {
		k.PsCreateSystemThread(fmt.Sprintf("app%d", i), 8, func() {
			k.KeWaitForSingleObject(started, kernel.Infinite)
			for j := 0; j < 2; j++ {
				vol.Send(fltmgr.IoRequest{MajorFunction: fltmgr.IRP_MJ_READ, Length: uint32(10*i + j), Tag: fmt.Sprintf("read%d.%d", i, j)})
			}
			apps.finish()
		})
	}
	k.PsCreateSystemThread("canceller", 8, func() {
		k.KeWaitForSingleObject(issuing, kernel.Infinite)
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
	})
	k.PsCreateSystemThread("unloader", 8, func() {
		k.KeWaitForSingleObject(started, kernel.Infinite)
		if env.Choose("cancelsafe: unload while a read is being issued", 2) == 1 {
			k.KeWaitForSingleObject(cs.entered, kernel.Infinite)
			k.Compute(des.Duration(env.Choose("cancelsafe: unload delay (×2µs)", 16)) * 2 * des.Microsecond)
		} else {
			k.KeWaitForSingleObject(apps.done, kernel.Infinite)
		}
		env.BeginDrain()
		start := k.Now()
		cs.Unload()
		if took := k.Now().Sub(start); took > csUnloadBound {
			env.Violation("unload latency", "unload took %v (> %v): teardown waited for the worker's sleep instead of draining", took, csUnloadBound)
		}
	})
}
