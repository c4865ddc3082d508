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
	importance KDPC_IMPORTANCE
	target     int // KeSetTargetProcessorDpc's processor, -1 for "the caller's"
	queued     bool
	cpu        *Processor
	arg1, arg2 any
	image      *Image   // the driver image of Routine, nil for none (image.go)
	obj        string   // "dpc Name", the trace object (objName)
	threaded   bool     // KeInitializeThreadedDpc's (threaddpc.go)
	queuedAt   des.Time // when it was last queued (the livelock report's "since")
}

// objName returns "dpc Name", built once per name: a DPC queued every
// period, or recycled with the same name, builds no string.
func (d *KDPC) objName() string {
	const prefix = "dpc "
	if len(d.obj) != len(prefix)+len(d.Name) || d.obj[len(prefix):] != d.Name {
		d.obj = prefix + d.Name
	}
	return d.obj
}

// KDPC_IMPORTANCE says where KeInsertQueueDpc puts a DPC in its queue and
// whether the queue is drained at once (REFERENCE §4.8).
type KDPC_IMPORTANCE uint8

// DPC importances (wdm.h values).
const (
	LowImportance KDPC_IMPORTANCE = iota
	MediumImportance
	HighImportance
	MediumHighImportance
)

// KeInitializeDpc returns a DPC of MediumImportance targeted at whichever
// processor queues it.
// IRQL: any (REFERENCE §4.8).
func (k *Kernel) KeInitializeDpc(name string, routine func(dpc *KDPC, ctx, arg1, arg2 any), ctx any) *KDPC {
	k.tick()
	d := k.rc.dpcs.Take(k.sim) // recycled: overwritten whole
	*d = KDPC{Name: name, Routine: routine, Context: ctx, importance: MediumImportance, target: -1, image: k.currentImage(), obj: k.joined(d.obj, "dpc ", name)}
	return d
}

// KeSetImportanceDpc sets d's importance for its next KeInsertQueueDpc
// (REFERENCE §4.8). Any IRQL.
func (k *Kernel) KeSetImportanceDpc(d *KDPC, importance KDPC_IMPORTANCE) { d.importance = importance }

// KeSetTargetProcessorDpc makes d run on processor cpu whoever queues it
// (REFERENCE §4.8). A processor the machine does not have is a
// programming error reported at once. Any IRQL.
func (k *Kernel) KeSetTargetProcessorDpc(d *KDPC, cpu int) {
	if cpu < 0 || cpu >= len(k.cpus) {
		panic(fmt.Sprintf("kernel: KeSetTargetProcessorDpc(%s, %d): the machine has processors 0..%d", d.Name, cpu, len(k.cpus)-1))
	}
	d.target = cpu
}

// KeInsertQueueDpc queues d to its target processor (the caller's unless
// KeSetTargetProcessorDpc chose one) and returns false if it was already
// queued. Any IRQL. HighImportance goes to the head of the queue, others
// to the tail. The queue is drained at once (at the caller's next drop
// below DISPATCH_LEVEL, or by interrupting the target) when the DPC is for
// the current processor and not LowImportance, or for another processor
// and MediumHigh or High; otherwise Windows defers it until the queue
// depth or request rate passes a system threshold, which the model makes a
// decision: choice 0 defers the drain to the target's next scheduling
// point (or its idle loop), choice 1 drains at once (REFERENCE §4.8).
func (k *Kernel) KeInsertQueueDpc(d *KDPC, arg1, arg2 any) bool {
	if d == nil {
		k.nilObject("KeInsertQueueDpc", "Dpc", touchAtHigh)
	}
	x := k.enter("KeInsertQueueDpc")
	return k.queueDpc(x, x.cpu, d, arg1, arg2)
}

// queueDpc queues d from processor from: to d's target processor if
// KeSetTargetProcessorDpc named one, else to from. A timer's expiry queues
// its DPC this way too, from the processor the timer expires on (WRK
// base/ntos/ke/dpcsup.c KiTimerListExpire calls KeInsertQueueDpc for a DPC
// targeted at another processor; REFERENCE §4.8).
func (k *Kernel) queueDpc(x *exec, from *Processor, d *KDPC, arg1, arg2 any) bool {
	c := from
	if d.target >= 0 {
		c = k.cpus[d.target]
	}
	if d.queued {
		return false
	}
	d.queued, d.cpu, d.arg1, d.arg2, d.queuedAt = true, c, arg1, arg2, k.sim.Now()
	if d.threaded && !k.cfg.DisableThreadedDpcs {
		k.queueThreadedDpc(x, d, c)
		return true
	}
	c.dpcQueue = enqueueDpc(c.dpcQueue, d)
	k.emit(x, KindDPC, WhatQueueDpc, d.objName(), int64(c.id), 0)
	if k.drainNow(x, from, d, c) {
		c.kick()
	}
	return true
}

// drainNow applies the documented drain rules of KeInsertQueueDpc; the
// threshold cases are a decision (choice 0: defer).
func (k *Kernel) drainNow(x *exec, from *Processor, d *KDPC, c *Processor) bool {
	if c.top() == nil {
		return true // an idle processor's idle loop drains its queue
	}
	local := from == c
	switch {
	case local && d.importance != LowImportance:
		return true
	case !local && (d.importance == HighImportance || d.importance == MediumHighImportance):
		return true
	}
	return k.sim.Choose(desPoint(PointDpcDrain, "dpc: queue depth or rate forces an immediate drain", x), 2) == 1
}

// KeFlushQueuedDpcs returns once every DPC queued on any processor at the
// time of the call, and every DPC running then, has finished. Caller: a
// thread at PASSIVE_LEVEL (REFERENCE §4.8); it blocks meanwhile.
// IRQL: PASSIVE_LEVEL, checked (REFERENCE §4.8).
func (k *Kernel) KeFlushQueuedDpcs() {
	x := k.enter("KeFlushQueuedDpcs")
	k.checkIrqlAtMost(x, "KeFlushQueuedDpcs", PASSIVE_LEVEL)
	if x.kind != execThread {
		k.bugCheck(x, "KeFlushQueuedDpcs", ATTEMPTED_SWITCH_FROM_DPC, 0, 0, 0, 0, "KeFlushQueuedDpcs from a DPC or ISR")
	}
	for !k.dpcsQuiet() {
		if k.dpcFlush == nil {
			k.dpcFlush = k.KeInitializeEvent("dpc flush", NotificationEvent, false)
		}
		k.dpcFlush.state = 0
		for _, c := range k.cpus {
			if len(c.dpcQueue) > 0 && !c.dpcOn {
				c.kick() // a deferred queue is drained for the flush
			}
		}
		k.waitObjects(x, "KeFlushQueuedDpcs", KernelMode, false, WaitAny, Infinite, k.dpcFlush)
	}
	k.emit(x, KindDPC, WhatFlushDpcs, "", 0, 0)
}

// dpcsQuiet reports whether no DPC, threaded or not, is queued or
// running anywhere.
func (k *Kernel) dpcsQuiet() bool {
	for _, c := range k.cpus {
		if len(c.dpcQueue) > 0 || c.dpcOn || len(c.tdpcQueue) > 0 || c.tdpcRunning {
			return false
		}
	}
	return true
}

// KeRemoveQueueDpc removes d from its queue; false if it was not queued.
// IRQL: any (REFERENCE §4.8).
func (k *Kernel) KeRemoveQueueDpc(d *KDPC) bool {
	k.enter("KeRemoveQueueDpc")
	k.progressed()
	if !d.queued {
		return false
	}
	c := d.cpu
	c.dpcQueue = removeDpc(c.dpcQueue, d)
	c.tdpcQueue = removeDpc(c.tdpcQueue, d)
	d.queued = false
	return true
}

// enqueueDpc puts d in q: HighImportance at the head, the others at the
// tail (REFERENCE §4.8).
func enqueueDpc(q []*KDPC, d *KDPC) []*KDPC {
	if d.importance != HighImportance {
		return append(q, d)
	}
	q = append(q, nil)
	copy(q[1:], q)
	q[0] = d
	return q
}

// removeDpc returns q without d (if present), in place.
func removeDpc(q []*KDPC, d *KDPC) []*KDPC {
	for i, o := range q {
		if o == d {
			return append(q[:i], q[i+1:]...)
		}
	}
	return q
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
			k.emit(e, KindDPC, WhatRunDpc, d.objName(), 0, 0)
			if d.image != nil && d.image.unloaded {
				k.unloadedDpc(e, d) // REFERENCE §6.8
			}
			e.image, e.dpcRunning = d.image, d
			d.Routine(d, d.Context, d.arg1, d.arg2)
			e.image, e.dpcRunning = nil, nil
			if e.irql != DISPATCH_LEVEL {
				k.bugCheck(e, "DPC return", IRQL_NOT_LESS_OR_EQUAL, 0, uint64(e.irql), 0, 0,
					fmt.Sprintf("DPC %s returned at %v, not DISPATCH_LEVEL", d.Name, e.irql))
			}
			if e.spinning() {
				k.bugCheck(e, "DPC return", IRQL_NOT_LESS_OR_EQUAL, 0, 0, 0, 0, "DPC returned holding a spin lock")
			}
		}
		if k.dpcFlush != nil && len(k.dpcFlush.waiters) > 0 {
			k.signal(&k.dpcFlush.dispatcherHeader, 1, 0)
		}
		e.req = reqIdle
		e.proc.Yield()
	}
}

// KINTERRUPT is an interrupt source: its service routine is delivered
// when the processor's IRQL is below Irql and runs at the interrupt's
// synchronize IRQL (Irql unless IoConnectInterruptEx gave a higher
// SynchronizeIrql), typically queueing a DPC. Its interrupt spin lock —
// the object's own, or the driver's SpinLock shared by several interrupt
// objects — is held around every call of ISR, by KeSynchronizeExecution
// around its routine and between KeAcquireInterruptSpinLock and
// KeReleaseInterruptSpinLock (REFERENCE §4.13).
type KINTERRUPT struct {
	Name         string
	Irql         IRQL
	ISR          func(intr *KINTERRUPT, ctx any) bool
	Ctx          any
	image        *Image // the driver image of ISR, nil for none (image.go)
	disconnected bool
	syncIrql     IRQL        // SynchronizeIrql: where the ISR and KeSynchronizeExecution run
	lock         *KSPIN_LOCK // the interrupt spin lock: &ownLock or the driver's SpinLock
	ownLock      KSPIN_LOCK
}

// IoConnectInterrupt returns an interrupt source at a device IRQL (3–11),
// tied to the driver image whose code calls it (REFERENCE §6.8). Its ISR
// runs holding the interrupt's own spin lock, which KeSynchronizeExecution
// and KeAcquireInterruptSpinLock take too; irql is also its synchronize
// IRQL. It stands for a call with SpinLock NULL and SynchronizeIrql equal
// to Irql; IoConnectInterruptEx takes both (REFERENCE §4.13).
// IRQL: PASSIVE_LEVEL as Microsoft documents; the model does not check it (REFERENCE §4.5).
func (k *Kernel) IoConnectInterrupt(name string, irql IRQL, isr func(*KINTERRUPT, any) bool, ctx any) (*KINTERRUPT, error) {
	return k.IoConnectInterruptEx(&IO_CONNECT_INTERRUPT_FULLY_SPECIFIED_PARAMETERS{
		Name: name, ServiceRoutine: isr, ServiceContext: ctx, Irql: irql, SynchronizeIrql: irql,
	})
}

// IO_CONNECT_INTERRUPT_FULLY_SPECIFIED_PARAMETERS is the part of
// IoConnectInterruptEx's fully specified parameters the model uses
// (DDI:IO_CONNECT_INTERRUPT_FULLY_SPECIFIED_PARAMETERS; REFERENCE §4.13).
type IO_CONNECT_INTERRUPT_FULLY_SPECIFIED_PARAMETERS struct {
	Name           string // the interrupt's name in traces and reports
	ServiceRoutine func(intr *KINTERRUPT, ctx any) bool
	ServiceContext any
	// SpinLock is the interrupt spin lock, from KeInitializeSpinLock; nil
	// gives the interrupt object a lock of its own. A driver whose ISRs
	// share data passes the same lock to every connection.
	SpinLock *KSPIN_LOCK
	// Irql is the device IRQL (3–11) the interrupt is delivered at.
	Irql IRQL
	// SynchronizeIrql is the IRQL the ISR runs at and KeSynchronizeExecution
	// raises to: Irql for a lone interrupt; for interrupts sharing SpinLock,
	// the highest of their Irql values.
	SynchronizeIrql IRQL
}

// IoConnectInterruptEx connects an interrupt as IoConnectInterrupt does,
// with the interrupt spin lock and synchronize IRQL given explicitly
// (CONNECT_FULLY_SPECIFIED, DDI:IoConnectInterruptEx). Interrupt objects
// given the same SpinLock are serialized with each other: while one's ISR
// or KeSynchronizeExecution routine holds the lock, the other's ISR spins
// on another processor (REFERENCE §4.13). It returns an error, connecting
// nothing, for an Irql that is not a device IRQL, a SynchronizeIrql below
// Irql or above 11, or no service routine.
// IRQL: PASSIVE_LEVEL as Microsoft documents; the model does not check it (REFERENCE §4.5).
func (k *Kernel) IoConnectInterruptEx(p *IO_CONNECT_INTERRUPT_FULLY_SPECIFIED_PARAMETERS) (*KINTERRUPT, error) {
	k.tick()
	switch {
	case p.Irql < MinDIRQL || p.Irql > MaxDIRQL:
		return nil, fmt.Errorf("IoConnectInterrupt(%q): IRQL %d is not a device IRQL (3–11)", p.Name, p.Irql)
	case p.SynchronizeIrql < p.Irql || p.SynchronizeIrql > MaxDIRQL:
		return nil, fmt.Errorf("IoConnectInterrupt(%q): SynchronizeIrql %d must be a device IRQL at least the interrupt's IRQL %d (the highest IRQL of the interrupts sharing its spin lock)", p.Name, p.SynchronizeIrql, p.Irql)
	case p.ServiceRoutine == nil:
		return nil, fmt.Errorf("IoConnectInterrupt(%q): no ServiceRoutine", p.Name)
	}
	intr := &KINTERRUPT{Name: p.Name, Irql: p.Irql, ISR: p.ServiceRoutine, Ctx: p.ServiceContext,
		image: k.currentImage(), syncIrql: p.SynchronizeIrql, lock: p.SpinLock}
	if intr.lock == nil {
		intr.lock = &intr.ownLock
		intr.ownLock.Name = "interrupt " + p.Name
		k.numberAtBirth(&intr.ownLock.aid)
	}
	return intr, nil
}

// SynchronizeIrql returns the IRQL intr's service routine runs at and
// KeSynchronizeExecution raises to.
func (intr *KINTERRUPT) SynchronizeIrql() IRQL { return intr.syncIrql }

// IoDisconnectInterrupt disconnects intr: its service routine is not
// called again, whatever the device does (DDI:IoDisconnectInterrupt). A
// driver calls it before it unloads; an ISR of an unloaded image that is
// still connected faults, 0xCE (REFERENCE §6.8). It returns only once no
// ISR of intr, nor any code holding its interrupt spin lock at DIRQL, is
// still running (or spinning for the lock) on another processor: Windows
// disconnects on each processor in turn, where nothing at DIRQL can be in
// progress while the disconnecting thread runs; the model waits for the
// interrupt spin lock at DIRQL instead, and only when it is busy, so the
// driver may free what its ISR uses as soon as the call returns. The
// interrupt object is freed: KeSynchronizeExecution or
// KeAcquireInterruptSpinLock on it afterwards is a use after free, 0xD5
// (REFERENCE §4.13). Disconnecting twice is a no-op in this model.
// IRQL: PASSIVE_LEVEL as Microsoft documents; the model does not check it (REFERENCE §4.5).
func (k *Kernel) IoDisconnectInterrupt(intr *KINTERRUPT) {
	k.tick()
	intr.disconnected = true
	if x := k.curOrNil(); x != nil && x.irql <= intr.syncIrql && intr.lock.owner != x && intr.lockBusy() {
		old := x.irql
		k.setIrql(x, intr.syncIrql)
		k.spinAcquire(x, intr.lock, "IoDisconnectInterrupt")
		k.spinRelease(x, intr.lock, "IoDisconnectInterrupt")
		k.lowerTo(x, old)
	}
}

// lockBusy reports whether anyone holds intr's interrupt spin lock or
// spins for it: an ISR, or a KeSynchronizeExecution or
// KeAcquireInterruptSpinLock caller at DIRQL, that started before the
// disconnect.
func (intr *KINTERRUPT) lockBusy() bool {
	return intr.lock.owner != nil || len(intr.lock.spinners) > 0
}

// Image returns the driver image intr's service routine belongs to, nil
// for one connected outside any driver's code.
func (intr *KINTERRUPT) Image() *Image { return intr.image }

// DeviceInterrupt is a workload helper: it models the device behind intr
// asserting its interrupt line on processor cpu at virtual time at. The
// ISR runs as soon as that processor's IRQL is below the interrupt's; a time
// already past means now (des.Sim.At clamps it).
// Callable from anywhere (setup or simulated code); not a scheduling point.
// A processor the machine does not have is a programming error reported at
// once, as for KeSetTargetProcessorDpc.
func (k *Kernel) DeviceInterrupt(intr *KINTERRUPT, cpu int, at des.Time) {
	if cpu < 0 || cpu >= len(k.cpus) {
		panic(fmt.Sprintf("kernel: DeviceInterrupt(%s, %d): the machine has processors 0..%d", intr.Name, cpu, len(k.cpus)-1))
	}
	k.tick()
	c := k.cpus[cpu]
	k.sim.At(at, func() {
		c.isrQueue = append(c.isrQueue, intr)
		k.emit(nil, KindInterrupt, WhatInterrupt, intr.Name, int64(cpu), int64(intr.Irql))
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
			if intr.disconnected {
				continue // nobody's routine on that line any more
			}
			e.irql = intr.syncIrql // KiInterruptDispatch raises to SynchronizeIrql (REFERENCE §4.13)
			k.emit(e, KindInterrupt, WhatIsr, intr.Name, int64(intr.Irql), 0)
			if intr.image != nil && intr.image.unloaded {
				k.unloadedIsr(e, intr) // REFERENCE §6.8
			}
			e.image = intr.image
			k.isrLock(e, intr) // KiInterruptDispatch holds the interrupt spin lock (REFERENCE §4.13)
			intr.ISR(intr, intr.Ctx)
			k.isrUnlock(e, intr)
			e.image = nil
		}
		e.req = reqIdle
		e.proc.Yield()
	}
}

// isrPendingAbove reports whether an interrupt waits on c whose IRQL is
// above l, so that it fires once c's IRQL drops to l.
func (c *Processor) isrPendingAbove(l IRQL) bool {
	return len(c.isrQueue) > 0 && c.isrQueue[0].Irql > l
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
// optionally queueing a DPC, and re-armed every period if it is periodic.
type KTIMER struct {
	dispatcherHeader
	dpc    *KDPC
	timer  des.Timer
	fire   des.Handler
	cpu    *Processor
	period des.Duration
	k      *Kernel
	// interval is the period, or the due time of a one-shot setting;
	// quietEpoch and quietFires count its expiries in a quiet stretch
	// (stall.go).
	interval   des.Duration
	quietEpoch uint64
	quietFires uint64
}

// The TIMER_TYPE names of wdm.h. A timer's type is the same choice as an
// event's (a notification timer stays signalled, a synchronization timer
// releases one waiter and resets), so they are EVENT_TYPE values and either
// spelling works.
const (
	NotificationTimer    = NotificationEvent
	SynchronizationTimer = SynchronizationEvent
)

// KeInitializeTimer returns a notification timer, as KeInitializeTimerEx
// with NotificationTimer. IRQL: any (REFERENCE §4.8).
func (k *Kernel) KeInitializeTimer(name string) *KTIMER {
	return k.KeInitializeTimerEx(name, NotificationTimer)
}

// KeInitializeTimerEx returns a notification or synchronization timer
// (NotificationTimer or SynchronizationTimer). IRQL: any (REFERENCE §4.8).
func (k *Kernel) KeInitializeTimerEx(name string, typ EVENT_TYPE) *KTIMER {
	k.tick()
	t := k.rc.timers.Take(k.sim)
	full, fire := k.joined(t.name, "timer ", name), t.fire // recycled: keep the name if equal, and the handler bound to t
	*t = KTIMER{dispatcherHeader: dispatcherHeader{waiters: t.waiters[:0]}, k: k, fire: fire}
	t.init(objTimer, full, typ == SynchronizationEvent, 0)
	if t.fire == nil {
		t.fire = t.expire
	}
	k.stall.timers = append(k.stall.timers, t)
	return t
}

// KeSetTimer arms t to expire once after due (a negative due is NT's
// relative form: the same length, REFERENCE §3.7), queueing dpc (if
// non-nil) on the caller's processor, or on the DPC's target processor if
// KeSetTargetProcessorDpc named one. Returns true if t was already armed.
// IRQL: ≤ DISPATCH_LEVEL (REFERENCE §4.8, §3.7).
func (k *Kernel) KeSetTimer(t *KTIMER, due des.Duration, dpc *KDPC) bool {
	if t == nil {
		k.nilObject("KeSetTimer", "Timer", touchUnderDispatch)
	}
	return k.setTimer(k.enter("KeSetTimer"), "KeSetTimer", t, due, 0, dpc)
}

// KeSetTimerEx arms t to expire after due and then, if period > 0, every
// period until KeCancelTimer; each expiry signals t and queues dpc
// (REFERENCE §4.8). Returns true if t was already armed.
// IRQL ≤ DISPATCH_LEVEL.
func (k *Kernel) KeSetTimerEx(t *KTIMER, due, period des.Duration, dpc *KDPC) bool {
	if t == nil {
		k.nilObject("KeSetTimerEx", "Timer", touchUnderDispatch)
	}
	x := k.enter("KeSetTimerEx")
	if period < 0 {
		panic(fmt.Sprintf("kernel: KeSetTimerEx(%s): negative period %v", t.name, period))
	}
	return k.setTimer(x, "KeSetTimerEx", t, due, period, dpc)
}

func (k *Kernel) setTimer(x *exec, api string, t *KTIMER, due, period des.Duration, dpc *KDPC) bool {
	k.checkIrqlAtMost(x, api, DISPATCH_LEVEL)
	if due < 0 {
		due = -due // NT's relative form (REFERENCE §3.7)
	}
	was := t.timer.Stop()
	t.state = 0
	if x.dpcRunning == nil || x.dpcRunning != t.dpc {
		k.progressed() // a timer re-armed by its own DPC is its period (stall.go)
	}
	t.dpc, t.period, t.cpu = dpc, period, x.cpu
	t.interval = period
	if period == 0 {
		t.interval = due
	}
	t.timer = k.sim.After(due, t.fire)
	return was
}

// KeCancelTimer disarms t (a periodic one for good); returns true if it
// was armed. IRQL ≤ DISPATCH_LEVEL.
// IRQL: ≤ DISPATCH_LEVEL (REFERENCE §4.8).
func (k *Kernel) KeCancelTimer(t *KTIMER) bool {
	if t == nil {
		k.nilObject("KeCancelTimer", "Timer", touchUnderDispatch)
	}
	k.enter("KeCancelTimer")
	return k.cancelTimer(t)
}

// cancelTimer disarms t, a periodic one for good, and reports whether it
// was armed.
func (k *Kernel) cancelTimer(t *KTIMER) bool {
	k.progressed()
	t.period = 0
	return t.timer.Stop()
}

// KeReadStateTimer reports whether t is signalled: true from its expiry
// until KeSetTimer or KeSetTimerEx re-arms it (which clears the state),
// or, for a SynchronizationTimer, until a wait consumes the signal.
// KeCancelTimer leaves the state as it is. The read takes no lock, so
// it races with an expiry or a waiter on another processor; it is a
// scheduling point like any plain read (REFERENCE §4.12).
// IRQL: ≤ DISPATCH_LEVEL, checked (IRQL_NOT_LESS_OR_EQUAL 0xA above it;
// REFERENCE §4.12).
func (k *Kernel) KeReadStateTimer(t *KTIMER) bool {
	x := k.enter("KeReadStateTimer")
	k.checkIrqlAtMost(x, "KeReadStateTimer", DISPATCH_LEVEL)
	return t.state > 0
}

// expire is the timer's event. Its own records (the expiry, its DPC
// queued) are not progress in the sense of stall.go; whom its signal wakes
// is.
func (t *KTIMER) expire() {
	k := t.k
	if k.timerFiring(t) {
		return
	}
	p := k.stall.progress
	k.emit(nil, KindSignal, WhatTimerExpire, t.name, int64(t.period), 0)
	if t.period > 0 {
		t.timer = k.sim.After(t.period, t.fire)
	}
	k.stall.progress = p
	k.signal(&t.dispatcherHeader, 1, 0)
	if t.dpc != nil {
		p = k.stall.progress
		k.queueDpc(nil, t.cpu, t.dpc, nil, nil)
		k.stall.progress = p
	}
}
