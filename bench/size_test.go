package bench

import (
	"context"
	"testing"

	"github.com/wqsim/wqsim/model"
	_ "github.com/wqsim/wqsim/model/sct" // registers the sct-* scenarios
	"github.com/wqsim/wqsim/proptest"
)

// sizeScenarios are correct variants of increasing size (engine events per
// execution), for BenchmarkExploreSize.
var sizeScenarios = []string{"lostupdate", "sct-account", "sct-workstealqueue", "cancelsafe"}

// BenchmarkExploreSize: executions per second against scenario size, one
// sub-benchmark per scenario, with the default strategy on every core
// (b.N executions). events/exec is the mean of Outcome.Steps over the
// unperturbed runs of seeds 1–100, measured before the timer starts: it
// sizes the scenario, it is not a count over the exploration itself.
func BenchmarkExploreSize(b *testing.B) {
	for _, name := range sizeScenarios {
		b.Run(name, func(b *testing.B) {
			s, err := model.Lookup(name)
			if err != nil {
				b.Fatal(err)
			}
			var steps uint64
			for seed := uint64(1); seed <= 100; seed++ {
				r, err := model.Run(s, "correct", model.RunConfig{Seed: seed})
				if err != nil {
					b.Fatal(err)
				}
				if r.Failed() {
					b.Fatalf("%s:correct seed %d failed: %v", name, seed, r.Outcome.Err)
				}
				steps += r.Outcome.Steps
			}
			b.ResetTimer()
			rep, err := proptest.Explore(context.Background(), proptest.Options{Scenario: s, Variant: "correct", Execs: b.N, Seed: 1})
			if err != nil {
				b.Fatal(err)
			}
			if f := rep.First(); f != nil {
				b.Fatalf("correct variant failed: %v", f.Result.Outcome.Err)
			}
			b.ReportMetric(float64(steps)/100, "events/exec")
			b.ReportMetric(float64(rep.Execs)/b.Elapsed().Seconds(), "execs/s")
		})
	}
}
