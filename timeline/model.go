package timeline

import (
	"cmp"
	"slices"
	"strconv"
	"strings"

	"github.com/wqsim/wqsim/des"
	"github.com/wqsim/wqsim/kernel"
)

// sliceKind says what a slice on a processor's track shows.
type sliceKind uint8

const (
	sliceThread     sliceKind = iota // a thread owns the processor: dispatch → switch/wait/exit
	sliceDPC                         // the processor's DPC drain context (enter → leave)
	sliceDPCRoutine                  // one DPC routine inside the drain (run-dpc → next/leave)
	sliceISR                         // the processor's ISR context
	sliceISRRoutine                  // one interrupt service routine inside it
	sliceSpin                        // a context spinning on a spin lock
)

var sliceCats = [...]string{"thread", "dpc", "dpc", "isr", "isr", "spin"}

// slice is a span of time on one processor's track. Slices of one
// processor nest properly: the walker opens and closes them in stack order.
type slice struct {
	kind       sliceKind
	cpu        int
	name       string
	thread     int32 // thread id, for thread slices
	prio       int64 // priority at dispatch, for thread slices
	start, end des.Time
	openOrd    int       // emission order of the open event
	closeOrd   int       // emission order of the close event
	why        string    // how the slice began ("dispatch", "preempt", "enter")
	ended      string    // how it ended ("exit", "waits: KeWait... event x")
	unfinished bool      // still open when the records end
	row        sliceKind // for spins: the kind of context that spins (thread, DPC, ISR)
}

// instant is a point event drawn on a processor's track (cpu -1: none).
type instant struct {
	rec  int
	cpu  int
	at   des.Time
	ord  int
	cat  string
	flow int      // flow ID when the record is one end of a work-item flow
	role FlowRole // which end
}

// irqlPoint is a change of a processor's IRQL.
type irqlPoint struct {
	at    des.Time
	level int8
	ord   int
}

// threadInfo names a thread that ran.
type threadInfo struct {
	id   int32
	name string
}

// model is what the exporters draw: the records turned into per-processor
// slices, IRQL steps and instants, plus the work-item flows.
type model struct {
	recs       []des.Record
	cpus       int
	start, end des.Time
	slices     []*slice
	instants   []instant
	// shaping are the records that only shape slices, IRQL steps or
	// nothing drawn (create, ready, wake, dispatch, ...), as instants of
	// their own: the Perfetto export shows them so that it has every
	// record; the HTML view does not.
	shaping      []instant
	shapingNoCPU bool          // some shaping records belong to no processor
	irql         [][]irqlPoint // per processor, starting at start
	flows        []Flow
	threads      []threadInfo // threads that ran, by id
	noCPU        bool         // some instants belong to no processor
	ord          int
}

// frame is one execution context on a processor's stack: the thread that
// owns it, the DPC drain or the ISR context.
type frame struct {
	cpu      int
	s        *slice // the context's slice
	routine  *slice // the DPC or ISR routine running in it
	spin     *slice // open while the context spins on a lock
	spinDone bool   // the lock was handed over while another context was on top
	irql     int8
}

type cpuState struct {
	thread, dpc, isr *frame
	dpcName, isrName string
	irql             int8
}

func (c *cpuState) top() *frame {
	switch {
	case c.isr != nil:
		return c.isr
	case c.dpc != nil:
		return c.dpc
	}
	return c.thread
}

// walker builds a model by replaying the records through a small model of
// each processor's context stack.
type walker struct {
	m        *model
	cpus     []cpuState
	spinners map[string][]*frame // lock object → contexts spinning on it, FIFO
	flowOf   []flowEnd           // per record
}

type flowEnd struct {
	id   int
	role FlowRole
}

// buildModel replays recs (in time order, as a run emits them). cpus is
// the number of processors to show (at least one more than the highest
// processor in the records); end extends the timeline past the last
// record (the run's end time), when later.
func buildModel(recs []des.Record, cpus int, end des.Time) *model {
	byTime := func(a, b des.Record) int { return cmp.Compare(a.At, b.At) }
	if !slices.IsSortedFunc(recs, byTime) {
		recs = slices.Clone(recs)
		slices.SortStableFunc(recs, byTime)
	}
	m := &model{recs: recs}
	for i := range recs {
		if c := int(recs[i].CPU); c+1 > cpus {
			cpus = c + 1
		}
	}
	if cpus < 1 {
		cpus = 1
	}
	m.cpus = cpus
	if len(recs) > 0 {
		m.start = recs[0].At
		m.end = recs[len(recs)-1].At
	}
	if end > m.end {
		m.end = end
	}
	w := &walker{m: m, cpus: make([]cpuState, cpus), spinners: map[string][]*frame{}}
	m.irql = make([][]irqlPoint, cpus)
	for c := range w.cpus {
		w.cpus[c].dpcName = "dpc/cpu" + strconv.Itoa(c)
		w.cpus[c].isrName = "isr/cpu" + strconv.Itoa(c)
		m.irql[c] = []irqlPoint{{at: m.start, level: 0, ord: m.next()}}
	}
	m.flows = PairFlows(recs)
	w.flowOf = make([]flowEnd, len(recs))
	for _, f := range m.flows {
		w.flowOf[f.Queue] = flowEnd{f.ID, FlowQueue}
		w.flowOf[f.Run] = flowEnd{f.ID, FlowRun}
	}
	for i := range recs {
		w.record(i)
	}
	for c := range w.cpus {
		w.closeAll(c, m.end)
	}
	seen := map[int32]bool{}
	for _, s := range m.slices {
		if s.kind == sliceThread && !seen[s.thread] {
			seen[s.thread] = true
			m.threads = append(m.threads, threadInfo{s.thread, s.name})
		}
	}
	slices.SortFunc(m.threads, func(a, b threadInfo) int { return cmp.Compare(a.id, b.id) })
	return m
}

func (m *model) next() int { m.ord++; return m.ord }

// record applies record i: to its processor's context stack, as an
// instant unless it only shapes slices, and to the IRQL steps.
func (w *walker) record(i int) {
	r := &w.m.recs[i]
	var st *cpuState
	if c := int(r.CPU); c >= 0 && c < len(w.cpus) {
		st = &w.cpus[c]
	}
	f := w.emitter(st, r)
	drawn := len(w.m.instants)
	f, structural := w.apply(i, st, f)
	drawn = len(w.m.instants) - drawn // apply may draw r itself
	c := int(r.CPU)
	if st == nil {
		c = -1
	}
	switch cat := instantCat(r); {
	case drawn > 0:
	case !structural && cat != "":
		w.addInstant(i, c, cat)
	default:
		w.addShaping(i, c)
	}
	// IRQL: the emitting context's level, then the processor's.
	if st != nil {
		if f != nil && r.IRQL >= 0 && !(r.Kind == kernel.KindInterrupt && r.What == kernel.WhatLeave) {
			f.irql = r.IRQL
			if r.Kind == kernel.KindIrql {
				f.irql = int8(r.A)
			}
		}
		w.noteIrql(int(r.CPU), r.At)
	}
}

// emitter returns the context on st (nil: none) that emitted r, before r
// changes the stack.
func (w *walker) emitter(st *cpuState, r *des.Record) *frame {
	if st == nil {
		return nil
	}
	f := w.frameOf(st, r)
	if f != nil && f.spin != nil && !(r.Kind == kernel.KindLock && r.What == kernel.WhatSpin) {
		// It runs again, so it got the lock.
		w.closeSpin(f, r.At)
	}
	return f
}

// apply changes the context stacks for record i, emitted by f on st (either
// may be nil). It returns the emitting context afterwards (f, a context r
// opened, or nil once r ended it) and whether r is structural: it only
// shapes slices, so it is not also drawn as an instant.
func (w *walker) apply(i int, st *cpuState, f *frame) (*frame, bool) {
	r := &w.m.recs[i]
	switch r.Kind {
	case kernel.KindSwitch:
		return w.switchThread(st, r, f)
	case kernel.KindWait:
		return w.wait(st, r, f)
	case kernel.KindThread:
		return w.threadExit(st, r, f), true
	case kernel.KindInterrupt:
		return w.interrupt(i, st, f)
	case kernel.KindDPC:
		return f, w.runDPC(st, r)
	case kernel.KindLock:
		w.lock(r, f)
	case kernel.KindReady, kernel.KindWake, kernel.KindIrql:
		return f, true
	}
	return f, false
}

// switchThread ends the thread slice on r's processor and opens one for
// the thread r dispatches, which becomes the emitting context.
func (w *walker) switchThread(st *cpuState, r *des.Record, f *frame) (*frame, bool) {
	if st == nil {
		return f, false
	}
	cpu := int(r.CPU)
	w.closeThread(cpu, r.At, switchedOut(r))
	s := w.open(sliceThread, cpu, nameOr(r.Object, r.Actor), r.At)
	s.thread, s.prio, s.why = r.Thread, r.A, string(r.What)
	st.thread = &frame{cpu: cpu, s: s, irql: max(r.IRQL, 0)}
	return st.thread, true
}

// wait ends the slice of the running thread when it blocks; a wait
// satisfied at once (kernel.WhatSatisfied) is only an instant.
func (w *walker) wait(st *cpuState, r *des.Record, f *frame) (*frame, bool) {
	if st != nil && r.What != kernel.WhatSatisfied && st.thread != nil && st.thread.s.thread == r.Thread && r.Thread != 0 {
		w.closeThread(int(r.CPU), r.At, "waits: "+strings.TrimSpace(string(r.What)+" "+r.Object))
		return nil, true
	}
	return f, false
}

// threadExit ends the slice of the running thread when it exits.
func (w *walker) threadExit(st *cpuState, r *des.Record, f *frame) *frame {
	if r.What == kernel.WhatExit && st != nil && st.thread != nil && st.thread.s.thread == r.Thread {
		w.closeThread(int(r.CPU), r.At, "exit")
		return nil
	}
	return f
}

// interrupt follows the ISR and DPC-drain contexts: an interrupt raised
// from outside, a context entered or left, an ISR run in its context.
func (w *walker) interrupt(i int, st *cpuState, f *frame) (*frame, bool) {
	r := &w.m.recs[i]
	switch {
	case st == nil && r.What == kernel.WhatInterrupt:
		// Raised from outside: A is the target processor.
		if c := int(r.A); c >= 0 && c < len(w.cpus) {
			w.addInstant(i, c, "interrupt")
			return f, true
		}
	case st == nil:
	case r.What == kernel.WhatEnter:
		return w.enter(st, r), true
	case r.What == kernel.WhatLeave:
		w.leave(st, r)
		return nil, true
	case r.What == kernel.WhatIsr && st.isr != nil:
		w.routine(st.isr, sliceISRRoutine, "isr "+r.Object, r.At)
		return f, true
	}
	return f, false
}

// isISR reports whether actor ("isr/cpuN" or "dpc/cpuN") is an ISR
// context rather than a DPC drain.
func isISR(actor string) bool { return strings.HasPrefix(actor, "isr/") }

// enter opens the DPC-drain or ISR context r enters (re-entering closes
// the open one first); it becomes the emitting context.
func (w *walker) enter(st *cpuState, r *des.Record) *frame {
	kind, slot, name := sliceDPC, &st.dpc, "DPC"
	if isISR(r.Actor) {
		kind, slot, name = sliceISR, &st.isr, "ISR"
	}
	if *slot != nil {
		w.closeFrame(*slot, r.At, "re-entered")
	}
	cpu := int(r.CPU)
	s := w.open(kind, cpu, name, r.At)
	s.why = r.Actor
	*slot = &frame{cpu: cpu, s: s, irql: int8(r.A)}
	return *slot
}

// leave closes the DPC-drain or ISR context r leaves.
func (w *walker) leave(st *cpuState, r *des.Record) {
	slot := &st.dpc
	if isISR(r.Actor) {
		slot = &st.isr
	}
	if *slot != nil {
		w.closeFrame(*slot, r.At, "leave")
		*slot = nil
	}
	// The context below runs again; a lock handed to it meanwhile
	// ends its spin now.
	if t := st.top(); t != nil && t.spin != nil && t.spinDone {
		w.closeSpin(t, r.At)
	}
}

// runDPC starts a DPC routine in st's drain context; it reports whether r
// was one.
func (w *walker) runDPC(st *cpuState, r *des.Record) bool {
	if r.What == kernel.WhatRunDpc && st != nil && st.dpc != nil {
		w.routine(st.dpc, sliceDPCRoutine, r.Object, r.At)
		return true
	}
	return false
}

// lock follows spin-lock contention: spins and hand-overs on release.
func (w *walker) lock(r *des.Record, f *frame) {
	switch r.What {
	case kernel.WhatSpin:
		w.spin(r, f)
	case kernel.WhatRelease:
		w.handOver(r)
	}
}

// spin opens a spin slice over f's context and queues f on the lock.
func (w *walker) spin(r *des.Record, f *frame) {
	if f != nil && f.spin == nil {
		f.spin = w.open(sliceSpin, int(r.CPU), "spin: "+r.Object, r.At)
		f.spin.row = f.s.kind
		f.spinDone = false
	}
	// Queued even when the spinner is unknown (nil), so later
	// hand-overs stay aligned with the kernel's list.
	w.spinners[r.Object] = append(w.spinners[r.Object], f)
}

// handOver passes a released spin lock to its first spinner
// (kernel/locks.go); that spinner's spin ends when its context is on top.
func (w *walker) handOver(r *des.Record) {
	q := w.spinners[r.Object]
	if len(q) == 0 {
		return
	}
	next := q[0]
	w.spinners[r.Object] = q[1:]
	if next == nil || next.spin == nil {
		return
	}
	if next == w.cpus[next.cpu].top() {
		w.closeSpin(next, r.At)
	} else {
		next.spinDone = true
	}
}

// frameOf returns the context on st that emitted r, or nil.
func (w *walker) frameOf(st *cpuState, r *des.Record) *frame {
	switch {
	case st.isr != nil && r.Actor == st.isrName:
		return st.isr
	case st.dpc != nil && r.Actor == st.dpcName:
		return st.dpc
	case st.thread != nil && r.Thread != 0 && st.thread.s.thread == r.Thread:
		return st.thread
	}
	return nil
}

func (w *walker) addInstant(i, cpu int, cat string) {
	m := w.m
	in := instant{rec: i, cpu: cpu, at: m.recs[i].At, ord: m.next(), cat: cat}
	if fe := w.flowOf[i]; fe.id != 0 {
		in.flow, in.role = fe.id, fe.role
		m.next() // the flow event follows its anchor
	}
	if cpu < 0 {
		m.noCPU = true
	}
	m.instants = append(m.instants, in)
}

// addShaping keeps record i, which draws no instant, for exports that
// show every record.
func (w *walker) addShaping(i, cpu int) {
	m := w.m
	m.shaping = append(m.shaping, instant{rec: i, cpu: cpu, at: m.recs[i].At, ord: m.next(), cat: KindName(m.recs[i].Kind)})
	if cpu < 0 {
		m.shapingNoCPU = true
	}
}

func (w *walker) open(kind sliceKind, cpu int, name string, at des.Time) *slice {
	s := &slice{kind: kind, cpu: cpu, name: name, start: at, openOrd: w.m.next()}
	w.m.slices = append(w.m.slices, s)
	return s
}

func (w *walker) close(s *slice, at des.Time, why string) {
	s.end = at
	s.ended = why
	s.closeOrd = w.m.next()
}

func (w *walker) closeSpin(f *frame, at des.Time) {
	w.close(f.spin, at, "acquired")
	f.spin, f.spinDone = nil, false
}

// routine starts a DPC or ISR routine in f, ending the previous one.
func (w *walker) routine(f *frame, kind sliceKind, name string, at des.Time) {
	if f.spin != nil {
		w.closeSpin(f, at)
	}
	if f.routine != nil {
		w.close(f.routine, at, "returned")
	}
	f.routine = w.open(kind, f.cpu, name, at)
}

// closeFrame closes f's slices innermost first.
func (w *walker) closeFrame(f *frame, at des.Time, why string) {
	if f.spin != nil {
		w.close(f.spin, at, why)
		f.spin = nil
	}
	if f.routine != nil {
		w.close(f.routine, at, "returned")
		f.routine = nil
	}
	w.close(f.s, at, why)
}

// closeThread ends the thread slice on cpu (and, defensively, anything
// stacked above it, so slices stay nested).
func (w *walker) closeThread(cpu int, at des.Time, why string) {
	st := &w.cpus[cpu]
	if st.thread == nil {
		return
	}
	if st.isr != nil {
		w.closeFrame(st.isr, at, "cut")
		st.isr = nil
	}
	if st.dpc != nil {
		w.closeFrame(st.dpc, at, "cut")
		st.dpc = nil
	}
	w.closeFrame(st.thread, at, why)
	st.thread = nil
}

// closeAll ends everything open on cpu at the end of the records.
func (w *walker) closeAll(cpu int, at des.Time) {
	st := &w.cpus[cpu]
	for _, p := range []**frame{&st.isr, &st.dpc, &st.thread} {
		if f := *p; f != nil {
			for _, s := range []*slice{f.spin, f.routine, f.s} {
				if s != nil {
					s.unfinished = true
				}
			}
			w.closeFrame(f, at, "end of trace")
			*p = nil
		}
	}
	w.noteIrql(cpu, at)
}

// noteIrql records cpu's IRQL if it changed. Several changes at one
// instant keep only the last.
func (w *walker) noteIrql(cpu int, at des.Time) {
	st := &w.cpus[cpu]
	var level int8
	if t := st.top(); t != nil {
		level = t.irql
	}
	pts := w.m.irql[cpu]
	last := &pts[len(pts)-1]
	if last.at == at && len(pts) > 1 {
		if pts[len(pts)-2].level == level {
			w.m.irql[cpu] = pts[:len(pts)-1]
		} else {
			last.level = level
		}
		st.irql = level
		return
	}
	if level == st.irql {
		return
	}
	if last.at == at { // the initial point
		last.level = level
	} else {
		w.m.irql[cpu] = append(pts, irqlPoint{at: at, level: level, ord: w.m.next()})
	}
	st.irql = level
}

func switchedOut(r *des.Record) string {
	who := nameOr(r.Object, r.Actor)
	switch r.What {
	case kernel.WhatPreempt:
		return "preempted by " + who
	case kernel.WhatRoundRobin:
		return "round-robin to " + who
	}
	return "switched to " + who
}

func nameOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// instantCat returns the category of a record drawn as an instant, or ""
// for records that only shape slices (dispatch, wait, IRQL, ...).
func instantCat(r *des.Record) string {
	switch {
	case IsCallKind(r.Kind):
		return "call"
	case r.Kind == kernel.KindIRP:
		return "irp"
	case r.Kind == kernel.KindBugCheck:
		return "bugcheck"
	case r.Kind == kernel.KindSignal:
		return "signal"
	case r.Kind == kernel.KindDPC:
		return "dpc"
	case r.Kind == kernel.KindInterrupt:
		return "interrupt"
	case r.Kind == kernel.KindLock:
		return "lock"
	case r.Kind == kernel.KindWait:
		return "wait"
	case r.Kind == kernel.KindQueue:
		return "kqueue"
	case r.Kind == kernel.KindInject:
		return "inject"
	case r.Kind == kernel.KindPool:
		return "pool"
	case r.Kind == kernel.KindMemory:
		return "memory"
	case r.Kind == kernel.KindQuantum:
		return "sched"
	case r.Kind >= kernel.KindThread && r.Kind <= kernel.KindCall:
		return ""
	}
	return "other"
}

// kindNames names the kernel's record kinds.
var kindNames = [...]string{"thread", "ready", "switch", "quantum", "wait", "wake", "signal", "irql",
	"lock", "interrupt", "dpc", "irp", "pool", "memory", "inject", "bugcheck", "kqueue", "call"}

// KindName returns a short name of a record kind: the kernel's kinds by
// name, 200–299 as "call", others as "kind N".
func KindName(k des.Kind) string {
	if k >= kernel.KindThread && int(k-kernel.KindThread) < len(kindNames) {
		return kindNames[k-kernel.KindThread]
	}
	if IsCallKind(k) {
		return "call"
	}
	return "kind " + strconv.Itoa(int(k))
}
