package kernel

import "github.com/wqsim/wqsim/des"

// Read-only accessors for measurement (the experiment lab, reports). They
// read dispatcher state between events without changing it, allocate
// nothing, and are not scheduling points: call them from outside simulated
// code (a des.Sink, or the loop that drives Sim.Step), where the state is
// consistent. Mutating the returned objects is not supported.

// Processor returns processor i (0 ≤ i < Processors()).
func (k *Kernel) Processor(i int) *Processor {
	k.tick()
	return k.cpus[i]
}

// Policy returns the dispatcher policy in use.
func (k *Kernel) Policy() Policy {
	k.tick()
	return k.policy
}

// ThreadByID returns the thread with id (IDs count from 1 in creation
// order, as in trace records' Thread field), or nil if there is none.
func (k *Kernel) ThreadByID(id int32) *Thread {
	k.tick()
	if id < 1 || int(id) > len(k.threads) {
		return nil
	}
	return k.threads[id-1]
}

// ReadyCount returns the number of ready threads.
func (k *Kernel) ReadyCount() int {
	k.tick()
	return k.policy.Len()
}

// EachReady calls f on every ready thread in the policy's order (best first
// for the NT dispatcher) until f returns false. f must not change dispatcher
// state.
func (k *Kernel) EachReady(f func(*Thread) bool) {
	k.tick()
	k.policy.Each(f)
}

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
