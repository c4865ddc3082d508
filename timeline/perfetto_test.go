package timeline

import (
	"bytes"
	"cmp"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wqsim/wqsim/des"
	"github.com/wqsim/wqsim/kernel"
)

func outcomeText(o des.Outcome) string {
	if o.Err == nil {
		return "ok"
	}
	return o.Err.Error()
}

func metaFor(name string, out des.Outcome) Meta {
	return Meta{Scenario: name, Seed: 7, Outcome: outcomeText(out), End: out.End}
}

// jsonEvent is a trace event as read back; Ts and Dur stay decimal text so
// the checks can convert them the way importers do.
type jsonEvent struct {
	Name string          `json:"name"`
	Cat  string          `json:"cat"`
	Ph   string          `json:"ph"`
	Ts   json.Number     `json:"ts"`
	Dur  *json.Number    `json:"dur"`
	Pid  int             `json:"pid"`
	Tid  int             `json:"tid"`
	S    string          `json:"s"`
	ID   int             `json:"id"`
	BP   string          `json:"bp"`
	Args json.RawMessage `json:"args"`
	idx  int
}

type jsonTrace struct {
	TraceEvents     []jsonEvent    `json:"traceEvents"`
	DisplayTimeUnit string         `json:"displayTimeUnit"`
	OtherData       map[string]any `json:"otherData"`
}

func parseTrace(t *testing.T, b []byte) jsonTrace {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	dec.DisallowUnknownFields()
	var tr jsonTrace
	require.NoError(t, dec.Decode(&tr), "trace is not valid JSON")
	require.False(t, dec.More(), "trailing data after the JSON document")
	for i := range tr.TraceEvents {
		tr.TraceEvents[i].idx = i
	}
	return tr
}

func (e *jsonEvent) args(t *testing.T) map[string]any {
	var m map[string]any
	if len(e.Args) > 0 {
		require.NoError(t, json.Unmarshal(e.Args, &m))
	}
	return m
}

// importNs converts a ts the way Perfetto does: int64(µs*1000), truncating,
// with a correctly rounded parse (digitwise says: with its own parser).
func importNs(t *testing.T, n json.Number, digitwise bool) int64 {
	t.Helper()
	s := string(n)
	if !strings.ContainsAny(s, ".eE") {
		v, err := strconv.ParseInt(s, 10, 64)
		require.NoError(t, err)
		return v * 1000
	}
	var f float64
	if digitwise {
		f = digitwiseFloat([]byte(s))
	} else {
		var err error
		f, err = strconv.ParseFloat(s, 64)
		require.NoError(t, err)
	}
	return int64(float64(f * 1000))
}

func writePerfetto(t *testing.T, recs []des.Record, meta Meta) []byte {
	t.Helper()
	var b bytes.Buffer
	require.NoError(t, WritePerfetto(&b, recs, meta))
	return b.Bytes()
}

// importCheck replays the events the way Perfetto's JSON importer does
// (trace_sorter.h, slice_tracker.cc, flow_tracker.cc, json_trace_parser):
// sort by (ts, E first / X by duration / others, file order); per track a
// slice stack where B pushes, E closes the topmost open slice, X and
// instants are complete slices that pop what ended before them; flow
// events bind to the topmost slice on their track. It fails on anything
// Perfetto would drop or bind differently than intended, and returns, per
// flow id, the names of the slices its two ends bound to.
func importCheck(t *testing.T, evs []jsonEvent, digitwise bool) map[int][2]string {
	t.Helper()
	type sl struct {
		name       string
		start, end int64 // end -1: open (B without E yet)
		instant    bool
	}
	type ev struct {
		*jsonEvent
		ts, dur int64
		key     int64
	}
	var list []ev
	for i := range evs {
		e := &evs[i]
		if e.Ph == "M" {
			continue
		}
		x := ev{jsonEvent: e, ts: importNs(t, e.Ts, digitwise), key: 1 << 62}
		switch e.Ph {
		case "E":
			x.key = -1 << 62
		case "X":
			require.NotNil(t, e.Dur, "X event without dur: %+v", e)
			x.dur = importNs(t, *e.Dur, digitwise)
			x.key = 1<<62 - x.dur
		}
		list = append(list, x)
	}
	slices.SortStableFunc(list, func(a, b ev) int {
		if a.ts != b.ts {
			return cmp.Compare(a.ts, b.ts)
		}
		if a.key != b.key {
			return cmp.Compare(a.key, b.key)
		}
		return a.idx - b.idx
	})
	stacks := map[int][]sl{}
	flowStart := map[int]string{}
	flows := map[int][2]string{}
	// popEnded pops slices that end before ts (or at ts, unless both are instants).
	popEnded := func(tid int, ts int64, newDur int64) {
		st := stacks[tid]
		for len(st) > 0 {
			top := st[len(st)-1]
			if top.end < 0 {
				break
			}
			if top.end < ts || (top.end == ts && !(top.end == top.start && newDur == 0)) {
				st = st[:len(st)-1]
				continue
			}
			require.False(t, ts < top.end && ts+newDur > top.end && newDur >= 0,
				"slice at %d+%d overlaps %q [%d,%d] on track %d", ts, newDur, top.name, top.start, top.end, tid)
			break
		}
		stacks[tid] = st
	}
	for _, e := range list {
		switch e.Ph {
		case "B":
			popEnded(e.Tid, e.ts, -1)
			stacks[e.Tid] = append(stacks[e.Tid], sl{name: e.Name, start: e.ts, end: -1})
		case "E":
			popEnded(e.Tid, e.ts, -1)
			st := stacks[e.Tid]
			require.NotEmpty(t, st, "E at %s on track %d closes nothing", e.Ts, e.Tid)
			top := st[len(st)-1]
			require.Equal(t, int64(-1), top.end, "E at %s on track %d: topmost slice %q is not open", e.Ts, e.Tid, top.name)
			require.Greater(t, e.ts, top.start, "E at %s on track %d: zero-length B/E slice %q (E would sort first)", e.Ts, e.Tid, top.name)
			stacks[e.Tid] = st[:len(st)-1]
		case "X", "i":
			popEnded(e.Tid, e.ts, e.dur)
			if st := stacks[e.Tid]; len(st) > 0 && st[len(st)-1].end >= 0 {
				top := st[len(st)-1]
				require.LessOrEqual(t, e.ts+e.dur, top.end, "%q overflows its parent %q", e.Name, top.name)
			}
			stacks[e.Tid] = append(stacks[e.Tid], sl{name: e.Name, start: e.ts, end: e.ts + e.dur, instant: e.Ph == "i"})
		case "s", "f":
			st := stacks[e.Tid]
			require.NotEmpty(t, st, "flow %d (%s) at %s has no enclosing slice", e.ID, e.Ph, e.Ts)
			top := st[len(st)-1]
			if e.Ph == "s" {
				_, dup := flowStart[e.ID]
				require.False(t, dup, "flow id %d starts twice", e.ID)
				flowStart[e.ID] = top.name
			} else {
				start, ok := flowStart[e.ID]
				require.True(t, ok, "flow %d ends before it starts", e.ID)
				flows[e.ID] = [2]string{start, top.name}
			}
		case "C":
		default:
			t.Fatalf("unexpected phase %q", e.Ph)
		}
	}
	for tid, st := range stacks {
		for _, s := range st {
			require.GreaterOrEqual(t, s.end, int64(0), "slice %q on track %d never ends", s.name, tid)
		}
	}
	return flows
}

// checkTrace runs the format checks every exported trace must pass and
// returns the trace.
func checkTrace(t *testing.T, b []byte, cpus int) jsonTrace {
	t.Helper()
	tr := parseTrace(t, b)
	assert.Equal(t, "ns", tr.DisplayTimeUnit)
	// Metadata: one track per processor, named "cpu N", distinct tids.
	names := map[int]string{}
	for _, e := range tr.TraceEvents {
		if e.Ph == "M" && e.Name == "thread_name" {
			_, dup := names[e.Tid]
			require.False(t, dup, "track %d named twice", e.Tid)
			names[e.Tid] = e.args(t)["name"].(string)
		}
	}
	var cpuTracks []string
	for _, n := range names {
		if strings.HasPrefix(n, "cpu ") {
			cpuTracks = append(cpuTracks, n)
		}
	}
	slices.Sort(cpuTracks)
	var want []string
	for c := 0; c < cpus; c++ {
		want = append(want, "cpu "+strconv.Itoa(c))
	}
	slices.Sort(want)
	assert.Equal(t, want, cpuTracks, "one track per processor")
	// Every timed event is on a named track and its time reads back exactly.
	counters := map[string]int{}
	for _, e := range tr.TraceEvents {
		if e.Ph == "M" {
			continue
		}
		_, ok := names[e.Tid]
		require.True(t, ok, "event on unnamed track %d: %+v", e.Tid, e)
		a := importNs(t, e.Ts, false)
		require.Equal(t, a, importNs(t, e.Ts, true), "ts %s reads back differently in the two parsers", e.Ts)
		f, err := e.Ts.Float64()
		require.NoError(t, err)
		require.InDelta(t, float64(a), f*1000, 0.02, "ts %s is not the ns Perfetto reads", e.Ts)
		if e.Ph == "C" {
			counters[e.Name]++
			_, ok := e.args(t)["IRQL"]
			require.True(t, ok, "counter without IRQL: %+v", e)
		}
	}
	for c := 0; c < cpus; c++ {
		assert.Positive(t, counters["cpu "+strconv.Itoa(c)], "IRQL counter track for cpu %d", c)
	}
	// Balanced slices and bound flows, under both ways of parsing ts.
	importCheck(t, tr.TraceEvents, false)
	importCheck(t, tr.TraceEvents, true)
	return tr
}

func TestPerfettoDemo(t *testing.T) {
	recs, out := run(t, demoConfig(), demo)
	require.NoError(t, out.Err)
	b := writePerfetto(t, recs, metaFor("demo", out))
	tr := checkTrace(t, b, 2)

	assert.Equal(t, "demo", tr.OtherData["scenario"])
	assert.Equal(t, "ok", tr.OtherData["outcome"])
	count := map[string]int{}
	var sliceNames []string
	for _, e := range tr.TraceEvents {
		count[e.Ph]++
		if e.Ph == "B" || e.Ph == "X" {
			sliceNames = append(sliceNames, e.Cat+":"+e.Name)
		}
	}
	assert.Zero(t, count["B"]+count["E"], "slices are complete X events: consumers match E events across tracks")
	assert.Equal(t, len(recs), count["i"], "every record is an instant")
	for _, e := range tr.TraceEvents {
		assert.NotEmpty(t, e.Name, "every event has a name (Chrome DevTools' trace engine reads it): %+v", e)
		assert.NotEmpty(t, e.Cat, "every event has a category (TracerBench splits it): %+v", e)
	}
	for _, n := range []string{"thread:pinger", "thread:ponger", "thread:locker", "thread:worker",
		"dpc:DPC", "dpc:dpc nic", "isr:ISR", "isr:isr nic", "spin:spin: spinlock L"} {
		assert.Contains(t, sliceNames, n)
	}
	// The work item's flow goes from the DPC's queue record to the worker's run.
	flows := importCheck(t, tr.TraceEvents, false)
	require.Len(t, flows, 1)
	assert.Equal(t, [2]string{"ExQueueWorkItem workitem log", "run-work-item workitem log"}, flows[1])
	var s, f jsonEvent
	for _, e := range tr.TraceEvents {
		switch e.Ph {
		case "s":
			s = e
		case "f":
			f = e
		}
	}
	assert.Equal(t, cpuTid(1, 1), s.Tid, "queued by the DPC on cpu 1")
	assert.Equal(t, cpuTid(1, 0), f.Tid, "run by the worker on cpu 0")
	assert.Equal(t, "e", f.BP)
	assert.Equal(t, s.ID, f.ID)
	// Instants for the IRP completion, the work item and the signals.
	cats := map[string]int{}
	for _, e := range tr.TraceEvents {
		if e.Ph == "i" {
			cats[e.Cat]++
			assert.Equal(t, "t", e.S)
		}
	}
	assert.NotContains(t, string(b), `\u00`, "no HTML escaping in names")
	assert.Equal(t, 1, cats["irp"])
	assert.Equal(t, 2, cats["call"])
	assert.Positive(t, cats["signal"])
	assert.Positive(t, cats["interrupt"])
}

// TestPerfettoNesting pins the stack the walker builds for the demo's
// processor 1 around the interrupt: ponger runs, the ISR interrupts it,
// then the DPC drains, then ponger runs on.
func TestPerfettoNesting(t *testing.T) {
	recs, out := run(t, demoConfig(), demo)
	m := buildModel(recs, 2, out.End)
	find := func(cpu int, name string, at des.Time) *slice {
		for _, s := range m.slices {
			if s.cpu == cpu && s.name == name && s.start <= at && at < s.end {
				return s
			}
		}
		t.Fatalf("no slice %q on cpu %d at %v", name, cpu, at)
		return nil
	}
	us := func(f float64) des.Time { return des.Time(f * 1000) }
	ponger := find(1, "ponger", us(33))
	isr := find(1, "ISR", us(33))
	routine := find(1, "isr nic", us(33))
	dpc := find(1, "DPC", us(36))
	assert.Same(t, ponger, find(1, "ponger", us(36)), "ponger keeps the processor under the ISR and the DPC")
	assert.Equal(t, us(31), isr.start)
	assert.Equal(t, us(34.2), isr.end)
	assert.Equal(t, us(32), routine.start)
	assert.Equal(t, us(34.2), dpc.start)
	assert.Equal(t, us(38.6), dpc.end)
	// ponger spun on L from 12.6 µs until locker released it at 16.6 µs.
	spin := find(1, "spin: spinlock L", us(13))
	assert.Equal(t, us(12.6), spin.start)
	assert.Equal(t, us(16.6), spin.end)
	// IRQL on cpu 1: 5 in the ISR, 2 in the DPC, back to 0 after it.
	level := func(cpu int, at des.Time) int8 {
		l := int8(-1)
		for _, p := range m.irql[cpu] {
			if p.at <= at {
				l = p.level
			}
		}
		return l
	}
	assert.Equal(t, int8(5), level(1, us(33)))
	assert.Equal(t, int8(2), level(1, us(36)))
	assert.Equal(t, int8(0), level(1, us(39)))
	assert.Equal(t, int8(2), level(1, us(40)), "ponger holds L at DISPATCH_LEVEL")
}

func TestPerfettoBugCheckClosesOpenSlices(t *testing.T) {
	recs, out := run(t, demoConfig(), demoBug)
	require.Error(t, out.Err)
	b := writePerfetto(t, recs, metaFor("demo-bug", out))
	tr := checkTrace(t, b, 2)
	var bug, unfinished int
	for _, e := range tr.TraceEvents {
		if e.Ph == "i" && e.Cat == "bugcheck" {
			bug++
			assert.Equal(t, "BUGCHECK MULTIPLE_IRP_COMPLETE_REQUESTS", e.Name)
		}
		if (e.Ph == "B" || e.Ph == "X") && e.args(t)["unfinished"] == true {
			unfinished++
		}
	}
	assert.Equal(t, 1, bug)
	assert.Equal(t, 2, unfinished, "the thread on each processor is still running when the run stops")
	assert.Contains(t, tr.OtherData["outcome"], "MULTIPLE_IRP_COMPLETE_REQUESTS")
}

func TestPerfettoLargeRun(t *testing.T) {
	recs, out := run(t, kernel.DefaultConfig(), busy(1000))
	require.NoError(t, out.Err)
	require.Greater(t, len(recs), 10_000)
	tr := checkTrace(t, writePerfetto(t, recs, metaFor("busy", out)), 2)
	flows := importCheck(t, tr.TraceEvents, false)
	assert.Len(t, flows, 100, "every work item queued is run")
	for id, ends := range flows {
		assert.True(t, strings.HasPrefix(ends[0], "ExQueueWorkItem workitem "), "flow %d starts at %q", id, ends[0])
		assert.Equal(t, strings.Replace(ends[0], "ExQueueWorkItem", "run-work-item", 1), ends[1], "flow %d", id)
	}
}

func TestPerfettoMultipleRuns(t *testing.T) {
	recs1, out1 := run(t, demoConfig(), demo)
	cfg := kernel.DefaultConfig()
	cfg.Processors = 3
	recs2, out2 := run(t, cfg, demo)
	var b bytes.Buffer
	m2 := metaFor("demo", out2)
	m2.CPUs = 3
	m2.Machine = "three processors"
	require.NoError(t, WritePerfettoRuns(&b, []Run{{metaFor("demo", out1), recs1}, {m2, recs2}}))
	tr := parseTrace(t, b.Bytes())
	procs := map[int]string{}
	tracks := map[int]int{}
	flowIDs := map[int]int{}
	for _, e := range tr.TraceEvents {
		if e.Ph == "M" && e.Name == "process_name" {
			procs[e.Pid] = e.args(t)["name"].(string)
		}
		if e.Ph == "M" && e.Name == "thread_name" {
			tracks[e.Pid]++
		}
		if e.Ph == "s" {
			flowIDs[e.ID] = e.Pid
		}
	}
	assert.Equal(t, map[int]string{1: "wqsim demo (seed 7)", 2: "three processors"}, procs)
	assert.Equal(t, map[int]int{1: 3, 2: 4}, tracks, "a track per processor, and one for records without a processor")
	assert.Len(t, flowIDs, 2, "flow ids are unique across machines")
	importCheck(t, tr.TraceEvents, false)
	assert.Len(t, tr.OtherData["runs"], 2)
}

func TestPerfettoEdgeCases(t *testing.T) {
	// No records at all, and records without any processor.
	for name, recs := range map[string][]des.Record{
		"empty": nil,
		"no cpu": {
			{At: 5, CPU: -1, IRQL: -1, Kind: kernel.KindSignal, What: "timer-expire", Object: "timer t"},
			{At: 9, CPU: -1, IRQL: -1, Kind: kernel.KindCall, What: "ExQueueWorkItem", Object: "item"},
			{At: 9, CPU: -1, IRQL: -1, Kind: kernel.KindCall, What: "run-work-item", Object: "item"},
		},
		// A zero-length dispatch, a wait satisfied at once, and an
		// unknown kind from a higher layer.
		"odd": {
			{At: 0, CPU: 0, IRQL: 0, Thread: 1, Kind: kernel.KindSwitch, What: "dispatch", Actor: "a", Object: "a"},
			{At: 0, CPU: 0, IRQL: 0, Thread: 2, Kind: kernel.KindSwitch, What: "preempt", Actor: "b", Object: "b"},
			{At: 1001, CPU: 0, IRQL: 0, Thread: 2, Kind: kernel.KindWait, What: "KeWaitForSingleObject (satisfied)", Object: "event e"},
			{At: 1002, CPU: 0, IRQL: 0, Thread: 2, Kind: 250, What: "FltCbdqInsertIo", Object: "irp 1"},
			{At: 1003, CPU: 0, IRQL: 0, Thread: 2, Kind: 400, What: "custom", Object: "x"},
			{At: 1005, CPU: 0, IRQL: 0, Thread: 2, Kind: kernel.KindThread, What: "exit", Object: "b"},
		},
	} {
		t.Run(strings.ReplaceAll(name, " ", "_"), func(t *testing.T) {
			b := writePerfetto(t, recs, Meta{CPUs: 1})
			tr := checkTrace(t, b, 1)
			for _, e := range tr.TraceEvents {
				if e.Ph == "B" || e.Ph == "X" || e.Ph == "i" {
					assert.NotEmpty(t, e.Name)
				}
			}
		})
	}
}

func TestWorkItemRole(t *testing.T) {
	rec := func(kind des.Kind, what, object string) *des.Record {
		return &des.Record{Kind: kind, What: des.What(what), Object: object}
	}
	for _, c := range []struct {
		r    *des.Record
		want FlowRole
	}{
		{rec(kernel.KindCall, "ExQueueWorkItem", "workitem 1"), FlowQueue},
		{rec(200, "ExQueueWorkItem", "DelayedWorkQueue"), FlowQueue},
		{rec(202, "run", "DelayedWorkQueue"), FlowRun},
		{rec(201, "dequeue", "DelayedWorkQueue"), FlowNone},
		{rec(203, "return", "DelayedWorkQueue"), FlowNone},
		{rec(kernel.KindCall, "IoQueueWorkItem", "io item"), FlowQueue},
		{rec(210, "FltQueueDeferredIoWorkItem", "irp 3"), FlowQueue},
		{rec(299, "queue-work-item", "w"), FlowQueue},
		{rec(kernel.KindCall, "run-work-item", "workitem 1"), FlowRun},
		{rec(200, "WorkerRun", "workitem 1"), FlowRun},
		{rec(kernel.KindCall, "dequeue", "workitem 1"), FlowNone},
		{rec(kernel.KindCall, "ExQueueWorkItem", ""), FlowNone},
		{rec(kernel.KindQueue, "KeInsertQueue", "queue q"), FlowNone},
		{rec(300, "ExQueueWorkItem", "w"), FlowNone},
		{rec(kernel.KindCall, "IoFreeWorkItem", "io item"), FlowNone},
	} {
		assert.Equal(t, c.want, WorkItemRole(c.r), "%d %q %q", c.r.Kind, c.r.What, c.r.Object)
	}
	assert.Equal(t, "queue", FlowQueue.String())
	assert.Equal(t, "run", FlowRun.String())
	assert.Equal(t, "none", FlowNone.String())
}

func TestPairFlows(t *testing.T) {
	call := func(what, object string) des.Record {
		return des.Record{Kind: kernel.KindCall, What: des.What(what), Object: object}
	}
	recs := []des.Record{
		call("ExQueueWorkItem", "a"), // 0
		call("ExQueueWorkItem", "b"), // 1
		call("run-work-item", "b"),   // 2
		call("ExQueueWorkItem", "a"), // 3: a queued twice before it runs
		call("run-work-item", "a"),   // 4: pairs with 0 (first in, first out)
		call("run-work-item", "c"),   // 5: never queued
		call("run-work-item", "a"),   // 6: pairs with 3
		call("ExQueueWorkItem", "d"), // 7: never run
	}
	assert.Equal(t, []Flow{
		{ID: 1, Item: WorkItemKey{"a", 0}, Queue: 0, Run: 4},
		{ID: 2, Item: WorkItemKey{"b", 0}, Queue: 1, Run: 2},
		{ID: 3, Item: WorkItemKey{"a", 0}, Queue: 3, Run: 6},
	}, PairFlows(recs))
	assert.Empty(t, PairFlows(nil))
}

// TestPairFlowsQueuesConvention pairs records shaped like package queues'
// (kinds 200–203: Object the queue, A the item id): two workers of one
// queue run its items out of order, and an item is requeued.
func TestPairFlowsQueuesConvention(t *testing.T) {
	rec := func(kind des.Kind, what string, id int64) des.Record {
		return des.Record{Kind: kind, What: des.What(what), Object: "DelayedWorkQueue", A: id}
	}
	recs := []des.Record{
		rec(200, "ExQueueWorkItem", 1), // 0
		rec(200, "IoQueueWorkItem", 2), // 1
		rec(201, "dequeue", 1),         // 2
		rec(201, "dequeue", 2),         // 3
		rec(202, "run", 2),             // 4: the second worker runs first
		rec(202, "run", 1),             // 5
		rec(203, "return", 1),          // 6
		rec(200, "ExQueueWorkItem", 1), // 7: requeued by its routine
		rec(202, "run", 1),             // 8
		{Kind: 263, What: "FltQueueGenericWorkItem", Object: "flt work item 1"}, // 9: never "run"
		{Kind: 265, What: "cbdq: insert refused, queue disabled", Object: "callback data 4"},
	}
	assert.Equal(t, []Flow{
		{ID: 1, Item: WorkItemKey{"DelayedWorkQueue", 1}, Queue: 0, Run: 5},
		{ID: 2, Item: WorkItemKey{"DelayedWorkQueue", 2}, Queue: 1, Run: 4},
		{ID: 3, Item: WorkItemKey{"DelayedWorkQueue", 1}, Queue: 7, Run: 8},
	}, PairFlows(recs))
	assert.Equal(t, "DelayedWorkQueue #2", WorkItemKey{"DelayedWorkQueue", 2}.String())
	assert.Equal(t, "workitem log", WorkItemKey{"workitem log", 0}.String())
}

// TestUsec checks that every time written reads back as exactly its
// nanoseconds under both parsers importers use.
func TestUsec(t *testing.T) {
	check := func(ns int64) {
		s := appendUsec(nil, ns)
		if !readsBack(s, ns) {
			t.Fatalf("%d ns written as %s does not read back", ns, s)
		}
		f, err := strconv.ParseFloat(string(s), 64)
		if err != nil || f*1000 < float64(ns)-0.02 || f*1000 > float64(ns)+0.02 {
			t.Fatalf("%d ns written as %s", ns, s)
		}
	}
	fixups := 0
	for ns := int64(0); ns < 3_000_000; ns++ {
		check(ns)
		if len(appendUsec(nil, ns)) != len(appendExactUsec(nil, ns)) {
			fixups++
		}
	}
	assert.Positive(t, fixups, "some values need the extra digits")
	rng := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < 200_000; i++ {
		check(rng.Int64N(int64(des.Hour)))
	}
	assert.Equal(t, "2.2", string(appendUsec(nil, 2200)))
	assert.Equal(t, "0", string(appendUsec(nil, 0)))
	assert.Equal(t, "62.8", string(appendUsec(nil, 62800)))
	assert.Equal(t, "0.001", string(appendUsec(nil, 1)))
	assert.Equal(t, "-1.5", string(appendUsec(nil, -1500)))
}

func TestKindName(t *testing.T) {
	assert.Equal(t, "switch", KindName(kernel.KindSwitch))
	assert.Equal(t, "call", KindName(kernel.KindCall))
	assert.Equal(t, "bugcheck", KindName(kernel.KindBugCheck))
	assert.Equal(t, "call", KindName(250))
	assert.Equal(t, "kind 400", KindName(400))
}

func TestDeterminism(t *testing.T) {
	type out struct{ perfetto, jsonl, html []byte }
	render := func() out {
		recs, o := run(t, kernel.DefaultConfig(), busy(300))
		meta := metaFor("busy", o)
		var p, j, h bytes.Buffer
		require.NoError(t, WritePerfetto(&p, recs, meta))
		require.NoError(t, WriteJSONL(&j, recs))
		require.NoError(t, WriteHTML(&h, recs, meta))
		// The same records written again give the same bytes too.
		var p2, h2 bytes.Buffer
		require.NoError(t, WritePerfetto(&p2, recs, meta))
		require.NoError(t, WriteHTML(&h2, recs, meta))
		require.True(t, bytes.Equal(p.Bytes(), p2.Bytes()), "Perfetto output differs on the same records")
		require.True(t, bytes.Equal(h.Bytes(), h2.Bytes()), "HTML output differs on the same records")
		return out{p.Bytes(), j.Bytes(), h.Bytes()}
	}
	a, b := render(), render()
	assert.True(t, bytes.Equal(a.perfetto, b.perfetto), "Perfetto output differs between identical runs")
	assert.True(t, bytes.Equal(a.jsonl, b.jsonl), "JSONL output differs between identical runs")
	assert.True(t, bytes.Equal(a.html, b.html), "HTML output differs between identical runs")
}

func TestJSONL(t *testing.T) {
	recs, _ := run(t, demoConfig(), demo)
	var b bytes.Buffer
	require.NoError(t, WriteJSONL(&b, recs))
	lines := strings.Split(strings.TrimSuffix(b.String(), "\n"), "\n")
	require.Len(t, lines, len(recs))
	for i, line := range lines {
		dec := json.NewDecoder(strings.NewReader(line))
		dec.DisallowUnknownFields()
		var j JSONRecord
		require.NoError(t, dec.Decode(&j), "line %d", i+1)
		assert.Equal(t, recs[i], j.Record(), "line %d", i+1)
		var fields map[string]any
		require.NoError(t, json.Unmarshal([]byte(line), &fields))
		assert.Len(t, fields, 10, "line %d has every field", i+1)
	}
	assert.Equal(t, `{"at":0,"cpu":-1,"irql":-1,"thread":1,"kind":100,"what":"create","actor":"pinger","object":"pinger","a":8,"b":0}`, lines[0])
	assert.NoError(t, WriteJSONL(&b, nil))
}

// errWriter fails after n bytes.
type errWriter struct{ n int }

func (w *errWriter) Write(p []byte) (int, error) {
	if len(p) > w.n {
		return 0, fmt.Errorf("disk full")
	}
	w.n -= len(p)
	return len(p), nil
}

func TestWriteErrors(t *testing.T) {
	recs, out := run(t, kernel.DefaultConfig(), busy(100))
	meta := metaFor("busy", out)
	assert.Error(t, WritePerfetto(&errWriter{n: 100}, recs, meta))
	assert.Error(t, WriteJSONL(&errWriter{n: 100}, recs))
	assert.Error(t, WriteHTML(&errWriter{n: 100}, recs, meta))
}

func TestPerfettoKeepsNamesVerbatim(t *testing.T) {
	recs := []des.Record{
		{At: 0, CPU: 0, IRQL: 0, Thread: 1, Kind: kernel.KindSwitch, What: "dispatch", Actor: `a<b>&"c'`, Object: `a<b>&"c'`},
		{At: 1500, CPU: 0, IRQL: 0, Thread: 1, Kind: kernel.KindThread, What: "exit", Object: `a<b>&"c'`},
	}
	b := writePerfetto(t, recs, Meta{Scenario: "<&>"})
	assert.Contains(t, string(b), `"name":"a<b>&\"c'"`)
	assert.NotContains(t, string(b), `\u00`)
	tr := checkTrace(t, b, 1)
	assert.Equal(t, "<&>", tr.OtherData["scenario"])
}

// A perturbed decision is a process-scoped "decision" instant.
func TestPerfettoMarksPerturbations(t *testing.T) {
	recs, out := run(t, kernel.DefaultConfig(), demo)
	meta := metaFor("demo", out)
	meta.Perturbations = []Perturbation{{At: recs[3].At, Actor: 2, Text: "decision 4: kernel: inject preemption → stall"}}
	tr := checkTrace(t, writePerfetto(t, recs, meta), 2)
	n := 0
	for _, e := range tr.TraceEvents {
		if e.Cat == "decision" {
			n++
			assert.Equal(t, "decision 4: kernel: inject preemption → stall", e.Name)
			assert.Equal(t, "i", e.Ph)
		}
	}
	assert.Equal(t, 1, n)
}
