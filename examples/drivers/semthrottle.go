package drivers

import (
	"fmt"

	"github.com/wqsim/wqsim/des"
	"github.com/wqsim/wqsim/kernel"
	"github.com/wqsim/wqsim/model"
)

// semthrottle: a driver for three sensors shares two DMA bounce buffers
// among them, counted by a KSEMAPHORE whose limit is the number of buffers.
// A read takes a buffer (waits on the semaphore), starts the sensor and arms
// a timeout timer. The sensor's interrupt DPC and the timeout DPC race to
// finish the read; whichever finishes it returns the buffer with
// KeReleaseSemaphore. Both returning it pushes the count over the limit:
// STATUS_SEMAPHORE_LIMIT_EXCEEDED, raised in a DPC, bug check 0x1E
// (REFERENCE §4.8). The two DPCs run on different processors, so a plain
// test-then-clear of the read's state does not decide the owner;
// InterlockedCompareExchange does.

var markSemBothFinish = model.NewMark("semthrottle: the interrupt DPC and the timeout DPC both finished one read")

// SemThrottle is the scenario.
var SemThrottle = &model.Scenario{
	Name: "semthrottle",
	Doc: "Three sensors share two bounce buffers counted by a KSEMAPHORE; a read's interrupt DPC and its " +
		"timeout DPC race to finish it and return the buffer. The bug decides the winner with a plain " +
		"read then write of the read's state: both return the buffer and the count passes the limit.",
	Section: "REFERENCE §4.8",
	Variants: []model.Variant{
		{Name: "correct", Doc: "InterlockedCompareExchange(active→done) decides which DPC finishes the read and returns its buffer"},
		{Name: "plain-flag", Bug: true, Doc: "each DPC reads the state, then clears it: on two processors both see 'active'",
			Marks: []*model.Mark{markSemBothFinish}, Want: "0x1E|0x7E"},
	},
	Setup: setupSemThrottle,
}

const (
	stSensors = 3
	stBuffers = 2
	stTimeout = 20 * des.Microsecond
)

// stRead is one sensor read in flight.
type stRead struct {
	state    *kernel.Cell // 1 while active, 0 once finished
	finishes int          // bookkeeping for the mark
	timer    *kernel.KTIMER
	timeout  *kernel.KDPC
	done     *kernel.KEVENT
	status   kernel.NTSTATUS
}

type stDrv struct {
	env     *model.Env
	k       *kernel.Kernel
	buffers *kernel.KSEMAPHORE
	reads   [stSensors]*stRead
	intr    [stSensors]*kernel.KINTERRUPT
	dpc     [stSensors]*kernel.KDPC
}

func setupSemThrottle(env *model.Env) error {
	k := env.K
	d := &stDrv{env: env, k: k}
	k.PsCreateSystemThread("driver", 8, func() {
		d.buffers = k.KeInitializeSemaphore("bounce buffers", stBuffers, stBuffers)
		for i := range stSensors {
			r := &stRead{
				state: k.NewCell(fmt.Sprintf("read%d state", i), 0),
				timer: k.KeInitializeTimer(fmt.Sprintf("read%d timeout", i)),
				done:  k.KeInitializeEvent(fmt.Sprintf("read%d done", i), kernel.NotificationEvent, false),
			}
			r.timeout = k.KeInitializeDpc(fmt.Sprintf("read%d timeout dpc", i), d.timeoutDpc, r)
			k.KeSetTargetProcessorDpc(r.timeout, env.Choose("timeout dpc cpu", 2))
			d.reads[i] = r
			d.dpc[i] = k.KeInitializeDpc(fmt.Sprintf("sensor%d dpc", i), d.sensorDpc, r)
			intr, err := k.IoConnectInterrupt(fmt.Sprintf("sensor%d", i), 5, d.isr, i)
			if err != nil {
				env.Violation("interrupt connects", "%v", err)
				return
			}
			d.intr[i] = intr
		}
		var apps []*kernel.Thread
		for i := range stSensors {
			apps = append(apps, k.PsCreateSystemThread(fmt.Sprintf("app%d", i), 8, func() { d.read(i) }))
		}
		for _, a := range apps {
			k.KeWaitForSingleObject(a.Object(), kernel.Infinite)
		}
		env.BeginDrain()
		k.KeDelayExecutionThread(2 * stTimeout) // late interrupts arrive
		for i := range stSensors {
			k.IoDisconnectInterrupt(d.intr[i])
		}
		k.KeFlushQueuedDpcs()
	})
	env.AtEnd("every bounce buffer returned once", func() error {
		if n := k.KeReadStateSemaphore(d.buffers); n != stBuffers {
			return fmt.Errorf("semaphore count %d, want %d", n, stBuffers)
		}
		return nil
	})
	return nil
}

// read takes a buffer, starts sensor i and waits for the read to finish.
func (d *stDrv) read(i int) {
	k := d.k
	k.KeDelayExecutionThread(des.Duration(1+3*d.env.Choose("issue at", 3)) * des.Microsecond)
	k.KeWaitForSingleObject(d.buffers, kernel.Infinite)
	r := d.reads[i]
	k.Write(r.state, 1)
	k.KeSetTimer(r.timer, stTimeout, r.timeout)
	// The sensor usually answers well within the timeout; sometimes it is
	// late, about when the timeout fires.
	latency := []des.Duration{5, 19, 20, 21}[d.env.Choose("sensor latency", 4)] * des.Microsecond
	k.DeviceInterrupt(d.intr[i], d.env.Choose("interrupt cpu", 2), k.Now().Add(latency))
	k.KeWaitForSingleObject(r.done, kernel.Infinite)
}

func (d *stDrv) isr(_ *kernel.KINTERRUPT, ctx any) bool {
	i := ctx.(int)
	d.k.KeInsertQueueDpc(d.dpc[i], nil, nil)
	return true
}

func (d *stDrv) sensorDpc(_ *kernel.KDPC, ctx, _, _ any) {
	r := ctx.(*stRead)
	if d.claim(r) {
		d.k.KeCancelTimer(r.timer)
		d.finish(r, kernel.STATUS_SUCCESS)
	}
}

func (d *stDrv) timeoutDpc(_ *kernel.KDPC, ctx, _, _ any) {
	r := ctx.(*stRead)
	if d.claim(r) {
		d.finish(r, kernel.STATUS_TIMEOUT)
	}
}

// claim tells whether the caller is the one DPC that finishes r.
func (d *stDrv) claim(r *stRead) bool {
	k := d.k
	if d.env.Is("plain-flag") {
		if k.Read(r.state) != 1 {
			return false
		}
		k.Compute(des.Microsecond) // copy the sample out of the buffer
		k.Write(r.state, 0)
		return true
	}
	return k.InterlockedCompareExchange(r.state, 0, 1) == 1
}

// finish records the read's status, returns its buffer and wakes the reader.
func (d *stDrv) finish(r *stRead, st kernel.NTSTATUS) {
	k := d.k
	r.finishes++
	if r.finishes > 1 {
		d.env.Hit(markSemBothFinish)
	}
	r.status = st
	k.KeReleaseSemaphore(d.buffers, kernel.IO_NO_INCREMENT, 1, false)
	k.KeSetEvent(r.done, kernel.IO_NO_INCREMENT, false)
}
