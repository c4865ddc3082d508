package kernel

import "github.com/wqsim/wqsim/des"

// Read-only accessors for measurement (the experiment lab, reports). They
// read dispatcher state between events without changing it, allocate
// nothing, and are not scheduling points: call them from outside simulated
// code (a des.Sink, or the loop that drives Sim.Step), where the state is
// consistent. Mutating the returned objects is not supported.

// Busy reports whether the processor executes anything: a thread (running
// or spinning), its DPC drain or an ISR. An idle processor is not busy.
func (c *Processor) Busy() bool { return c.cur != nil || c.dpcOn || c.isrOn }

// InInterrupt reports whether a DPC drain or an ISR runs on the processor
// (on top of its thread, if any).
func (c *Processor) InInterrupt() bool { return c.dpcOn || c.isrOn }

// ReadySince returns when the thread last became ready (created, woken,
// preempted or at the end of its quantum). While the thread is Ready it is
// the start of its current wait for a processor; once dispatched it keeps
// that value until it is readied again.
func (t *Thread) ReadySince() des.Time { return t.readySince }

// Processor returns the processor the thread runs on, nil unless Running.
func (t *Thread) Processor() *Processor {
	if t.state != Running || t.cpu == nil {
		return nil
	}
	return t.cpu
}

// LastProcessor returns the number of the processor the thread last ran
// on, -1 if it never ran.
func (t *Thread) LastProcessor() int { return t.lastCPU }
