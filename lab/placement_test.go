package lab

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// placementExperiment: 5 tasks on 2 processors, U from 0.8 to 2.0.
const placementExperiment = `{
  "name": "placement", "seeds": [1, 2, 3], "dispatchers": ["nt", "nt-percpu"],
  "placement": {
    "processors": 2, "tasks": 5, "placements": ["global", "partitioned"], "sets": 12,
    "utilization_min": 0.8, "utilization_max": 2.0, "utilization_step": 0.4,
    "period_min": "5ms", "period_max": "50ms", "granularity": "1ms", "duration": "300ms"FIT
  }
}`

func runPlacementFile(t *testing.T, fit string, parallel int) *Results {
	t.Helper()
	e, err := Parse([]byte(strings.Replace(placementExperiment, "FIT", fit, 1)))
	require.NoError(t, err)
	r, err := Run(context.Background(), e, Options{Parallel: parallel})
	require.NoError(t, err)
	return r
}

func point(t *testing.T, r *Results, disp string, kind PlacementKind, u float64) PlacementPoint {
	t.Helper()
	for _, p := range r.Placement {
		if p.Dispatcher == disp && p.Placement == kind && p.Utilization == u {
			return p
		}
	}
	t.Fatalf("no point %s %s %v", disp, kind, u)
	return PlacementPoint{}
}

// Global against partitioned placement as an experiment: every set is
// drawn once and run under each dispatcher × placement. Partitioned
// placement never migrates, agrees with the per-processor exact test set
// by set and, with the RTA fit, never misses; global placement migrates;
// sets that do not fit are counted, not dropped; light loads are
// schedulable either way; the output does not depend on parallelism.
func TestPlacementExperiment(t *testing.T) {
	r := runPlacementFile(t, "", 0)
	require.Len(t, r.Placement, 2*2*4)
	globalMig := 0.0
	for _, p := range r.Placement {
		assert.Equal(t, 36, p.Sets, "12 sets × 3 seeds at every point")
		switch p.Placement {
		case Partitioned:
			assert.Zero(t, p.MigrationsPerJob, "%s %v: pinned threads never migrate", p.Dispatcher, p.Utilization)
			assert.Zero(t, p.Disagreements, "%s %v", p.Dispatcher, p.Utilization)
			assert.Zero(t, p.MissRatio.Mean, "RTA-admitted partitions miss nothing")
			assert.InDelta(t, 1-float64(p.Unpartitionable)/float64(p.Sets), p.Schedulable.Mean, 1e-9,
				"every placed set is schedulable; an unplaced one counts as not")
		case Global:
			globalMig += p.MigrationsPerJob
		}
	}
	assert.Positive(t, globalMig, "global placement on 2 processors migrates")
	for _, d := range []string{"nt", "nt-percpu"} {
		assert.Equal(t, 1.0, point(t, r, d, Global, 0.8).Schedulable.Mean, d)
		assert.Equal(t, 1.0, point(t, r, d, Partitioned, 0.8).Schedulable.Mean, d)
		full := point(t, r, d, Partitioned, 2.0)
		assert.Greater(t, full.Unpartitionable, 30, "%s: at U = 2 almost no set fits two processors under RM", d)
		assert.Positive(t, point(t, r, d, Global, 2.0).MissRatio.Mean, d)
	}
	a, b := point(t, r, "nt", Partitioned, 1.6), point(t, r, "nt-percpu", Partitioned, 1.6)
	b.Dispatcher = a.Dispatcher
	assert.Equal(t, a, b, "pinned, both dispatchers are one fixed-priority processor each")

	files, err := r.Files()
	require.NoError(t, err)
	names := []string{}
	for _, f := range files {
		names = append(names, f.Name)
	}
	assert.Equal(t, []string{"placement.csv", "experiment.json", "placement.png", "placement.svg"}, names)
	assert.True(t, strings.HasPrefix(string(files[0].Data), strings.Join(PlacementCSVHeader, ",")+"\n"))
	var table bytes.Buffer
	require.NoError(t, r.WriteTable(&table))
	assert.Contains(t, table.String(), "unpartitionable")

	one := runPlacementFile(t, "", 1)
	oneFiles, err := one.Files()
	require.NoError(t, err)
	assert.Equal(t, files[0].Data, oneFiles[0].Data, "placement.csv does not depend on parallelism")
}

// With the utilization fit (bin packing) a processor may be full beyond
// what rate-monotonic priorities schedule: placed sets then miss deadlines
// on the machine exactly when the per-processor exact test says they do.
func TestPlacementUtilizationFit(t *testing.T) {
	r := runPlacementFile(t, `, "fit": "utilization"`, 0)
	missed := 0.0
	for _, p := range r.Placement {
		if p.Placement == Partitioned {
			assert.Zero(t, p.Disagreements)
			assert.Zero(t, p.MigrationsPerJob)
			assert.InDelta(t, p.PartitionRTA, p.Schedulable.Mean, 1e-9)
			missed += p.MissRatio.Mean
		}
	}
	assert.Positive(t, missed, "some bin-packed processors miss deadlines")
}

func TestPlacementValidation(t *testing.T) {
	for _, c := range []struct{ edit, want, path string }{
		{`"processors": 2,`, ``, "placement.processors"},
		{`"processors": 2,`, `"processors": 1,`, "placement.processors"},
		{`"tasks": 5,`, `"tasks": 2,`, "placement.tasks"},
		{`["global", "partitioned"]`, `["global", "clustered"]`, "placement.placements[1]: unknown placement"},
		{`["global", "partitioned"]`, `["global", "global"]`, "placement.placements[1]: \"global\" repeats"},
		{`"duration": "300ms"`, `"duration": "10ms"`, "placement.duration"},
		{`"utilization_max": 2.0`, `"utilization_max": 2.5`, "utilization_max ≤ processors"},
		{`"FIT`, `", "fit": "worst"`, "placement.fit"},
		{`"dispatchers": ["nt", "nt-percpu"]`, `"dispatchers": ["nt", "edf"]`, "dispatchers[1]: unknown dispatcher"},
		{`"dispatchers": ["nt", "nt-percpu"],`, `"dispatchers": ["nt"], "pools": [{"policy": "fixed"}],`, "no workloads, pools"},
	} {
		src := strings.Replace(strings.Replace(placementExperiment, c.edit, c.want, 1), "FIT", "", 1)
		e, err := Parse([]byte(src))
		if err == nil {
			err = e.Validate()
		}
		require.Error(t, err, "%s → %s", c.edit, c.want)
		assert.Contains(t, err.Error(), c.path, c.want)
	}
}
