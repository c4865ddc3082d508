package reports

import (
	"fmt"

	"github.com/wqsim/wqsim/des"
	"github.com/wqsim/wqsim/kernel"
	"github.com/wqsim/wqsim/model"
	"github.com/wqsim/wqsim/queues"
)

// threadPriority is the priority of the workload threads (a normal system
// thread, below the worker threads' 12).
const threadPriority = 8

// fastFailListEntry is KERNEL_SECURITY_CHECK_FAILURE's first parameter for
// a corrupted LIST_ENTRY: what RemoveEntryList's integrity check raises
// when the entry is no longer linked where its neighbours say.
const fastFailListEntry uint64 = 3

// entry is a LIST_ENTRY in a driver's list, reduced to what the races
// need: whether it is linked. Unlinking an entry that is not linked is
// RemoveEntryList's fast fail (0x139 P1=3), as the checked list macros in
// wdm.h do on a double remove.
type entry struct {
	name   string
	linked *kernel.Cell
}

func newEntry(k *kernel.Kernel, name string) *entry {
	return &entry{name: name, linked: k.NewCell(name+" linked", 0)}
}

// insert links e (InsertTailList); the caller holds the list's lock.
func (e *entry) insert(k *kernel.Kernel) { k.Write(e.linked, 1) }

// remove unlinks e (RemoveEntryList); the caller holds the list's lock.
func (e *entry) remove(k *kernel.Kernel) {
	if k.Read(e.linked) == 0 {
		k.Layer().BugCheckFrom("RemoveEntryList", kernel.KERNEL_SECURITY_CHECK_FAILURE, fastFailListEntry, 0, 0, 0,
			e.name+" removed from a list it is not on (double remove)")
		return
	}
	k.Write(e.linked, 0)
}

// onList reads whether e is linked; the caller holds the list's lock.
func (e *entry) onList(k *kernel.Kernel) bool { return k.Read(e.linked) == 1 }

// driver is a loaded driver with one device on the system worker pools.
type driver struct {
	env *model.Env
	k   *kernel.Kernel
	sys *queues.System
	drv *queues.DRIVER_OBJECT
	dev *queues.DEVICE_OBJECT
}

// newDriver builds the worker pools (ReactOS defaults); load it from a
// thread with load.
func newDriver(env *model.Env) (*driver, error) {
	sys, err := queues.NewSystem(env.K, queues.DefaultPoolConfig())
	return &driver{env: env, k: env.K, sys: sys}, err
}

// load runs DriverEntry (one device named after the driver) from the
// calling thread.
func (d *driver) load(name string) {
	drv, st := d.sys.LoadDriver(name, func(o *queues.DRIVER_OBJECT) kernel.NTSTATUS {
		o.DriverUnload = func(*queues.DRIVER_OBJECT) {}
		dev, st := d.sys.IoCreateDevice(o, name+"0")
		d.dev = dev
		return st
	})
	if !kernel.NT_SUCCESS(st) {
		d.env.Violation("driver loads", "DriverEntry of %s failed with %v", name, st)
	}
	d.drv = drv
}

// delays are the workload's choices of when a racing request arrives:
// plainly late (after the work is done), or at once, or a little later.
var delays = []des.Duration{60 * des.Microsecond, 0, 3 * des.Microsecond, 8 * des.Microsecond}

// arrive waits for the workload's choice of delay named label.
func arrive(env *model.Env, label string) {
	env.K.Compute(delays[env.Choose(label, len(delays))])
}

// errorf is fmt.Errorf for end-of-run checks.
func errorf(format string, args ...any) error { return fmt.Errorf(format, args...) }
