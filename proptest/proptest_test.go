package proptest_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"pgregory.net/rapid"

	"github.com/wqsim/wqsim/des"
	"github.com/wqsim/wqsim/model"
	"github.com/wqsim/wqsim/proptest"
)

func lostUpdate(t testing.TB) *model.Scenario {
	s, err := model.Lookup("lostupdate")
	require.NoError(t, err)
	return s
}

func execs(full, short int) int {
	if testing.Short() {
		return short
	}
	return full
}

// Every strategy finds the planted race; the correct variant survives.
func TestStrategiesFindPlantedRace(t *testing.T) {
	s := lostUpdate(t)
	for _, name := range proptest.StrategyNames {
		t.Run(name, func(t *testing.T) {
			st, err := proptest.NewStrategy(name)
			require.NoError(t, err)
			f := proptest.Find(t, s, "racy", proptest.Options{Strategy: st, Execs: 5000, Seed: 1})
			assert.Contains(t, f.MinFinal.Outcome.Err.Error(), "an update was lost")
			assert.Contains(t, f.MinFinal.Marks, "lostupdate: preempted between read and write", "the mark of the racy path was hit")
		})
	}
	_, err := proptest.NewStrategy("nope")
	assert.ErrorContains(t, err, "choose one of portfolio, random, pct, pos, surw, fest, bounded, exhaustive")
}

func TestCorrectVariantSurvives(t *testing.T) {
	for _, name := range proptest.StrategyNames {
		st, _ := proptest.NewStrategy(name)
		rep, err := proptest.Explore(context.Background(), proptest.Options{
			Scenario: lostUpdate(t), Variant: "correct", Strategy: st, Execs: execs(2000, 200), Seed: 3})
		require.NoError(t, err)
		assert.Nil(t, rep.First(), name)
	}
}

// A planted bug that needs exactly one injected preemption shrinks to
// exactly one non-zero decision.
func TestShrinksToOnePerturbation(t *testing.T) {
	f := proptest.Find(t, lostUpdate(t), "racy", proptest.Options{Execs: 5000, Seed: 7,
		Strategy: &proptest.RandomWalk{NaturalNum: 1, NaturalDen: 2}})
	nz := 0
	for _, d := range f.Minimal {
		if d.Choice != 0 {
			nz++
		}
	}
	assert.Equal(t, 1, nz, "minimal schedule: %v", proptest.DescribeSchedule(f.Minimal))
	assert.Contains(t, proptest.DescribeSchedule(f.Minimal)[0], "early quantum end")
}

// rapid's own shrinker, fed one labelled draw per decision, also ends at a
// single perturbation.
func TestRapidShrinksToOnePerturbation(t *testing.T) {
	s := lostUpdate(t)
	var last []des.Decision
	fake := &fakeTB{TB: t}
	rapid.Check(fake, func(rt *rapid.T) {
		r := proptest.RunRapid(rt, s, "racy", 0)
		if r.Failed() {
			last = r.Outcome.Decisions
			rt.Fatalf("failed: %v", r.Outcome.Err)
		}
	})
	require.True(t, fake.failed, "rapid found the race")
	// rapid shrinks one draw at a time, so it can stop at a local minimum
	// (yield before the first read, then again before the second thread's
	// write); our delta-debugging pass polishes that to the one perturbation.
	assert.LessOrEqual(t, nonZeros(last), 2, "rapid's minimal case: %v", proptest.DescribeSchedule(last))
	min, res, err := proptest.Shrink(s, "racy", 0, last, proptest.ShrinkOptions{})
	require.NoError(t, err)
	assert.True(t, res.Failed())
	assert.Equal(t, 1, nonZeros(min), "after Shrink: %v", proptest.DescribeSchedule(min))
}

func nonZeros(log []des.Decision) int {
	nz := 0
	for _, d := range log {
		if d.Choice != 0 {
			nz++
		}
	}
	return nz
}

// fakeTB records failures (and their messages) without failing the
// enclosing test, for checking that rapid or Check would fail.
type fakeTB struct {
	testing.TB
	failed bool
	msgs   []string
}

func (f *fakeTB) Fail()                     { f.failed = true }
func (f *fakeTB) FailNow()                  { f.failed = true }
func (f *fakeTB) Failed() bool              { return f.failed }
func (f *fakeTB) Error(args ...any)         { f.fail(fmt.Sprint(args...)) }
func (f *fakeTB) Errorf(s string, a ...any) { f.fail(fmt.Sprintf(s, a...)) }
func (f *fakeTB) Fatal(args ...any)         { f.fail(fmt.Sprint(args...)) }
func (f *fakeTB) Fatalf(s string, a ...any) { f.fail(fmt.Sprintf(s, a...)) }
func (f *fakeTB) Logf(string, ...any)       {}
func (f *fakeTB) Log(...any)                {}
func (f *fakeTB) fail(msg string)           { f.failed, f.msgs = true, append(f.msgs, msg) }

// Check passes a correct variant, fails a racy one and saves its fail
// file, and on the next run replays that saved failure before exploring.
func TestCheckSavesAndReplaysFailuresFirst(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("WQSIM_FAILDIR", dir)
	t.Setenv("WQSIM_EXECS", "3000")
	s := lostUpdate(t)
	proptest.Check(t, s, "correct", proptest.CheckOptions{})

	first := &fakeTB{TB: t}
	proptest.Check(first, s, "racy", proptest.CheckOptions{Seed: 5})
	require.True(t, first.failed, "the racy variant fails Check")
	require.Len(t, first.msgs, 1)
	assert.Contains(t, first.msgs[0], "minimal schedule (1 perturbations):")
	saved := proptest.SavedFailFiles(dir, "lostupdate", "racy")
	require.Len(t, saved, 1)
	path := saved[0]
	assert.Contains(t, first.msgs[0], "go run ./cmd/wqsim replay "+path)
	// the go test line names this package from the module root and exactly this test
	assert.Contains(t, first.msgs[0], "go test ./proptest -run '^TestCheckSavesAndReplaysFailuresFirst$' -wqsim.failfile="+path)
	require.FileExists(t, path)
	// the shrunk run's timelines land beside the fail file, and the report says where
	for _, ext := range []string{".html", ".perfetto.json"} {
		tl := strings.TrimSuffix(path, ".fail") + ext
		assert.Contains(t, first.msgs[0], tl)
		require.FileExists(t, tl)
	}

	again := &fakeTB{TB: t}
	proptest.Check(again, s, "racy", proptest.CheckOptions{Seed: 5})
	require.Len(t, again.msgs, 1)
	assert.Contains(t, again.msgs[0], "saved failure still fails", "the saved file is replayed before exploring")

	t.Setenv("WQSIM_EXECS", "many")
	bad := &fakeTB{TB: t}
	proptest.Check(bad, s, "correct", proptest.CheckOptions{})
	require.Len(t, bad.msgs, 1)
	assert.Contains(t, bad.msgs[0], `WQSIM_EXECS="many"`)
}

// Explore → fail file → replay: same outcome and trace hash. Never skipped.
func TestReplayRoundTrip(t *testing.T) {
	dir := t.TempDir()
	f := proptest.Find(t, lostUpdate(t), "racy", proptest.Options{Execs: 5000, Seed: 11, FailDir: dir})
	require.NotEmpty(t, f.File)
	text, err := os.ReadFile(f.File)
	require.NoError(t, err)
	assert.Contains(t, string(text), "# reproduce: go run ./cmd/wqsim replay "+f.File)
	assert.Contains(t, string(text), "-wqsim.failfile="+f.File)
	ff, err := proptest.ReadFailFile(f.File)
	require.NoError(t, err)
	r, err := proptest.Replay(ff, nil)
	require.NoError(t, err)
	assert.Equal(t, f.MinFinal.Outcome.Hash, r.Outcome.Hash)
	assert.Equal(t, f.MinFinal.Outcome.Err.Error(), r.Outcome.Err.Error())
	// A tampered schedule is a strict replay mismatch naming both sides.
	ff.Decisions[len(ff.Decisions)-1].N = 9
	r, err = proptest.Replay(ff, nil)
	require.NoError(t, err)
	assert.ErrorContains(t, r.Outcome.Err, "replay diverged")
}

// Parallel exploration reports what a serial run reports.
func TestParallelEqualsSerial(t *testing.T) {
	s := lostUpdate(t)
	run := func(par int, keep bool) *proptest.Report {
		rep, err := proptest.Explore(context.Background(), proptest.Options{Scenario: s, Variant: "racy", Execs: 300, Seed: 5, Parallel: par, KeepGoing: keep})
		require.NoError(t, err)
		return rep
	}
	ser, par := run(1, false), run(4, false)
	require.NotNil(t, ser.First())
	assert.Equal(t, ser.First().Exec, par.First().Exec)
	assert.Equal(t, ser.First().Result.Outcome.Hash, par.First().Result.Outcome.Hash)
	assert.Equal(t, ser.Execs, par.Execs)
	all1, all4 := run(1, true), run(4, true)
	assert.Equal(t, execsOf(all1), execsOf(all4))
}

// The union of shards is the unsharded run.
func TestShardsPartitionExecutions(t *testing.T) {
	s := lostUpdate(t)
	opts := proptest.Options{Scenario: s, Variant: "racy", Execs: 200, Seed: 9, KeepGoing: true}
	whole, err := proptest.Explore(context.Background(), opts)
	require.NoError(t, err)
	var union []int
	total := 0
	for i := 0; i < 3; i++ {
		o := opts
		o.Shard, o.Shards = i, 3
		rep, err := proptest.Explore(context.Background(), o)
		require.NoError(t, err)
		union = append(union, execsOf(rep)...)
		total += rep.Execs
	}
	assert.Equal(t, whole.Execs, total)
	assert.ElementsMatch(t, execsOf(whole), union)
	_, err = proptest.Explore(context.Background(), proptest.Options{Scenario: s, Variant: "racy", Shard: 3, Shards: 3})
	assert.ErrorContains(t, err, "out of range")
}

func execsOf(r *proptest.Report) []int {
	var out []int
	for _, f := range r.Failures {
		out = append(out, f.Exec)
	}
	return out
}

// The same execution run twice behaves the same (determinism check).
func TestScenarioRunsAreDeterministic(t *testing.T) {
	for _, s := range model.All() {
		for _, v := range s.VariantNames() {
			seed := uint64(42)
			run := func() des.Outcome {
				r, err := model.Run(s, v, model.RunConfig{Seed: seed, Chooser: des.NewSeededBiased(seed, 7, 8)})
				require.NoError(t, err)
				return r.Outcome
			}
			assert.NoError(t, proptest.CompareRuns(run(), run()), "%s:%s", s.Name, v)
		}
	}
}

func TestFailFileParseErrors(t *testing.T) {
	good := (&proptest.FailFile{Scenario: "lostupdate", Variant: "racy", Seed: 3, Strategy: "random", Hash: 0xabc,
		Decisions: []des.Decision{{Kind: 12, N: 3, Choice: 1, Label: "kernel: inject preemption"}}}).Encode("x.fail")
	f, err := proptest.ParseFailFile(good)
	require.NoError(t, err)
	assert.Equal(t, uint64(0xabc), f.Hash)
	assert.Equal(t, "kernel: inject preemption", f.Decisions[0].Label)
	cases := map[string]struct{ text, want string }{
		"empty":       {"", "empty file"},
		"not ours":    {"hello\n", "not a wqsim fail file"},
		"new version": {"wqsim-failfile 99\n", "format version \"99\""},
		"version 1":   {"wqsim-failfile 1\n", "left out each record's sub-kind"},
		"version 2":   {"wqsim-failfile 2\n", "left out each record's sub-kind"},
		"bad shard":   {strings.Replace(string(good), "shard: 0/1", "shard: 3/2", 1), "shard:"},
		"too long":    {strings.Replace(string(good), "decisions: 1", "decisions: 1000001", 1), "more than the 1000000"},
		"truncated":   {strings.Split(string(good), "end\n")[0], "truncated"},
		"bad choice":  {strings.Replace(string(good), "12 3 1", "12 3 5", 1), "0 ≤ CHOICE < OPTIONS"},
		"bad count":   {strings.Replace(string(good), "decisions: 1", "decisions: 2", 1), "header says 2 decisions"},
		"bad seed":    {strings.Replace(string(good), "seed: 3", "seed: -3", 1), "not an unsigned number"},
		"missing":     {strings.Replace(string(good), "variant: racy\n", "", 1), "want field \"variant: …\""},
	}
	for name, c := range cases {
		_, err := proptest.ParseFailFile([]byte(c.text))
		assert.ErrorContains(t, err, c.want, name)
	}
}

func TestFailFileWriteIsAtomic(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "sub", "a.fail")
	f := &proptest.FailFile{Scenario: "s", Variant: "v", Decisions: []des.Decision{{Kind: 1, N: 2, Choice: 1}}}
	require.NoError(t, proptest.WriteFailFile(path, f))
	entries, _ := os.ReadDir(filepath.Dir(path))
	assert.Len(t, entries, 1, "no temporary file left behind")
	back, err := proptest.ReadFailFile(path)
	require.NoError(t, err)
	assert.Equal(t, f.Decisions[0].Choice, back.Decisions[0].Choice)
}

// TestReplayFailFile is the target of the reproduce line: it replays
// -wqsim.failfile (or WQSIM_FAILFILE) strictly and fails if it still fails.
func TestReplayFailFile(t *testing.T) {
	st, err := proptest.CurrentSettings()
	require.NoError(t, err)
	if st.FailFile == "" {
		t.Skip("no -wqsim.failfile given; this test only replays a fail file on request")
	}
	f, err := proptest.ReadFailFile(st.FailFile)
	require.NoError(t, err)
	r, err := proptest.Replay(f, nil)
	require.NoError(t, err)
	assert.NoError(t, r.Outcome.Err, "reproduced: %s:%s", f.Scenario, f.Variant)
}

// A scenario whose behaviour depends on something outside the decisions is
// caught when its failure is re-run.
func TestUncontrolledNondeterminismIsReported(t *testing.T) {
	flip := 0
	s := &model.Scenario{Name: "flaky", Variants: []model.Variant{{Name: "bug", Bug: true}},
		Setup: func(env *model.Env) error {
			flip++ // state outside the simulation: differs between runs
			n := flip
			env.K.PsCreateSystemThread("t", 8, func() {
				for i := 0; i < n; i++ {
					env.K.Layer().Yield()
				}
				env.Violation("always", "fails")
			})
			return nil
		}}
	r, err := model.Run(s, "bug", model.RunConfig{Seed: 1})
	require.NoError(t, err)
	require.True(t, r.Failed())
	err = proptest.CheckDeterministic(s, "bug", 1, r.Outcome)
	var u *proptest.UncontrolledNondeterminism
	require.ErrorAs(t, err, &u)
	assert.Contains(t, err.Error(), "must take every choice through the Sim")
	ok, err := model.Run(lostUpdate(t), "racy", model.RunConfig{Seed: 1})
	require.NoError(t, err)
	assert.NoError(t, proptest.CheckDeterministic(lostUpdate(t), "racy", 1, ok.Outcome))
}

// Find fails the test when the failure it finds is not the one the variant
// declares (Want, Marks), unless AnyFailure is set; Perturbations counts
// the shrunk schedule's non-natural decisions.
func TestFindChecksDeclaredFailure(t *testing.T) {
	base := *lostUpdate(t)
	racy, _ := base.Variant("racy")
	wrongWant, wrongMark := base, base
	wrongWant.Name, wrongMark.Name = "lostupdate-want", "lostupdate-mark"
	wrongWant.Variants = []model.Variant{{Name: "correct"}, {Name: "racy", Bug: true, Want: "deadlock", Marks: racy.Marks}}
	wrongMark.Variants = []model.Variant{{Name: "correct"}, {Name: "racy", Bug: true, Want: racy.Want,
		Marks: []*model.Mark{model.NewMark("lostupdate: a path never taken")}}}
	o := proptest.Options{Execs: 5000, Seed: 11}

	ok := &fakeTB{TB: t}
	f := proptest.Find(ok, &base, "racy", o)
	assert.False(t, ok.failed, "%v", ok.msgs)
	assert.Equal(t, 1, f.Perturbations(), "one early quantum end between the read and the write")

	for _, s := range []*model.Scenario{&wrongWant, &wrongMark} {
		bad := &fakeTB{TB: t}
		proptest.Find(bad, s, "racy", o)
		require.True(t, bad.failed, s.Name)
		assert.Contains(t, bad.msgs[0], "set Options.AnyFailure to accept any failure")

		any := &fakeTB{TB: t}
		o := o
		o.AnyFailure = true
		proptest.Find(any, s, "racy", o)
		assert.False(t, any.failed, "%s: %v", s.Name, any.msgs)
	}
}

// A bug that the natural schedule already shows shrinks to no perturbation
// at all, and Perturbations says 0 (not the count of the perturbed
// execution that found it).
func TestNaturalFailureShrinksToNothing(t *testing.T) {
	s := &model.Scenario{Name: "alwaysfails", Variants: []model.Variant{{Name: "bug", Bug: true}},
		Setup: func(env *model.Env) error {
			for _, name := range []string{"a", "b", "c"} {
				env.K.PsCreateSystemThread(name, 8, func() {
					for range 5 {
						env.K.Compute(des.Microsecond)
					}
				})
			}
			env.AtEnd("never holds", func() error { return fmt.Errorf("the driver is always wrong") })
			return nil
		}}
	f := proptest.Find(t, s, "bug", proptest.Options{Seed: 1, AnyFailure: true,
		Strategy: &proptest.RandomWalk{NaturalNum: 1, NaturalDen: 2}})
	require.NotZero(t, func() int {
		n := 0
		for _, d := range f.Result.Outcome.Decisions {
			if d.Choice != 0 {
				n++
			}
		}
		return n
	}(), "the execution that found it was perturbed")
	assert.NotNil(t, f.Minimal)
	assert.Empty(t, f.Minimal)
	assert.Equal(t, 0, f.Perturbations())
}

// A correct variant that fails FixesSurvive gets Check's report: shrunk,
// saved, with its replay lines (it said only "failed at execution k"
// before, with nothing to replay). The failing run is a child process of this test binary, since FixesSurvive
// fails the *testing.T it is given.
func TestFixesSurviveReportsAFailFile(t *testing.T) {
	if os.Getenv("WQSIM_FIXES_CHILD") == "1" {
		s := *lostUpdate(t)
		s.Variants = append([]model.Variant(nil), s.Variants...)
		for i := range s.Variants {
			s.Variants[i].Bug = false // the racy variant posing as a fix
		}
		proptest.FixesSurvive(t, []*model.Scenario{&s}, 1_000_000)
		return
	}
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^TestFixesSurviveReportsAFailFile$", "-test.v")
	cmd.Env = append(os.Environ(), "WQSIM_FIXES_CHILD=1", "WQSIM_FAILDIR="+dir, "WQSIM_EXECS=3000")
	out, err := cmd.CombinedOutput()
	require.Error(t, err, "the child fails: %s", out)
	saved := proptest.SavedFailFiles(dir, "lostupdate", "racy")
	require.Len(t, saved, 1, "%s", out)
	assert.Contains(t, string(out), "fail file: "+saved[0])
	assert.Contains(t, string(out), "-wqsim.failfile="+saved[0])
	assert.Contains(t, string(out), "minimal schedule (1 perturbations)")
}
