package bench

// Work-item throughput (issue 4) and its floor, in one file so that the
// ratio comes from one run on one machine.
//
// The workload is an M/M/4 queue at ρ = 0.8: Poisson arrivals at 3.2 per
// virtual millisecond, exponential service of mean 1ms, four servers, FIFO.
// One benchmark iteration pushes mm4Items customers through it.
//
//	BenchmarkWorkItemMMc   the simulator: an arrival thread queues Ex work
//	                       items on the DelayedWorkQueue served by 4 static
//	                       delayed workers on 5 processors (one for arrivals)
//	    /ideal             kernel calls and switches cost no virtual time,
//	                       so it is exactly M/M/4 (the ratio to the floor)
//	    /default-costs     Windows-like call and context-switch costs
//	BenchmarkFloorCoroMM4  the floor: a bare btree of (time, seq) events and
//	                       4 iter.Pull server coroutines with a FIFO slice
//
// Both draw interarrival and service times from the same PCG stream in the
// same order; TestMM4WorkloadsAgree checks that /ideal and the floor serve
// the same number of customers with the same total wait.
//
//	go test ./bench -run '^$' -bench 'WorkItemMMc|FloorCoroMM4' -count 6 -benchtime 1x

import (
	"iter"
	"math/rand/v2"
	"testing"

	"github.com/wqsim/wqsim/des"
	"github.com/wqsim/wqsim/kernel"
	"github.com/wqsim/wqsim/queues"
)

const (
	mm4Items   = 1_000_000
	mm4Servers = 4
	mm4Lambda  = 3.2 // arrivals per ms: ρ = λ/(cμ) = 0.8
	mm4Mu      = 1.0 // services per ms
	mm4Seed    = 7
)

func mm4Draw(r *rand.Rand, rate float64) int64 {
	return int64(r.ExpFloat64() / rate * float64(des.Millisecond))
}

// mm4Job is one customer.
type mm4Job struct {
	item    queues.WORK_QUEUE_ITEM
	arrived int64
	service int64
}

// runMM4Engine runs n customers through the simulator and returns the sum
// of their waits (ns), the number served and the events the engine fired.
func runMM4Engine(tb testing.TB, n int, ideal bool) (waitSum int64, served int, events uint64) {
	kcfg := kernel.DefaultConfig()
	kcfg.Processors = mm4Servers + 1
	if ideal {
		kcfg.Costs = kernel.Costs{}
	}
	pcfg := queues.DefaultPoolConfig()
	pcfg.Policy = queues.Fixed()
	pcfg.Static = [queues.NumFixedQueues]int{queues.DelayedWorkQueue: mm4Servers}
	pcfg.LazyThreads = 0
	sim := des.New(des.Config{Seed: mm4Seed, NoDecisionLog: true}) // nothing replays it
	defer sim.Close()
	k := kernel.MustNew(sim, kcfg)
	sys := queues.MustNewSystem(k, pcfg)
	rng := sim.Rand()
	var free []*mm4Job
	routine := func(p any) {
		j := p.(*mm4Job)
		waitSum += int64(k.Now()) - j.arrived
		served++
		k.Compute(des.Duration(j.service))
		free = append(free, j)
	}
	k.PsCreateSystemThread("arrivals", 20, func() {
		for i := 0; i < n; i++ {
			k.KeDelayExecutionThread(des.Duration(mm4Draw(rng, mm4Lambda)))
			var j *mm4Job
			if m := len(free); m > 0 {
				j, free = free[m-1], free[:m-1]
			} else {
				j = &mm4Job{}
			}
			j.arrived = int64(k.Now())
			j.service = mm4Draw(rng, mm4Mu)
			queues.ExInitializeWorkItem(&j.item, routine, j)
			sys.ExQueueWorkItem(&j.item, queues.DelayedWorkQueue)
		}
	})
	out := k.Run()
	if out.Err != nil {
		tb.Fatal(out.Err)
	}
	return waitSum, served, out.Steps
}

func BenchmarkWorkItemMMc(b *testing.B) {
	for _, v := range []struct {
		name  string
		ideal bool
	}{{"ideal", true}, {"default-costs", false}} {
		b.Run(v.name, func(b *testing.B) {
			b.ReportAllocs()
			var events uint64
			for i := 0; i < b.N; i++ {
				_, served, ev := runMM4Engine(b, mm4Items, v.ideal)
				if served != mm4Items {
					b.Fatalf("served %d of %d", served, mm4Items)
				}
				events += ev
			}
			reportItems(b, events)
		})
	}
}

// reportItems adds the per-item metrics; events is the total number of
// events fired over the b.N runs.
func reportItems(b *testing.B, events uint64) {
	items := float64(b.N) * mm4Items
	b.ReportMetric(items/b.Elapsed().Seconds(), "items/s")
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/items, "ns/item")
	b.ReportMetric(float64(events)/items, "events/item")
}

// --- floor ---------------------------------------------------------------

// mm4Floor is M/M/4 done plainly: the bare event loop of engine_test.go (a
// btree of events; an event's idx is the server that completes, mm4Servers
// an arrival) and four server coroutines (iter.Pull) that yield their next
// service time, or -1 when they go idle.
type mm4Floor struct {
	floor
	next    [mm4Servers]func() (int64, bool)
	stop    [mm4Servers]func()
	cur     [mm4Servers]mm4Job
	idle    []int32
	fifo    []mm4Job
	head    int
	left    int // arrivals still to come
	waitSum int64
	served  int
}

func newMM4Floor(n int) *mm4Floor {
	f := &mm4Floor{floor: newFloor(mm4Seed), left: n}
	for i := range f.next {
		f.next[i], f.stop[i] = iter.Pull(iter.Seq[int64](f.server(int32(i))))
		f.idle = append(f.idle, int32(i))
	}
	f.arrival()
	return f
}

// server is server i's coroutine: serve the job in cur[i], then the next
// waiting one, or report idle.
func (f *mm4Floor) server(i int32) func(yield func(int64) bool) {
	return func(yield func(int64) bool) {
		for {
			j := f.cur[i]
			f.waitSum += f.now - j.arrived
			f.served++
			if !yield(j.service) {
				return
			}
			if f.head < len(f.fifo) {
				f.cur[i] = f.fifo[f.head]
				f.head++
				continue
			}
			if !yield(-1) {
				return
			}
		}
	}
}

// arrival schedules the next arrival, if any are left.
func (f *mm4Floor) arrival() {
	if f.left > 0 {
		f.left--
		f.push(f.now+mm4Draw(f.rng, mm4Lambda), mm4Servers)
	}
}

func (f *mm4Floor) step() bool {
	e, ok := f.q.DeleteMin()
	if !ok {
		return false
	}
	f.now = e.at
	if e.idx == mm4Servers { // an arrival
		j := mm4Job{arrived: f.now, service: mm4Draw(f.rng, mm4Mu)}
		f.arrival()
		if m := len(f.idle); m > 0 {
			i := f.idle[m-1]
			f.idle = f.idle[:m-1]
			f.cur[i] = j
			d, _ := f.next[i]()
			f.push(f.now+d, i)
			return true
		}
		if f.head > 1024 && 2*f.head > len(f.fifo) {
			f.fifo = append(f.fifo[:0], f.fifo[f.head:]...)
			f.head = 0
		}
		f.fifo = append(f.fifo, j)
		return true
	}
	if d, _ := f.next[e.idx](); d >= 0 {
		f.push(f.now+d, e.idx)
	} else {
		f.idle = append(f.idle, e.idx)
	}
	return true
}

func (f *mm4Floor) run() {
	for f.step() {
	}
	for _, stop := range f.stop {
		stop()
	}
}

func BenchmarkFloorCoroMM4(b *testing.B) {
	b.ReportAllocs()
	var events uint64
	for i := 0; i < b.N; i++ {
		f := newMM4Floor(mm4Items)
		f.run()
		if f.served != mm4Items {
			b.Fatalf("served %d of %d", f.served, mm4Items)
		}
		events += f.seq // one event per push
	}
	reportItems(b, events)
}

// TestMM4WorkloadsAgree checks that the simulator with free kernel calls
// and the floor run the same queue: same customers, same total wait.
func TestMM4WorkloadsAgree(t *testing.T) {
	const n = 50_000
	f := newMM4Floor(n)
	f.run()
	ew, es, _ := runMM4Engine(t, n, true)
	if es != n || f.served != n {
		t.Fatalf("served: engine %d, floor %d, want %d", es, f.served, n)
	}
	if ew != f.waitSum {
		t.Fatalf("total wait: engine %dns, floor %dns", ew, f.waitSum)
	}
	if mean := float64(ew) / n / float64(des.Millisecond); mean < 0.5 || mean > 1.0 {
		t.Fatalf("mean wait %.3fms; M/M/4 at ρ=0.8 waits 0.75ms on average", mean)
	}
}
