package kernel_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/wqsim/wqsim/des"
	"github.com/wqsim/wqsim/kernel"
)

// touchRecorder keeps every decision point's access report and takes the
// natural choice, except that it ends each quantum early once so that a
// choice among ready threads arises.
type touchRecorder struct {
	want    bool
	touches []des.Access           // Point.Touch at injection points, by actor order
	byActor map[int32][]des.Access // the same, per actor
	ready   [][]des.Access         // Point.Touches at ready-thread choices
	options [][]int32
}

func (r *touchRecorder) WantsAccess() bool { return r.want }

func (r *touchRecorder) Choose(p des.Point, n int) int {
	switch p.Kind {
	case kernel.PointInject:
		r.touches = append(r.touches, p.Touch)
		r.byActor[p.Actor] = append(r.byActor[p.Actor], p.Touch)
		return 1 // early quantum end: the other thread becomes a candidate
	case kernel.PointPickThread:
		r.ready = append(r.ready, append([]des.Access(nil), p.Touches...))
		r.options = append(r.options, append([]int32(nil), p.Options...))
	}
	return 0
}

func runTouches(t *testing.T, want bool) *touchRecorder {
	rec := &touchRecorder{want: want, byActor: map[int32][]des.Access{}}
	cfg := oneCPU()
	cfg.InjectPreemption = true
	cfg.DecideReadyOrder = true
	cfg.StallTime = 10 * des.Microsecond
	sim := des.New(des.Config{Chooser: rec, WantAccess: des.WantsAccess(rec), StepBudget: 100_000})
	t.Cleanup(sim.Close)
	k, err := kernel.New(sim, cfg)
	require.NoError(t, err)
	x := k.NewCell("x", 0)
	lock := k.KeInitializeSpinLock("l")
	ev := k.KeInitializeEvent("e", kernel.NotificationEvent, false)
	k.PsCreateSystemThread("reader", 8, func() {
		k.Read(x)
		k.KeWaitForSingleObject(ev, kernel.Infinite)
	})
	k.PsCreateSystemThread("writer", 8, func() {
		k.Write(x, 1)
		old := k.KeAcquireSpinLock(lock)
		k.KeReleaseSpinLock(lock, old)
		k.KeSetEvent(ev, 0, false)
	})
	k.PsCreateSystemThread("third", 8, func() { // a third thread: two candidates when one yields
		k.Read(x)
		k.Write(x, 2)
	})
	sim.Run()
	out := k.Layer().Finish()
	require.NoError(t, out.Err)
	return rec
}

// TestAccessReports: with WantAccess on, a thread's injection point names
// the object and kind of the operation it is about to perform (a read and a
// write of one cell share an object; a lock and an event are others), and a
// choice among ready threads names each candidate's pending operation.
func TestAccessReports(t *testing.T) {
	rec := runTouches(t, true)
	var ops []des.AccessOp
	objs := map[des.AccessOp]int32{}
	for _, a := range rec.touches {
		if a.Obj != 0 {
			ops = append(ops, a.Op)
			objs[a.Op] = a.Obj
		}
	}
	require.Contains(t, ops, des.AccessRead)
	require.Contains(t, ops, des.AccessWrite)
	require.Contains(t, ops, des.AccessLock)
	require.Contains(t, ops, des.AccessSync)
	require.Equal(t, objs[des.AccessRead], objs[des.AccessWrite], "read and write of one cell name one object")
	require.NotEqual(t, objs[des.AccessRead], objs[des.AccessLock])
	require.NotEqual(t, objs[des.AccessLock], objs[des.AccessSync])
	require.True(t, des.Access{Obj: objs[des.AccessRead], Op: des.AccessRead}.Conflicts(des.Access{Obj: objs[des.AccessWrite], Op: des.AccessWrite}))
	require.False(t, des.Access{Obj: objs[des.AccessRead], Op: des.AccessRead}.Conflicts(des.Access{Obj: objs[des.AccessRead], Op: des.AccessRead}))
	known := 0
	for i, ts := range rec.ready {
		require.Len(t, ts, len(rec.options[i]), "one touch per candidate")
		for _, a := range ts {
			if a.Obj != 0 {
				known++
			}
		}
	}
	require.NotZero(t, len(rec.ready), "the workload offers a ready-thread choice")
	require.NotZero(t, known, "a preempted candidate reports its pending operation")
}

// TestAccessReportsOffByDefault: without WantAccess nothing is reported.
func TestAccessReportsOffByDefault(t *testing.T) {
	rec := runTouches(t, false)
	for _, a := range rec.touches {
		require.Zero(t, a)
	}
	for _, ts := range rec.ready {
		require.Nil(t, ts)
	}
}
