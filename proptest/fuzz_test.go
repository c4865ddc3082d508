package proptest_test

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	"github.com/wqsim/wqsim/des"
	"github.com/wqsim/wqsim/model"
	"github.com/wqsim/wqsim/proptest"
)

// FuzzParseFailFile: the parser never panics, and whatever it accepts
// encodes back to a file it accepts with the same contents.
//
//	go test ./proptest -run '^$' -fuzz FuzzParseFailFile -fuzztime 5m -parallel 1
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

// FuzzReplayMutatedLog replays mutated fail files of a real failure
// against their scenario. Whatever the mutation (decision kinds, option
// counts, choices, a truncated or extended log, another variant or seed),
// the replay must come back without a panic in wqsim (a panic inside
// simulated code is an outcome, not a crash), report a schedule that no
// longer fits as a *des.ReplayMismatch, and be deterministic: the same
// file replays to the same trace hash and outcome twice.
//
//	go test ./proptest -run '^$' -fuzz FuzzReplayMutatedLog -fuzztime 5m -parallel 1
func FuzzReplayMutatedLog(f *testing.F) {
	s, err := model.Lookup("lostupdate")
	if err != nil {
		f.Fatal(err)
	}
	for _, seed := range []uint64{1, 7} {
		rep, err := proptest.Explore(context.Background(), proptest.Options{Scenario: s, Variant: "racy", Seed: seed, Execs: 5000, Parallel: 1})
		if err != nil || rep.First() == nil {
			f.Fatalf("no failure to mutate: %v", err)
		}
		fl := rep.First()
		o := &proptest.Options{Scenario: s, Variant: "racy", Seed: seed, Strategy: proptest.NewRandomWalk()}
		f.Add(proptest.NewFailFile(o, fl, fl.Result.Outcome.Decisions, fl.Result).Encode("x.fail"))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		ff, err := proptest.ParseFailFile(data)
		if err != nil {
			return
		}
		if _, err := model.Lookup(ff.Scenario); err != nil {
			return
		}
		a, errA := proptest.ReplayWatched(context.Background(), 10*time.Second, ff, nil)
		b, errB := proptest.ReplayWatched(context.Background(), 10*time.Second, ff, nil)
		if (errA == nil) != (errB == nil) || a.Outcome.Hash != b.Outcome.Hash || errString(a.Outcome.Err) != errString(b.Outcome.Err) {
			t.Fatalf("two replays of one file differ: %v / %v, %#x / %#x, %v / %v", errA, errB, a.Outcome.Hash, b.Outcome.Hash, a.Outcome.Err, b.Outcome.Err)
		}
		var stuck *proptest.StuckError
		if errors.As(a.Outcome.Err, &stuck) {
			t.Fatalf("a replay of a %d-decision log got stuck: %v", len(ff.Decisions), stuck)
		}
		var mm *des.ReplayMismatch
		if errors.As(a.Outcome.Err, &mm) && (mm.Index < 0 || mm.Index >= len(ff.Decisions)) {
			t.Fatalf("mismatch at decision %d of a %d-decision log", mm.Index, len(ff.Decisions))
		}
	})
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}
