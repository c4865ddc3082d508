package kernel_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wqsim/wqsim/des"
	"github.com/wqsim/wqsim/kernel"
)

// offered is one perturbation point a run offered: its kind and options,
// whether a thread made it (Actor != 0), and where the code was.
type offered struct {
	kind  des.PointKind
	n     int
	actor bool
	where string
}

// pointRecorder answers every point with pick(kind) and records it with
// the phase the simulated code last announced.
type pointRecorder struct {
	where  *string
	pick   func(des.PointKind) int
	points []offered
}

func (r *pointRecorder) Choose(p des.Point, n int) int {
	r.points = append(r.points, offered{p.Kind, n, p.Actor != 0, *r.where})
	if r.pick == nil {
		return 0
	}
	return r.pick(p.Kind)
}

// finePhases runs a thread that yields below and at DISPATCH_LEVEL and
// queues a DPC, and an ISR, each announcing where it is; it returns the
// points offered.
func finePhases(t *testing.T, fine bool) []offered {
	cfg := oneCPU()
	cfg.InjectPreemption, cfg.FineStalls = true, fine
	where := "setup"
	r := &pointRecorder{where: &where}
	m := newMachine(t, cfg, r)
	k := m.Kernel
	dpc := k.KeInitializeDpc("d", func(*kernel.KDPC, any, any, any) {
		where = "dpc"
		k.Layer().Yield()
	}, nil)
	intr, err := k.IoConnectInterrupt("dev", 5, func(*kernel.KINTERRUPT, any) bool {
		where = "isr"
		k.Layer().Yield()
		where = "isr done"
		return true
	}, nil)
	require.NoError(t, err)
	k.PsCreateSystemThread("t", 8, func() {
		where = "passive"
		k.Layer().Yield()
		old := k.KeRaiseIrql(kernel.DISPATCH_LEVEL)
		where = "dispatch"
		k.Layer().Yield()
		k.KeInsertQueueDpc(dpc, nil, nil)
		where = "lowering" // KeLowerIrql's points straddle the change
		k.KeLowerIrql(old)
	})
	k.DeviceInterrupt(intr, 0, des.Time(time1ms))
	require.NoError(t, k.Run().Err)
	return r.points
}

const time1ms = des.Millisecond

// Config.FineStalls: a thread below DISPATCH_LEVEL gets a fourth choice
// (a short stall) at its point; a thread at DISPATCH_LEVEL and a DPC get a
// stall decision (PointStall: none, short, long) and never an early
// quantum end; an ISR gets nothing. Off, only the thread below
// DISPATCH_LEVEL decides, among three, as before format 6 (REFERENCE §9).
func TestFineStallsOfferStallsAtDispatchLevel(t *testing.T) {
	for _, p := range finePhases(t, false) {
		assert.Equal(t, offered{kernel.PointInject, 3, true, p.where}, p, "off: only a thread's own point")
		assert.NotEqual(t, "dispatch", p.where)
		assert.NotEqual(t, "dpc", p.where)
		assert.NotEqual(t, "isr", p.where)
	}
	seen := map[string]bool{}
	for _, p := range finePhases(t, true) {
		seen[p.where] = true
		switch p.where {
		case "passive":
			assert.Equal(t, offered{kernel.PointInject, 4, true, "passive"}, p)
		case "dispatch":
			assert.Equal(t, offered{kernel.PointStall, 3, true, "dispatch"}, p, "a spin-lock-level thread only stalls")
		case "dpc":
			assert.Equal(t, offered{kernel.PointStall, 3, false, "dpc"}, p, "a DPC only stalls")
		}
		assert.NotEqual(t, "isr", p.where, "ISRs are not stalled")
	}
	assert.True(t, seen["passive"] && seen["dispatch"] && seen["dpc"], "every phase offered its points: %v", seen)
}

// A stall at DISPATCH_LEVEL holds the DPC for the chosen length (choice 1
// the short stall, 2 the long one) while the other processor's thread
// keeps running, and the thread the DPC interrupted does not run meanwhile.
func TestDpcStallHoldsItsProcessorOnly(t *testing.T) {
	for choice, want := range map[int]des.Duration{0: 0, 1: kernel.DefaultShortStallTime, 2: 50 * des.Microsecond} {
		cfg := kernel.DefaultConfig()
		cfg.InjectPreemption, cfg.FineStalls = true, true
		inDpc := false
		m := newMachine(t, cfg, chooserFunc(func(p des.Point, n int) int {
			if p.Kind == kernel.PointStall && inDpc {
				return choice
			}
			return 0
		}))
		k := m.Kernel
		var took des.Duration
		var otherSteps, victimSteps int
		dpc := k.KeInitializeDpc("d", func(*kernel.KDPC, any, any, any) {
			inDpc = true
			before, v, o := k.Now(), victimSteps, otherSteps
			k.Layer().Yield()
			inDpc = false
			took = k.Now().Sub(before)
			assert.Equal(t, v, victimSteps, "the interrupted thread waits for the DPC")
			if want > 5*des.Microsecond {
				assert.Greater(t, otherSteps, o, "the other processor ran during the stall")
			}
		}, nil)
		k.PsCreateSystemThread("victim", 8, func() {
			k.KeSetSystemAffinityThreadEx(1)
			for range 200 {
				if victimSteps == 20 {
					old := k.KeRaiseIrql(kernel.DISPATCH_LEVEL)
					k.KeInsertQueueDpc(dpc, nil, nil)
					k.KeLowerIrql(old)
				}
				victimSteps++
				k.Compute(des.Microsecond)
			}
		})
		k.PsCreateSystemThread("other", 8, func() {
			k.KeSetSystemAffinityThreadEx(2)
			for range 200 {
				otherSteps++
				k.Compute(des.Microsecond)
			}
		})
		require.NoError(t, k.Run().Err)
		assert.Equal(t, want, took, "choice %d", choice)
	}
}

type chooserFunc func(des.Point, int) int

func (f chooserFunc) Choose(p des.Point, n int) int { return f(p, n) }

// Why two stall lengths: a window a few microseconds wide, a few
// microseconds away, is reached by the short stall and overshot by the
// long one. A thread on cpu1 holds a flag up for 6µs; a DPC on cpu0 reads
// it just before: natural and with the 50µs stall it reads 0, with the
// 5µs stall it lands inside the window (REFERENCE §9).
func TestShortStallReachesANarrowWindow(t *testing.T) {
	for choice, want := range []int64{0, 1, 0} {
		cfg := kernel.DefaultConfig()
		cfg.InjectPreemption, cfg.FineStalls = true, true
		asked := false
		m := newMachine(t, cfg, chooserFunc(func(p des.Point, n int) int {
			if p.Kind == kernel.PointStall && p.Actor == 0 && !asked {
				asked = true
				return choice
			}
			return 0
		}))
		k := m.Kernel
		flag := k.NewCell("flag", 0)
		seen := int64(-1)
		dpc := k.KeInitializeDpc("d", func(*kernel.KDPC, any, any, any) { seen = k.Read(flag) }, nil)
		intr, err := k.IoConnectInterrupt("dev", 5, func(*kernel.KINTERRUPT, any) bool {
			k.KeInsertQueueDpc(dpc, nil, nil)
			return true
		}, nil)
		require.NoError(t, err)
		k.PsCreateSystemThread("holder", 8, func() {
			k.KeSetSystemAffinityThreadEx(2)
			k.Compute(10 * des.Microsecond)
			k.Write(flag, 1)
			k.Compute(6 * des.Microsecond)
			k.Write(flag, 0)
		})
		k.DeviceInterrupt(intr, 0, des.Time(8*des.Microsecond))
		require.NoError(t, k.Run().Err)
		require.True(t, asked, "the DPC was offered a stall")
		assert.Equal(t, want, seen, "choice %d", choice)
	}
}
