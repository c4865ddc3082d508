package bench

import (
	"context"
	"testing"
	"time"

	"github.com/wqsim/wqsim/model"
	"github.com/wqsim/wqsim/proptest"
)

// BenchmarkExploreCbdq: executions per second of the cancelSafe
// minifilter (cbdq + generic work item + cancel + unload) with the default
// random strategy on every core. b.N is the number of executions.
func BenchmarkExploreCbdq(b *testing.B) {
	s, err := model.Lookup("cancelsafe")
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	rep, err := proptest.Explore(context.Background(), proptest.Options{Scenario: s, Variant: "correct", Execs: b.N, Seed: 1})
	if err != nil {
		b.Fatal(err)
	}
	if f := rep.First(); f != nil {
		b.Fatalf("correct variant failed: %v", f.Result.Outcome.Err)
	}
	b.ReportMetric(float64(rep.Execs)/b.Elapsed().Seconds(), "execs/s")
}

// BenchmarkTimeToBug: for every bug variant, the wall time from the start
// of an exploration (a fresh base seed per iteration) to its first failure,
// then the time to shrink it and the perturbations left.
func BenchmarkTimeToBug(b *testing.B) {
	for _, s := range model.All() {
		for _, v := range s.Variants {
			if !v.Bug {
				continue
			}
			b.Run(s.Name+":"+v.Name, func(b *testing.B) {
				var find, shrink time.Duration
				nz, execs := 0, 0
				for i := 0; i < b.N; i++ {
					start := time.Now()
					rep, err := proptest.Explore(context.Background(), proptest.Options{Scenario: s, Variant: v.Name, Execs: 100000, Seed: uint64(i + 1)})
					if err != nil {
						b.Fatal(err)
					}
					if rep.First() == nil {
						b.Fatalf("seed %d: no failure in %d executions", i+1, rep.Execs)
					}
					find += time.Since(start)
					execs += rep.Execs
					f := rep.First()
					start = time.Now()
					min, _, err := proptest.Shrink(s, v.Name, f.Seed, f.Result.Outcome.Decisions, proptest.ShrinkOptions{})
					if err != nil {
						b.Fatal(err)
					}
					shrink += time.Since(start)
					for _, d := range min {
						if d.Choice != 0 {
							nz++
						}
					}
				}
				n := float64(b.N)
				b.ReportMetric(find.Seconds()*1000/n, "ms-to-bug")
				b.ReportMetric(float64(execs)/n, "execs-to-bug")
				b.ReportMetric(shrink.Seconds()*1000/n, "ms-to-shrink")
				b.ReportMetric(float64(nz)/n, "perturbations")
			})
		}
	}
}
