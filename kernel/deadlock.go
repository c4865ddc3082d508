package kernel

// edgeOf describes what e waits for and the exec that could free it.
func (k *Kernel) edgeOf(e *exec) (WaitEdge, *exec, bool) { return k.edge(e, true) }

// edge is edgeOf; without describe it only finds the exec and leaves the
// edge's texts partial, building no string (a deadlock check runs at
// every contended acquire and wait; only a found cycle is described).
func (k *Kernel) edge(e *exec, describe bool) (WaitEdge, *exec, bool) {
	if l := e.spinOn; l != nil {
		ed := WaitEdge{Waiter: e.name, Object: l.objName(), Through: "spinning"}
		if l.owner != nil {
			ed.Owner = l.owner.name
		}
		return ed, l.owner, true
	}
	if l := e.spinOnRW; l != nil {
		ed := WaitEdge{Waiter: e.name, Object: l.objName(), Through: "spinning"}
		o := l.blocker(e)
		if o != nil {
			ed.Owner = o.name
		}
		return ed, o, true
	}
	t := e.thread
	// A thread that is about to block on a lock (its lock wait is set:
	// the deadlock check runs just before it blocks) counts as waiting.
	if t == nil || (t.state != Waiting && t.wait.lock.name == "") {
		return WaitEdge{}, nil, false
	}
	if lw := t.wait.lock; lw.name != "" {
		ed := WaitEdge{Waiter: t.name, Object: lw.name, Through: t.wait.api, Since: t.wait.since, hasSince: true}
		if describe {
			ed.Owner = lw.owner()
		}
		if lw.self {
			if describe {
				ed.Owner = t.name + " itself, a sharer that cannot let go while it waits (owners: " + lw.owner() + ")"
			}
			return ed, &t.exec, true
		}
		if o := lw.next(); o != nil {
			return ed, &o.exec, true
		}
		return ed, nil, true
	}
	ed := WaitEdge{Waiter: t.name, Through: t.wait.api, Since: t.wait.since, hasSince: true}
	var next *exec
	for i, b := range t.wait.blocks {
		if describe && i > 0 {
			ed.Object += ", "
		}
		if describe {
			ed.Object += b.obj.name
		}
		if len(t.wait.blocks) != 1 {
			continue
		}
		if b.obj.thread != nil {
			next = &b.obj.thread.exec
			ed.Owner = b.obj.thread.name
		}
		if m := b.obj.mutex; m != nil && m.owner != nil {
			next = &m.owner.exec
			ed.Owner = m.owner.name
		}
		if apc := t.apcSignalling(b.obj); apc != nil && len(t.wait.blocks) == 1 {
			// The waiter itself must run the APC that would end its wait.
			next = &t.exec
			if describe {
				ed.Owner = "its own " + apc.Name + " APC, which cannot run because " + t.apcBlockedBy()
			}
		}
	}
	if len(t.wait.blocks) == 0 {
		ed.Object = "a timeout"
	}
	return ed, next, true
}

// cycleFrom follows wait-for edges from e and returns the cycle through e,
// or nil.
func (k *Kernel) cycleFrom(e *exec) []WaitEdge {
	var path []WaitEdge
	cur := e
	for i := 0; i <= len(k.threads)+len(k.cpus)*2; i++ {
		ed, next, ok := k.edgeOf(cur)
		if !ok || next == nil {
			return nil
		}
		path = append(path, ed)
		if next == e {
			return path
		}
		cur = next
	}
	return nil
}

func (k *Kernel) lockCycle(t *Thread) bool { return k.inCycle(&t.exec) }
func (k *Kernel) spinCycle(x *exec) bool   { return k.inCycle(x) }

// inCycle reports whether cycleFrom(e) would find a cycle, without
// describing it (no allocation). It runs when e starts to wait, while
// other things still happen, so it only counts a cycle none of whose
// waits can end on its own: a wait with a timeout or an alertable one
// (an alert or user APC from outside the cycle) breaks it. At quiescence
// (findHang) neither can still end, and cycleFrom follows every edge.
func (k *Kernel) inCycle(e *exec) bool {
	cur := e
	for i := 0; i <= len(k.threads)+len(k.cpus)*2; i++ {
		_, next, ok := k.edge(cur, false)
		if !ok || next == nil || cur.waitMayEnd() {
			return false
		}
		if next == e {
			return true
		}
		cur = next
	}
	return false
}

// waitMayEnd reports a thread's object wait that a timeout or an alert
// can still end. Lock waits (fast mutex, ERESOURCE) have neither; their
// waitState keeps the mode of the thread's last object wait, so it is
// not consulted for them.
func (e *exec) waitMayEnd() bool {
	t := e.thread
	if e.spinning() || t == nil || t.wait.lock.name != "" {
		return false
	}
	return t.wait.timer.Active() || t.wait.alertable
}

// deadlockFrom builds the report for a cycle through x.
func (k *Kernel) deadlockFrom(x *exec) *Deadlock {
	d := &Deadlock{Cycle: k.cycleFrom(x), At: k.sim.Now()}
	d.Blocked = k.blockedEdges()
	return d
}

// blockedEdges lists every thread that waits (other than idle worker
// waits on a KQUEUE) and every exec that spins.
func (k *Kernel) blockedEdges() []WaitEdge {
	var out []WaitEdge
	for _, t := range k.threads {
		if t.state == Waiting && !t.idleWait() {
			ed, _, _ := k.edgeOf(&t.exec)
			out = append(out, ed)
		}
	}
	for _, c := range k.cpus {
		for _, e := range []*exec{&c.dpc, &c.isr} {
			if e.spinning() {
				ed, _, _ := k.edgeOf(e)
				out = append(out, ed)
			}
		}
		if c.cur != nil && c.cur.spinning() {
			ed, _, _ := k.edgeOf(&c.cur.exec)
			out = append(out, ed)
		}
	}
	return out
}

// idleWait reports a wait that is a thread's normal idle state: a worker
// waiting on its KQUEUE for work, a threaded-DPC thread waiting for DPCs.
func (t *Thread) idleWait() bool {
	return t.dpcThread || len(t.wait.blocks) == 1 && t.wait.blocks[0].obj.kind == objQueue
}

// findHang runs at quiescence: any thread still waiting (outside idle
// queue waits) or exec still spinning can never be woken.
func (k *Kernel) findHang() *Deadlock {
	blocked := k.blockedEdges()
	if len(blocked) == 0 {
		return nil
	}
	d := &Deadlock{Blocked: blocked, At: k.sim.Now()}
	d.Pending = append(d.Pending, k.strandedQueueNotes()...)
	d.Pending = append(d.Pending, k.strandedSListNotes()...)
	for _, f := range k.hangNotes {
		d.Pending = append(d.Pending, f()...)
	}
	for _, t := range k.threads {
		if t.state == Waiting {
			if c := k.cycleFrom(&t.exec); c != nil {
				d.Cycle = c
				break
			}
		}
	}
	return d
}

// apcSignalling returns a kernel APC queued to t that would signal obj (an
// I/O completion APC and its IRP's events), or nil.
func (t *Thread) apcSignalling(obj *dispatcherHeader) *KAPC {
	for _, a := range t.kernelApcs {
		if a.signals == obj || (a.signalsIrp != nil && a.signalsIrp.UserEvent != nil && &a.signalsIrp.UserEvent.dispatcherHeader == obj) {
			return a
		}
	}
	return nil
}
