package cli

import (
	"encoding/json"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wqsim/wqsim/proptest"
)

// merge(shards) == unsharded: for several scenarios and seeds, the shards
// of an exploration, merged, report the failure the unsharded run reports
// (same execution, seed, outcome and schedule) and how many executions it
// took, and the exit code is that failure's.
func TestMergeEqualsUnsharded(t *testing.T) {
	cases := []struct {
		spec   string
		seeds  []int
		shards int
	}{
		{"lostupdate:racy", []int{4, 7, 11}, 3},
		{"cancelsafe:lost-cancel", []int{1, 7}, 4},
		{"doublequeue:no-guard", []int{2, 3}, 2},
	}
	for _, c := range cases {
		for _, seed := range c.seeds {
			name := c.spec + "/seed" + strconv.Itoa(seed)
			whole := t.TempDir()
			code, out, errs := wqsim(t, "explore", c.spec, "--seed", strconv.Itoa(seed), "--execs", "20000", "--faildir", whole, "--json")
			require.NotEqual(t, exitOK, code, "%s: the unsharded run fails: %s", name, errs)
			var sum summary
			require.NoError(t, json.Unmarshal([]byte(out), &sum), name)
			require.NotNil(t, sum.Failure, name)
			wantFile, err := proptest.ReadFailFile(filepath.Join(whole, sum.Failure.File))
			require.NoError(t, err)

			var dirs []string
			for i := range c.shards {
				d := t.TempDir()
				dirs = append(dirs, d)
				wqsim(t, "explore", c.spec, "--seed", strconv.Itoa(seed), "--execs", "20000", "--faildir", d,
					"--shard", strconv.Itoa(i)+"/"+strconv.Itoa(c.shards))
			}
			mcode, mout, merrs := wqsim(t, append([]string{"merge"}, dirs...)...)
			assert.Equal(t, code, mcode, "%s: merge exits like the unsharded run\n%s%s", name, mout, merrs)
			assert.Contains(t, mout, "first failure: execution "+strconv.Itoa(sum.Failure.Exec)+" (seed "+strconv.FormatUint(sum.Failure.Seed, 10)+")", name)
			assert.Contains(t, mout, "after "+strconv.Itoa(sum.Ran)+" executions", name)
			assert.Contains(t, mout, "outcome: "+sum.Failure.Outcome, name)
			for i := range c.shards {
				assert.Contains(t, mout, "shard "+strconv.Itoa(i)+"/"+strconv.Itoa(c.shards)+": ran ", name)
			}
			got := lineAfter(mout, "fail file: ")
			gotFile, err := proptest.ReadFailFile(got)
			require.NoError(t, err, name)
			assert.Equal(t, wantFile.Decisions, gotFile.Decisions, "%s: the same schedule", name)
			assert.Equal(t, wantFile.Exec, gotFile.Exec, name)
		}
	}
}

// A missing shard, or shards of different explorations, are said.
func TestMergeRefusesIncomplete(t *testing.T) {
	a, b := t.TempDir(), t.TempDir()
	wqsim(t, "explore", "lostupdate:racy", "--seed", "4", "--shard", "0/2", "--faildir", a)
	code, out, _ := wqsim(t, "merge", a)
	assert.Equal(t, exitUsage, code)
	assert.Contains(t, out, "shard 1/2 is missing")
	wqsim(t, "explore", "lostupdate:racy", "--seed", "5", "--shard", "1/2", "--faildir", b)
	code, _, errs := wqsim(t, "merge", a, b)
	assert.Equal(t, exitUsage, code)
	assert.Contains(t, errs, "not shards of one exploration")
	c := t.TempDir()
	wqsim(t, "explore", "lostupdate:racy", "--seed", "4", "--shard", "1/2", "--faildir", c, "--decision-budget", "400000")
	code, _, errs = wqsim(t, "merge", a, c)
	assert.Equal(t, exitUsage, code, "another budget is another exploration")
	assert.Contains(t, errs, "the run budget must agree")
	code, _, errs = wqsim(t, "merge", t.TempDir())
	assert.Equal(t, exitUsage, code)
	assert.Contains(t, errs, "holds no summary")
}

func lineAfter(text, prefix string) string {
	for _, l := range splitLines(text) {
		if len(l) > len(prefix) && l[:len(prefix)] == prefix {
			return l[len(prefix):]
		}
	}
	return ""
}

func splitLines(s string) []string {
	var out []string
	start := 0
	for i := range len(s) {
		if s[i] == '\n' {
			out = append(out, s[start:i])
			start = i + 1
		}
	}
	return append(out, s[start:])
}
