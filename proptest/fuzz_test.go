package proptest_test

import (
	"bytes"
	"testing"

	"github.com/wqsim/wqsim/des"
	"github.com/wqsim/wqsim/proptest"
)

// FuzzParseFailFile: the parser never panics, and whatever it accepts
// encodes back to a file it accepts with the same contents.
func FuzzParseFailFile(f *testing.F) {
	good := (&proptest.FailFile{Scenario: "lostupdate", Variant: "racy", Seed: 3, Strategy: "random", Hash: 0xabc,
		Outcome: "invariant", Marks: []string{"a", "b"},
		Tail:      []des.Record{{At: 5, CPU: 0, What: "x"}},
		Decisions: []des.Decision{{Kind: 12, N: 3, Choice: 1, Label: "kernel: inject preemption"}, {Kind: 60, N: 2, Choice: 0}}}).Encode("x.fail")
	f.Add(good)
	f.Add([]byte("wqsim-failfile 3\n"))
	f.Add([]byte(""))
	f.Add(bytes.Replace(good, []byte("end\n"), nil, 1))
	f.Fuzz(func(t *testing.T, data []byte) {
		ff, err := proptest.ParseFailFile(data)
		if err != nil {
			return
		}
		again, err := proptest.ParseFailFile(ff.Encode("x.fail"))
		if err != nil {
			t.Fatalf("re-encoded file does not parse: %v", err)
		}
		if again.Seed != ff.Seed || again.Hash != ff.Hash || len(again.Decisions) != len(ff.Decisions) {
			t.Fatalf("round trip changed the file")
		}
	})
}
