package drivers

import (
	"fmt"

	"github.com/wqsim/wqsim/des"
	"github.com/wqsim/wqsim/kernel"
	"github.com/wqsim/wqsim/model"
)

// WaitAll is a driver whose workers each need two things at once: the
// table mutex (a KMUTEX) and one of two DMA channels (a KSEMAPHORE of
// count 2). They take both in one KeWaitForMultipleObjects(WaitAll), which
// acquires both atomically or neither. A monitor thread polls the mutex
// with WaitAny on (stop, mutex) and a timeout. The bug waits with WaitAny
// by mistake and then releases both objects, one of which it does not own.
var WaitAll = &model.Scenario{
	Name: "waitall",
	Doc: "Workers take a KMUTEX and a KSEMAPHORE together with KeWaitForMultipleObjects(WaitAll); a monitor " +
		"polls the mutex with WaitAny and a timeout. The bug uses WaitAny and releases both objects.",
	Section: "REFERENCE §4.8",
	Variants: []model.Variant{
		{Name: "correct", Doc: "WaitAll, then release exactly what it took"},
		{Name: "waitany", Bug: true, Doc: "one worker waits WaitAny on (mutex, channels) and releases both",
			Want: "0x7E"},
	},
	Setup: waitAllSetup,
}

const (
	waWorkers = 3
	waRounds  = 2
)

type waDev struct {
	env      *model.Env
	k        *kernel.Kernel
	table    *kernel.KMUTEX
	channels *kernel.KSEMAPHORE
	stop     *kernel.KEVENT
	inTable  int // threads inside the table, guarded by table
	inDma    int // channels in use, guarded by table
	polls    int
	done     int
}

func waitAllSetup(env *model.Env) error {
	k := env.K
	d := &waDev{env: env, k: k}
	d.table = k.KeInitializeMutex("table", 0)
	d.channels = k.KeInitializeSemaphore("dma channels", 2, 2)
	d.stop = k.KeInitializeEvent("stop", kernel.NotificationEvent, false)
	env.Invariant("one thread in the table", func() error {
		if d.inTable > 1 {
			return fmt.Errorf("%d threads hold the table", d.inTable)
		}
		return nil
	})
	var workers []*kernel.Thread
	for i := range waWorkers {
		workers = append(workers, k.PsCreateSystemThread(fmt.Sprintf("worker%d", i), 8, func() { d.work(i) }))
	}
	monitor := k.PsCreateSystemThread("monitor", 9, d.monitor)
	k.PsCreateSystemThread("app", 8, func() {
		for _, w := range workers {
			k.KeWaitForSingleObject(w.Object(), kernel.Infinite)
		}
		env.BeginDrain()
		k.KeSetEvent(d.stop, kernel.IO_NO_INCREMENT, false)
		k.KeWaitForSingleObject(monitor.Object(), kernel.Infinite)
	})
	env.AtEnd("every round done", func() error {
		if d.done != waWorkers*waRounds {
			return fmt.Errorf("%d of %d rounds done", d.done, waWorkers*waRounds)
		}
		if st := k.KeReadStateSemaphore(d.channels); st != 2 {
			return fmt.Errorf("semaphore count %d at the end, want 2", st)
		}
		return nil
	})
	return nil
}

// work takes the table and a channel together, uses them, releases both.
func (d *waDev) work(i int) {
	k := d.k
	objs := []kernel.Waitable{d.table, d.channels}
	for range waRounds {
		if i == 0 && d.env.Is("waitany") {
			k.KeWaitForMultipleObjects(objs, kernel.WaitAny, kernel.Infinite)
		} else {
			k.KeWaitForMultipleObjects(objs, kernel.WaitAll, kernel.Infinite)
			d.inTable++
			d.inDma++
			k.Compute(des.Duration(1+d.env.Choose("table work", 3)) * des.Microsecond)
			d.inTable--
			d.inDma--
		}
		d.done++
		k.KeReleaseSemaphore(d.channels, kernel.IO_NO_INCREMENT, 1, false)
		k.KeReleaseMutex(d.table, false)
		k.KeDelayExecutionThread(des.Duration(d.env.Choose("pause", 3)) * des.Microsecond)
	}
}

// monitor polls the table every few microseconds until stop.
func (d *waDev) monitor() {
	k := d.k
	objs := []kernel.Waitable{d.stop, d.table}
	for {
		switch k.KeWaitForMultipleObjects(objs, kernel.WaitAny, 3*des.Microsecond) {
		case kernel.STATUS_WAIT_0:
			return
		case kernel.STATUS_WAIT_0 + 1:
			d.inTable++
			d.polls++
			d.inTable--
			k.KeReleaseMutex(d.table, false)
		}
	}
}
