package timeline

import (
	"bytes"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/wqsim/wqsim/des"
	"github.com/wqsim/wqsim/kernel"
	"github.com/wqsim/wqsim/queues"
)

// decodedTrack is a TrackDescriptor read back from the file.
type decodedTrack struct {
	parent  uint64
	name    string
	kind    protowire.Number // fTrackProcess, fTrackThread, fTrackCounter or 0
	unit    string
	threadN string
}

// decodedEvent is a TrackEvent read back, with its packet's timestamp.
type decodedEvent struct {
	at        uint64
	typ       uint64
	track     uint64
	name, cat string
	counter   int64
	flows     []uint64
	flowEnds  []uint64
	annots    map[string]any
}

// decodeProto parses a Perfetto protobuf trace into descriptors and
// events, failing on anything malformed.
func decodeProto(t *testing.T, b []byte) (map[uint64]decodedTrack, []decodedEvent) {
	t.Helper()
	tracks := map[uint64]decodedTrack{}
	var evs []decodedEvent
	eachField(t, b, func(n protowire.Number, _ protowire.Type, v []byte, _ uint64) {
		require.Equal(t, protowire.Number(fTracePacket), n, "a Trace holds only packets")
		var at uint64
		var haveAt, seq bool
		eachField(t, v, func(n protowire.Number, _ protowire.Type, v []byte, x uint64) {
			switch n {
			case fPacketTimestamp:
				at, haveAt = x, true
			case fPacketSequenceID:
				seq = x == 1
			case fPacketDescriptor:
				uuid, d := decodeTrack(t, v)
				_, dup := tracks[uuid]
				require.False(t, dup, "track %#x described twice", uuid)
				tracks[uuid] = d
			case fPacketTrackEvent:
				require.True(t, haveAt, "a track event's packet has a timestamp")
				evs = append(evs, decodeEvent(t, v, at))
			}
		})
		require.True(t, seq, "every packet is on sequence 1")
	})
	return tracks, evs
}

func decodeTrack(t *testing.T, b []byte) (uint64, decodedTrack) {
	var uuid uint64
	var d decodedTrack
	eachField(t, b, func(n protowire.Number, _ protowire.Type, v []byte, x uint64) {
		switch n {
		case fTrackUUID:
			uuid = x
		case fTrackParent:
			d.parent = x
		case fTrackName:
			d.name = string(v)
		case fTrackProcess, fTrackThread, fTrackCounter:
			d.kind = n
			eachField(t, v, func(m protowire.Number, _ protowire.Type, v []byte, _ uint64) {
				switch {
				case n == fTrackCounter && m == fCounterUnitName:
					d.unit = string(v)
				case n == fTrackThread && m == fThreadName:
					d.threadN = string(v)
				}
			})
		}
	})
	require.NotZero(t, uuid, "every track has a uuid")
	return uuid, d
}

func decodeEvent(t *testing.T, b []byte, at uint64) decodedEvent {
	e := decodedEvent{at: at, annots: map[string]any{}}
	eachField(t, b, func(n protowire.Number, _ protowire.Type, v []byte, x uint64) {
		switch n {
		case fEventType:
			e.typ = x
		case fEventTrack:
			e.track = x
		case fEventName:
			e.name = string(v)
		case fEventCategory:
			e.cat = string(v)
		case fEventCounter:
			e.counter = int64(x)
		case fEventFlow:
			e.flows = append(e.flows, x)
		case fEventFlowEnd:
			e.flowEnds = append(e.flowEnds, x)
		case fEventAnnotation:
			var name string
			var val any
			eachField(t, v, func(m protowire.Number, _ protowire.Type, v []byte, x uint64) {
				switch m {
				case fAnnotationName:
					name = string(v)
				case fAnnotationString:
					val = string(v)
				case fAnnotationInt:
					val = int64(x)
				}
			})
			e.annots[name] = val
		}
	})
	return e
}

// eachField calls f for every field of message b: the bytes of a
// length-delimited field, the value of a varint or fixed64.
func eachField(t *testing.T, b []byte, f func(protowire.Number, protowire.Type, []byte, uint64)) {
	t.Helper()
	for len(b) > 0 {
		n, typ, l := protowire.ConsumeTag(b)
		require.GreaterOrEqual(t, l, 0, "bad tag: %v", protowire.ParseError(l))
		b = b[l:]
		switch typ {
		case protowire.VarintType:
			v, l := protowire.ConsumeVarint(b)
			require.GreaterOrEqual(t, l, 0)
			f(n, typ, nil, v)
			b = b[l:]
		case protowire.Fixed64Type:
			v, l := protowire.ConsumeFixed64(b)
			require.GreaterOrEqual(t, l, 0)
			f(n, typ, nil, v)
			b = b[l:]
		case protowire.BytesType:
			v, l := protowire.ConsumeBytes(b)
			require.GreaterOrEqual(t, l, 0)
			f(n, typ, v, 0)
			b = b[l:]
		default:
			t.Fatalf("field %d has wire type %d, which this exporter never writes", n, typ)
		}
	}
}

func writeProto(t *testing.T, runs ...Run) []byte {
	t.Helper()
	var b bytes.Buffer
	require.NoError(t, WritePerfettoProtoRuns(&b, runs))
	return b.Bytes()
}

// TestPerfettoProtoDecodes writes runs with threads, DPCs, ISRs, spins and
// work items, decodes the file back and checks the track tree, that
// slices nest on their tracks, counters have units, every record is an
// instant, every flow has two ends, and a run's time never goes back.
func TestPerfettoProtoDecodes(t *testing.T) {
	recs, out := run(t, demoConfig(), demo)
	cfg := kernel.DefaultConfig()
	cfg.Processors = 3
	recs2, out2 := run(t, cfg, busy(50))
	meta := metaFor("demo", out)
	meta.Perturbations = []Perturbation{{At: recs[5].At, Actor: 1, Text: "decision 3: kernel: inject preemption → early quantum end"}}
	runs := []Run{{Meta: meta, Records: recs}, {Meta: metaFor("busy", out2), Records: recs2}}
	b := writeProto(t, runs...)
	assert.Equal(t, b, writeProto(t, runs...), "the same records give the same bytes")

	tracks, evs := decodeProto(t, b)
	processes := 0
	for uuid, d := range tracks {
		if d.kind == fTrackProcess {
			processes++
			continue
		}
		p, ok := tracks[d.parent]
		require.True(t, ok, "track %#x (%q) has a parent that exists", uuid, d.name)
		switch {
		case d.kind == fTrackCounter && strings.HasSuffix(d.name, " IRQL"):
			assert.Equal(t, "IRQL", d.unit, "counter %q has its unit", d.name)
			assert.Contains(t, p.name, "cpu", "an IRQL counter sits under its processor")
		case d.kind == fTrackCounter:
			assert.Contains(t, []string{"threads", "IRPs", "items"}, d.unit, "counter %q has its unit", d.name)
			assert.Equal(t, protowire.Number(fTrackProcess), p.kind, "a queue counter sits under its machine")
		}
	}
	assert.Equal(t, 2, processes, "a process per run")

	depth := map[uint64]int{}
	instants, counters := 0, 0
	flowStarts, flowEnds := map[uint64]int{}, map[uint64]int{}
	last := map[uint64]uint64{} // per run (the uuid's high half)
	for _, e := range evs {
		require.GreaterOrEqual(t, e.at, last[e.track>>32], "a run's events are in time order")
		last[e.track>>32] = e.at
		d, ok := tracks[e.track]
		require.True(t, ok, "event %q is on a described track", e.name)
		switch e.typ {
		case eventSliceBegin:
			require.NotEmpty(t, e.name)
			require.NotEmpty(t, e.cat)
			depth[e.track]++
		case eventSliceEnd:
			depth[e.track]--
			require.GreaterOrEqual(t, depth[e.track], 0, "an end closes an open slice on track %q", d.name)
		case eventInstant:
			instants++
			require.NotEmpty(t, e.cat)
			require.Contains(t, e.annots, "kind")
		case eventCounter:
			counters++
			require.Equal(t, protowire.Number(fTrackCounter), d.kind, "counter values go to counter tracks")
			require.True(t, e.counter >= 0 && (e.counter <= 31 || d.unit != "IRQL"), "IRQL %d", e.counter)
		default:
			t.Fatalf("unknown event type %d", e.typ)
		}
		for _, f := range e.flows {
			flowStarts[f]++
		}
		for _, f := range e.flowEnds {
			flowEnds[f]++
		}
	}
	for tr, n := range depth {
		assert.Zero(t, n, "every slice on %q ends", tracks[tr].name)
	}
	assert.Equal(t, len(recs)+len(recs2)+1, instants, "every record is an instant, and the perturbed decision")
	decisions := 0
	for _, e := range evs {
		if e.cat == "decision" {
			decisions++
			assert.Equal(t, "perturbed decisions", tracks[e.track].name)
			assert.Contains(t, e.name, "early quantum end")
		}
	}
	assert.Equal(t, 1, decisions)
	assert.Positive(t, counters)
	require.NotEmpty(t, flowStarts, "the runs queue work items")
	for id := range flowEnds {
		assert.Contains(t, flowStarts, id, "every flow that ends starts")
	}
	for id, n := range flowEnds {
		assert.Equal(t, 1, n, "flow %d ends once", id)
	}
	for id := range flowStarts {
		assert.Contains(t, flowEnds, id, "every flow that starts ends")
	}
}

func TestPerfettoProtoEmpty(t *testing.T) {
	b := writeProto(t, Run{Meta: Meta{Scenario: "empty"}, Records: []des.Record{}})
	tracks, evs := decodeProto(t, b)
	for _, e := range evs {
		assert.Equal(t, uint64(eventCounter), e.typ, "no records: only the IRQL counters' start values")
	}
	assert.NotEmpty(t, tracks, "the process and processor tracks are still described")
}

// counterValues returns the values of the counter track named name, in
// order, and its unit.
func counterValues(t *testing.T, tracks map[uint64]decodedTrack, evs []decodedEvent, name string) ([]int64, string) {
	t.Helper()
	var uuid uint64
	for u, d := range tracks {
		if d.kind == fTrackCounter && d.name == name {
			require.Zero(t, uuid, "one counter track named %q", name)
			uuid = u
		}
	}
	require.NotZero(t, uuid, "a counter track named %q", name)
	var vs []int64
	for _, e := range evs {
		if e.track == uuid {
			require.Equal(t, uint64(eventCounter), e.typ)
			vs = append(vs, e.counter)
		}
	}
	return vs, tracks[uuid].unit
}

// TestPerfettoProtoReadyCounter runs three equal threads on one processor,
// each computing and exiting: two wait while the first runs, then one,
// then none.
func TestPerfettoProtoReadyCounter(t *testing.T) {
	cfg := kernel.DefaultConfig()
	cfg.Processors = 1
	recs, out := run(t, cfg, func(k *kernel.Kernel) {
		for _, name := range []string{"a", "b", "c"} {
			k.PsCreateSystemThread(name, 8, func() { k.Compute(100 * des.Microsecond) })
		}
	})
	tracks, evs := decodeProto(t, writeProto(t, Run{Meta: metaFor("ready", out), Records: recs}))
	vs, unit := counterValues(t, tracks, evs, "ready threads")
	assert.Equal(t, "threads", unit)
	assert.Equal(t, []int64{2, 1, 0}, vs, "three created at once, one runs; then each exit lets the next run")
}

// csqDriver is a driver with one cancel-safe queue kept in a slice,
// guarded by a spin lock, that completes cancelled IRPs.
type csqDriver struct {
	k    *kernel.Kernel
	csq  queues.IO_CSQ
	lock *kernel.KSPIN_LOCK
	list []*kernel.IRP
}

func newCsqDriver(k *kernel.Kernel) *csqDriver {
	d := &csqDriver{k: k, lock: k.KeInitializeSpinLock("queue")}
	d.csq.Name = "reads"
	queues.IoCsqInitialize(k, &d.csq,
		func(_ *queues.IO_CSQ, irp *kernel.IRP) { d.list = append(d.list, irp) },
		func(_ *queues.IO_CSQ, irp *kernel.IRP) {
			d.list = slices.DeleteFunc(d.list, func(x *kernel.IRP) bool { return x == irp })
		},
		func(_ *queues.IO_CSQ, irp *kernel.IRP, _ any) *kernel.IRP {
			i := 0
			if irp != nil {
				i = slices.Index(d.list, irp) + 1
			}
			if i < len(d.list) {
				return d.list[i]
			}
			return nil
		},
		func(*queues.IO_CSQ) kernel.IRQL { return k.KeAcquireSpinLock(d.lock) },
		func(_ *queues.IO_CSQ, old kernel.IRQL) { k.KeReleaseSpinLock(d.lock, old) },
		func(_ *queues.IO_CSQ, irp *kernel.IRP) { d.complete(irp, kernel.STATUS_CANCELLED) })
	return d
}

func (d *csqDriver) complete(irp *kernel.IRP, st kernel.NTSTATUS) {
	irp.IoStatus.Status = st
	d.k.IoCompleteRequest(irp, kernel.IO_NO_INCREMENT)
}

// TestPerfettoProtoQueueCountersAndIrpFlows decodes a one-processor run
// whose driver thread (above the workers' priority) queues three work
// items, inserts three IRPs into a cancel-safe queue, cancels the second
// and drains the rest; then one delayed worker runs the items. It checks
// every value of the work-queue and cancel-safe-queue counters and the
// cancelled IRP's flow, step by step.
func TestPerfettoProtoQueueCountersAndIrpFlows(t *testing.T) {
	cfg := kernel.DefaultConfig()
	cfg.Processors = 1
	recs, out := run(t, cfg, func(k *kernel.Kernel) {
		pcfg := queues.DefaultPoolConfig()
		sys := queues.MustNewSystem(k, pcfg)
		d := newCsqDriver(k)
		items := make([]queues.WORK_QUEUE_ITEM, 3)
		k.PsCreateSystemThread("driver", 20, func() {
			for i := range items {
				queues.ExInitializeWorkItem(&items[i], func(any) { k.Compute(10 * des.Microsecond) }, i)
				sys.ExQueueWorkItem(&items[i], queues.DelayedWorkQueue)
			}
			irps := []*kernel.IRP{k.IoAllocateIrp("r1"), k.IoAllocateIrp("r2"), k.IoAllocateIrp("r3")}
			for _, irp := range irps {
				queues.IoCsqInsertIrp(&d.csq, irp, nil)
			}
			k.IoCancelIrp(irps[1])
			for irp := queues.IoCsqRemoveNextIrp(&d.csq, nil); irp != nil; irp = queues.IoCsqRemoveNextIrp(&d.csq, nil) {
				d.complete(irp, kernel.STATUS_SUCCESS)
			}
		})
	})
	require.NoError(t, out.Err)
	tracks, evs := decodeProto(t, writeProto(t, Run{Meta: metaFor("queues", out), Records: recs}))

	vs, unit := counterValues(t, tracks, evs, "DelayedWorkQueue waiting")
	assert.Equal(t, "items", unit)
	assert.Equal(t, []int64{0, 1, 2, 3, 2, 1, 0}, vs, "three queued, then taken one by one")
	vs, unit = counterValues(t, tracks, evs, "cancel-safe queues")
	assert.Equal(t, "IRPs", unit)
	assert.Equal(t, []int64{0, 1, 2, 3, 2, 1, 0}, vs, "three inserted, one cancelled, two removed")

	// The cancelled IRP's flow: every lifecycle instant carries one flow
	// ID, the last one terminates it.
	var steps []string
	var ids []uint64
	for _, e := range evs {
		if e.typ != eventInstant || !strings.Contains(e.name, "irp 2 (r2)") || e.annots["irp step"] == nil {
			continue
		}
		steps = append(steps, e.annots["irp step"].(string))
		ids = append(ids, e.flows...)
		ids = append(ids, e.flowEnds...)
		if e.annots["irp step"] == "complete" {
			assert.Len(t, e.flowEnds, 1, "the completion ends the flow")
		} else {
			assert.Len(t, e.flows, 1, "%s continues the flow", e.annots["irp step"])
		}
	}
	assert.Equal(t, []string{"issue", "queue", "pend", "cancel", "dequeue", "complete"}, steps)
	require.NotEmpty(t, ids)
	for _, id := range ids {
		assert.Equal(t, ids[0], id, "one flow ID for the IRP's lifecycle")
	}
	// The three IRPs have three flows, apart from the work items' flows.
	irpFlows := map[uint64]bool{}
	for _, e := range evs {
		if e.annots["irp step"] != nil {
			for _, id := range append(e.flows, e.flowEnds...) {
				irpFlows[id] = true
			}
		}
	}
	assert.Len(t, irpFlows, 3)
}

// TestPerfettoProtoReadyCounterCountsWakes: on one processor, a waits for
// an event that b sets without a boost, so a stays ready (woken, not
// running) until b exits.
func TestPerfettoProtoReadyCounterCountsWakes(t *testing.T) {
	cfg := kernel.DefaultConfig()
	cfg.Processors = 1
	recs, out := run(t, cfg, func(k *kernel.Kernel) {
		ev := k.KeInitializeEvent("go", kernel.NotificationEvent, false)
		k.PsCreateSystemThread("a", 8, func() {
			k.KeWaitForSingleObject(ev, kernel.Infinite)
			k.Compute(10 * des.Microsecond)
		})
		k.PsCreateSystemThread("b", 8, func() {
			k.Compute(10 * des.Microsecond)
			k.KeSetEvent(ev, kernel.IO_NO_INCREMENT, false)
			k.Compute(100 * des.Microsecond)
		})
	})
	require.NoError(t, out.Err)
	tracks, evs := decodeProto(t, writeProto(t, Run{Meta: metaFor("wake", out), Records: recs}))
	vs, _ := counterValues(t, tracks, evs, "ready threads")
	assert.Equal(t, []int64{1, 0, 1, 0}, vs, "b waits while a runs; a blocks, b runs; b's set wakes a, ready until b exits")
}
