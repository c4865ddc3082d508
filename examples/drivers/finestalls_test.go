package drivers_test

import (
	"context"
	"os"
	"strconv"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wqsim/wqsim/des"
	"github.com/wqsim/wqsim/examples/drivers"
	"github.com/wqsim/wqsim/kernel"
	"github.com/wqsim/wqsim/model"
	"github.com/wqsim/wqsim/proptest"
)

// The DPC-timing drivers make device timing a workload decision (the
// README pitfall about DISPATCH-level code); pinned here to its first,
// natural option, the race must come from the kernel's own perturbations:
// with kernel.Config.FineStalls, stalls of a DPC (REFERENCE §9).
var pinnedTiming = []struct {
	s       *model.Scenario
	variant string
	label   string // the workload decision pinned to choice 0
}{
	{drivers.DpcCount, "plain-total", "cpu1 interrupt lag"},
	{drivers.CsqDpc, "own-unlink", "device latency"},
	{drivers.DpcRef, "ref-only", "unload delay"},
}

// pinStrategy runs a strategy with one workload decision pinned to 0.
type pinStrategy struct {
	proptest.Strategy
	label string
}

func (p pinStrategy) Chooser(seed uint64) des.Chooser {
	return &pinChooser{inner: p.Strategy.Chooser(seed), label: p.label}
}

// Prepare keeps the pin on the prepared strategy (PCT, SURW and the
// portfolio use the natural run's profile).
func (p pinStrategy) Prepare(prof *proptest.Profile) proptest.Strategy {
	if pr, ok := p.Strategy.(proptest.Preparer); ok {
		return pinStrategy{pr.Prepare(prof), p.label}
	}
	return p
}

type pinChooser struct {
	inner des.Chooser
	label string
}

func (c *pinChooser) Choose(p des.Point, n int) int {
	if p.Kind == model.PointWorkload && p.Label == c.label {
		return 0
	}
	return c.inner.Choose(p, n)
}

func (c *pinChooser) WantsAccess() bool { return des.WantsAccess(c.inner) }

// pinnedPortfolio is the default portfolio with every member pinned.
func pinnedPortfolio(label string) proptest.Strategy {
	p := proptest.NewPortfolio()
	for i, m := range p.Members {
		p.Members[i] = pinStrategy{m, label}
	}
	return p
}

// withFineStalls is s under the explore configuration with FineStalls set
// as asked.
func withFineStalls(s *model.Scenario, fine bool) *model.Scenario {
	c := *s
	c.Config = func(string) kernel.Config {
		k := model.ExploreConfig()
		k.FineStalls = fine
		return k
	}
	return &c
}

// pinnedFind explores s:variant with its timing pinned and returns the
// index of the first failing execution, or -1.
func pinnedFind(t *testing.T, s *model.Scenario, variant, label string, fine bool, seed uint64, execs int) int {
	t.Helper()
	rep, err := proptest.Explore(context.Background(), proptest.Options{
		Scenario: withFineStalls(s, fine), Variant: variant, Strategy: pinnedPortfolio(label),
		Seed: seed, Execs: execs, Parallel: 1})
	require.NoError(t, err)
	if f := rep.First(); f != nil {
		v, _ := s.Variant(variant)
		require.True(t, v.Wants(f.Result.Outcome.Err.Error()), "the variant's own failure: %v", f.Result.Outcome.Err)
		return f.Exec
	}
	return -1
}

// With the device timing pinned, the default exploration still finds the
// DPC races through stalls at DISPATCH_LEVEL (two seeds here). With
// WQSIM_PINNED_SEEDS=N it measures N seeds with FineStalls off and on and
// logs the execution that found each (bench/BENCHMARKS.md).
func TestDpcRacesFoundWithoutTimingDecision(t *testing.T) {
	seeds, compare := 2, false
	if v, err := strconv.Atoi(os.Getenv("WQSIM_PINNED_SEEDS")); err == nil && v > 0 {
		seeds, compare = v, true
	}
	for _, c := range pinnedTiming {
		t.Run(c.s.Name+":"+c.variant, func(t *testing.T) {
			label := c.label
			for seed := uint64(1); seed <= uint64(seeds); seed++ {
				on := pinnedFind(t, c.s, c.variant, label, true, seed, proptest.DefaultExecs)
				assert.GreaterOrEqual(t, on, 0, "seed %d: found with FineStalls", seed)
				if compare {
					off := pinnedFind(t, c.s, c.variant, label, false, seed, proptest.DefaultExecs)
					t.Logf("seed %d: FineStalls off: exec %d, on: exec %d (-1 = not found in %d)", seed, off, on, proptest.DefaultExecs)
				}
			}
		})
	}
}
