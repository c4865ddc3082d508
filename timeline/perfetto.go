package timeline

import (
	"bufio"
	"bytes"
	"cmp"
	"encoding/json"
	"io"
	"math"
	"slices"
	"strconv"

	"github.com/wqsim/wqsim/des"
)

// Meta describes a run for titles and trace metadata.
type Meta struct {
	Scenario string   // scenario name
	Seed     uint64   // the run's seed
	Outcome  string   // "ok", or the finding that ended the run
	Machine  string   // process name in Perfetto; "" means one made from Scenario and Seed
	CPUs     int      // processors to show; fewer than the records use is raised to fit
	End      des.Time // the run's end time (des.Outcome.End), if later than its last record
	// Perturbations are the run's non-natural decisions; the HTML timeline
	// marks each with a line and lists them (what the schedule did
	// differently). Empty for a natural run.
	Perturbations []Perturbation
	// Marks are the coverage marks (racy paths) the run reached; the HTML
	// timeline lists them under the outcome.
	Marks []string
}

// Run is one simulated machine's records, for WritePerfettoRuns.
type Run struct {
	Meta    Meta
	Records []des.Record
}

// WritePerfetto writes recs (one run, in emission order) as Chrome
// trace-event JSON that ui.perfetto.dev and chrome://tracing open; see
// WritePerfettoRuns.
func WritePerfetto(w io.Writer, recs []des.Record, meta Meta) error {
	return WritePerfettoRuns(w, []Run{{Meta: meta, Records: recs}})
}

// WritePerfettoRuns writes runs as one Chrome trace-event JSON document,
// {"traceEvents":[...],"displayTimeUnit":"ns","otherData":{...}}, with one
// process per run (simulated machine), pid 1, 2, ...:
//
//   - one track (tid) per processor, named "cpu N", tid pid*1000+N, and a
//     track "no cpu" for instants of records without a processor;
//   - on a processor's track, complete ("X") slices: the thread that owns
//     it, from its dispatch to the next switch, its blocking wait or its
//     exit; nested in them the DPC drain and ISR contexts, in those each
//     DPC and ISR routine, and "spin: spinlock L" while a context spins;
//   - a counter per processor, named "cpu N" with the value IRQL ("C");
//   - thread-scoped instants ("i") for IRP, call (work items), bug-check,
//     signal, DPC-queue, lock, wait, pool and other records, with the
//     record in args; and one for every record that only shapes slices
//     (create, ready, wake, dispatch, IRQL, ...), category its kind name,
//     so that the file has an instant for every record;
//   - a process-scoped instant (category "decision") per perturbed decision
//     in meta, where the schedule left the natural one;
//   - every event has a name and a category ("__metadata" for M events);
//   - a flow ("s" → "f", bp "e", cat "workitem", name "work item") from
//     each work item's queue record to its run record (PairFlows). Each
//     flow event directly follows the instant of its record, so Perfetto
//     binds the arrow's ends to those two instants.
//
// Timestamps are microseconds with the nanoseconds as decimals. Events are
// sorted by time, ends first at equal times, and otherwise in emission
// order, so the same records always give the same bytes.
func WritePerfettoRuns(w io.Writer, runs []Run) error {
	bw := bufio.NewWriter(w)
	enc := json.NewEncoder(bw)
	enc.SetEscapeHTML(false)
	bw.WriteString(`{"traceEvents":[`)
	first := true
	var eb bytes.Buffer
	evenc := json.NewEncoder(&eb)
	evenc.SetEscapeHTML(false) // "<" stays "<": some importers mishandle \u escapes
	emit := func(e *traceEvent) error {
		if !first {
			bw.WriteString(",\n")
		} else {
			bw.WriteString("\n")
		}
		first = false
		eb.Reset()
		if err := evenc.Encode(e); err != nil {
			return err
		}
		_, err := bw.Write(bytes.TrimSuffix(eb.Bytes(), []byte("\n")))
		return err
	}
	flowBase := 0
	other := []map[string]any{}
	for ri, run := range runs {
		pid := ri + 1
		m := buildModel(run.Records, run.Meta.CPUs, run.Meta.End)
		evs := perfettoEvents(m, run.Meta, pid, flowBase)
		flowBase += len(m.flows)
		for i := range evs {
			if err := emit(&evs[i]); err != nil {
				return err
			}
		}
		other = append(other, map[string]any{
			"pid": pid, "scenario": run.Meta.Scenario, "seed": strconv.FormatUint(run.Meta.Seed, 10),
			"outcome": run.Meta.Outcome, "records": len(run.Records), "processors": m.cpus,
		})
	}
	bw.WriteString("\n],\n\"displayTimeUnit\":\"ns\",\n\"otherData\":")
	od := map[string]any{"generator": "wqsim timeline", "runs": other}
	if len(runs) == 1 {
		od = other[0]
		od["generator"] = "wqsim timeline"
		delete(od, "pid")
	}
	if err := enc.Encode(od); err != nil {
		return err
	}
	bw.WriteString("}\n")
	return bw.Flush()
}

// traceEvent is one Chrome trace event; field order is fixed, and
// encoding/json sorts Args keys.
type traceEvent struct {
	Name string         `json:"name"` // every event has one: consumers such as Chrome DevTools' trace engine read it unconditionally
	Cat  string         `json:"cat"`  // likewise (TracerBench splits it)
	Ph   string         `json:"ph"`
	Ts   usec           `json:"ts"`
	Dur  *usec          `json:"dur,omitempty"`
	Pid  int            `json:"pid"`
	Tid  int            `json:"tid"`
	S    string         `json:"s,omitempty"`
	ID   int            `json:"id,omitempty"`
	BP   string         `json:"bp,omitempty"`
	Args map[string]any `json:"args,omitempty"`

	ord int // emission order: ties at equal times
}

// Track ids.
func cpuTid(pid, cpu int) int { return pid*1000 + cpu }
func noCPUTid(pid int) int    { return pid*1000 + 999 }

// perfettoEvents returns run pid's events: the metadata naming the
// process and its tracks, then the slices, instants, flows and IRQL
// counters in output order.
func perfettoEvents(m *model, meta Meta, pid, flowBase int) []traceEvent {
	var evs []traceEvent
	for _, s := range m.slices {
		evs = appendSlice(evs, s, pid)
	}
	for _, in := range m.instants {
		evs = appendInstant(evs, m, in, pid, flowBase)
	}
	for _, in := range m.shaping {
		evs = appendInstant(evs, m, in, pid, flowBase)
	}
	for i, p := range meta.Perturbations {
		// A process-wide instant: a line across the machine's tracks.
		evs = append(evs, traceEvent{Name: p.Text, Cat: "decision", Ph: "i", S: "p", Ts: usec(p.At), Pid: pid, Tid: cpuTid(pid, 0),
			Args: map[string]any{"thread": p.Actor}, ord: math.MaxInt - len(meta.Perturbations) + i})
	}
	for c, pts := range m.irql {
		for _, p := range pts {
			evs = append(evs, traceEvent{Name: "cpu " + strconv.Itoa(c), Cat: "irql", Ph: "C", Ts: usec(p.at), Pid: pid, Tid: cpuTid(pid, c),
				Args: map[string]any{"IRQL": p.level}, ord: p.ord})
		}
	}
	sortEvents(evs)
	return append(metadataEvents(m, meta, pid), evs...)
}

// metadataEvents name the process (the machine) and its tracks, and
// order them.
func metadataEvents(m *model, meta Meta, pid int) []traceEvent {
	var evs []traceEvent
	md := func(n string, tid int, args map[string]any) {
		evs = append(evs, traceEvent{Name: n, Cat: "__metadata", Ph: "M", Pid: pid, Tid: tid, Args: args})
	}
	md("process_name", cpuTid(pid, 0), map[string]any{"name": machineName(meta)})
	md("process_sort_index", cpuTid(pid, 0), map[string]any{"sort_index": pid})
	if meta.Outcome != "" {
		md("process_labels", cpuTid(pid, 0), map[string]any{"labels": meta.Outcome})
	}
	for c := 0; c < m.cpus; c++ {
		md("thread_name", cpuTid(pid, c), map[string]any{"name": "cpu " + strconv.Itoa(c)})
		md("thread_sort_index", cpuTid(pid, c), map[string]any{"sort_index": c})
	}
	if m.noCPU || m.shapingNoCPU {
		md("thread_name", noCPUTid(pid), map[string]any{"name": "no cpu"})
		md("thread_sort_index", noCPUTid(pid), map[string]any{"sort_index": m.cpus})
	}
	return evs
}

// machineName is the process name of a run: meta.Machine, or one made
// from the scenario and seed.
func machineName(meta Meta) string {
	if meta.Machine != "" {
		return meta.Machine
	}
	name := "wqsim"
	if meta.Scenario != "" {
		name += " " + meta.Scenario
	}
	return name + " (seed " + strconv.FormatUint(meta.Seed, 10) + ")"
}

// appendSlice appends s as one complete ("X") event with its duration. Not
// B/E pairs: some consumers (Chrome DevTools' trace engine) match every E
// against one stack shared by all tracks, so pairs on different processors
// that interleave in time would be mismatched.
func appendSlice(evs []traceEvent, s *slice, pid int) []traceEvent {
	args := map[string]any{"ended": s.ended}
	switch s.kind {
	case sliceThread:
		args["thread"] = s.thread
		args["priority"] = s.prio
		args["dispatch"] = s.why
	case sliceDPC, sliceISR:
		args["context"] = s.why
	}
	if s.unfinished {
		args["unfinished"] = true
	}
	dur := usec(s.end - s.start)
	return append(evs, traceEvent{Name: s.name, Cat: sliceCats[s.kind], Ph: "X", Ts: usec(s.start), Dur: &dur,
		Pid: pid, Tid: cpuTid(pid, s.cpu), Args: args, ord: s.openOrd})
}

// appendInstant appends in as a thread-scoped instant on its processor's
// track (or "no cpu"), followed by its flow event when it is one end of a
// work item's flow.
func appendInstant(evs []traceEvent, m *model, in instant, pid, flowBase int) []traceEvent {
	r := &m.recs[in.rec]
	tid := noCPUTid(pid)
	if in.cpu >= 0 {
		tid = cpuTid(pid, in.cpu)
	}
	n := string(r.What)
	if r.Object != "" {
		n += " " + r.Object
	}
	evs = append(evs, traceEvent{Name: n, Cat: in.cat, Ph: "i", S: "t", Ts: usec(in.at), Pid: pid, Tid: tid, Args: recordArgs(r), ord: in.ord})
	if in.flow == 0 {
		return evs
	}
	f := traceEvent{Name: "work item", Cat: "workitem", Ph: "s", Ts: usec(in.at), Pid: pid, Tid: tid, ID: flowBase + in.flow, ord: in.ord + 1}
	if in.role == FlowRun {
		f.Ph, f.BP = "f", "e"
	}
	return append(evs, f)
}

// sortEvents orders events by time, then in emission order (a slice that
// encloses another was opened first, so it comes first).
func sortEvents(evs []traceEvent) {
	slices.SortStableFunc(evs, func(a, b traceEvent) int {
		if a.Ts != b.Ts {
			return cmp.Compare(a.Ts, b.Ts)
		}
		return a.ord - b.ord
	})
}

func recordArgs(r *des.Record) map[string]any {
	a := map[string]any{"kind": KindName(r.Kind), "what": r.What, "a": r.A, "b": r.B}
	if r.Actor != "" {
		a["actor"] = r.Actor
	}
	if r.Object != "" {
		a["object"] = r.Object
	}
	if r.Thread != 0 {
		a["thread"] = r.Thread
	}
	if r.IRQL >= 0 {
		a["irql"] = r.IRQL
	}
	if r.CPU >= 0 {
		a["cpu"] = r.CPU
	}
	return a
}

// usec is a time or duration in nanoseconds that marshals as
// microseconds, the trace-event format's unit.
type usec int64

// MarshalJSON implements json.Marshaler.
func (u usec) MarshalJSON() ([]byte, error) { return appendUsec(nil, int64(u)), nil }

// appendUsec appends ns as microseconds: the exact decimal ("2.2" for
// 2200 ns), unless an importer would read that back as ns-1. Perfetto
// converts ts with int64(parse(ts)*1000), which truncates, and parses
// with either a correctly rounded or a digit-by-digit strtod; for those
// few values two more digits ("1.00501") make every reader get ns back,
// so equal times stay equal and slices stay nested after import.
func appendUsec(b []byte, ns int64) []byte {
	start := len(b)
	b = appendExactUsec(b, ns)
	if ns < 0 || readsBack(b[start:], ns) {
		return b
	}
	frac := ns % 1000
	b = strconv.AppendInt(b[:start], ns/1000, 10)
	return append(b, '.', byte('0'+frac/100), byte('0'+frac/10%10), byte('0'+frac%10), '0', '1')
}

// appendExactUsec writes ns/1000 exactly, with trailing zeros trimmed.
func appendExactUsec(b []byte, ns int64) []byte {
	if ns < 0 {
		b = append(b, '-')
		ns = -ns
	}
	b = strconv.AppendInt(b, ns/1000, 10)
	frac := ns % 1000
	if frac == 0 {
		return b
	}
	b = append(b, '.', byte('0'+frac/100), byte('0'+frac/10%10), byte('0'+frac%10))
	for b[len(b)-1] == '0' {
		b = b[:len(b)-1]
	}
	return b
}

// readsBack reports whether both ways importers parse s give ns back.
func readsBack(s []byte, ns int64) bool {
	f, err := strconv.ParseFloat(string(s), 64)
	if err != nil || int64(float64(f*1000)) != ns {
		return false
	}
	return int64(float64(digitwiseFloat(s)*1000)) == ns
}

// digitwiseFloat parses a plain decimal the way Perfetto's own JSON parser
// does: integer digits accumulated, then the fraction digits as an integer
// divided by a power of ten and added.
func digitwiseFloat(s []byte) float64 {
	var out, frac, div float64 = 0, 0, 1
	i := 0
	for ; i < len(s) && s[i] >= '0' && s[i] <= '9'; i++ {
		out = float64(out*10) + float64(s[i]-'0')
	}
	if i < len(s) && s[i] == '.' {
		for i++; i < len(s) && s[i] >= '0' && s[i] <= '9'; i++ {
			frac = float64(frac*10) + float64(s[i]-'0')
			div = float64(div * 10)
		}
		if div > 1 {
			out += frac / div
		}
	}
	return out
}
