package des

import (
	"io"
	"math/bits"
	"strconv"
	"unsafe"
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
	f := argFormats[kindWhat{r.Kind, r.What}]
	b = appendArg(b, r.A, f[0])
	b = append(b, ' ')
	return appendArg(b, r.B, f[1])
}

// ArgBase says how the text form writes one of a record's two numbers.
type ArgBase uint8

// The bases a layer can ask for.
const (
	Decimal ArgBase = iota // counts, times, priorities: the default
	Hex                    // status and bug-check codes and parameters: 0xC0000120
)

// kindWhat names a record shape: its kind and what.
type kindWhat struct {
	kind Kind
	what What
}

// argFormats holds the bases the layers registered; written by init
// functions only, so concurrent text sinks read it safely.
var argFormats = map[kindWhat][2]ArgBase{}

// ShowArgsAs makes the text form write the A and B of records of kind and
// what in bases a and b: a layer calls it from an init function for
// records whose numbers are codes (an NTSTATUS is unreadable in decimal).
// The trace hash covers the numbers, not their text, so it does not
// change.
func ShowArgsAs(kind Kind, what What, a, b ArgBase) {
	argFormats[kindWhat{kind, what}] = [2]ArgBase{a, b}
}

func appendArg(b []byte, v int64, base ArgBase) []byte {
	if base != Hex || v < 0 {
		return strconv.AppendInt(b, v, 10)
	}
	b = append(b, "0x"...)
	start := len(b)
	b = strconv.AppendUint(b, uint64(v), 16)
	for i := start; i < len(b); i++ {
		if c := b[i]; c >= 'a' && c <= 'f' {
			b[i] = c - 'a' + 'A'
		}
	}
	return b
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

// The trace hash is defined here rather than by the Go runtime, so it is
// stable across Go versions and machines. It mixes whole 64-bit words (a
// multiply-xorshift step, as in splitmix64).
//
// Version 4 (the current one) first reduces each record to one 64-bit
// digest and folds only that digest into the running hash, so the serial
// chain from one record to the next is a single mixing step; the digest's
// parts are independent 64x64->128-bit multiplications the processor
// overlaps. Strings enter the digest as their own 64-bit digests, which a
// Sim caches (the same few thread, object and sub-kind names recur in every
// record). Version 3, the word-by-word chain over every field, is kept for
// replaying fail files written before version 4 (Config.HashV3).
const (
	hashSeed  uint64 = 0x6a09e667f3bcc908
	hashMulti uint64 = 0x9e3779b97f4a7c15
)

// Keys of the version 4 record digest, one per field (fractional digits of
// square and cube roots of small primes, as in SHA-2: arbitrary but not
// chosen by us).
const (
	keyAt     uint64 = 0xbb67ae8584caa73b
	keyPacked uint64 = 0x3c6ef372fe94f82b
	keyWhat   uint64 = 0xa54ff53a5f1d36f1
	keyActor  uint64 = 0x510e527fade682d1
	keyObject uint64 = 0x9b05688c2b3e6c1f
	keyA      uint64 = 0x1f83d9abfb41bd6b
	keyB      uint64 = 0x5be0cd19137e2179
	keyString uint64 = 0x428a2f98d728ae22
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

// StringDigest is the 64-bit digest a string contributes to a version 4
// record digest: its length and every byte. The empty string's is 0, which
// lets an unused digestCache entry (an empty string, digest 0) answer for
// it correctly.
func StringDigest(s string) uint64 {
	if len(s) == 0 {
		return 0
	}
	return hashString(keyString, s)
}

// mum multiplies two words to 128 bits and folds the halves: a strong,
// cheap mix of two inputs (as in wyhash).
func mum(a, b uint64) uint64 {
	hi, lo := bits.Mul64(a, b)
	return hi ^ lo
}

// packRecordHeader packs the small fields into one word.
func packRecordHeader(r *Record) uint64 {
	return uint64(uint16(r.CPU)) | uint64(uint8(r.IRQL))<<16 | uint64(uint32(r.Thread))<<24 | uint64(r.Kind)<<56
}

// foldRecord folds a record, given its strings' digests, into h.
func foldRecord(h uint64, r *Record, what, actor, object uint64) uint64 {
	d := mum(uint64(r.At)^keyAt, packRecordHeader(r)^keyPacked) ^
		mum(what^keyWhat, actor^keyActor) ^
		mum(object^keyObject, uint64(r.A)^keyA) ^
		(uint64(r.B)^keyB)*hashMulti
	return hashUint(h, d)
}

// HashRecord folds r into the running trace hash h (version 4). It covers
// every field the text trace shows: time, processor, IRQL, thread, kind,
// sub-kind (What), actor, object and both arguments.
func HashRecord(h uint64, r *Record) uint64 {
	return foldRecord(h, r, StringDigest(string(r.What)), StringDigest(r.Actor), StringDigest(r.Object))
}

// HashRecordV3 folds r into h the way format version 3 fail files were
// hashed: one chain over every word of every field.
func HashRecordV3(h uint64, r *Record) uint64 {
	h = hashUint(h, uint64(r.At))
	h = hashUint(h, packRecordHeader(r))
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

// advance keeps the record just written into the next slot.
func (t *tailRing) advance() {
	if len(t.recs) == 0 {
		return
	}
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

// digestCache remembers the digests of recently hashed strings, keyed by
// where their bytes are. Go strings are immutable and an entry keeps its
// string alive, so an entry whose string has the same data pointer and
// length as the one asked for has the same bytes: a hit is always right,
// and a miss only costs the digest. (A string made with unsafe.String over
// a buffer that is later rewritten would break this; the simulator makes
// none, and names handed to it must not be made that way.) Each set has two
// ways, the newest first, so that two names whose addresses happen to share
// a set do not evict each other on every record.
type digestCache [digestCacheSets]digestSet

type digestSet [2]digestEntry

type digestEntry struct {
	s string
	d uint64
}

const (
	digestCacheBits = 8
	digestCacheSets = 1 << digestCacheBits
)

// hit returns s's digest if the first way of its set holds it; it is
// small enough to be inlined into Sim.Emit, which calls lookup otherwise.
func (c *digestCache) hit(s string) (uint64, bool) {
	p := unsafe.StringData(s)
	e := &c[uintptr(unsafe.Pointer(p))>>3%digestCacheSets][0]
	return e.d, unsafe.StringData(e.s) == p && len(e.s) == len(s)
}

// lookup checks the second way, and on a miss computes the digest and makes
// it the set's newest entry.
func (c *digestCache) lookup(s string) uint64 {
	if len(s) == 0 {
		return 0
	}
	set := &c[uintptr(unsafe.Pointer(unsafe.StringData(s)))>>3%digestCacheSets]
	if unsafe.StringData(set[1].s) == unsafe.StringData(s) && len(set[1].s) == len(s) {
		return set[1].d
	}
	d := StringDigest(s)
	set[1] = set[0]
	set[0] = digestEntry{s, d}
	return d
}
