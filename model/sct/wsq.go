package sct

import (
	"github.com/wqsim/wqsim/des"
	"github.com/wqsim/wqsim/kernel"
	"github.com/wqsim/wqsim/model"
)

// The CHESS work-stealing queue (THE protocol, Frigo/Leiserson/Randall's
// Cilk-5 deque): the owner pushes and pops at the tail without a lock,
// thieves steal at the head under a lock, and the one-element race between
// a pop and a steal is settled by moving the index first and checking
// second. SCTBench's copy (benchmarks/chess/WorkStealQueue.h) is compiled
// with BUG3: the owner's capacity check allows one slot too many, so a push
// can overwrite the slot a thief is taking. The header also documents two
// other injected bugs (write the index after the check, in Steal and in
// Pop); they are variants here. The harness is WorkStealQueue.cpp's: one
// stealer making two attempts, four items pushed two at a time with a pop
// after each pair, then the rest popped; every item must be operated on
// exactly once.

func init() {
	model.Register(&model.Scenario{
		Name: "sct-workstealqueue",
		Doc: "The CHESS WorkStealQueue family: an owner thread pushes and pops at the tail of a THE-protocol " +
			"deque (initial size 2) while a stealer takes from the head under the queue's lock; each of four " +
			"items must be processed exactly once. Variants: the BUG3 capacity check with a mutex lock " +
			"(WorkStealQueue.cpp) or a spin lock built on InterlockedExchange (InterlockedWorkStealQueue.cpp), " +
			"and the header's two documented index-order bugs. Origin: SCTBench (github.com/mc-imperial/sctbench) " +
			"benchmarks/chess/WorkStealQueue.h, WorkStealQueue.cpp, InterlockedWorkStealQueue.cpp (fixed: the " +
			"header's 'Correct:' capacity check). The WithState harnesses (StateWorkStealQueue.cpp, " +
			"InterlockedWorkStealQueueWithState.cpp) only add CHESS state hashing and are not ported separately.",
		Section: "SCTBench Chess/WorkStealQueue, Chess/InterlockedWorkStealQueue",
		Config:  oneCPU,
		Variants: []model.Variant{
			{Name: "correct", Doc: "push while t < head + mask (one slot kept free)"},
			{Name: "push-overwrite", Bug: true, Doc: "BUG3: push while t < head + mask + 1, mutex lock (WorkStealQueue.cpp)",
				Marks: []*model.Mark{markWorkstealqueuePushOverwroteThe}, Want: "sct-workstealqueue: item"},
			{Name: "push-overwrite-spin", Bug: true, Doc: "BUG3 with the InterlockedExchange spin lock (InterlockedWorkStealQueue.cpp)",
				Marks: []*model.Mark{markWorkstealqueuePushOverwroteThe}, Want: "sct-workstealqueue: item"},
			{Name: "steal-late-head", Bug: true, Doc: "Steal moves head only after checking tail (the header's first BUG comment)",
				Marks: []*model.Mark{markWorkstealqueuePopAndSteal}, Want: "sct-workstealqueue: item"},
			{Name: "pop-late-tail", Bug: true, Doc: "Pop moves tail only after checking head (the header's second BUG comment)",
				Marks: []*model.Mark{markWorkstealqueuePopAndSteal}, Want: "sct-workstealqueue: item"},
		},
		Setup: setupWSQ,
	})
}

// wsq is the deque. head and tail are shared cells; the element array and
// its mask change only in SyncPush, by the owner under the lock.
type wsq struct {
	p          *prog
	head, tail *kernel.Cell
	elems      []*kernel.Cell
	mask       int64
	lock       func()
	unlock     func()
	taking     int64 // model-only: the slot a steal has claimed and not yet read, or -1
	taken      []int // model-only: how many times each item was taken
}

func newWSQ(p *prog, size int) *wsq {
	q := &wsq{p: p, head: p.cell("head", 0), tail: p.cell("tail", 0), mask: int64(size - 1), taking: -1}
	q.elems = q.newArray(size)
	if p.env.Is("push-overwrite-spin") {
		word := p.cell("spin lock", 0)
		q.lock = func() {
			for p.k.InterlockedExchange(word, 1) != 0 {
				p.k.KeDelayExecutionThread(des.Microsecond) // sleep(0): let the holder run
			}
		}
		q.unlock = func() { p.k.Write(word, 0) }
	} else {
		m := p.newMutex("queue lock")
		q.lock, q.unlock = m.lock, m.unlock
	}
	return q
}

func (q *wsq) newArray(n int) []*kernel.Cell {
	a := make([]*kernel.Cell, n)
	for i := range a {
		a[i] = q.p.cell("elems["+itoa(i)+"]", -1)
	}
	return a
}

// steal is WorkStealQueue::Steal.
func (q *wsq) steal() (int64, bool) {
	k := q.p.k
	q.lock()
	defer q.unlock()
	h := k.Read(q.head)
	late := q.p.env.Is("steal-late-head")
	// From moving head to reading the slot, the slot is the thief's.
	defer func() { q.taking = -1 }()
	if !late {
		k.Write(q.head, h+1)
		q.taking = h & q.mask
	}
	if h < k.Read(q.tail) {
		if late {
			k.Write(q.head, h+1)
			q.taking = h & q.mask
		}
		return k.Read(q.elems[h&q.mask]), true
	}
	k.Write(q.head, h)
	return 0, false
}

// pop is WorkStealQueue::Pop, with SyncPop for the contended case.
func (q *wsq) pop() (int64, bool) {
	k := q.p.k
	t := k.Read(q.tail) - 1
	late := q.p.env.Is("pop-late-tail")
	if !late {
		k.Write(q.tail, t)
	}
	if k.Read(q.head) <= t {
		if late {
			k.Write(q.tail, t)
		}
		return k.Read(q.elems[t&q.mask]), true
	}
	k.Write(q.tail, t+1)
	return q.syncPop()
}

func (q *wsq) syncPop() (int64, bool) {
	k := q.p.k
	q.lock()
	defer q.unlock()
	t := k.Read(q.tail) - 1
	k.Write(q.tail, t)
	var v int64
	found := false
	if k.Read(q.head) <= t {
		v, found = k.Read(q.elems[t&q.mask]), true
	} else {
		k.Write(q.tail, t+1)
	}
	if k.Read(q.head) > t {
		k.Write(q.head, 0)
		k.Write(q.tail, 0)
		found = false
	}
	return v, found
}

// push is WorkStealQueue::Push: the fast path keeps one slot free so a
// concurrent steal's slot is never reused; BUG3 does not.
func (q *wsq) push(item int64) {
	k := q.p.k
	t := k.Read(q.tail)
	room := q.mask
	if q.p.env.Is("push-overwrite") || q.p.env.Is("push-overwrite-spin") {
		room = q.mask + 1
	}
	if t < k.Read(q.head)+room {
		if q.taking == t&q.mask {
			q.p.env.Hit(markWorkstealqueuePushOverwroteThe)
		}
		k.Write(q.elems[t&q.mask], item)
		k.Write(q.tail, t+1)
		return
	}
	q.syncPush(item)
}

// syncPush normalises the indices and grows the array under the lock.
func (q *wsq) syncPush(item int64) {
	k := q.p.k
	q.lock()
	defer q.unlock()
	h := k.Read(q.head)
	count := k.Read(q.tail) - h
	h &= q.mask
	k.Write(q.head, h)
	k.Write(q.tail, h+count)
	if count >= q.mask {
		grown := q.newArray(int(2 * (q.mask + 1)))
		for i := range count {
			k.Write(grown[i], k.Read(q.elems[(h+i)&q.mask]))
		}
		q.elems, q.mask = grown, int64(len(grown)-1)
		k.Write(q.head, 0)
		k.Write(q.tail, count)
	}
	t := k.Read(q.tail)
	k.Write(q.elems[t&q.mask], item)
	k.Write(q.tail, t+1)
}

func setupWSQ(env *model.Env) error {
	const items, attempts = 4, 2
	p := newProg(env, "sct-workstealqueue")
	q := newWSQ(p, 2)
	q.taken = make([]int, items)
	field := make([]*kernel.Cell, items)
	for i := range field {
		field[i] = p.cell("item"+itoa(i)+".field", 0)
	}
	operate := func(v int64, ok bool) {
		if !ok {
			return
		}
		if q.taken[v]++; q.taken[v] == 2 {
			env.Hit(markWorkstealqueuePopAndSteal)
		}
		p.k.Write(field[v], p.k.Read(field[v])+1)
	}
	p.main(func() {
		stealer := p.spawn("Stealer", func() {
			for range attempts {
				operate(q.steal())
			}
		})
		for i := range int64(items / 2) {
			q.push(2 * i)
			q.push(2*i + 1)
			operate(q.pop())
		}
		for range items / 2 {
			operate(q.pop())
		}
		p.join(stealer)
		for i, f := range field {
			v := p.k.Read(f)
			p.check(v == 1, markWorkstealqueueItemProcessedOther, "item",
				"item %d processed %d times (want exactly once)", i, v)
		}
	})
	return nil
}
