package kernel

import (
	"fmt"

	"github.com/wqsim/wqsim/des"
)

// KDPC is a deferred procedure call. Its routine runs at DISPATCH_LEVEL on
// the processor it was queued to, when that processor's IRQL drops below
// DISPATCH_LEVEL (REFERENCE §4.5).
type KDPC struct {
	Name       string
	Routine    func(dpc *KDPC, ctx, arg1, arg2 any)
	Context    any
	HighImport bool // high importance: queued at the head
	queued     bool
	cpu        *Processor
	arg1, arg2 any
}

// KeInitializeDpc returns a DPC.
func (k *Kernel) KeInitializeDpc(name string, routine func(dpc *KDPC, ctx, arg1, arg2 any), ctx any) *KDPC {
	return &KDPC{Name: name, Routine: routine, Context: ctx}
}

// KeInsertQueueDpc queues d to the caller's processor and returns false if
// it was already queued. Any IRQL.
func (k *Kernel) KeInsertQueueDpc(d *KDPC, arg1, arg2 any) bool {
	x := k.enter("KeInsertQueueDpc")
	return k.queueDpc(x, d, x.cpu, arg1, arg2)
}

func (k *Kernel) queueDpc(x *exec, d *KDPC, c *Processor, arg1, arg2 any) bool {
	if d.queued {
		return false
	}
	d.queued, d.cpu, d.arg1, d.arg2 = true, c, arg1, arg2
	if d.HighImport {
		c.dpcQueue = append(c.dpcQueue, nil)
		copy(c.dpcQueue[1:], c.dpcQueue)
		c.dpcQueue[0] = d
	} else {
		c.dpcQueue = append(c.dpcQueue, d)
	}
	k.emit(x, KindDPC, "queue-dpc", "dpc "+d.Name, int64(c.id), 0)
	c.kick()
	return true
}

// KeRemoveQueueDpc removes d from its queue; false if it was not queued.
func (k *Kernel) KeRemoveQueueDpc(d *KDPC) bool {
	k.enter("KeRemoveQueueDpc")
	if !d.queued {
		return false
	}
	c := d.cpu
	for i, q := range c.dpcQueue {
		if q == d {
			c.dpcQueue = append(c.dpcQueue[:i], c.dpcQueue[i+1:]...)
			break
		}
	}
	d.queued = false
	return true
}

// drainDPCs is the body of a processor's DPC context: run every queued DPC
// at DISPATCH_LEVEL, then leave.
func (c *Processor) drainDPCs(*des.Proc) {
	k := c.k
	e := &c.dpc
	for {
		for len(c.dpcQueue) > 0 {
			d := c.dpcQueue[0]
			copy(c.dpcQueue, c.dpcQueue[1:])
			c.dpcQueue = c.dpcQueue[:len(c.dpcQueue)-1]
			d.queued = false
			e.irql = DISPATCH_LEVEL
			k.emit(e, KindDPC, "run-dpc", "dpc "+d.Name, 0, 0)
			d.Routine(d, d.Context, d.arg1, d.arg2)
			if e.irql != DISPATCH_LEVEL {
				k.bugCheck(e, "DPC return", IRQL_NOT_LESS_OR_EQUAL, 0, uint64(e.irql), 0, 0,
					fmt.Sprintf("DPC %s returned at %v, not DISPATCH_LEVEL", d.Name, e.irql))
			}
			if e.spinOn != nil {
				k.bugCheck(e, "DPC return", IRQL_NOT_LESS_OR_EQUAL, 0, 0, 0, 0, "DPC returned holding a spin lock")
			}
		}
		e.req = reqIdle
		e.proc.Yield()
	}
}

// KINTERRUPT is an interrupt source: its service routine runs at Irql on
// the processor the interrupt is delivered to, typically queueing a DPC.
type KINTERRUPT struct {
	Name string
	Irql IRQL
	ISR  func(intr *KINTERRUPT, ctx any) bool
	Ctx  any
}

// IoConnectInterrupt returns an interrupt source at a device IRQL (3–11).
func (k *Kernel) IoConnectInterrupt(name string, irql IRQL, isr func(*KINTERRUPT, any) bool, ctx any) (*KINTERRUPT, error) {
	if irql < MinDIRQL || irql > MaxDIRQL {
		return nil, fmt.Errorf("IoConnectInterrupt(%q): IRQL %d is not a device IRQL (3–11)", name, irql)
	}
	return &KINTERRUPT{Name: name, Irql: irql, ISR: isr, Ctx: ctx}, nil
}

// DeviceInterrupt is a workload helper: it models the device behind intr
// asserting its interrupt line on processor cpu at virtual time at. The
// ISR runs as soon as that processor's IRQL is below the interrupt's.
// Callable from anywhere (setup or simulated code); not a scheduling point.
func (k *Kernel) DeviceInterrupt(intr *KINTERRUPT, cpu int, at des.Time) {
	c := k.cpus[cpu]
	k.sim.At(at, func() {
		c.isrQueue = append(c.isrQueue, intr)
		k.emit(nil, KindInterrupt, "interrupt", intr.Name, int64(cpu), int64(intr.Irql))
		c.kick()
	})
}

func (c *Processor) drainISRs(*des.Proc) {
	k := c.k
	e := &c.isr
	for {
		for len(c.isrQueue) > 0 && c.isrQueue[0].Irql > c.belowISR() {
			intr := c.isrQueue[0]
			c.isrQueue = c.isrQueue[1:]
			e.irql = intr.Irql
			k.emit(e, KindInterrupt, "isr", intr.Name, int64(intr.Irql), 0)
			intr.ISR(intr, intr.Ctx)
		}
		e.req = reqIdle
		e.proc.Yield()
	}
}

// belowISR is the IRQL of what the ISR context interrupted.
func (c *Processor) belowISR() IRQL {
	switch {
	case c.dpcOn:
		return c.dpc.irql
	case c.cur != nil:
		return c.cur.irql
	}
	return PASSIVE_LEVEL
}

// KTIMER is a kernel timer: a dispatcher object signalled at its due time,
// optionally queueing a DPC.
type KTIMER struct {
	dispatcherHeader
	dpc   *KDPC
	timer des.Timer
	fire  des.Handler
	cpu   *Processor
	k     *Kernel
}

// KeInitializeTimerEx returns a notification or synchronization timer.
func (k *Kernel) KeInitializeTimerEx(name string, typ EVENT_TYPE) *KTIMER {
	t := &KTIMER{k: k}
	t.init(objTimer, "timer "+name, typ == SynchronizationEvent, 0)
	t.fire = t.expire
	return t
}

// KeSetTimer arms t to expire after due, queueing dpc (if non-nil) on the
// caller's processor. Returns true if t was already armed.
func (k *Kernel) KeSetTimer(t *KTIMER, due des.Duration, dpc *KDPC) bool {
	x := k.enter("KeSetTimer")
	was := t.timer.Stop()
	t.state = 0
	t.dpc = dpc
	t.cpu = x.cpu
	t.timer = k.sim.After(due, t.fire)
	return was
}

// KeCancelTimer disarms t; returns true if it was armed.
func (k *Kernel) KeCancelTimer(t *KTIMER) bool {
	k.enter("KeCancelTimer")
	return t.timer.Stop()
}

func (t *KTIMER) expire() {
	k := t.k
	k.emit(nil, KindSignal, "timer-expire", t.name, 0, 0)
	k.signal(&t.dispatcherHeader, 1, 0)
	if t.dpc != nil {
		k.queueDpc(nil, t.dpc, t.cpu, nil, nil)
	}
}
