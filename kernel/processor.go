package kernel

import (
	"strconv"

	"github.com/wqsim/wqsim/des"
)

// Processor is one simulated CPU. Its stack of contexts is: the current
// thread (nil when idle), then the DPC drain, then an ISR; only the top one
// advances. IRQL is the top context's.
type Processor struct {
	k   *Kernel
	id  int
	cur *Thread

	dpc      exec // this processor's DPC context (DISPATCH_LEVEL)
	dpcOn    bool
	dpcQueue []*KDPC
	isr      exec // this processor's ISR context (DIRQL)
	isrOn    bool
	isrQueue []*KINTERRUPT

	// Threaded DPCs (threaddpc.go): their queue, the real-time thread
	// that runs them at PASSIVE_LEVEL (made at the first one) and its
	// wake-up event, and whether one is running.
	tdpcQueue   []*KDPC
	tdpcThread  *Thread
	tdpcWake    *KEVENT
	tdpcRunning bool

	needSettle  bool // a change arrived while the top context was running
	quantumEnd  bool // the current thread's quantum ran out
	yieldWanted bool // an injected early quantum end
	name        string

	// The DPC and ISR contexts' bodies, bound to c once (kept when c is
	// recycled, see recycler): spawning a context builds no method value.
	drainDPCsFn, drainISRsFn func(*des.Proc)
}

func newProcessor(k *Kernel, id int) *Processor {
	c := k.rc.cpus.Take(k.sim)
	old := *c
	*c = Processor{k: k, id: id, dpcQueue: old.dpcQueue[:0], isrQueue: old.isrQueue[:0], tdpcQueue: old.tdpcQueue[:0]}
	c.dpc.onChunk, c.isr.onChunk = old.dpc.onChunk, old.isr.onChunk // bound to c (see recycler)
	c.drainDPCsFn, c.drainISRsFn = old.drainDPCsFn, old.drainISRsFn
	if c.drainDPCsFn == nil {
		c.drainDPCsFn, c.drainISRsFn = c.drainDPCs, c.drainISRs
	}
	if old.k != nil && old.id == id {
		c.name = old.name
		c.dpc.init(k, execDPC, old.dpc.name)
		c.isr.init(k, execISR, old.isr.name)
	} else {
		c.name = "cpu" + strconv.Itoa(id)
		c.dpc.init(k, execDPC, "dpc/"+c.name)
		c.isr.init(k, execISR, "isr/"+c.name)
	}
	c.dpc.cpu = c
	c.isr.cpu = c
	return c
}

// ID returns the processor number.
func (c *Processor) ID() int { return c.id }

// Current returns the thread that owns the processor (nil when idle).
func (c *Processor) Current() *Thread { return c.cur }

// top returns the context executing on c, or nil when idle.
func (c *Processor) top() *exec {
	switch {
	case c.isrOn:
		return &c.isr
	case c.dpcOn:
		return &c.dpc
	case c.cur != nil:
		return &c.cur.exec
	}
	return nil
}

// IRQL returns the processor's current IRQL.
func (c *Processor) IRQL() IRQL {
	if t := c.top(); t != nil {
		return t.irql
	}
	return PASSIVE_LEVEL
}

// charge accounts the CPU time the top context used since its chunk
// started, and notes a quantum end.
func (c *Processor) charge(e *exec) {
	used := c.k.sim.Now().Sub(e.started)
	e.started = c.k.sim.Now()
	e.remaining -= used
	if e.remaining < 0 {
		e.remaining = 0
	}
	if t := e.thread; t != nil && e.kind == execThread {
		t.quantumLeft -= used
		if t.quantumLeft <= 0 {
			c.k.quantumExpired(c, t)
		}
	}
}

// pause interrupts the top context's chunk, saving what is left of it.
func (c *Processor) pause() {
	if t := c.top(); t != nil && t.timer.Stop() {
		c.charge(t)
	}
}

// kick asks c to reconsider what it runs. If c's top context is the code
// running now, the change waits for its next scheduling point.
func (c *Processor) kick() {
	if t := c.top(); t != nil && t.running() {
		c.needSettle = true
		return
	}
	c.pause()
	c.settle()
}

// settle decides what c does next and starts it: an ISR, the DPC drain, a
// thread switch, or the top context's next chunk. It runs only while none
// of c's contexts is executing.
func (c *Processor) settle() {
	if top := c.decide(); top != nil {
		c.startChunk(top)
	}
}

// settleTail is settle for the last act of an event handler running in
// the loop: a zero-length chunk that would be the very next event is not
// queued but returned, for the caller to end at once (des.Sim.ContinueNow
// decides and accounts it as that event).
func (c *Processor) settleTail() *exec {
	top := c.decide()
	if top == nil {
		return nil
	}
	if c.chunkLength(top) == 0 && c.k.sim.ContinueNow() {
		top.started = c.k.sim.Now()
		return top
	}
	c.startChunk(top)
	return nil
}

// decide is settle's decision: it switches what c runs as needed and
// returns the top context if its next chunk is to start, or nil.
func (c *Processor) decide() *exec {
	c.needSettle = false
	for i := 0; i < 8; i++ {
		irql := c.IRQL()
		if len(c.isrQueue) > 0 && !c.isrOn && irql < c.isrQueue[0].Irql {
			c.pushContext(&c.isr, c.isrQueue[0].Irql)
			continue
		}
		if irql < DISPATCH_LEVEL && len(c.dpcQueue) > 0 && !c.dpcOn && !c.isrOn {
			c.pushContext(&c.dpc, DISPATCH_LEVEL)
			continue
		}
		if irql < DISPATCH_LEVEL && !c.dpcOn && !c.isrOn && c.k.reschedule(c) {
			continue
		}
		break
	}
	top := c.top()
	if top == nil || top.req != reqCompute || top.timer.Active() {
		return nil
	}
	return top
}

// startChunk schedules the end of the top context's next compute chunk.
func (c *Processor) startChunk(e *exec) {
	d := c.chunkLength(e)
	e.started = c.k.sim.Now()
	e.timer = c.k.sim.After(d, e.onChunk)
}

// chunkLength is the length of e's next chunk: what it has left to
// compute, cut at a thread's quantum end.
func (c *Processor) chunkLength(e *exec) des.Duration {
	d := e.remaining
	if t := e.thread; t != nil && e.kind == execThread && d > t.quantumLeft {
		d = t.quantumLeft
		if d < 0 {
			d = 0
		}
	}
	return d
}

// pushContext interrupts whatever runs on c and starts a DPC or ISR
// context on top of it.
func (c *Processor) pushContext(e *exec, irql IRQL) {
	c.pause()
	if e.kind == execDPC {
		c.dpcOn = true
		if e.proc == nil {
			e.proc = c.k.sim.Spawn(e.name, c.drainDPCsFn)
			e.proc.Data = e
		}
	} else {
		c.isrOn = true
		if e.proc == nil {
			e.proc = c.k.sim.Spawn(e.name, c.drainISRsFn)
			e.proc.Data = e
		}
	}
	e.irql = irql
	e.req = reqCompute
	e.remaining = c.k.cfg.Costs.Interrupt
	c.k.emit(e, KindInterrupt, WhatEnter, e.name, int64(irql), 0)
}

// popContext removes a finished DPC or ISR context.
func (c *Processor) popContext(e *exec) {
	if e.kind == execDPC {
		c.dpcOn = false
	} else {
		c.isrOn = false
	}
	e.req = reqNone
	c.k.emit(e, KindInterrupt, WhatLeave, e.name, 0, 0)
}
