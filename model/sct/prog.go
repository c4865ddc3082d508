package sct

import (
	"fmt"

	"github.com/wqsim/wqsim/kernel"
	"github.com/wqsim/wqsim/model"
)

// threadPriority is the base priority of every program thread (a normal
// system thread): all equal, so only preemptions and ready-order choices
// interleave them.
const threadPriority = 8

// prog gives a ported program the pthread vocabulary on the NT model.
type prog struct {
	env  *model.Env
	k    *kernel.Kernel
	name string // the program's scenario name, prefix of violations
}

func newProg(env *model.Env, name string) *prog {
	return &prog{env: env, k: env.K, name: name}
}

// spawn is pthread_create: a system thread running body.
func (p *prog) spawn(name string, body func()) *kernel.Thread {
	return p.k.PsCreateSystemThread(name, threadPriority, body)
}

// join is pthread_join on each thread in turn.
func (p *prog) join(ts ...*kernel.Thread) {
	for _, t := range ts {
		p.k.KeWaitForSingleObject(t.Object(), kernel.Infinite)
	}
}

// main runs body as the program's main thread.
func (p *prog) main(body func()) { p.spawn(p.name+" main", body) }

// check is the original's assert: when ok is false the run stops with a
// violation named "<program>: <what>", after recording mark (the racy path
// that led there).
func (p *prog) check(ok bool, mark *model.Mark, what, format string, args ...any) {
	if ok {
		return
	}
	p.env.Hit(mark)
	p.env.Violation(p.name+": "+what, format, args...)
}

// mutex is a pthread mutex as a fast mutex.
type mutex struct {
	k *kernel.Kernel
	m *kernel.FAST_MUTEX
}

func (p *prog) newMutex(name string) *mutex {
	return &mutex{k: p.k, m: p.k.ExInitializeFastMutex(p.name + " " + name)}
}

func (m *mutex) lock()   { m.k.ExAcquireFastMutex(m.m) }
func (m *mutex) unlock() { m.k.ExReleaseFastMutex(m.m) }

// atomic is the verifiers' __ESBMC_atomic_begin/end: one spin lock taken
// around every atomic block of the program, so the blocks exclude each
// other (and, at DISPATCH_LEVEL, are never preempted).
type atomic struct {
	k   *kernel.Kernel
	l   *kernel.KSPIN_LOCK
	old kernel.IRQL
}

func (p *prog) newAtomic() *atomic {
	return &atomic{k: p.k, l: p.k.KeInitializeSpinLock(p.name + " atomic")}
}

func (a *atomic) begin() { a.old = a.k.KeAcquireSpinLock(a.l) }
func (a *atomic) end()   { a.k.KeReleaseSpinLock(a.l, a.old) }

// cell is a shared variable.
func (p *prog) cell(name string, v int64) *kernel.Cell {
	return p.k.NewCell(p.name+" "+name, v)
}

// oneCPU is the configuration of the SCTBench programs: the exploration
// defaults on one processor (see the package doc).
func oneCPU(string) kernel.Config {
	c := model.ExploreConfig()
	c.Processors = 1
	return c
}

// sizeVariants returns one bug variant per size, named "n<size>".
func sizeVariants(sizes []int, doc string, marks []*model.Mark, want string) []model.Variant {
	out := make([]model.Variant, len(sizes))
	for i, n := range sizes {
		out[i] = model.Variant{Name: fmt.Sprintf("n%d", n), Bug: true, Doc: fmt.Sprintf(doc, n), Marks: marks, Want: want}
	}
	return out
}

// sizeOf parses a variant name made by sizeVariants.
func sizeOf(variant string) int {
	var n int
	if _, err := fmt.Sscanf(variant, "n%d", &n); err != nil {
		panic("sct: variant " + variant + " names no size")
	}
	return n
}

func itoa(i int) string { return fmt.Sprint(i) }
