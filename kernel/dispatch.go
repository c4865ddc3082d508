package kernel

import (
	"github.com/wqsim/wqsim/des"
)

// readyThread makes t ready (after creation, a wait, or preemption
// elsewhere) with a wait-completion boost of increment, then finds it a
// processor (REFERENCE §4.2, §4.7).
func (k *Kernel) readyThread(t *Thread, increment int) {
	k.makeReady(t, increment)
	k.emit(&t.exec, KindReady, WhatReady, t.name, int64(t.priority), int64(increment))
	k.placeReady(t)
}

// makeReady boosts t and marks it ready; placeReady queues it.
func (k *Kernel) makeReady(t *Thread, increment int) {
	if increment > 0 {
		k.boost(t, increment)
	}
	t.state = Ready
	t.readySince = k.sim.Now()
}

// placeReady queues a ready thread and finds it a processor.
func (k *Kernel) placeReady(t *Thread) {
	if k.cfg.StarvationBoost && !k.balanceArmed {
		k.balanceArmed = true
		k.sim.After(des.Second, k.balanceScan)
	}
	if k.pcpu != nil {
		k.placeOnProcessor(t, false)
		return
	}
	// The global policy: an idle processor if any (a decision among
	// them), else the one running the thread it preempts (a decision among
	// equals), else it waits at the tail of its ready list.
	k.policy.Enqueue(t, false)
	if c := k.pickIdle(t); c != nil {
		c.kick()
		return
	}
	if c := k.pickVictim(t); c != nil {
		c.kick()
	}
}

// placeOnProcessor is WRK's KiDeferredReadyThread (REFERENCE §4.7): an
// idle processor t may run on takes it (a decision among them; choice 0
// its ideal processor, then its last one, then the lowest number);
// otherwise t joins the ready queue of its ideal processor (its last, or
// the lowest allowed, when affinity excludes the ideal one) — at the head
// if it was preempted — and preempts that processor's thread only if it
// outranks it. It never looks at other busy processors.
func (k *Kernel) placeOnProcessor(t *Thread, front bool) {
	if c := k.pickIdle(t); c != nil {
		t.queueCPU = c.id
		k.policy.Enqueue(t, front)
		c.kick()
		return
	}
	c := k.homeProcessor(t)
	t.queueCPU = c.id
	k.policy.Enqueue(t, front)
	if c.cur != nil && k.policy.Preempts(t, c.cur) {
		c.kick()
	}
}

// homeProcessor is the processor whose queue t joins when none is idle.
func (k *Kernel) homeProcessor(t *Thread) *Processor {
	switch {
	case t.allowedOn(t.ideal):
		return k.cpus[t.ideal]
	case t.lastCPU >= 0 && t.allowedOn(t.lastCPU):
		return k.cpus[t.lastCPU]
	}
	for _, c := range k.cpus {
		if t.allowedOn(c.id) {
			return c
		}
	}
	return k.cpus[0] // unreachable: affinity is never empty
}

// allowedOn reports whether t's affinity includes processor cpu.
func (t *Thread) allowedOn(cpu int) bool { return t.affinity&(1<<uint(cpu)) != 0 }

// nextIdeal hands out ideal processors round-robin, as WRK's
// KeInitializeThread does from the process's thread seed.
func (k *Kernel) nextIdeal() int {
	i := k.idealSeed
	k.idealSeed = (k.idealSeed + 1) % len(k.cpus)
	return i
}

// pickIdle chooses an idle processor t may run on. Choice 0 is the
// natural one: with per-processor queues t's ideal processor, then its
// last one, then the lowest-numbered; with the global policy its last
// processor, then the lowest-numbered.
func (k *Kernel) pickIdle(t *Thread) *Processor {
	idle := k.scratch[:0]
	first, second := t.lastCPU, -1
	if k.pcpu != nil {
		first, second = t.ideal, t.lastCPU
	}
	for _, c := range k.cpus {
		if c.cur == nil && !c.dpcOn && !c.isrOn && t.allowedOn(c.id) && (k.pcpu == nil || k.pcpu.PeekOn(c.id) == nil) {
			idle = append(idle, c)
		}
	}
	promote(idle, second)
	promote(idle, first) // natural choices first, the others keep their order
	k.scratch = idle
	if len(idle) == 0 {
		return nil
	}
	i := k.sim.Choose(des.Point{Kind: PointPickCPU, Label: "dispatcher: which idle processor", Actor: t.id}, len(idle))
	return idle[i]
}

// promote moves the processor numbered id to the front of cs, if present.
func promote(cs []*Processor, id int) {
	for i, c := range cs {
		if c.id == id {
			copy(cs[1:i+1], cs[:i])
			cs[0] = c
			return
		}
	}
}

// pickVictim chooses the processor whose running thread t preempts under
// the global policy: the lowest-priority one it may run on, a decision
// among equals (choice 0 = lowest number).
func (k *Kernel) pickVictim(t *Thread) *Processor {
	victims := k.scratch[:0]
	low := int8(127)
	for _, c := range k.cpus {
		if c.cur == nil || !t.allowedOn(c.id) || !k.policy.Preempts(t, c.cur) {
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
	cur := c.cur
	best := k.bestFor(c)
	if best != nil && k.cfg.DecideReadyOrder {
		best = k.pickAmongEqual(c, best)
	}
	var why des.What
	front := false
	switch {
	case cur != nil && !cur.allowedOn(c.id):
		why = WhatAffinityMove // its affinity no longer includes c: it moves
	case best == nil:
	case cur == nil:
		why = WhatDispatch
	case k.policy.Preempts(best, cur):
		why, front = WhatPreempt, true
	case (c.quantumEnd || c.yieldWanted) && k.policy.RoundRobin(best, cur):
		why = WhatRoundRobin
	}
	// A quantum end or injected yield applies to this decision only (and
	// not to the next thread, when the current one has left).
	c.quantumEnd, c.yieldWanted = false, false
	if why == "" { // nothing to do
		return false
	}
	if cur == nil {
		k.switchTo(c, best, why)
		return true
	}
	if why == WhatAffinityMove {
		c.cur, cur.cpu, cur.state, cur.readySince = nil, nil, Ready, k.sim.Now()
		if best != nil {
			k.switchTo(c, best, WhatDispatch)
		}
		k.emit(&cur.exec, KindReady, WhatAffinityMove, cur.name, int64(cur.priority), 0)
		k.placeReady(cur)
		return true
	}
	k.preemptCurrent(c, front)
	k.switchTo(c, best, why)
	return true
}

// bestFor returns the ready thread c should consider: with per-processor
// queues the head of c's own queue, or — when c is idle with an empty
// queue — the best thread it can take from another processor's queue
// (WRK's idle-processor search, a decision among processors whose best
// thread ties, choice 0 the lowest number); with the global policy the
// best ready thread c may run.
func (k *Kernel) bestFor(c *Processor) *Thread {
	if k.pcpu == nil {
		best := k.policy.Peek()
		if best != nil && !best.allowedOn(c.id) {
			best = k.bestAllowed(c)
		}
		return best
	}
	if best := k.pcpu.PeekOn(c.id); best != nil || c.cur != nil {
		return best
	}
	return k.steal(c)
}

// bestAllowed scans the global ready lists for the best thread c may run
// (only when affinity excluded the head).
func (k *Kernel) bestAllowed(c *Processor) *Thread {
	var found *Thread
	k.policy.Each(func(t *Thread) bool {
		if t.allowedOn(c.id) {
			found = t
			return false
		}
		return true
	})
	return found
}

// steal finds a thread for idle processor c in the other processors'
// queues: the highest-priority one c may run, a decision among the
// processors that tie.
func (k *Kernel) steal(c *Processor) *Thread {
	cands := k.stealScratch[:0]
	k.stealCPU = c.id
	for _, o := range k.cpus {
		if o == c {
			continue
		}
		k.stealFound = nil
		k.pcpu.EachOn(o.id, k.stealMatch)
		switch t := k.stealFound; {
		case t == nil:
		case len(cands) == 0 || t.priority > cands[0].priority:
			cands = append(cands[:0], t)
		case t.priority == cands[0].priority:
			cands = append(cands, t)
		}
	}
	k.stealScratch = cands
	if len(cands) == 0 {
		return nil
	}
	i := k.sim.Choose(des.Point{Kind: PointSteal, Label: "dispatcher: idle processor takes a thread from which queue"}, len(cands))
	return cands[i]
}

// stealFirst records the first ready thread allowed on stealCPU; it is
// bound once to k.stealMatch so that EachOn gets no fresh closure.
func (k *Kernel) stealFirst(t *Thread) bool {
	if t.allowedOn(k.stealCPU) {
		k.stealFound = t
		return false
	}
	return true
}

// pickAmongEqual lets the chooser pick among the ready threads at best's
// priority in best's queue (in ready-list order, so choice 0 is the FIFO
// head).
func (k *Kernel) pickAmongEqual(c *Processor, best *Thread) *Thread {
	k.threadScratch = k.threadScratch[:0]
	k.collectPrio, k.collectCPU = best.priority, c.id
	if k.pcpu != nil {
		k.pcpu.EachOn(best.queueCPU, k.collectEqual)
	} else {
		k.policy.Each(k.collectEqual)
	}
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

// collectEqualPrio appends the ready threads that have collectPrio and may
// run on collectCPU; it is bound once to k.collectEqual so that Policy.Each
// gets no fresh closure. A thread whose affinity excludes the processor is
// no candidate (REFERENCE §4.7: placement, stealing and preemption respect
// affinity): an idle processor that steals from another's queue, where a
// pinned thread waits beside others of its priority, must not be offered
// it.
func (k *Kernel) collectEqualPrio(t *Thread) bool {
	if t.priority != k.collectPrio {
		return false
	}
	if t.allowedOn(k.collectCPU) {
		k.threadScratch = append(k.threadScratch, t)
	}
	return true
}

// preemptCurrent puts c's running thread back on the ready lists — with
// per-processor queues on c's own (WRK KxQueueReadyThread) — at the head
// if preempted, at the tail after its quantum ended.
func (k *Kernel) preemptCurrent(c *Processor, front bool) {
	t := c.cur
	t.state = Ready
	t.readySince = k.sim.Now()
	t.cpu = nil
	c.cur = nil
	t.queueCPU = c.id
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
		k.requeue(t)
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

// requeue puts a ready thread whose priority changed back in the ready
// structure and lets it preempt: under the global policy the
// lowest-priority thread it outranks, with per-processor queues through
// the usual placement (REFERENCE §4.7).
func (k *Kernel) requeue(t *Thread) {
	if k.pcpu != nil {
		k.placeOnProcessor(t, false)
		return
	}
	k.policy.Enqueue(t, false)
	if c := k.pickVictim(t); c != nil {
		c.kick()
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
			k.emit(&t.exec, KindReady, WhatStarvationBoost, t.name, 15, 0)
			k.requeue(t)
		}
		k.balanceArmed = false
		if k.policy.Len() > 0 {
			k.balanceArmed = true
			k.sim.After(des.Second, k.balanceScan)
		}
	}
}
