package kernel

import "github.com/wqsim/wqsim/des"

// recycler keeps one Sim's kernel objects from run to run (des.Sim.Spare).
// Exploration runs thousands of near-identical executions per worker on one
// reset Sim, and rebuilding the kernel, its threads, events, queues and IRPs
// was most of an execution's allocation (bench/BENCHMARKS.md, issue 15).
//
// The i-th object of a kind that a run asks for is the i-th one the previous
// run used, reset to exactly what a fresh one holds: the whole struct is
// overwritten, and only buffers (slice capacity, never contents), handlers
// bound to the object itself and names that come out equal survive. So a
// recycled run behaves like a fresh one, which TestRecycledRunsMatchFresh
// (package model) checks for every scenario. An object is handed out again
// only in a later run of the Sim (des.Sim.RunNumber): by then the run that
// used it has been reset and its coroutines unwound. Kernels built in one
// run draw distinct objects.
type recycler struct {
	run     uint64
	kernels stock[Kernel]
	cpus    stock[Processor]
	threads stock[Thread]
	events  stock[KEVENT]
	queues  stock[KQUEUE]
	irps    stock[IRP]
	blocks  stock[PoolBlock]
}

var spareKey = des.NewSpareKey("kernel")

// recyclerOf returns sim's recycler, rewound if a new run has begun.
func recyclerOf(sim *des.Sim) *recycler {
	r, _ := sim.Spare(spareKey).(*recycler)
	if r == nil {
		r = &recycler{}
		sim.SetSpare(spareKey, r)
	}
	if r.run != sim.RunNumber() {
		r.run = sim.RunNumber()
		r.kernels.rewind()
		r.cpus.rewind()
		r.threads.rewind()
		r.events.rewind()
		r.queues.rewind()
		r.irps.rewind()
		r.blocks.rewind()
	}
	return r
}

// stock is the objects of one kind: items[:used] belong to the current run,
// the rest to the previous one, ready to be reset and handed out.
type stock[T any] struct {
	items []*T
	used  int
}

// take returns an object for the current run: a recycled one (which the
// caller must reset entirely) or, when the stock is exhausted, a new one.
func (s *stock[T]) take() *T {
	if s.used == len(s.items) {
		s.items = append(s.items, new(T))
	}
	x := s.items[s.used]
	s.used++
	return x
}

func (s *stock[T]) rewind() { s.used = 0 }

// joined returns prefix+name, or old when it already is that string: a
// recycled object keeps its name without building it again.
func joined(old, prefix, name string) string {
	if len(old) == len(prefix)+len(name) && old[:len(prefix)] == prefix && old[len(prefix):] == name {
		return old
	}
	return prefix + name
}
