package des

import (
	"io"
	"strconv"
)

// Kind is the stable numeric identity of a trace record kind; the layer that
// emits a record defines its kinds. It is part of the trace hash.
type Kind uint16

// What is a record's sub-kind within its Kind ("wait", "preempt",
// "run-dpc"): a readable name the text trace prints and the trace hash
// covers. The layer that emits a record declares its values as constants,
// so readers of traces compare against those, never against text.
type What string

// Record is one typed trace record. Every field is a number or a string the
// emitter already holds (a thread's name, a constant), so emitting a record
// allocates nothing.
type Record struct {
	At     Time
	CPU    int16  // processor, -1 when the record belongs to none
	IRQL   int8   // the processor's IRQL, -1 when not applicable
	Thread int32  // acting thread id, 0 when none
	Kind   Kind   // stable kind number
	What   What   // the sub-kind, e.g. "wait"
	Actor  string // who acted: a thread, DPC or driver name
	Object string // what was acted on: "event teardown", "irp 3"
	A, B   int64  // kind-specific arguments
}

// Sink receives trace records as they are emitted. The record is only valid
// during the call; a sink that keeps it must copy it.
type Sink interface {
	Write(r *Record)
}

// TextSink writes one line per record in the readable text form:
//
//	TIME          CPU IRQL ACTOR            WHAT          OBJECT  A B
//	0.000150000s  cpu0 i0  worker.delayed.0 wait          event:done  0 0
//
// Columns: virtual time in seconds; processor ("-" when none); IRQL ("-");
// acting thread, DPC or driver; record kind; object; the two kind-specific
// arguments. Fields are separated by single spaces and padded for reading;
// empty strings print as "-".
type TextSink struct {
	W   io.Writer
	buf []byte
	Err error // first write error, after which the sink stops writing
}

// Write implements Sink.
func (s *TextSink) Write(r *Record) {
	if s.Err != nil {
		return
	}
	s.buf = AppendRecordText(s.buf[:0], r)
	s.buf = append(s.buf, '\n')
	_, s.Err = s.W.Write(s.buf)
}

// AppendRecordText appends the text form of r (without newline) to b.
func AppendRecordText(b []byte, r *Record) []byte {
	start := len(b)
	b = AppendTime(b, r.At)
	b = pad(b, start+13)
	start = len(b)
	if r.CPU < 0 {
		b = append(b, "-"...)
	} else {
		b = append(b, "cpu"...)
		b = strconv.AppendInt(b, int64(r.CPU), 10)
	}
	b = pad(b, start+6)
	start = len(b)
	if r.IRQL < 0 {
		b = append(b, '-')
	} else {
		b = append(b, 'i')
		b = strconv.AppendInt(b, int64(r.IRQL), 10)
	}
	b = pad(b, start+4)
	b = appendField(b, r.Actor, 22)
	b = appendField(b, string(r.What), 16)
	b = appendField(b, r.Object, 24)
	b = strconv.AppendInt(b, r.A, 10)
	b = append(b, ' ')
	return strconv.AppendInt(b, r.B, 10)
}

func appendField(b []byte, s string, width int) []byte {
	start := len(b)
	if s == "" {
		s = "-"
	}
	b = append(b, s...)
	return pad(b, start+width)
}

// pad appends spaces up to column end, and always at least one.
func pad(b []byte, end int) []byte {
	b = append(b, ' ')
	for len(b) < end {
		b = append(b, ' ')
	}
	return b
}

// RecordSink keeps every record in memory, for tests and exporters.
type RecordSink struct {
	Records []Record
}

// Write implements Sink.
func (s *RecordSink) Write(r *Record) { s.Records = append(s.Records, *r) }

// MultiSink fans records out to several sinks in order.
type MultiSink []Sink

// Write implements Sink.
func (m MultiSink) Write(r *Record) {
	for _, s := range m {
		s.Write(r)
	}
}

// The trace hash mixes whole 64-bit words (a multiply-xorshift step, as in
// splitmix64), so it is fast and, being defined here rather than by the Go
// runtime, stable across Go versions and machines.
const (
	hashSeed  uint64 = 0x6a09e667f3bcc908
	hashMulti uint64 = 0x9e3779b97f4a7c15
)

func hashUint(h, v uint64) uint64 {
	h ^= v
	h *= hashMulti
	return h ^ (h >> 29)
}

func hashString(h uint64, s string) uint64 {
	h = hashUint(h, uint64(len(s)))
	for len(s) >= 8 {
		h = hashUint(h, uint64(s[0])|uint64(s[1])<<8|uint64(s[2])<<16|uint64(s[3])<<24|
			uint64(s[4])<<32|uint64(s[5])<<40|uint64(s[6])<<48|uint64(s[7])<<56)
		s = s[8:]
	}
	var last uint64
	for i := 0; i < len(s); i++ {
		last |= uint64(s[i]) << (8 * i)
	}
	return hashUint(h, last)
}

// HashRecord folds r into the running trace hash h. It covers every field
// the text trace shows: time, processor, IRQL, thread, kind, sub-kind
// (What), actor, object and both arguments.
func HashRecord(h uint64, r *Record) uint64 {
	h = hashUint(h, uint64(r.At))
	h = hashUint(h, uint64(uint16(r.CPU))|uint64(uint8(r.IRQL))<<16|uint64(uint32(r.Thread))<<24|uint64(r.Kind)<<56)
	h = hashString(h, string(r.What))
	h = hashString(h, r.Actor)
	h = hashString(h, r.Object)
	h = hashUint(h, uint64(r.A))
	return hashUint(h, uint64(r.B))
}

// tailRing keeps the last records of a run for failure reports.
type tailRing struct {
	recs []Record
	next int
	full bool
}

func (t *tailRing) add(r *Record) {
	if len(t.recs) == 0 {
		return
	}
	t.recs[t.next] = *r
	t.next++
	if t.next == len(t.recs) {
		t.next, t.full = 0, true
	}
}

func (t *tailRing) snapshot() []Record {
	n := t.next
	if t.full {
		n = len(t.recs)
	}
	return t.appendTo(make([]Record, 0, n))
}

// appendTo appends the kept records to out, oldest first.
func (t *tailRing) appendTo(out []Record) []Record {
	if !t.full {
		return append(out, t.recs[:t.next]...)
	}
	out = append(out, t.recs[t.next:]...)
	return append(out, t.recs[:t.next]...)
}

func (t *tailRing) reset() { t.next, t.full = 0, false }
