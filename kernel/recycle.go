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
// used it has been reset and its coroutines unwound (des.Stock). Kernels
// built in one run draw distinct objects.
type recycler struct {
	kernels     des.Stock[Kernel]
	cpus        des.Stock[Processor]
	threads     des.Stock[Thread]
	events      des.Stock[KEVENT]
	semaphores  des.Stock[KSEMAPHORE]
	timers      des.Stock[KTIMER]
	dpcs        des.Stock[KDPC]
	queues      des.Stock[KQUEUE]
	irps        des.Stock[IRP]
	blocks      des.Stock[PoolBlock]
	cells       des.Stock[Cell]
	spinLocks   des.Stock[KSPIN_LOCK]
	fastMutexes des.Stock[FAST_MUTEX]
	names       map[nameKey]string   // names built from numbers and tags (cachedName)
	joins       map[[2]string]string // prefix+name strings built (joinedName)
}

var spareKey = des.NewSpareKey("kernel")

// recyclerOf returns sim's recycler.
func recyclerOf(sim *des.Sim) *recycler {
	r, _ := sim.Spare(spareKey).(*recycler)
	if r == nil {
		r = &recycler{}
		sim.SetSpare(spareKey, r)
	}
	return r
}

// joined returns prefix+name, or old when it already is that string: a
// recycled object keeps its name without building it again. Otherwise
// the string comes from the Sim's cache, since the objects of a rank are
// created in a different order from run to run (schedules differ) and
// the names would be rebuilt.
func (k *Kernel) joined(old, prefix, name string) string {
	if len(old) == len(prefix)+len(name) && old[:len(prefix)] == prefix && old[len(prefix):] == name {
		return old
	}
	return k.rc.joinedName(prefix, name)
}

// joinedName returns prefix+name, built once per Sim while the cache has
// room (maxNames).
func (r *recycler) joinedName(prefix, name string) string {
	key := [2]string{prefix, name}
	if s, ok := r.joins[key]; ok {
		return s
	}
	s := prefix + name
	if r.joins == nil {
		r.joins = map[[2]string]string{}
	}
	if len(r.joins) < maxNames {
		r.joins[key] = s
	}
	return s
}

// nameKind says what a cached name names.
type nameKind uint8

const (
	nameIRP      nameKind = iota // "irp N (tag)"
	nameIRPDone                  // "event irp N (tag) done"
	namePoolItem                 // "tag #N", a pool block's trace object
)

// nameKey is what a cached name is built from.
type nameKey struct {
	kind nameKind
	n    int
	tag  string
}

// maxNames bounds the name cache, so a long run's memory does not grow
// with it; exploration's scenarios need a few dozen names.
const maxNames = 4096

// cachedName returns the name built earlier from key, on this Sim.
func (r *recycler) cachedName(key nameKey) (string, bool) {
	s, ok := r.names[key]
	return s, ok
}

// keepName caches s as key's name while the cache has room, and returns s.
func (r *recycler) keepName(key nameKey, s string) string {
	if r.names == nil {
		r.names = map[nameKey]string{}
	}
	if len(r.names) < maxNames {
		r.names[key] = s
	}
	return s
}
