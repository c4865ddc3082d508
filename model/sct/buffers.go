package sct

import (
	"github.com/wqsim/wqsim/kernel"
	"github.com/wqsim/wqsim/model"
)

// The SCTBench producer/consumer programs over a shared array: stack,
// queue, circular_buffer. In each, a consumer loop counts its own
// iterations as if each had consumed something.

func init() {
	model.Register(&model.Scenario{
		Name: "sct-stack",
		Doc: "A pusher pushes SIZE = 10 values, each under a mutex, setting a flag after the first; a popper " +
			"loops SIZE times and pops whenever the flag is set, asserting no underflow. The flag stays set once " +
			"the stack is empty again, so a popper that runs ahead of the pusher underflows. Origin: " + origin +
			"stack_bad.c (fixed: stack_ok.c pops only when top > 0).",
		Section: "SCTBench CS/stack",
		Config:  oneCPU,
		Variants: []model.Variant{
			{Name: "correct", Doc: "stack_ok.c: pop only when top > 0"},
			{Name: "bug", Bug: true, Doc: "stack_bad.c: pop whenever the flag is set",
				Marks: []*model.Mark{markStackPopOnAn}, Want: "sct-stack: underflow"},
		},
		Setup: setupStack,
	})
	model.Register(&model.Scenario{
		Name: "sct-queue",
		Doc: "A producer enqueues a first value and then, in SIZE-1 = 19 iterations, another whenever the " +
			"consumer has taken the last; the consumer, in SIZE = 20 iterations, dequeues when one is " +
			"announced and compares it with stored_elements[i], its own iteration number: a consumer " +
			"iteration that finds nothing shifts every later comparison. Origin: " + origin +
			"queue_bad.c (fixed, after queue_ok.c: both sides index stored_elements by the number of values enqueued or dequeued so far, not by loop iteration).",
		Section: "SCTBench CS/queue",
		Config:  oneCPU,
		Variants: []model.Variant{
			{Name: "correct", Doc: "after queue_ok.c: store and compare by value count, not loop iteration"},
			{Name: "bug", Bug: true, Doc: "queue_bad.c: compare with the value stored in iteration i",
				Marks: []*model.Mark{markQueueConsumerIterationFound}, Want: "sct-queue: dequeued"},
		},
		Setup: setupQueue,
	})
	model.Register(&model.Scenario{
		Name: "sct-circular_buffer",
		Doc: "A sender and a receiver alternate through a 10-slot log buffer for N = 7 iterations each, " +
			"under one mutex and two flags; the receiver asserts it removed the value i of its own iteration, " +
			"which holds only while neither side loses an iteration to the other's turn. Origin: " + origin +
			"circular_buffer_bad.c (fixed: circular_buffer_ok.c compares with the value last inserted).",
		Section: "SCTBench CS/circular_buffer",
		Config:  oneCPU,
		Variants: []model.Variant{
			{Name: "correct", Doc: "circular_buffer_ok.c: compare with the value the sender last inserted"},
			{Name: "bug", Bug: true, Doc: "circular_buffer_bad.c: compare with the receiver's iteration number",
				Marks: []*model.Mark{markCircularBufferAnIterationPassed}, Want: "sct-circular_buffer: removed"},
		},
		Setup: setupCircularBuffer,
	})
}

func setupStack(env *model.Env) error {
	const size = 10
	p := newProg(env, "sct-stack")
	m := p.newMutex("m")
	top, flag := p.cell("top", 0), p.cell("flag", 0)
	arr := make([]*kernel.Cell, size)
	for i := range arr {
		arr[i] = p.cell("arr["+itoa(i)+"]", 0)
	}
	p.main(func() {
		t1 := p.spawn("t1", func() {
			for i := range size {
				m.lock()
				t := p.k.Read(top)
				p.check(t < size, markStackPushOnA, "overflow", "push with top = %d", t)
				p.k.Write(arr[t], int64(i))
				p.k.Write(top, t+1)
				p.k.Write(flag, 1)
				m.unlock()
			}
		})
		t2 := p.spawn("t2", func() {
			for range size {
				m.lock()
				pop := p.k.Read(flag) == 1
				if env.Is("correct") {
					pop = p.k.Read(top) > 0
				}
				if pop {
					t := p.k.Read(top)
					p.check(t > 0, markStackPopOnAn, "underflow", "pop with top = 0 (the flag stays set once the stack is empty)")
					p.k.Write(top, t-1)
					p.k.Read(arr[t-1])
				}
				m.unlock()
			}
		})
		p.join(t1, t2)
	})
	return nil
}

// ringQueue is queue_bad.c's QType: head and tail wrap from SIZE to 1.
type ringQueue struct {
	p                  *prog
	elem               []*kernel.Cell
	head, tail, amount *kernel.Cell
}

func (q *ringQueue) enqueue(x int64) {
	k := q.p.k
	t := k.Read(q.tail)
	k.Write(q.elem[t], x)
	k.Write(q.amount, k.Read(q.amount)+1)
	if t == int64(len(q.elem)-1) {
		k.Write(q.tail, 1)
	} else {
		k.Write(q.tail, t+1)
	}
}

func (q *ringQueue) dequeue() int64 {
	k := q.p.k
	h := k.Read(q.head)
	x := k.Read(q.elem[h])
	k.Write(q.amount, k.Read(q.amount)-1)
	if h == int64(len(q.elem)-1) {
		k.Write(q.head, 1)
	} else {
		k.Write(q.head, h+1)
	}
	return x
}

func setupQueue(env *model.Env) error {
	const size = 20
	p := newProg(env, "sct-queue")
	m := p.newMutex("m")
	q := &ringQueue{p: p, elem: make([]*kernel.Cell, size+1), head: p.cell("head", 0), tail: p.cell("tail", 0), amount: p.cell("amount", 0)}
	for i := range q.elem {
		q.elem[i] = p.cell("element["+itoa(i)+"]", 0)
	}
	stored := make([]*kernel.Cell, size)
	for i := range stored {
		stored[i] = p.cell("stored_elements["+itoa(i)+"]", 0)
	}
	enqFlag, deqFlag := p.cell("enqueue_flag", 1), p.cell("dequeue_flag", 0)
	p.main(func() {
		t1 := p.spawn("t1", func() {
			m.lock()
			value := int64(0)
			q.enqueue(value)
			p.k.Write(stored[0], value)
			m.unlock()
			for i := range size - 1 {
				m.lock()
				if p.k.Read(enqFlag) == 1 {
					value++
					q.enqueue(value)
					slot := i + 1
					if env.Is("correct") {
						slot = int(value)
					}
					p.k.Write(stored[slot], value)
					p.k.Write(enqFlag, 0)
					p.k.Write(deqFlag, 1)
				}
				m.unlock()
			}
		})
		t2 := p.spawn("t2", func() {
			taken := 0
			for i := range size {
				m.lock()
				if p.k.Read(deqFlag) == 1 {
					idx := i
					if env.Is("correct") {
						idx = taken
					}
					if idx != taken {
						env.Hit(markQueueConsumerIterationFound)
					}
					got, want := q.dequeue(), p.k.Read(stored[idx])
					taken++
					p.check(got == want, markQueueConsumerIterationFound, "dequeued",
						"dequeued %d in iteration %d, stored_elements[%d] = %d", got, i, idx, want)
					p.k.Write(deqFlag, 0)
					p.k.Write(enqFlag, 1)
				}
				m.unlock()
			}
		})
		p.join(t1, t2)
	})
	return nil
}

func setupCircularBuffer(env *model.Env) error {
	const max, n = 10, 7
	p := newProg(env, "sct-circular_buffer")
	m := p.newMutex("m")
	buf := make([]*kernel.Cell, max)
	for i := range buf {
		buf[i] = p.cell("buffer["+itoa(i)+"]", 0)
	}
	first, next := p.cell("first", 0), p.cell("next", 0)
	send, receive, value := p.cell("send", 1), p.cell("receive", 0), p.cell("value", 0)
	p.main(func() {
		t1 := p.spawn("t1", func() {
			for i := range n {
				m.lock()
				if p.k.Read(send) == 1 {
					nx := p.k.Read(next)
					p.k.Write(buf[nx], int64(i))
					p.k.Write(next, (nx+1)%max)
					p.k.Write(value, int64(i))
					p.k.Write(send, 0)
					p.k.Write(receive, 1)
				}
				m.unlock()
			}
		})
		t2 := p.spawn("t2", func() {
			for i := range n {
				m.lock()
				if p.k.Read(receive) == 1 {
					want := int64(i)
					if env.Is("correct") {
						want = p.k.Read(value)
					}
					f := p.k.Read(first)
					got := int64(-1)
					if p.k.Read(next) > 0 && f < max {
						p.k.Write(first, f+1)
						got = p.k.Read(buf[f])
					}
					p.check(got == want, markCircularBufferAnIterationPassed, "removed",
						"removed %d in iteration %d, expected %d", got, i, want)
					p.k.Write(receive, 0)
					p.k.Write(send, 1)
				}
				m.unlock()
			}
		})
		p.join(t1, t2)
	})
	return nil
}
