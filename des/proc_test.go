package des_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wqsim/wqsim/des"
)

func TestProcsInterleaveOnVirtualTime(t *testing.T) {
	s := des.New(des.Config{})
	defer s.Close()
	var log []string
	spawn := func(name string, d des.Duration) {
		p := s.Spawn(name, func(p *des.Proc) {
			for i := 0; i < 3; i++ {
				p.Sleep(d)
				log = append(log, name+"@"+s.Now().String())
				assert.Same(t, p, s.Current())
			}
		})
		s.ResumeAt(0, p)
	}
	spawn("a", 2)
	spawn("b", 3)
	out := s.Run()
	require.NoError(t, out.Err)
	assert.Nil(t, s.Current())
	assert.Equal(t, []string{
		"a@0.000000002s", "b@0.000000003s", "a@0.000000004s",
		// b's wake for t=6 was scheduled at t=3, before a's (at t=4): insertion order.
		"b@0.000000006s", "a@0.000000006s", "b@0.000000009s",
	}, log)
	assert.Zero(t, s.Live())
}

func TestPanicInProcBecomesOutcome(t *testing.T) {
	s := des.New(des.Config{})
	defer s.Close()
	p := s.Spawn("driver", func(p *des.Proc) {
		s.Emit(&des.Record{Kind: 1, What: "before"})
		p.Sleep(5)
		var m map[string]int
		m["boom"]++ // nil map write: a real bug inside simulated code
	})
	s.ResumeAt(0, p)
	other := s.Spawn("bystander", func(p *des.Proc) { p.Sleep(100) })
	s.ResumeAt(0, other)
	out := s.Run()
	var pe *des.PanicError
	require.ErrorAs(t, out.Err, &pe)
	assert.Equal(t, "driver", pe.Proc)
	assert.Contains(t, pe.Stack, "proc_test.go")
	assert.Equal(t, des.Time(5), out.End, "the run stops at the panicking event")
	require.NotEmpty(t, out.Tail)
	assert.Equal(t, des.What("before"), out.Tail[len(out.Tail)-1].What)
	assert.Equal(t, 1, s.Live(), "the bystander is still suspended, not crashed")
}

// Reset unwinds suspended coroutines and reuses them; the next run behaves
// exactly like a run on a fresh Sim.
func TestResetReusesCoroutines(t *testing.T) {
	s := des.New(des.Config{})
	defer s.Close()
	cleanups := 0
	for run := 0; run < 3; run++ {
		s.Reset(des.Config{Seed: uint64(run)})
		for i := 0; i < 4; i++ {
			p := s.Spawn("forever", func(p *des.Proc) {
				defer func() { cleanups++ }()
				for {
					p.Sleep(1)
				}
			})
			assert.Equal(t, int32(i+1), p.ID(), "ids restart each run")
			s.ResumeAt(0, p)
		}
		s.RunUntil(10)
		assert.Equal(t, 4, s.Live())
	}
	s.Reset(des.Config{})
	assert.Equal(t, 12, cleanups, "every suspended body was unwound, running its defers")
	assert.Zero(t, s.Live())
}

func TestLateWakeOfFinishedProcIsDropped(t *testing.T) {
	s := des.New(des.Config{})
	defer s.Close()
	runs := 0
	p := s.Spawn("once", func(p *des.Proc) { runs++ })
	s.ResumeAt(0, p)
	s.ResumeAt(5, p)
	out := s.Run()
	require.NoError(t, out.Err)
	assert.Equal(t, 1, runs)
}

func TestResumeFromInsideProcIsRefused(t *testing.T) {
	s := des.New(des.Config{})
	defer s.Close()
	inner := s.Spawn("inner", func(p *des.Proc) {})
	outer := s.Spawn("outer", func(p *des.Proc) { inner.Resume() })
	s.ResumeAt(0, outer)
	out := s.Run()
	var pe *des.PanicError
	require.ErrorAs(t, out.Err, &pe)
	assert.Contains(t, pe.Value, "resume procs only from event handlers")
}

// A body unwound by Reset whose deferred code reaches a scheduling point
// must not park itself in the pool: the next run must behave exactly like
// a run on a fresh Sim (found by a scenario with a deferred kernel call).
func TestResetUnwindsDeferredYields(t *testing.T) {
	run := func(s *des.Sim) uint64 {
		for i := 0; i < 3; i++ {
			p := s.Spawn("worker", func(p *des.Proc) {
				defer p.Sleep(1) // e.g. a deferred KeReleaseSpinLock
				for j := 0; j < 4; j++ {
					p.Sleep(des.Duration(1 + j))
					s.Emit(&des.Record{Kind: 1, What: "tick", A: int64(j)})
				}
			})
			s.ResumeAt(0, p)
		}
		return s.Run().Hash
	}
	fresh := des.New(des.Config{})
	defer fresh.Close()
	want := run(fresh)
	reused := des.New(des.Config{})
	defer reused.Close()
	for k := 0; k < 3; k++ {
		reused.Reset(des.Config{})
		for i := 0; i < 3; i++ { // leave bodies suspended mid-loop
			p := reused.Spawn("stuck", func(p *des.Proc) {
				defer p.Sleep(1)
				for {
					p.Sleep(1)
				}
			})
			reused.ResumeAt(0, p)
		}
		reused.RunUntil(3)
		reused.Reset(des.Config{})
		assert.Equal(t, want, run(reused), "round %d: a reused Sim must hash like a fresh one", k)
		assert.Zero(t, reused.Live())
	}
}
