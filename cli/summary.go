package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"path/filepath"

	"github.com/wqsim/wqsim/des"
	"github.com/wqsim/wqsim/internal/atomicfile"
	"github.com/wqsim/wqsim/model"
	"github.com/wqsim/wqsim/proptest"
)

// summaryVersion is the "version" field of a summary; a reader refuses
// others.
const summaryVersion = 1

// summary is the machine-readable account of one explore run (one shard):
// written as JSON to FAILDIR/summary-…json, and to standard output with
// --json. `wqsim merge` reads them.
type summary struct {
	Version  int    `json:"version"`
	Scenario string `json:"scenario"`
	Variant  string `json:"variant"`
	Strategy string `json:"strategy"`
	Seed     uint64 `json:"seed"`   // --seed, the base seed
	Execs    int    `json:"execs"`  // --execs, the budget of all shards together
	Shard    int    `json:"shard"`  // --shard i/n: i
	Shards   int    `json:"shards"` // n
	// StepBudget and DecisionBudget are every run's budget (the
	// scenario's, or --step-budget and --decision-budget); a summary
	// written before they were recorded lacks them, and its runs had the
	// defaults (budgetOf).
	StepBudget     uint64 `json:"step_budget,omitempty"`
	DecisionBudget uint64 `json:"decision_budget,omitempty"`
	// Ran is how many executions this shard ran; End why it stopped:
	// complete, failure, time limit, interrupted, exhausted, stuck, error.
	Ran     int     `json:"ran"`
	End     string  `json:"end"`
	Seconds float64 `json:"seconds"`
	// Coverage counts, per racy-path mark, the executions that reached it.
	Coverage map[string]int `json:"coverage"`
	Failure  *failureInfo   `json:"failure"` // null when none was found
}

// failureInfo is the failure a shard reports (its lowest-index one).
type failureInfo struct {
	Exec      int    `json:"exec"`
	Seed      uint64 `json:"seed"` // the execution's own seed
	Class     string `json:"class"`
	Outcome   string `json:"outcome"`
	Exit      int    `json:"exit"` // the exit code wqsim gave for it
	Decisions int    `json:"decisions"`
	File      string `json:"file"` // its fail file, relative to the summary
}

// budgetOf is the budget a summary's runs had.
func (s *summary) budgetOf() model.Budget {
	return model.Budget{Steps: s.StepBudget, Decisions: s.DecisionBudget}.Or(model.DefaultBudget)
}

func newSummary(o *proptest.Options, rep *proptest.Report) *summary {
	cov := rep.Marks
	if cov == nil {
		cov = map[string]int{}
	}
	b := o.Scenario.RunBudget(model.RunConfig{})
	return &summary{Version: summaryVersion, Scenario: o.Scenario.Name, Variant: o.Variant, Strategy: rep.Strategy,
		Seed: o.Seed, Execs: o.Execs, Shard: o.Shard, Shards: max(o.Shards, 1), StepBudget: b.Steps, DecisionBudget: b.Decisions,
		Ran: rep.Execs, End: rep.End.String(), Seconds: rep.Elapsed.Seconds(), Coverage: cov}
}

func (s *summary) setFailure(f *proptest.Failure, final model.Result, log []des.Decision, path string) {
	s.Failure = &failureInfo{Exec: f.Exec, Seed: f.Seed, Class: proptest.Signature(final.Outcome.Err),
		Outcome: errText(final.Outcome.Err), Exit: outcomeCode(final.Outcome.Err), Decisions: len(log),
		File: filepath.Base(path)}
}

// fileName is the summary's name in the fail-file directory: one per
// exploration and shard, so shards sharing a directory keep theirs.
func (s *summary) fileName() string {
	return fmt.Sprintf("summary-%s-%s-seed%d-shard%dof%d.json", s.Scenario, s.Variant, s.Seed, s.Shard, s.Shards)
}

// write saves the summary into dir and, with toStdout, prints it on out.
func (s *summary) write(dir string, out io.Writer, toStdout bool) error {
	data, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	data = append(data, '\n')
	if err := atomicfile.Write(filepath.Join(dir, s.fileName()), func(w io.Writer) error {
		_, err := w.Write(data)
		return err
	}); err != nil {
		return fmt.Errorf("writing the summary: %w", err)
	}
	if toStdout {
		_, err = out.Write(data)
	}
	return err
}

// formatCoverage renders marks and counts as "mark (n executions); …".
func formatCoverage(marks map[string]int) string { return proptest.FormatMarks(marks) }
