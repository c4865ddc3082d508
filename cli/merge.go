package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/wqsim/wqsim/proptest"
)

func mergeUsage() []string {
	return []string{
		"usage: wqsim merge DIR|SUMMARY... ",
		"  combines the shards of one exploration (the summary-*.json files explore writes into",
		"  each --faildir) and reports the failure the unsharded run would have reported: the",
		"  lowest execution index any shard failed at. Exits with that failure's code, 0 if none,",
		"  2 if shards are missing or one stopped early before that index (the result may differ)."}
}

func cmdMerge(args []string, w io.Writer) error {
	fs := newFlagSet("merge", mergeUsage()...)
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(pos) == 0 {
		return usagef("merge needs the fail-file directories (or summary files) of the shards")
	}
	sums, err := readSummaries(pos)
	if err != nil {
		return err
	}
	m, err := mergeShards(sums)
	if err != nil {
		return err
	}
	return m.report(w)
}

// shardSummary is a summary with the path it was read from.
type shardSummary struct {
	summary
	path string
}

// readSummaries reads every summary-*.json in the directories given, and
// the summary files given directly.
func readSummaries(paths []string) ([]shardSummary, error) {
	var files []string
	for _, p := range paths {
		st, err := os.Stat(p)
		if err != nil {
			return nil, usagef("merge: %v", err)
		}
		if !st.IsDir() {
			files = append(files, p)
			continue
		}
		found, _ := filepath.Glob(filepath.Join(p, "summary-*.json"))
		if len(found) == 0 {
			return nil, usagef("merge: %s holds no summary-*.json (explore writes one into its --faildir)", p)
		}
		files = append(files, found...)
	}
	var out []shardSummary
	for _, f := range files {
		data, err := proptest.ReadInput(f, 16<<20)
		if err != nil {
			return nil, usagef("merge: %v", err)
		}
		var s shardSummary
		if err := json.Unmarshal(data, &s.summary); err != nil {
			return nil, usagef("merge: %s: %v", f, err)
		}
		if s.Version != summaryVersion {
			return nil, usagef("merge: %s: summary version %d, this wqsim reads %d", f, s.Version, summaryVersion)
		}
		s.path = f
		out = append(out, s)
	}
	return out, nil
}

// merged is the combined view of the shards of one exploration.
type merged struct {
	shards  []shardSummary // by shard index
	n       int            // shards the exploration was split into
	missing []int
	first   *shardSummary // the shard holding the lowest-index failure
	doubts  []string      // why the unsharded run might differ
}

// mergeShards checks the summaries are the shards of one exploration and
// finds the lowest-index failure.
func mergeShards(sums []shardSummary) (*merged, error) {
	a := sums[0]
	for _, s := range sums[1:] {
		if s.Scenario != a.Scenario || s.Variant != a.Variant || s.Strategy != a.Strategy || s.Seed != a.Seed || s.Execs != a.Execs || s.Shards != a.Shards ||
			s.budgetOf() != a.budgetOf() {
			return nil, usagef("merge: %s and %s are not shards of one exploration (scenario, variant, strategy, --seed, --execs, n of --shard i/n and the run budget must agree)", a.path, s.path)
		}
	}
	m := &merged{n: a.Shards}
	byShard := map[int]shardSummary{}
	for _, s := range sums {
		if old, dup := byShard[s.Shard]; dup && !sameShardResult(old.summary, s.summary) {
			return nil, usagef("merge: %s and %s are both shard %d/%d with different results", old.path, s.path, s.Shard, s.Shards)
		}
		byShard[s.Shard] = s
	}
	for i := range m.n {
		s, ok := byShard[i]
		if !ok {
			m.missing = append(m.missing, i)
			continue
		}
		m.shards = append(m.shards, s)
		if s.Failure != nil && (m.first == nil || s.Failure.Exec < m.first.Failure.Exec) {
			m.first = &m.shards[len(m.shards)-1]
		}
	}
	m.checkComplete()
	return m, nil
}

func sameShardResult(a, b summary) bool {
	return a.Ran == b.Ran && a.End == b.End && (a.Failure == nil) == (b.Failure == nil) &&
		(a.Failure == nil || a.Failure.Exec == b.Failure.Exec)
}

// checkComplete notes every reason the unsharded run could have reported
// something else: a missing shard, or one that stopped (time limit,
// Ctrl-C, watchdog) before the failure's index.
func (m *merged) checkComplete() {
	for _, i := range m.missing {
		m.doubts = append(m.doubts, fmt.Sprintf("shard %d/%d is missing", i, m.n))
	}
	for _, s := range m.shards {
		switch s.End {
		case "complete", "exhausted", "failure":
			continue // it ran every execution of its own below where it stopped
		}
		if m.first != nil && s.Shard == m.first.Shard {
			continue
		}
		m.doubts = append(m.doubts, fmt.Sprintf("shard %d/%d stopped early (%s) after %d executions: an earlier failure there may be unseen", s.Shard, s.Shards, s.End, s.Ran))
	}
	if s := m.shards; len(s) > 0 && strings.Contains(s[0].Strategy, "exhaustive") && m.n > 1 {
		m.doubts = append(m.doubts, "the exhaustive strategy's executions depend on earlier ones: its shards are not a partition of one run")
	}
}

// report prints each shard and the merged result; the exit code is the
// failure's (or 2 when the merge cannot vouch for it).
func (m *merged) report(w io.Writer) error {
	a := m.shards
	if len(a) == 0 {
		return usagef("merge: no shard found")
	}
	fmt.Fprintf(w, "wqsim merge %s:%s %s seed=%d execs=%d: %d of %d shards\n", a[0].Scenario, a[0].Variant, a[0].Strategy, a[0].Seed, a[0].Execs, len(a), m.n)
	total := 0
	for _, s := range a {
		total += s.Ran
		line := fmt.Sprintf("  shard %d/%d: ran %d executions in %.1fs, %s", s.Shard, s.Shards, s.Ran, s.Seconds, s.End)
		if s.Failure != nil {
			line += fmt.Sprintf(": %s at execution %d", s.Failure.Class, s.Failure.Exec)
		}
		fmt.Fprintln(w, line)
	}
	for _, d := range m.doubts {
		fmt.Fprintln(w, "warning:", d)
	}
	if m.first == nil {
		fmt.Fprintf(w, "no failure in %d executions over %d shards\n", total, len(a))
		if len(m.doubts) > 0 {
			return &exitError{exitUsage}
		}
		return nil
	}
	f := m.first.Failure
	fmt.Fprintf(w, "first failure: execution %d (seed %d) in shard %d/%d; the unsharded run stops there after %d executions\n",
		f.Exec, f.Seed, m.first.Shard, m.n, f.Exec+1)
	fmt.Fprintf(w, "outcome: %s\nfail file: %s\n", f.Outcome, filepath.Join(filepath.Dir(m.first.path), f.File))
	if len(m.doubts) > 0 {
		return &exitError{exitUsage}
	}
	return &exitError{f.Exit}
}
