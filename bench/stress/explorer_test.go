//go:build stress

package stress

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/wqsim/wqsim/model"
	_ "github.com/wqsim/wqsim/model/reports"
	_ "github.com/wqsim/wqsim/model/sct"
	"github.com/wqsim/wqsim/proptest"
)

// TestExplorer gives wqsim's default explorer (one worker, seed 1) the
// same wall-clock budget per program as TestStress and prints the
// executions and time to its first failure, for the table beside the
// stress rows.
func TestExplorer(t *testing.T) {
	var rows []string
	for _, p := range all() {
		if *only != "" && p.name != *only {
			continue
		}
		s, v, err := model.Resolve(p.name)
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		rep, err := proptest.Explore(context.Background(), proptest.Options{Scenario: s, Variant: v, Execs: 1 << 30, Duration: *budget, Seed: 1, Parallel: 1})
		if err != nil {
			t.Fatal(err)
		}
		row := fmt.Sprintf("| %s | %d | - | - |", p.name, rep.Execs)
		if f := rep.First(); f != nil {
			row = fmt.Sprintf("| %s | %d | %d | %s |", p.name, rep.Execs, f.Exec+1, time.Since(start).Round(time.Microsecond))
		}
		rows = append(rows, row)
	}
	t.Logf("\n| program | executions run | executions to first failure | wall time to it |\n|---|---|---|---|\n%s", strings.Join(rows, "\n"))
}
