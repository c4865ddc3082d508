package reports_test

import (
	"context"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wqsim/wqsim/model"
	_ "github.com/wqsim/wqsim/model/reports"
	"github.com/wqsim/wqsim/proptest"
)

// reportPrefixes name the scenarios this package registers.
var reportPrefixes = []string{"ebpf-", "usbip-", "cldflt-", "zephyr-", "nuttx-", "serial-"}

func suite() []*model.Scenario {
	var out []*model.Scenario
	for _, s := range model.All() {
		for _, p := range reportPrefixes {
			if strings.HasPrefix(s.Name, p) {
				out = append(out, s)
			}
		}
	}
	return out
}

// Every report's bug variant is found by the default explorer within
// 10,000 executions (the target), fails the way it declares and
// reaches its marks; its natural schedule is clean.
func TestReportBugsFound(t *testing.T) {
	require.NotEmpty(t, suite())
	for _, s := range suite() {
		for _, v := range s.Variants {
			if !v.Bug {
				continue
			}
			t.Run(s.Name+":"+v.Name, func(t *testing.T) {
				nat, err := model.Run(s, v.Name, model.RunConfig{Seed: 1})
				require.NoError(t, err)
				assert.NoError(t, nat.Outcome.Err, "natural schedule")
				rep, err := proptest.Explore(context.Background(), proptest.Options{Scenario: s, Variant: v.Name, Execs: 10000, Seed: 1, Parallel: 1})
				require.NoError(t, err)
				f := rep.First()
				require.NotNil(t, f, "not found in %d executions", rep.Execs)
				err = f.Result.Outcome.Err
				assert.True(t, v.Wants(err.Error()), "failure %q is not the kind %q", err, v.Want)
				for _, m := range v.Marks {
					assert.Contains(t, f.Result.Marks, m.String(), "racy path reached")
				}
				t.Logf("found at execution %d: %v", f.Exec, err)
			})
		}
	}
}

// Every correct variant survives a few thousand executions.
func TestReportFixesSurvive(t *testing.T) { proptest.FixesSurvive(t, suite(), 3000) }

// Same seed and strategy, same trace hash and marks.
func TestReportsDeterministic(t *testing.T) { proptest.RunsRepeat(t, suite(), 1, 99) }
