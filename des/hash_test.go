package des_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wqsim/wqsim/des"
)

// emitAll emits recs through a Sim configured by cfg and returns its trace
// hash.
func emitAll(cfg des.Config, recs []des.Record) uint64 {
	s := des.New(cfg)
	defer s.Close()
	for i := range recs {
		r := recs[i]
		s.Emit(&r)
	}
	return s.TraceHash()
}

// hashRecords folds recs (all at time 0) with fold from the Sim's seed.
func hashRecords(seed uint64, recs []des.Record, fold func(uint64, *des.Record) uint64) uint64 {
	h := seed
	for i := range recs {
		r := recs[i]
		h = fold(h, &r)
	}
	return h
}

// manyNames makes records whose strings are equal in content but live at
// different addresses, empty strings, and more distinct names than the
// digest cache has sets, so that the cache hits, misses and evicts.
func manyNames() []des.Record {
	var recs []des.Record
	for i := range 2000 {
		name := fmt.Sprintf("thread %d", i%700)             // a new string each time, same content every 700
		obj := strings.Repeat("o", i%37)                    // "" included
		what := des.What([]string{"wait", "wake", ""}[i%3]) // constants and the empty sub-kind
		recs = append(recs, des.Record{CPU: int16(i % 3), IRQL: -1, Thread: int32(i), Kind: 7, What: what, Actor: name, Object: obj, A: int64(i), B: -int64(i)})
	}
	return recs
}

// The Sim's cached string digests never change the hash: it is exactly the
// pure HashRecord fold, whatever the cache held (hits, misses, evictions,
// equal strings at different addresses, empty strings).
func TestCachedDigestsMatchPureHash(t *testing.T) {
	recs := manyNames()
	seed := emitAll(des.Config{}, nil)
	assert.Equal(t, hashRecords(seed, recs, des.HashRecord), emitAll(des.Config{}, recs))
}

// Config.HashV3 reproduces the version 3 hash (the one fail files of format
// version 3 recorded), which differs from the current one.
func TestHashV3ReproducesTheOldChain(t *testing.T) {
	recs := manyNames()
	seed := emitAll(des.Config{}, nil)
	v3 := emitAll(des.Config{HashV3: true}, recs)
	assert.Equal(t, hashRecords(seed, recs, des.HashRecordV3), v3)
	assert.NotEqual(t, emitAll(des.Config{}, recs), v3)
}

// A pinned value: the hash function is part of the fail-file format, so a
// change to it must be deliberate (bump the fail-file version and keep the
// old function for replaying old files, as HashV3 does).
func TestHashIsStable(t *testing.T) {
	r := des.Record{At: 12345, CPU: 1, IRQL: 2, Thread: 3, Kind: 104, What: "preempt", Actor: "worker.delayed.0", Object: "event teardown", A: 7, B: -8}
	assert.Equal(t, uint64(0x85f35340ea25abe9), des.HashRecord(1, &r), "version 4 record hash")
	assert.Equal(t, uint64(0x24c97cdaa952f16b), des.HashRecordV3(1, &r), "version 3 record hash")
	require.Equal(t, uint64(0), des.StringDigest(""), "the empty string's digest is 0 (an unused cache entry answers for it)")
}

// Emitting through the cache allocates nothing, hits or misses.
func TestEmitAllocatesNothing(t *testing.T) {
	s := des.New(des.Config{})
	defer s.Close()
	recs := manyNames()
	i, r := 0, new(des.Record)
	allocs := testing.AllocsPerRun(1000, func() {
		*r = recs[i%len(recs)]
		i++
		s.Emit(r)
	})
	assert.Zero(t, allocs)
}
