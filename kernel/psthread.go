package kernel

import "fmt"

// threadTerminated is the panic value PsTerminateSystemThread unwinds the
// calling thread's body with; threadMain recovers it and runs the exit.
type threadTerminated struct{}

// PsTerminateSystemThread ends the calling system thread with status
// (REFERENCE §4.18): it does not return. The thread's body is unwound —
// its Go deferred calls run, as nothing of the driver's would on Windows,
// so a scenario should not rely on them — and the thread exits with the
// usual exit checks (a held KMUTEX, a critical or guarded region left
// open, IRQL above PASSIVE_LEVEL). An executive worker thread terminated
// from a work routine is ACTIVE_EX_WORKER_THREAD_TERMINATION 0xE9.
// IRQL: PASSIVE_LEVEL, checked (0x0A above it: a DPC or ISR is not the
// thread it interrupted).
func (k *Kernel) PsTerminateSystemThread(status NTSTATUS) NTSTATUS {
	x := k.enter("PsTerminateSystemThread")
	k.checkIrqlAtMost(x, "PsTerminateSystemThread", PASSIVE_LEVEL)
	t := x.thread
	if t.exWorker {
		k.bugCheck(x, "PsTerminateSystemThread", ACTIVE_EX_WORKER_THREAD_TERMINATION, uint64(t.id), uint64(status), 0, 0,
			fmt.Sprintf("executive worker thread %s terminated by a work routine", t.name))
	}
	t.exitStatus = status
	t.terminating = true
	panic(threadTerminated{})
}

// runBody runs t's start routine; a PsTerminateSystemThread inside it
// ends it early. Any other panic goes on up to des, which reports it. The
// deferred call recovers only when PsTerminateSystemThread started the
// unwinding: recovering and re-raising every other panic — des unwinds
// each parked thread with one when a Sim is reset — would unwind those
// stacks twice.
func (t *Thread) runBody() {
	defer func() {
		if !t.terminating {
			return
		}
		if r := recover(); r != (threadTerminated{}) {
			panic(r) // a second panic while terminating (the Sim was reset)
		}
	}()
	t.body()
}

// ExitStatus returns the status the thread passed to
// PsTerminateSystemThread (STATUS_SUCCESS when its body returned).
func (t *Thread) ExitStatus() NTSTATUS { return t.exitStatus }

// PsGetCurrentThread returns the thread the caller runs in, as
// KeGetCurrentThread does (in a DPC or ISR the interrupted thread, nil on
// an idle processor).
// IRQL: any (REFERENCE §4.18).
func (k *Kernel) PsGetCurrentThread() *Thread {
	x := k.cur("PsGetCurrentThread")
	if x.thread != nil {
		return x.thread
	}
	return x.cpu.cur
}

// PsGetCurrentThreadId returns the number of the thread the caller runs in
// (0 on an idle processor): the model's thread IDs, which appear in traces.
// IRQL: any (REFERENCE §4.18).
func (k *Kernel) PsGetCurrentThreadId() int32 {
	if t := k.PsGetCurrentThread(); t != nil {
		return t.id
	}
	return 0
}
