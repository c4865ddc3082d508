package drivers

import (
	"fmt"

	"github.com/wqsim/wqsim/des"
	"github.com/wqsim/wqsim/kernel"
	"github.com/wqsim/wqsim/model"
)

// rwtable: a packet classifier's route table. Lookups run in the receive
// DPCs of both processors under an EX_SPIN_LOCK held shared; a control
// thread replaces routes under the lock held exclusive and frees the old
// entry; a system-allocated EX_TIMER ages the routes every 10µs at
// DISPATCH_LEVEL under the exclusive lock. Unload deletes the timer —
// waiting for an ageing pass already under way (ExDeleteTimer with Wait,
// REFERENCE §4.20) — and only then frees the table (REFERENCE §4.19).
//
// The bugs: a lookup that copies the entry pointer, drops the shared lock
// and then reads the entry (the control thread frees it in between); and
// an unload that deletes the timer without Wait and frees the table while
// an ageing pass still walks it on the other processor.

// RwTable is the scenario.
var RwTable = &model.Scenario{
	Name: "rwtable",
	Doc: "A route table under an EX_SPIN_LOCK: lookups shared in receive DPCs, route updates and an EX_TIMER " +
		"ageing pass exclusive; unload deletes the timer and frees the table. The bugs read an entry after " +
		"dropping the shared lock, or free the table after ExDeleteTimer without Wait.",
	Section: "REFERENCE §4.19, §4.20",
	Variants: []model.Variant{
		{Name: "correct", Doc: "lookups read the entry under the shared lock; unload deletes the timer with Wait before freeing"},
		{Name: "read-after-release", Bug: true, Doc: "a lookup drops the shared lock, then reads the entry it found: a route update frees it in between",
			Want: "0xD5"},
		{Name: "delete-no-wait", Bug: true, Doc: "unload calls ExDeleteTimer(Cancel, no Wait) and frees the table while an ageing pass runs",
			Want: "0xD5"},
	},
	Setup: setupRwTable,
}

const (
	rwRoutes  = 2
	rwPackets = 3 // per processor
)

type routeTable struct {
	env    *model.Env
	k      *kernel.Kernel
	lock   kernel.EX_SPIN_LOCK
	routes [rwRoutes]*kernel.PoolBlock
	ager   *kernel.EX_TIMER
	rx     [2]*kernel.KDPC
	queued [2]*kernel.Cell // packets an ISR saw that its DPC has not taken yet (interlocked)
	looked int
	idle   *kernel.KEVENT // every packet classified: the receive path is quiet
}

func setupRwTable(env *model.Env) error {
	k := env.K
	t := &routeTable{env: env, k: k}
	t.lock.Name = "routes"
	t.idle = k.KeInitializeEvent("receive idle", kernel.NotificationEvent, false)
	for cpu := range t.rx {
		t.rx[cpu] = k.KeInitializeDpc(fmt.Sprintf("rx%d", cpu), t.receive, cpu)
		k.KeSetTargetProcessorDpc(t.rx[cpu], cpu)
		t.queued[cpu] = k.NewCell(fmt.Sprintf("rx%d packets", cpu), 0)
	}
	k.PsCreateSystemThread("control", 8, t.control)
	env.AtEnd("every packet classified", func() error {
		if t.looked != 2*rwPackets {
			return fmt.Errorf("%d of %d packets classified", t.looked, 2*rwPackets)
		}
		return nil
	})
	return nil
}

// control loads the table, starts ageing, updates each route once, then
// unloads.
func (t *routeTable) control() {
	k := t.k
	for i := range t.routes {
		t.routes[i] = k.ExAllocatePool2(kernel.POOL_FLAG_NON_PAGED, 64, "Rte0")
	}
	t.ager = k.ExAllocateTimer("ageing", t.age, nil)
	k.ExSetTimer(t.ager, 10*des.Microsecond, 10*des.Microsecond)
	t.startTraffic() // the table is ready: connect the NIC
	for i := range t.routes {
		k.KeDelayExecutionThread(des.Duration(3+t.env.Choose("update gap", 3)*2) * des.Microsecond)
		fresh := k.ExAllocatePool2(kernel.POOL_FLAG_NON_PAGED, 64, "Rte1")
		old := k.ExAcquireSpinLockExclusive(&t.lock)
		stale := t.routes[i]
		t.routes[i] = fresh
		k.ExReleaseSpinLockExclusive(&t.lock, old)
		k.ExFreePoolWithTag(stale, stale.Tag)
	}
	k.KeWaitForSingleObject(t.idle, kernel.Infinite)
	k.ExDeleteTimer(t.ager, true, !t.env.Is("delete-no-wait"))
	for _, r := range t.routes {
		k.ExFreePoolWithTag(r, r.Tag)
	}
}

// startTraffic connects the NIC's interrupt and lets packets arrive on
// both processors, a few microseconds apart (closer or further when the
// workload decides).
func (t *routeTable) startTraffic() {
	k := t.k
	intr, err := k.IoConnectInterrupt("nic", 6, t.isr, nil)
	if err != nil {
		t.env.Violation("interrupt connects", "%v", err)
		return
	}
	gaps := [...]des.Duration{6 * des.Microsecond, 2 * des.Microsecond, 9 * des.Microsecond}
	for cpu := 0; cpu < 2; cpu++ {
		at := k.Now() + des.Time(2*des.Microsecond) + des.Time(cpu)*des.Time(des.Microsecond)
		for i := 0; i < rwPackets; i++ {
			k.DeviceInterrupt(intr, cpu, at)
			at += des.Time(gaps[t.env.Choose("packet gap", len(gaps))])
		}
	}
}

func (t *routeTable) isr(_ *kernel.KINTERRUPT, _ any) bool {
	cpu := t.k.KeGetCurrentProcessorNumber()
	t.k.InterlockedIncrement(t.queued[cpu]) // one DPC may stand for several interrupts
	t.k.KeInsertQueueDpc(t.rx[cpu], nil, nil)
	return true
}

// receive is a processor's receive DPC: classify every packet its ISR saw.
func (t *routeTable) receive(_ *kernel.KDPC, ctx, _, _ any) {
	for n := t.k.InterlockedExchange(t.queued[ctx.(int)], 0); n > 0; n-- {
		t.lookup()
	}
}

// lookup classifies one packet: find its route under the shared lock.
func (t *routeTable) lookup() {
	k := t.k
	k.ExAcquireSpinLockSharedAtDpcLevel(&t.lock)
	r := t.routes[t.looked%rwRoutes]
	if t.env.Is("read-after-release") {
		k.ExReleaseSpinLockSharedFromDpcLevel(&t.lock)
		k.AccessPool(r, "route entry")
	} else {
		k.AccessPool(r, "route entry")
		k.ExReleaseSpinLockSharedFromDpcLevel(&t.lock)
	}
	if t.looked++; t.looked == 2*rwPackets {
		k.KeSetEvent(t.idle, kernel.IO_NO_INCREMENT, false)
	}
}

// age is the EX_TIMER callback: touch every route under the exclusive lock.
func (t *routeTable) age(*kernel.EX_TIMER, any) {
	k := t.k
	k.ExAcquireSpinLockExclusiveAtDpcLevel(&t.lock)
	for _, r := range t.routes {
		k.AccessPool(r, "route age")
	}
	k.ExReleaseSpinLockExclusiveFromDpcLevel(&t.lock)
}
