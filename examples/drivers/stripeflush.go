package drivers

import (
	"fmt"

	"github.com/wqsim/wqsim/des"
	"github.com/wqsim/wqsim/kernel"
	"github.com/wqsim/wqsim/model"
	"github.com/wqsim/wqsim/queues"
)

// stripeflush: a software RAID-0 driver flushes a stripe set. Each flush
// request is handled at PASSIVE_LEVEL by a work item on the
// CriticalWorkQueue (so that a busy delayed queue cannot hold flushes up),
// which writes the dirty stripe to each member disk. The bug does it the
// obvious way: the flush routine queues one child work item per disk on the
// same critical queue and waits for them. A burst of flushes fills every
// critical worker with a parent waiting for children queued behind it; the
// critical queue grows on insert, but only up to its dynamic-thread cap
// (REFERENCE §3.2), so a burst larger than the pool never completes: the
// system worker pool is exhausted (§3.4, §6.10). The correct driver never
// waits in a work routine for another work item: the children count
// themselves down and the last one completes the flush.

var markStripeAllParents = model.NewMark("stripeflush: every critical worker waits in a flush routine")

// StripeFlush is the scenario.
var StripeFlush = &model.Scenario{
	Name: "stripeflush",
	Doc: "A RAID-0 driver flushes each request in a CriticalWorkQueue item that writes every member disk. The " +
		"bug queues one child item per disk on the same queue and waits for them: a burst of flushes leaves " +
		"every critical worker, dynamic ones included, waiting for children queued behind them (a hang). The " +
		"correct driver lets the last child complete the flush.",
	Section: "REFERENCE §3.2, §3.4, §6.10",
	Variants: []model.Variant{
		{Name: "correct", Doc: "the flush routine queues the children and returns; the last child to finish completes the flush"},
		{Name: "wait-for-children", Bug: true, Doc: "the flush routine waits on an event the last child sets: in a burst every critical worker waits",
			Marks: []*model.Mark{markStripeAllParents}, Want: "hang"},
	},
	Setup: setupStripeFlush,
}

const (
	sfFlushes = 24 // more than 5 static + 16 dynamic critical workers
	sfDisks   = 2
)

type sfFlush struct {
	id    int
	item  queues.WORK_QUEUE_ITEM
	disks [sfDisks]queues.WORK_QUEUE_ITEM
	left  *kernel.Cell   // children still writing
	done  *kernel.KEVENT // set when the flush is complete
}

type stripeFlush struct {
	env     *model.Env
	k       *kernel.Kernel
	sys     *queues.System
	drv     *queues.DRIVER_OBJECT
	waiting int // flush routines waiting for their children (bookkeeping for the mark)
	flushes [sfFlushes]*sfFlush
}

func setupStripeFlush(env *model.Env) error {
	k := env.K
	sys, err := queues.NewSystem(k, queues.DefaultPoolConfig())
	if err != nil {
		return err
	}
	d := &stripeFlush{env: env, k: k, sys: sys}
	k.PsCreateSystemThread("pnp", 8, func() {
		drv, st := sys.LoadDriver("stripe", func(*queues.DRIVER_OBJECT) kernel.NTSTATUS { return kernel.STATUS_SUCCESS })
		if st != kernel.STATUS_SUCCESS {
			env.Violation("driver loads", "%v", st)
			return
		}
		d.drv = drv
		for i := range d.flushes {
			d.flushes[i] = &sfFlush{id: i, left: k.NewCell(fmt.Sprintf("flush%d disks left", i), sfDisks),
				done: k.KeInitializeEvent(fmt.Sprintf("flush%d done", i), kernel.NotificationEvent, false)}
		}
		// The file system usually flushes spread out; a checkpoint flushes
		// in a burst.
		gap := []des.Duration{12, 4, 0}[env.Choose("flush gap", 3)] * des.Microsecond
		for _, f := range d.flushes {
			if gap > 0 {
				k.KeDelayExecutionThread(gap)
			}
			d.flush(f)
		}
		for _, f := range d.flushes {
			k.KeWaitForSingleObject(f.done, kernel.Infinite)
		}
		env.BeginDrain()
	})
	return nil
}

// flush is the driver's flush dispatch: post the flush to a critical work item.
func (d *stripeFlush) flush(f *sfFlush) {
	d.drv.ExInitializeWorkItem(&f.item, d.flushRoutine, f)
	d.sys.ExQueueWorkItem(&f.item, queues.CriticalWorkQueue)
}

// flushRoutine writes the stripe to every disk through child work items.
func (d *stripeFlush) flushRoutine(ctx any) {
	k := d.k
	f := ctx.(*sfFlush)
	k.Compute(2 * des.Microsecond) // gather the dirty stripe
	for i := range f.disks {
		d.drv.ExInitializeWorkItem(&f.disks[i], d.diskRoutine, f)
		d.sys.ExQueueWorkItem(&f.disks[i], queues.CriticalWorkQueue)
	}
	if !d.env.Is("wait-for-children") {
		return // the last child completes the flush
	}
	d.waiting++
	if d.waiting >= 5+16 {
		d.env.Hit(markStripeAllParents)
	}
	k.KeWaitForSingleObject(f.done, kernel.Infinite)
	d.waiting--
}

// diskRoutine writes one member disk's part; the last one completes the flush.
func (d *stripeFlush) diskRoutine(ctx any) {
	k := d.k
	f := ctx.(*sfFlush)
	k.Compute(3 * des.Microsecond) // the member disk's write
	if k.InterlockedDecrement(f.left) == 0 {
		k.KeSetEvent(f.done, kernel.IO_NO_INCREMENT, false)
	}
}
