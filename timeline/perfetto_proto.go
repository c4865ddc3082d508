package timeline

import (
	"bufio"
	"cmp"
	"io"
	"math"
	"slices"
	"strconv"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/wqsim/wqsim/des"
)

// WritePerfettoProto writes recs (one run, in emission order) as a native
// Perfetto trace; see WritePerfettoProtoRuns.
func WritePerfettoProto(w io.Writer, recs []des.Record, meta Meta) error {
	return WritePerfettoProtoRuns(w, []Run{{Meta: meta, Records: recs}})
}

// WritePerfettoProtoRuns writes runs as a native Perfetto trace: a stream
// of TracePacket messages (the perfetto.protos.Trace format, which
// ui.perfetto.dev and trace_processor open) carrying TrackEvents. Unlike
// the JSON export it has a track tree, counters with units and flows that
// Perfetto draws:
//
//   - a process track per run (simulated machine), pid 1, 2, ...;
//   - under it a track per processor, "cpu N", with the slices of the
//     JSON export (thread, DPC drain, DPC and ISR routines, spins), and
//     under each processor a counter track "cpu N IRQL" (unit "IRQL");
//   - a thread track per simulated thread, and one "no thread" track per
//     processor, holding an instant for every record (category its kind,
//     the record's fields as debug annotations), so the file has every
//     record; decisions that were perturbed ("inject" records) and
//     coverage marks are among them;
//   - counter tracks under the process for the queue lengths the records
//     determine (see deriveCounters): "ready threads" (unit "threads"),
//     "cancel-safe queues" (unit "IRPs") and "<work queue> waiting" per
//     work queue (unit "items");
//   - a flow from each work item's queue instant to its run instant;
//   - a flow through each IRP's lifecycle (IrpFlows): its first record,
//     pend, cancel-safe queue insert, cancel, removal and completion
//     instants, in order, the last one terminating it;
//   - when meta has them, a "perturbed decisions" track with an instant
//     per non-natural decision (what the schedule did differently).
//
// Timestamps are the virtual nanoseconds themselves. The same records
// always give the same bytes. All packets share one sequence.
func WritePerfettoProtoRuns(w io.Writer, runs []Run) error {
	bw := bufio.NewWriter(w)
	pw := &protoWriter{w: bw}
	flowBase := uint64(0)
	for ri, run := range runs {
		m := buildModel(run.Records, run.Meta.CPUs, run.Meta.End)
		flowBase = pw.run(m, run.Meta, uint64(ri+1), flowBase)
	}
	if pw.err != nil {
		return pw.err
	}
	return bw.Flush()
}

// Field numbers of the Perfetto protos used here (protos/perfetto/trace/
// trace_packet.proto and track_event/*.proto in the Perfetto repository).
const (
	fTracePacket = 1 // Trace.packet

	fPacketTimestamp   = 8
	fPacketSequenceID  = 10 // trusted_packet_sequence_id
	fPacketTrackEvent  = 11
	fPacketSeqFlags    = 13
	fPacketDescriptor  = 60 // track_descriptor
	seqIncrementalDone = 1  // SEQ_INCREMENTAL_STATE_CLEARED

	fTrackUUID    = 1
	fTrackName    = 2
	fTrackProcess = 3
	fTrackThread  = 4
	fTrackParent  = 5
	fTrackCounter = 8

	fProcessPid  = 1
	fProcessName = 6
	fThreadPid   = 1
	fThreadTid   = 2
	fThreadName  = 5

	fCounterUnit     = 3
	fCounterUnitName = 6
	counterUnitCount = 2 // UNIT_COUNT

	fEventAnnotation = 4
	fEventType       = 9
	fEventTrack      = 11
	fEventCategory   = 22
	fEventName       = 23
	fEventCounter    = 30
	fEventFlow       = 47
	fEventFlowEnd    = 48

	eventSliceBegin = 1
	eventSliceEnd   = 2
	eventInstant    = 3
	eventCounter    = 4

	fAnnotationInt    = 4
	fAnnotationString = 6
	fAnnotationName   = 10
)

// Track UUIDs: the run's pid in the high 32 bits, then a kind and an index.
func processUUID(pid uint64) uint64          { return pid << 32 }
func cpuUUID(pid uint64, cpu int) uint64     { return pid<<32 | 0x1000 | uint64(cpu) }
func irqlUUID(pid uint64, cpu int) uint64    { return pid<<32 | 0x2000 | uint64(cpu) }
func looseUUID(pid uint64, cpu int) uint64   { return pid<<32 | 0x3000 | uint64(cpu+1) } // cpu -1: no processor
func threadUUID(pid uint64, id int32) uint64 { return pid<<32 | 0x10000 | uint64(uint32(id)) }
func decisionsUUID(pid uint64) uint64        { return pid<<32 | 0x4000 }
func counterUUID(pid uint64, i int) uint64   { return pid<<32 | 0x5000 | uint64(i) }

// protoWriter appends length-delimited TracePackets to w, keeping the
// first error.
type protoWriter struct {
	w     *bufio.Writer
	err   error
	first bool // the sequence's first packet was written
	pkt   []byte
	buf   []byte
}

// packet writes one TracePacket holding field (a track descriptor or a
// track event) at time at.
func (pw *protoWriter) packet(at des.Time, field protowire.Number, body []byte) {
	p := pw.pkt[:0]
	if at >= 0 {
		p = protowire.AppendTag(p, fPacketTimestamp, protowire.VarintType)
		p = protowire.AppendVarint(p, uint64(at))
	}
	p = protowire.AppendTag(p, fPacketSequenceID, protowire.VarintType)
	p = protowire.AppendVarint(p, 1)
	if !pw.first {
		pw.first = true
		p = protowire.AppendTag(p, fPacketSeqFlags, protowire.VarintType)
		p = protowire.AppendVarint(p, seqIncrementalDone)
	}
	p = appendBytes(p, field, body)
	pw.pkt = p
	out := appendBytes(pw.buf[:0], fTracePacket, p)
	pw.buf = out
	if pw.err == nil {
		_, pw.err = pw.w.Write(out)
	}
}

func appendBytes(b []byte, n protowire.Number, v []byte) []byte {
	b = protowire.AppendTag(b, n, protowire.BytesType)
	return protowire.AppendBytes(b, v)
}

func appendString(b []byte, n protowire.Number, s string) []byte {
	b = protowire.AppendTag(b, n, protowire.BytesType)
	return protowire.AppendString(b, s)
}

func appendVarint(b []byte, n protowire.Number, v uint64) []byte {
	b = protowire.AppendTag(b, n, protowire.VarintType)
	return protowire.AppendVarint(b, v)
}

// protoRun is what one run's events are made from: the model, the
// derived counters and each record's place in an IRP flow.
type protoRun struct {
	m        *model
	pid      uint64
	flowBase uint64 // work-item flow IDs are flowBase+ID, IRP flows follow them
	counters []counterSeries
	irpStep  map[int]irpFlowEnd // record index → its IRP flow
}

// irpFlowEnd is a record's place in an IRP flow: the flow's Perfetto ID
// and whether the record ends it.
type irpFlowEnd struct {
	id   uint64
	step IrpStep
	last bool
}

// run writes one run's track tree, then its events in time order, and
// returns the flow base of the next run.
func (pw *protoWriter) run(m *model, meta Meta, pid, flowBase uint64) uint64 {
	pr := &protoRun{m: m, pid: pid, flowBase: flowBase, counters: deriveCounters(m.recs, m.start),
		irpStep: map[int]irpFlowEnd{}}
	irpBase := flowBase + uint64(len(m.flows))
	flows := IrpFlows(m.recs)
	for _, f := range flows {
		for j, rec := range f.Recs {
			pr.irpStep[rec] = irpFlowEnd{id: irpBase + uint64(f.ID), step: f.Steps[j], last: j == len(f.Recs)-1}
		}
	}
	pw.tracks(m, meta, pid)
	pw.counterTracks(pr)
	evs := protoEvents(pr)
	if len(meta.Perturbations) > 0 {
		pw.descriptor(decisionsUUID(pid), processUUID(pid), "perturbed decisions", 0, nil)
		evs = mergePerturbations(evs, meta.Perturbations, pid)
	}
	for _, e := range evs {
		pw.packet(e.at, fPacketTrackEvent, e.body)
	}
	return irpBase + uint64(len(flows))
}

// counterTracks describes the derived counters, under the process.
func (pw *protoWriter) counterTracks(pr *protoRun) {
	for i, c := range pr.counters {
		var ctr []byte
		ctr = appendVarint(ctr, fCounterUnit, counterUnitCount)
		ctr = appendString(ctr, fCounterUnitName, counterUnits[c.kind])
		pw.descriptor(counterUUID(pr.pid, i), processUUID(pr.pid), c.name, fTrackCounter, ctr)
	}
}

// tracks writes the descriptors: the process, its processors with their
// IRQL counters, its threads and the tracks of records without a thread.
func (pw *protoWriter) tracks(m *model, meta Meta, pid uint64) {
	var proc []byte
	proc = appendVarint(proc, fProcessPid, pid)
	proc = appendString(proc, fProcessName, machineName(meta))
	pw.descriptor(processUUID(pid), 0, "", fTrackProcess, proc)
	for c := 0; c < m.cpus; c++ {
		name := "cpu " + strconv.Itoa(c)
		pw.descriptor(cpuUUID(pid, c), processUUID(pid), name, 0, nil)
		var ctr []byte
		ctr = appendVarint(ctr, fCounterUnit, counterUnitCount)
		ctr = appendString(ctr, fCounterUnitName, "IRQL")
		pw.descriptor(irqlUUID(pid, c), cpuUUID(pid, c), name+" IRQL", fTrackCounter, ctr)
	}
	for _, c := range looseTracks(m) {
		name := "no thread, no cpu"
		if c >= 0 {
			name = "cpu " + strconv.Itoa(c) + " (no thread)"
		}
		pw.descriptor(looseUUID(pid, c), processUUID(pid), name, 0, nil)
	}
	for _, th := range recordThreads(m) {
		var td []byte
		td = appendVarint(td, fThreadPid, pid)
		td = appendVarint(td, fThreadTid, uint64(th.id))
		td = appendString(td, fThreadName, th.name)
		pw.descriptor(threadUUID(pid, th.id), processUUID(pid), "", fTrackThread, td)
	}
}

// descriptor writes a TrackDescriptor; kind and body add a process,
// thread or counter descriptor when kind is not 0.
func (pw *protoWriter) descriptor(uuid, parent uint64, name string, kind protowire.Number, body []byte) {
	var d []byte
	d = appendVarint(d, fTrackUUID, uuid)
	if parent != 0 {
		d = appendVarint(d, fTrackParent, parent)
	}
	if name != "" {
		d = appendString(d, fTrackName, name)
	}
	if kind != 0 {
		d = appendBytes(d, kind, body)
	}
	pw.packet(-1, fPacketDescriptor, d)
}

// mergePerturbations adds an instant per perturbed decision on the
// "perturbed decisions" track, at its time, after the events already there.
func mergePerturbations(evs []protoEvent, ps []Perturbation, pid uint64) []protoEvent {
	for i, p := range ps {
		var b []byte
		b = appendVarint(b, fEventType, eventInstant)
		b = appendVarint(b, fEventTrack, decisionsUUID(pid))
		b = appendString(b, fEventCategory, "decision")
		b = appendString(b, fEventName, p.Text)
		b = appendTextAnnotation(b, "kind", "decision")
		if p.Actor != 0 {
			b = appendIntAnnotation(b, "thread", int64(p.Actor))
		}
		evs = append(evs, protoEvent{at: p.At, ord: math.MaxInt - len(ps) + i, body: b})
	}
	slices.SortStableFunc(evs, func(a, b protoEvent) int { return cmp.Compare(a.at, b.at) })
	return evs
}

// recordThreads lists the threads that emitted records, by id, each with
// the first name it acted under.
func recordThreads(m *model) []threadInfo {
	seen := map[int32]bool{}
	var out []threadInfo
	for i := range m.recs {
		r := &m.recs[i]
		if r.Thread != 0 && !seen[r.Thread] {
			seen[r.Thread] = true
			out = append(out, threadInfo{id: r.Thread, name: r.Actor})
		}
	}
	slices.SortFunc(out, func(a, b threadInfo) int { return cmp.Compare(a.id, b.id) })
	return out
}

// looseTracks lists the processors (-1: none) that have records of no
// thread, in order.
func looseTracks(m *model) []int {
	var out []int
	for i := range m.recs {
		r := &m.recs[i]
		if r.Thread == 0 && !slices.Contains(out, int(r.CPU)) {
			out = append(out, int(r.CPU))
		}
	}
	slices.Sort(out)
	return out
}

// protoEvent is one encoded TrackEvent and where it sorts.
type protoEvent struct {
	at   des.Time
	end  bool // a slice end: before other events at the same time
	ord  int
	body []byte
}

// protoEvents returns a run's slices, instants, IRQL and derived counter
// values in time order (ends first at equal times, then emission order;
// derived counter values after the rest of their instant).
func protoEvents(pr *protoRun) []protoEvent {
	m, pid := pr.m, pr.pid
	var evs []protoEvent
	for _, s := range m.slices {
		track := cpuUUID(pid, s.cpu)
		var b []byte
		b = appendVarint(b, fEventType, eventSliceBegin)
		b = appendVarint(b, fEventTrack, track)
		b = appendString(b, fEventCategory, sliceCats[s.kind])
		b = appendString(b, fEventName, s.name)
		evs = append(evs, protoEvent{at: s.start, ord: s.openOrd, body: b})
		var e []byte
		e = appendVarint(e, fEventType, eventSliceEnd)
		e = appendVarint(e, fEventTrack, track)
		// A zero-length slice's end must follow its own begin, so only
		// slices with a length sort their end before other events.
		evs = append(evs, protoEvent{at: s.end, end: s.end > s.start, ord: s.closeOrd, body: e})
	}
	for _, list := range [][]instant{m.instants, m.shaping} {
		for _, in := range list {
			evs = append(evs, protoEvent{at: in.at, ord: in.ord, body: protoInstant(pr, in)})
		}
	}
	for c, pts := range m.irql {
		for _, p := range pts {
			var b []byte
			b = appendVarint(b, fEventType, eventCounter)
			b = appendVarint(b, fEventTrack, irqlUUID(pid, c))
			b = appendVarint(b, fEventCounter, uint64(int64(p.level)))
			evs = append(evs, protoEvent{at: p.at, ord: p.ord, body: b})
		}
	}
	for i, c := range pr.counters {
		for _, p := range c.points {
			var b []byte
			b = appendVarint(b, fEventType, eventCounter)
			b = appendVarint(b, fEventTrack, counterUUID(pid, i))
			b = appendVarint(b, fEventCounter, uint64(p.v))
			evs = append(evs, protoEvent{at: p.at, ord: math.MaxInt/2 + p.rec, body: b})
		}
	}
	slices.SortStableFunc(evs, func(a, b protoEvent) int {
		if a.at != b.at {
			return cmp.Compare(a.at, b.at)
		}
		if a.end != b.end {
			if a.end {
				return -1
			}
			return 1
		}
		return cmp.Compare(a.ord, b.ord)
	})
	return evs
}

// protoInstant encodes record in.rec as an instant on its thread's track
// (or its processor's "no thread" track), with its work-item flow end and
// its IRP flow step, if any.
func protoInstant(pr *protoRun, in instant) []byte {
	m, pid := pr.m, pr.pid
	r := &m.recs[in.rec]
	track := looseUUID(pid, int(r.CPU))
	if r.Thread != 0 {
		track = threadUUID(pid, r.Thread)
	}
	name := string(r.What)
	if r.Object != "" {
		name += " " + r.Object
	}
	var b []byte
	b = appendVarint(b, fEventType, eventInstant)
	b = appendVarint(b, fEventTrack, track)
	b = appendString(b, fEventCategory, in.cat)
	b = appendString(b, fEventName, name)
	b = appendTextAnnotation(b, "kind", KindName(r.Kind))
	b = appendTextAnnotation(b, "what", string(r.What))
	b = appendTextAnnotation(b, "actor", r.Actor)
	b = appendTextAnnotation(b, "object", r.Object)
	b = appendIntAnnotation(b, "a", r.A)
	b = appendIntAnnotation(b, "b", r.B)
	if r.CPU >= 0 {
		b = appendIntAnnotation(b, "cpu", int64(r.CPU))
	}
	if r.IRQL >= 0 {
		b = appendIntAnnotation(b, "irql", int64(r.IRQL))
	}
	if in.flow != 0 {
		n := protowire.Number(fEventFlow)
		if in.role == FlowRun {
			n = fEventFlowEnd
		}
		b = protowire.AppendTag(b, n, protowire.Fixed64Type)
		b = protowire.AppendFixed64(b, pr.flowBase+uint64(in.flow))
	}
	if f, ok := pr.irpStep[in.rec]; ok {
		b = appendTextAnnotation(b, "irp step", f.step.String())
		n := protowire.Number(fEventFlow)
		if f.last {
			n = fEventFlowEnd
		}
		b = protowire.AppendTag(b, n, protowire.Fixed64Type)
		b = protowire.AppendFixed64(b, f.id)
	}
	return b
}

// appendTextAnnotation adds a debug annotation with a string value,
// unless the value is empty.
func appendTextAnnotation(b []byte, name, v string) []byte {
	if v == "" {
		return b
	}
	var a []byte
	a = appendString(a, fAnnotationName, name)
	a = appendString(a, fAnnotationString, v)
	return appendBytes(b, fEventAnnotation, a)
}

// appendIntAnnotation adds a debug annotation with an integer value.
func appendIntAnnotation(b []byte, name string, v int64) []byte {
	var a []byte
	a = appendString(a, fAnnotationName, name)
	a = appendVarint(a, fAnnotationInt, uint64(v))
	return appendBytes(b, fEventAnnotation, a)
}
