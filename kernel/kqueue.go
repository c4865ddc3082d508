package kernel

import (
	"fmt"

	"github.com/wqsim/wqsim/des"
)

// KQUEUE is a kernel queue object (REFERENCE §3.3): FIFO entries, LIFO
// waiting threads, and a concurrency limit on how many associated threads
// may be active at once (0 means the processor count). A thread that got an
// entry counts as active until it calls KeRemoveQueue again; if it blocks
// on anything else it frees its slot, and a waiting thread is released for
// the next entry (KiActivateWaiterQueue).
type KQUEUE struct {
	dispatcherHeader
	k        *Kernel
	entries  []any
	limit    int
	active   int
	sleepers []*Thread // threads blocked in KeRemoveQueue, LIFO
	// layerNoted: a higher layer reports this queue's stranded entries in
	// its own hang note (Layer.QueueEntriesNotedByLayer).
	layerNoted bool
}

// KeInitializeQueue returns a queue with the given concurrency limit
// (0 = number of processors).
// IRQL: PASSIVE_LEVEL as Microsoft documents; the model does not check it (REFERENCE §4.8).
func (k *Kernel) KeInitializeQueue(name string, limit int) *KQUEUE {
	k.tick()
	if limit <= 0 {
		limit = len(k.cpus)
	}
	q := k.rc.queues.Take(k.sim)
	old := *q // recycled: keep the buffers and the name (see recycler)
	*q = KQUEUE{k: k, limit: limit, entries: old.entries[:0], sleepers: old.sleepers[:0]}
	q.waiters = old.waiters[:0]
	q.init(objQueue, k.joined(old.name, "queue ", name), true, 0)
	k.kqueues = append(k.kqueues, q)
	return q
}

// strandedQueueNotes names, for a hang report, each queue that still
// holds entries: at a hang no thread will call KeRemoveQueue again, so
// the work in them is what the waiting threads were counting on
// (REFERENCE §3.4). An entry is named by its Name() when it has one, else
// by its type (never its address: reports must be deterministic).
func (k *Kernel) strandedQueueNotes() []string {
	var out []string
	for _, q := range k.kqueues {
		if len(q.entries) == 0 || q.layerNoted {
			continue
		}
		out = append(out, fmt.Sprintf("%s holds %d %s nobody will remove (first: %s; %d %s in KeRemoveQueue)",
			q.name, len(q.entries), plural(len(q.entries), "entry", "entries"), entryName(q.entries[0]),
			len(q.sleepers), plural(len(q.sleepers), "thread waits", "threads wait")))
	}
	return out
}

func entryName(e any) string {
	if n, ok := e.(interface{ Name() string }); ok {
		return n.Name()
	}
	if s, ok := e.(string); ok {
		return s
	}
	return fmt.Sprintf("a %T", e)
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// Len returns the number of queued entries.
func (q *KQUEUE) Len() int { return len(q.entries) }

// Active returns the number of active associated threads.
func (q *KQUEUE) Active() int { return q.active }

// Limit returns the concurrency limit.
func (q *KQUEUE) Limit() int { return q.limit }

// Waiting returns the number of threads waiting in KeRemoveQueue.
func (q *KQUEUE) Waiting() int { return len(q.sleepers) }

// KeInsertQueue appends entry. If a thread waits and fewer than limit
// associated threads are active, the most recently blocked waiter takes it
// directly. Returns the number of entries before the insert.
// IRQL: ≤ DISPATCH_LEVEL, checked (REFERENCE §4.8).
func (k *Kernel) KeInsertQueue(q *KQUEUE, entry any) int {
	if q == nil {
		k.nilObject("KeInsertQueue", "Queue", touchUnderDispatch)
	}
	x := k.enter("KeInsertQueue")
	k.checkIrqlAtMost(x, "KeInsertQueue", DISPATCH_LEVEL)
	return k.insertQueue(x, q, entry, false)
}

// KeInsertHeadQueue inserts entry at the head.
// IRQL: ≤ DISPATCH_LEVEL, checked (REFERENCE §4.8).
func (k *Kernel) KeInsertHeadQueue(q *KQUEUE, entry any) int {
	x := k.enter("KeInsertHeadQueue")
	return k.insertQueue(x, q, entry, true)
}

func (k *Kernel) insertQueue(x *exec, q *KQUEUE, entry any, head bool) int {
	n := len(q.entries)
	k.emit(x, KindQueue, WhatKeInsertQueue, q.name, int64(n), int64(q.active))
	if len(q.sleepers) > 0 && q.active < q.limit && n == 0 {
		q.handTo(entry)
		return n
	}
	if head {
		q.entries = append(q.entries, nil)
		copy(q.entries[1:], q.entries)
		q.entries[0] = entry
	} else {
		q.entries = append(q.entries, entry)
	}
	q.state = int32(len(q.entries))
	return n
}

// handTo gives entry to the LIFO waiter and makes it active.
func (q *KQUEUE) handTo(entry any) {
	t := q.sleepers[len(q.sleepers)-1]
	q.sleepers = q.sleepers[:len(q.sleepers)-1]
	t.wait.queued = entry
	q.active++
	t.unlinkWaitBlocks()
	q.k.satisfyQueue(t)
}

// KeRemoveQueue takes the next entry, associating the caller with q. The
// caller's previous entry's slot is released first. It blocks (an idle
// wait, not reported as a hang) until an entry is available and the
// concurrency limit allows, or until timeout (then ok is false).
// IRQL: < DISPATCH_LEVEL from a thread; at DISPATCH_LEVEL only with a zero timeout (checked, REFERENCE §3.3).
func (k *Kernel) KeRemoveQueue(q *KQUEUE, timeout des.Duration) (entry any, ok bool) {
	if q == nil {
		k.nilObject("KeRemoveQueue", "Queue", touchUnderDispatch)
	}
	x := k.enter("KeRemoveQueue")
	t := x.thread
	timeout = ntRelative(timeout)
	if timeout != 0 {
		k.checkCanBlock(x, "KeRemoveQueue", timeout)
	}
	if t.queue != q {
		if t.queue != nil {
			t.queue.threadGone(t)
		}
		t.queue = q
	} else if q.active > 0 {
		q.active-- // the previous entry is done
	}
	if len(q.entries) > 0 && q.active < q.limit {
		entry = q.popEntry()
		q.active++
		return entry, true
	}
	if timeout == 0 {
		return nil, false
	}
	q.sleepers = append(q.sleepers, t)
	t.wait.blocks = append(t.wait.blocks[:0], waitBlock{t: t, obj: &q.dispatcherHeader})
	q.waiters = append(q.waiters, &t.wait.blocks[0])
	t.wait.api, t.wait.since = "KeRemoveQueue", k.sim.Now()
	t.wait.queued = nil
	t.wait.inQueue = true
	k.armWaitTimeout(t, timeout)
	k.emit(x, KindWait, WhatKeRemoveQueue, q.name, int64(timeout), 0)
	t.polling = false
	k.block(t) // an idle wait: the slot was released above, not by block
	t.wait.inQueue = false
	if t.wait.status == STATUS_TIMEOUT {
		return nil, false
	}
	return t.wait.queued, true
}

// popEntry removes and returns the head entry.
func (q *KQUEUE) popEntry() any {
	e := q.entries[0]
	copy(q.entries, q.entries[1:])
	q.entries[len(q.entries)-1] = nil
	q.entries = q.entries[:len(q.entries)-1]
	q.state = int32(len(q.entries))
	return e
}

// satisfyQueue readies a thread released from KeRemoveQueue.
func (k *Kernel) satisfyQueue(t *Thread) {
	t.wait.timer.Stop()
	t.wait.status = STATUS_SUCCESS
	k.emit(&t.exec, KindWake, WhatWake, t.name, 0, 0)
	k.adjustAfterWait(t)
	t.req = reqCompute
	k.readyThread(t, 0)
}

// threadBlocked: an active associated thread blocks on something else, so
// its slot frees and a waiter may take a queued entry.
func (q *KQUEUE) threadBlocked(t *Thread) {
	if t.wait.inQueue {
		return
	}
	if q.active > 0 {
		q.active--
	}
	q.activateWaiter()
}

// threadWoke: it resumes and counts as active again (may exceed the limit).
func (q *KQUEUE) threadWoke(t *Thread) {
	if t.wait.inQueue {
		// a KeRemoveQueue wait that timed out: remove from sleepers
		for i, s := range q.sleepers {
			if s == t {
				q.sleepers = append(q.sleepers[:i], q.sleepers[i+1:]...)
				break
			}
		}
	}
	// Any wake of an associated thread, a KeRemoveQueue timeout included,
	// makes it active again; its next KeRemoveQueue or its exit releases
	// the slot.
	q.active++
}

func (q *KQUEUE) threadGone(t *Thread) {
	if t.state != Waiting && q.active > 0 {
		q.active--
	}
	q.activateWaiter()
}

func (q *KQUEUE) activateWaiter() {
	for len(q.entries) > 0 && len(q.sleepers) > 0 && q.active < q.limit {
		q.handTo(q.popEntry())
	}
}
