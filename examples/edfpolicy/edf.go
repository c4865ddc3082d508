// Package edfpolicy is an example of a scheduling policy of one's own,
// registered with the experiment lab by name: earliest deadline first
// (EDF, Liu & Layland 1973) for the real-time tasks of a workload, next to
// the NT rules for every other thread.
//
// Importing the package registers the dispatcher "edf"; an experiment
// file then names it like a built-in one:
//
//	"dispatchers": ["nt", "edf"]
//
// The command in cmd/wqsim-edf is wqsim with this package linked in; run
// the comparison with
//
//	go run ./examples/edfpolicy/cmd/wqsim-edf experiment examples/edfpolicy/edf-vs-nt.json
//
// The rules. A thread that runs a real-time task of the workload (the lab
// knows its current job's absolute deadline, lab.PolicyEnv.Deadline) is
// an EDF thread; EDF threads rank as one band at priority 30 of the
// real-time range and, within it, by earliest deadline (ties: the thread
// that became ready first). Every other thread keeps its NT priority and
// NT's FIFO order within a priority, so a system thread at 31 still
// outranks the tasks and the worker pools rank below them. An EDF thread
// preempts another only with a strictly earlier deadline.
//
// What the kernel keeps (the policy contract of package lab): IRQL
// deferral of every switch, quantum accounting, boosts and decay (EDF
// threads are real-time, so never boosted), processor placement. One
// consequence worth knowing: the policy is asked at readying and at
// quantum end, so when a running task moves on to its next queued job (a
// later deadline) without waiting, a ready task with an earlier deadline
// takes over only at the next scheduling decision — after a deadline
// miss, not before one.
package edfpolicy

import (
	"slices"

	"github.com/wqsim/wqsim/des"
	"github.com/wqsim/wqsim/kernel"
	"github.com/wqsim/wqsim/lab"
)

func init() {
	lab.RegisterDispatcher("edf", "earliest deadline first for real-time tasks, NT for other threads (examples/edfpolicy)",
		func(cfg *kernel.Config, env *lab.PolicyEnv) { cfg.Policy = New(env) })
}

// edfBand is the priority at which EDF threads rank against others.
const edfBand = 30

// EDF is the policy. The zero value is not usable; call New.
type EDF struct {
	env   *lab.PolicyEnv
	ready []entry
	seq   int64
}

type entry struct {
	t   *kernel.Thread
	seq int64 // readying order; negative for preempted threads (head)
}

// New returns an EDF policy reading deadlines from env.
func New(env *lab.PolicyEnv) *EDF { return &EDF{env: env} }

func (e *EDF) Name() string { return "edf" }
func (e *EDF) Reset()       { e.ready, e.seq = e.ready[:0], 0 }
func (e *EDF) Len() int     { return len(e.ready) }

// key ranks a thread: its band priority, and its deadline if it has one.
func (e *EDF) key(t *kernel.Thread) (prio int, dl des.Time, edf bool) {
	if d, ok := e.env.Deadline(t); ok {
		return edfBand, d, true
	}
	return t.Priority(), 0, false
}

// before reports whether a runs before b.
func (e *EDF) before(a, b entry) bool {
	pa, da, ea := e.key(a.t)
	pb, db, eb := e.key(b.t)
	switch {
	case pa != pb:
		return pa > pb
	case ea && eb && da != db:
		return da < db
	}
	return a.seq < b.seq
}

func (e *EDF) Enqueue(t *kernel.Thread, front bool) {
	e.seq++
	s := e.seq
	if front {
		s = -s
	}
	e.ready = append(e.ready, entry{t, s})
}

func (e *EDF) Remove(t *kernel.Thread) {
	i := slices.IndexFunc(e.ready, func(x entry) bool { return x.t == t })
	e.ready = slices.Delete(e.ready, i, i+1)
}

func (e *EDF) Peek() *kernel.Thread {
	if len(e.ready) == 0 {
		return nil
	}
	best := e.ready[0]
	for _, x := range e.ready[1:] {
		if e.before(x, best) {
			best = x
		}
	}
	return best.t
}

// Preempts: a higher band at once; within the EDF band a strictly earlier
// deadline.
func (e *EDF) Preempts(r, cur *kernel.Thread) bool {
	pr, dr, er := e.key(r)
	pc, dc, ec := e.key(cur)
	if pr != pc {
		return pr > pc
	}
	return er && ec && dr < dc
}

// RoundRobin: at quantum end EDF threads keep the processor unless a
// strictly earlier deadline waits; other threads round-robin as in NT.
func (e *EDF) RoundRobin(r, cur *kernel.Thread) bool {
	pr, dr, er := e.key(r)
	pc, dc, ec := e.key(cur)
	if pr != pc {
		return pr > pc
	}
	if er && ec {
		return dr < dc
	}
	return true
}

func (e *EDF) Each(f func(*kernel.Thread) bool) {
	sorted := slices.Clone(e.ready)
	slices.SortFunc(sorted, func(a, b entry) int {
		if e.before(a, b) {
			return -1
		}
		if e.before(b, a) {
			return 1
		}
		return 0
	})
	for _, x := range sorted {
		if !f(x.t) {
			return
		}
	}
}
