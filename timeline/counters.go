package timeline

import (
	"cmp"
	"slices"

	"github.com/wqsim/wqsim/des"
	"github.com/wqsim/wqsim/kernel"
	"github.com/wqsim/wqsim/queues"
)

// counterKind says what a derived counter counts.
type counterKind uint8

const (
	counterReady     counterKind = iota // threads ready and not running: the machine's ready list
	counterCsq                          // IRPs held in the machine's cancel-safe queues
	counterWorkQueue                    // items queued on one work queue, not yet taken by a worker
)

// counterUnits are the units the counters are measured in.
var counterUnits = [...]string{"threads", "IRPs", "items"}

// counterSeries is one counter derived from the records: its value after
// every change, starting at 0 at the run's start.
type counterSeries struct {
	kind   counterKind
	name   string // the counter's track name
	points []counterPoint
}

// counterPoint is a counter's value from at on; rec is the record that
// set it (-1 for the start value). Several changes at one instant keep
// only the last.
type counterPoint struct {
	at  des.Time
	v   int64
	rec int
}

func (s *counterSeries) set(at des.Time, v int64, rec int) {
	last := &s.points[len(s.points)-1]
	switch {
	case last.v == v && last.at != at:
	case last.at == at:
		last.v, last.rec = v, rec
	default:
		s.points = append(s.points, counterPoint{at, v, rec})
	}
}

// deriveCounters replays recs (in time order) and returns the queue
// lengths they determine, each only if the records touch it:
//
//   - "ready threads": threads made ready (kernel "ready" and
//     "affinity-move" records, "wake" when a wait is satisfied) or
//     displaced by a "preempt" or
//     "round-robin" switch, until a switch dispatches them: the machine's
//     ready threads. Under the global dispatcher that is its one ready
//     list (REFERENCE §4.2); under the per-processor dispatcher (the
//     default, §4.7) it is the sum of the processors' queues, which the
//     records cannot split: no record says which processor's queue a
//     ready thread joins (its ideal processor is not traced);
//   - "cancel-safe queues": IRPs inserted by IoCsqInsertIrp(Ex) (the
//     "csq insert: callback" step, unless the "csq: insert rejected" mark
//     follows it) and not yet removed by a remover, the cancel routine or
//     the inserter itself (the "removed" steps). FltCbdq queues are
//     IoCsq queues and count too. The records do not name the queue, so
//     this is the machine's total;
//   - "<queue> waiting": per work queue, items queued (queues.KindWorkQueue)
//     and not yet taken by a worker (queues.KindWorkDequeue). An item
//     handed straight to a waiting worker counts until the worker takes
//     it, so this can exceed the KQUEUE's entry count for that moment.
//
// A bare KQUEUE's depth is not derived: KeInsertQueue records the count
// before each insert, but a KeRemoveQueue that does not block leaves no
// record.
func deriveCounters(recs []des.Record, start des.Time) []counterSeries {
	d := &counterDeriver{start: start, ready: map[int32]bool{}, queued: map[string]bool{},
		work: map[string]int{}, rejected: rejectedInserts(recs)}
	for i := range recs {
		d.record(recs, i)
	}
	out := d.series
	slices.SortStableFunc(out, func(a, b counterSeries) int { return cmp.Compare(a.kind, b.kind) })
	return out
}

// counterDeriver holds the state deriveCounters replays.
type counterDeriver struct {
	start    des.Time
	series   []counterSeries
	index    map[string]int // series name → index
	running  []int32        // per processor, the thread on it (0: none)
	ready    map[int32]bool
	queued   map[string]bool // IRPs in cancel-safe queues
	work     map[string]int  // items waiting per work queue
	rejected map[int]bool    // insert-callback records whose insert was rejected
}

// get returns the series named name, creating it (at 0) on first use.
func (d *counterDeriver) get(kind counterKind, name string) *counterSeries {
	if d.index == nil {
		d.index = map[string]int{}
	}
	i, ok := d.index[name]
	if !ok {
		i = len(d.series)
		d.index[name] = i
		d.series = append(d.series, counterSeries{kind: kind, name: name,
			points: []counterPoint{{at: d.start, rec: -1}}})
	}
	return &d.series[i]
}

func (d *counterDeriver) record(recs []des.Record, i int) {
	r := &recs[i]
	switch r.Kind {
	case kernel.KindReady:
		if r.What == kernel.WhatReady || r.What == kernel.WhatAffinityMove {
			d.setReady(r.Thread, true, r.At, i)
		}
	case kernel.KindWake:
		if r.What == kernel.WhatWake {
			d.setReady(r.Thread, true, r.At, i)
		}
	case kernel.KindSwitch:
		d.switchThread(r, i)
	case kernel.KindWait:
		if r.What != kernel.WhatSatisfied {
			d.leaveCPU(r)
		}
	case kernel.KindThread:
		if r.What == kernel.WhatExit {
			d.leaveCPU(r)
		}
	case queues.KindWorkQueue, queues.KindWorkDequeue:
		n := d.work[r.Object] + 1
		if r.Kind == queues.KindWorkDequeue {
			n = max(d.work[r.Object]-1, 0)
		}
		d.work[r.Object] = n
		d.get(counterWorkQueue, r.Object+" waiting").set(r.At, int64(n), i)
	case queues.KindCsqStep, queues.KindCsqMark:
		d.csq(r, i)
	}
}

// switchThread dispatches r's thread on r's processor; the thread it
// displaces by preemption or round-robin becomes ready.
func (d *counterDeriver) switchThread(r *des.Record, i int) {
	c := int(r.CPU)
	if c < 0 {
		return
	}
	for len(d.running) <= c {
		d.running = append(d.running, 0)
	}
	prev := d.running[c]
	d.running[c] = r.Thread
	if prev != 0 && prev != r.Thread && (r.What == kernel.WhatPreempt || r.What == kernel.WhatRoundRobin) {
		d.ready[prev] = true
	}
	d.setReady(r.Thread, false, r.At, i)
}

// leaveCPU notes that r's thread no longer runs (it blocked or exited).
func (d *counterDeriver) leaveCPU(r *des.Record) {
	if c := int(r.CPU); c >= 0 && c < len(d.running) && d.running[c] == r.Thread {
		d.running[c] = 0
	}
}

func (d *counterDeriver) setReady(t int32, ready bool, at des.Time, i int) {
	if t == 0 {
		return
	}
	if ready {
		d.ready[t] = true
	} else {
		delete(d.ready, t)
	}
	d.get(counterReady, "ready threads").set(at, int64(len(d.ready)), i)
}

// csqRemoved are the cancel-safe queue steps after which an IRP has left
// its queue.
var csqRemoved = []queues.CsqStep{queues.CsqInsertRemoveCancelled, queues.CsqCancelRemoved,
	queues.CsqRemoveRemoved, queues.CsqRemoveNextRemoved}

func isCsqStep(r *des.Record, steps ...queues.CsqStep) bool {
	if r.Kind != queues.KindCsqStep {
		return false
	}
	return slices.ContainsFunc(steps, func(s queues.CsqStep) bool { return r.What == des.What(s.String()) })
}

// csq follows IRPs into and out of the cancel-safe queues.
func (d *counterDeriver) csq(r *des.Record, i int) {
	switch {
	case r.Object == "":
		return
	case isCsqStep(r, queues.CsqInsertCallback) && !d.rejected[i]:
		d.queued[r.Object] = true
	case isCsqStep(r, csqRemoved...):
		delete(d.queued, r.Object)
	default:
		return
	}
	d.get(counterCsq, "cancel-safe queues").set(r.At, int64(len(d.queued)), i)
}

// rejectedInserts finds the insert-callback records of inserts that the
// driver's InsertIrpEx rejected: the "csq: insert rejected" mark names
// the IRP of the latest insert callback before it.
func rejectedInserts(recs []des.Record) map[int]bool {
	last := map[string]int{}
	out := map[int]bool{}
	rejected := des.What(queues.CsqMarkInsertRejected.String())
	for i := range recs {
		r := &recs[i]
		switch {
		case isCsqStep(r, queues.CsqInsertCallback):
			last[r.Object] = i
		case r.Kind == queues.KindCsqMark && r.What == rejected:
			if j, ok := last[r.Object]; ok {
				out[j] = true
			}
		}
	}
	return out
}
