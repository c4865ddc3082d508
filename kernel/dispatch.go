package kernel

import (
	"github.com/wqsim/wqsim/des"
)

// readyThread makes t ready (after creation, a wait, or preemption
// elsewhere) with a wait-completion boost of increment, then finds it a
// processor: an idle one if any (a decision among them), else the one
// running the thread it preempts (a decision among equals), else it waits
// at the tail of its ready list (REFERENCE §4.2).
func (k *Kernel) readyThread(t *Thread, increment int) {
	k.makeReady(t, increment)
	k.emit(&t.exec, KindReady, WhatReady, t.name, int64(t.priority), int64(increment))
	k.placeReady(t)
}

// makeReady boosts t and puts it on the ready lists.
func (k *Kernel) makeReady(t *Thread, increment int) {
	if increment > 0 {
		k.boost(t, increment)
	}
	t.state = Ready
	t.readySince = k.sim.Now()
	k.policy.Enqueue(t, false)
}

// placeReady finds a processor for a newly ready thread.
func (k *Kernel) placeReady(t *Thread) {
	if k.cfg.StarvationBoost && !k.balanceArmed {
		k.balanceArmed = true
		k.sim.After(des.Second, k.balanceScan)
	}
	if c := k.pickIdle(t); c != nil {
		c.kick()
		return
	}
	if c := k.pickVictim(t); c != nil {
		c.kick()
	}
}

// pickIdle chooses an idle processor for t. Choice 0 is the natural one:
// t's last processor if idle, else the lowest-numbered.
func (k *Kernel) pickIdle(t *Thread) *Processor {
	idle := k.scratch[:0]
	for _, c := range k.cpus {
		if c.cur == nil && !c.dpcOn && !c.isrOn {
			idle = append(idle, c)
			if c.id == t.lastCPU { // natural choice first, others keep their order
				copy(idle[1:], idle[:len(idle)-1])
				idle[0] = c
			}
		}
	}
	k.scratch = idle
	if len(idle) == 0 {
		return nil
	}
	i := k.sim.Choose(des.Point{Kind: PointPickCPU, Label: "dispatcher: which idle processor", Actor: t.id}, len(idle))
	return idle[i]
}

// pickVictim chooses the processor whose running thread t preempts: the
// lowest-priority one, a decision among equals (choice 0 = lowest number).
func (k *Kernel) pickVictim(t *Thread) *Processor {
	victims := k.scratch[:0]
	low := int8(127)
	for _, c := range k.cpus {
		if c.cur == nil || !k.policy.Preempts(t, c.cur) {
			continue
		}
		switch p := c.cur.priority; {
		case p < low:
			low = p
			victims = append(victims[:0], c)
		case p == low:
			victims = append(victims, c)
		}
	}
	k.scratch = victims
	if len(victims) == 0 {
		return nil
	}
	i := k.sim.Choose(des.Point{Kind: PointPickVictim, Label: "dispatcher: which processor to preempt", Actor: t.id}, len(victims))
	return victims[i]
}

// reschedule performs at most one thread switch on c (at IRQL below
// DISPATCH_LEVEL) and reports whether it switched.
func (k *Kernel) reschedule(c *Processor) bool {
	best := k.policy.Peek()
	cur := c.cur
	if best != nil && k.cfg.DecideReadyOrder {
		best = k.pickAmongEqual(best)
	}
	switch {
	case best == nil:
		c.quantumEnd, c.yieldWanted = false, false
		return false
	case cur == nil:
		// A quantum end or injected yield pending for a thread that has
		// since left the processor does not apply to the next one.
		c.quantumEnd, c.yieldWanted = false, false
		k.switchTo(c, best, WhatDispatch)
		return true
	case k.policy.Preempts(best, cur):
		c.quantumEnd, c.yieldWanted = false, false
		k.preemptCurrent(c, true)
		k.switchTo(c, best, WhatPreempt)
		return true
	case (c.quantumEnd || c.yieldWanted) && k.policy.RoundRobin(best, cur):
		c.quantumEnd, c.yieldWanted = false, false
		k.preemptCurrent(c, false)
		k.switchTo(c, best, WhatRoundRobin)
		return true
	}
	c.quantumEnd, c.yieldWanted = false, false
	return false
}

// pickAmongEqual lets the chooser pick among the ready threads at best's
// priority (in ready-list order, so choice 0 is the FIFO head).
func (k *Kernel) pickAmongEqual(best *Thread) *Thread {
	k.threadScratch = k.threadScratch[:0]
	k.collectPrio = best.priority
	k.policy.Each(k.collectEqual)
	cands := k.threadScratch
	if len(cands) < 2 {
		return best
	}
	ids := k.idScratch[:0]
	for _, t := range cands {
		ids = append(ids, t.id)
	}
	k.idScratch = ids
	i := k.sim.Choose(des.Point{Kind: PointPickThread, Label: "dispatcher: which ready thread", Options: ids, Touches: k.readyTouches(cands)}, len(cands))
	return cands[i]
}

// collectEqualPrio appends ready threads while they have collectPrio; it is
// bound once to k.collectEqual so that Policy.Each gets no fresh closure.
func (k *Kernel) collectEqualPrio(t *Thread) bool {
	if t.priority != k.collectPrio {
		return false
	}
	k.threadScratch = append(k.threadScratch, t)
	return true
}

// preemptCurrent puts c's running thread back on the ready lists: at the
// head if preempted, at the tail after its quantum ended.
func (k *Kernel) preemptCurrent(c *Processor, front bool) {
	t := c.cur
	t.state = Ready
	t.readySince = k.sim.Now()
	t.cpu = nil
	c.cur = nil
	k.policy.Enqueue(t, front)
}

// switchTo dispatches ready thread t on c, charging a context switch.
func (k *Kernel) switchTo(c *Processor, t *Thread, why des.What) {
	k.policy.Remove(t)
	t.state = Running
	t.cpu = c
	t.lastCPU = c.id
	c.cur = t
	if t.quantumLeft <= 0 {
		t.quantumLeft = k.quantum
	}
	t.remaining += k.cfg.Costs.ContextSwitch
	k.emit(&t.exec, KindSwitch, why, t.name, int64(t.priority), 0)
}

// quantumExpired handles the end of t's quantum on c: reset the quantum,
// decay a boosted variable priority by one level (never below base, never
// for real-time threads), and ask for a round-robin at the next chance
// (REFERENCE §4.3, §4.4). While dispatching is off the end stays pending,
// and further quanta that run out meanwhile add nothing: Windows decays once
// per quantum end it honours (KiQuantumEnd), however long IRQL stayed high.
func (k *Kernel) quantumExpired(c *Processor, t *Thread) {
	t.quantumLeft = k.quantum
	if c.quantumEnd {
		return
	}
	if t.starveBoost {
		t.starveBoost = false
		t.priority = t.base
	} else if !t.RealTime() && t.priority > t.base {
		t.priority--
	}
	c.quantumEnd = true
	k.emit(&t.exec, KindQuantum, WhatQuantumEnd, t.name, int64(t.priority), 0)
}

// setPriority changes t's current priority as WRK's KiSetPriorityThread
// does: a ready thread is re-queued at its new level and may now preempt;
// a running thread that drops lets its processor reconsider, so that a
// higher ready thread takes over (REFERENCE §4.7).
func (k *Kernel) setPriority(t *Thread, p int8) {
	if t.priority == p {
		return
	}
	switch t.state {
	case Ready:
		k.policy.Remove(t)
		t.priority = p
		k.policy.Enqueue(t, false)
		k.placeReady(t)
	case Running:
		lower := p < t.priority
		t.priority = p
		if lower && t.cpu != nil {
			t.cpu.kick()
		}
	default:
		t.priority = p
	}
}

// boost applies a wait-completion boost: base + increment, capped at 15,
// only if higher than the current priority; never for real-time threads
// (REFERENCE §4.4).
func (k *Kernel) boost(t *Thread, increment int) {
	if !k.cfg.Boosts || t.RealTime() {
		return
	}
	p := int(t.base) + increment
	if p > 15 {
		p = 15
	}
	if int8(p) > t.priority {
		t.priority = int8(p)
	}
}

// adjustAfterWait charges the wait quantum decrement on wake (REFERENCE
// §4.3): real-time and base ≥ 14 threads get a fresh quantum; others are
// charged WaitQuantumUnits and decay if that exhausts the quantum.
func (k *Kernel) adjustAfterWait(t *Thread) {
	if t.RealTime() || t.base >= 14 {
		t.quantumLeft = k.quantum
		return
	}
	t.quantumLeft -= k.unit * des.Duration(k.cfg.WaitQuantumUnits)
	if t.quantumLeft <= 0 {
		t.quantumLeft = k.quantum
		if t.priority > t.base {
			t.priority--
		}
	}
}

// startBalanceManager runs the anti-starvation scan once a second: ready
// threads of priority 1–14 that waited StarvationTicks ticks are raised to
// 15 with a 4-unit quantum, at most 10 per scan (REFERENCE §4.4).
// It is armed only while threads are ready, so an idle machine quiesces.
func (k *Kernel) balanceScanOnce() {
	{
		limit := k.cfg.ClockTick * des.Duration(k.cfg.StarvationTicks)
		var boosted []*Thread
		k.policy.Each(func(t *Thread) bool {
			if t.priority >= 1 && t.priority <= 14 && k.sim.Now().Sub(t.readySince) >= limit {
				boosted = append(boosted, t)
			}
			return len(boosted) < 10
		})
		for _, t := range boosted {
			k.policy.Remove(t)
			t.priority = 15
			t.starveBoost = true
			t.quantumLeft = 4 * k.unit
			k.policy.Enqueue(t, false)
			k.emit(&t.exec, KindReady, WhatStarvationBoost, t.name, 15, 0)
			if c := k.pickVictim(t); c != nil {
				c.kick()
			}
		}
		k.balanceArmed = false
		if k.policy.Len() > 0 {
			k.balanceArmed = true
			k.sim.After(des.Second, k.balanceScan)
		}
	}
}
