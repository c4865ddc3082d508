package kernel

import "fmt"

// KAFFINITY is a set of processors, one bit each (bit n = processor n).
type KAFFINITY = uint64

// INVALID_AFFINITY_SET is the bug check for an affinity that names no
// processor of the machine (REFERENCE §4.7).
const INVALID_AFFINITY_SET uint32 = 0x03

// KeSetSystemAffinityThreadEx restricts the calling thread to the
// processors in affinity and returns the previous affinity, for
// KeRevertToUserAffinityThreadEx. If the thread's processor is not in the
// set it moves at once — or, at DISPATCH_LEVEL, when IRQL drops. An
// affinity with no processor of the machine is INVALID_AFFINITY_SET 0x3.
// IRQL ≤ DISPATCH_LEVEL (REFERENCE §4.7).
func (k *Kernel) KeSetSystemAffinityThreadEx(affinity KAFFINITY) KAFFINITY {
	x := k.enter("KeSetSystemAffinityThreadEx")
	k.checkIrqlAtMost(x, "KeSetSystemAffinityThreadEx", DISPATCH_LEVEL)
	t := k.affinityCaller(x, "KeSetSystemAffinityThreadEx")
	prev := t.affinity
	k.setAffinity(x, t, affinity, "KeSetSystemAffinityThreadEx")
	return prev
}

// KeRevertToUserAffinityThreadEx gives the calling thread back affinity
// (the value KeSetSystemAffinityThreadEx returned), or, if it is 0, the
// thread's own affinity (every processor for a system thread).
// IRQL ≤ DISPATCH_LEVEL (REFERENCE §4.7).
func (k *Kernel) KeRevertToUserAffinityThreadEx(affinity KAFFINITY) {
	x := k.enter("KeRevertToUserAffinityThreadEx")
	k.checkIrqlAtMost(x, "KeRevertToUserAffinityThreadEx", DISPATCH_LEVEL)
	t := k.affinityCaller(x, "KeRevertToUserAffinityThreadEx")
	if affinity == 0 {
		affinity = t.userAff
	}
	k.setAffinity(x, t, affinity, "KeRevertToUserAffinityThreadEx")
}

func (k *Kernel) affinityCaller(x *exec, api string) *Thread {
	if x.kind != execThread {
		k.bugCheck(x, api, IRQL_NOT_LESS_OR_EQUAL, 0, uint64(x.irql), 0, 0, api+" from a DPC or ISR: there is no thread to restrict")
	}
	return x.thread
}

func (k *Kernel) setAffinity(x *exec, t *Thread, affinity KAFFINITY, api string) {
	if affinity&k.allCPUs == 0 {
		k.bugCheck(x, api, INVALID_AFFINITY_SET, affinity, k.allCPUs, 0, 0,
			fmt.Sprintf("affinity %#x names none of the machine's processors (%#x)", affinity, k.allCPUs))
	}
	t.affinity = affinity & k.allCPUs
	k.emit(x, KindReady, WhatAffinity, t.name, int64(t.affinity), 0)
	if !t.allowedOn(x.cpu.id) {
		x.cpu.needSettle = true // reschedule moves it (at once below DISPATCH_LEVEL)
		k.point(x, 0)
	}
}

// Affinity returns the processors t may run on.
func (t *Thread) Affinity() KAFFINITY { return t.affinity }

// IdealProcessor returns t's ideal processor.
func (t *Thread) IdealProcessor() int { return t.ideal }

// KeSetIdealProcessorThread makes cpu t's ideal processor — the one whose
// ready queue it joins when no processor is idle — and returns the
// previous one. Any IRQL ≤ DISPATCH_LEVEL (REFERENCE §4.7).
func (k *Kernel) KeSetIdealProcessorThread(t *Thread, cpu int) int {
	x := k.enter("KeSetIdealProcessorThread")
	k.checkIrqlAtMost(x, "KeSetIdealProcessorThread", DISPATCH_LEVEL)
	if cpu < 0 || cpu >= len(k.cpus) {
		panic(fmt.Sprintf("kernel: KeSetIdealProcessorThread(%s, %d): the machine has processors 0..%d", t.name, cpu, len(k.cpus)-1))
	}
	prev := t.ideal
	t.ideal = cpu
	return prev
}

// KeQueryPriorityThread returns t's current priority.
// IRQL: ≤ DISPATCH_LEVEL as Microsoft documents; the model does not check it (REFERENCE §4.7).
func (k *Kernel) KeQueryPriorityThread(t *Thread) int {
	k.enter("KeQueryPriorityThread")
	return int(t.priority)
}

// KeSetPriorityThread sets t's base and current priority to priority
// (1–31) with a fresh quantum and returns the previous current priority.
// A ready thread is re-queued and may preempt; a running thread that
// drops below a ready one gives way (WRK KeSetPriorityThread,
// KiSetPriorityThread). IRQL ≤ DISPATCH_LEVEL (REFERENCE §4.7).
func (k *Kernel) KeSetPriorityThread(t *Thread, priority int) int {
	x := k.enter("KeSetPriorityThread")
	k.checkIrqlAtMost(x, "KeSetPriorityThread", DISPATCH_LEVEL)
	if priority < 1 || priority > HIGH_PRIORITY {
		panic(fmt.Sprintf("kernel: KeSetPriorityThread(%s, %d): priority must be 1..31", t.name, priority))
	}
	prev := int(t.priority)
	t.base = int8(priority)
	t.starveBoost = false
	t.quantumLeft = k.quantum
	k.emit(x, KindReady, WhatSetPriority, t.name, int64(priority), int64(prev))
	k.setPriority(t, int8(priority))
	k.point(x, 0) // a switch it caused happens before the caller goes on
	return prev
}

// systemBase is the base priority of the System process, against which
// KeSetBasePriorityThread's increment counts.
const systemBase = 8

// KeSetBasePriorityThread sets t's base priority to the System process's
// base (8) plus increment — −2..2 for a variable thread, clamped to the
// variable range 1–15; an increment of ±16 or more saturates to 15 or 1 —
// and returns the previous increment. The current priority becomes the new
// base unless a boost keeps it higher (WRK KeSetBasePriorityThread).
// IRQL ≤ DISPATCH_LEVEL (REFERENCE §4.7).
func (k *Kernel) KeSetBasePriorityThread(t *Thread, increment int) int {
	x := k.enter("KeSetBasePriorityThread")
	k.checkIrqlAtMost(x, "KeSetBasePriorityThread", DISPATCH_LEVEL)
	prev := int(t.base) - systemBase
	base := systemBase + increment
	switch {
	case increment >= 16 || base > 15:
		base = 15
	case increment <= -16 || base < 1:
		base = 1
	}
	old := t.base
	t.base = int8(base)
	p := t.priority - old + t.base // keep any boost above the old base
	if p < t.base {
		p = t.base
	}
	if p > 15 {
		p = 15
	}
	k.emit(x, KindReady, WhatSetBasePriority, t.name, int64(base), int64(prev))
	k.setPriority(t, p)
	k.point(x, 0)
	return prev
}
