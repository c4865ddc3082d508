package drivers

import (
	"fmt"

	"github.com/wqsim/wqsim/des"
	"github.com/wqsim/wqsim/kernel"
	"github.com/wqsim/wqsim/model"
)

// Inversion is priority inversion on a FAST_MUTEX, which has no priority
// inheritance: a low-priority logger holds the mutex, a high-priority
// thread waits for it, and medium-priority threads keep both processors
// busy. When the medium threads' work is bounded, the inversion only
// delays the high thread: a correct driver, and no finding is due. The
// bug makes the medium threads poll, without waiting, for a flag the
// high thread sets after getting the mutex: on two processors the
// logger never runs again, a livelock that on Windows lasts until the
// balance-set manager's starvation boost (about 4 s, REFERENCE §4.4).
var Inversion = &model.Scenario{
	Name: "inversion",
	Doc: "A low-priority logger holds a fast mutex that a high-priority thread needs while two medium " +
		"threads use the processors. Bounded medium work only delays the high thread (no bug); the bug's " +
		"medium threads spin on a flag the high thread sets after the mutex, so nobody progresses.",
	Section: "REFERENCE §4.4, §4.6",
	Variants: []model.Variant{
		{Name: "correct", Doc: "the medium threads compute for a bounded time, then exit"},
		{Name: "spin-on-flag", Bug: true, Doc: "the medium threads poll a flag set by the high thread, without waiting: the logger holding the mutex is starved",
			Want: "hang|livelock|starv"},
	},
	Setup: inversionSetup,
	// The correct variant makes at most 231 decisions and 204 steps in
	// 20,000 explored runs; the spinning bug never stops on its own, so a
	// run past these is the livelock, found in 20,000 decisions rather
	// than the default 500,000.
	Budget: model.Budget{Steps: 100_000, Decisions: 20_000},
}

// ivState is shared by the threads.
type ivState struct {
	env    *model.Env
	k      *kernel.Kernel
	mutex  *kernel.FAST_MUTEX
	ready  *kernel.Cell // set by the high thread once it had the mutex
	logged int
	highOK bool
}

func inversionSetup(env *model.Env) error {
	k := env.K
	s := &ivState{env: env, k: k}
	s.mutex = k.ExInitializeFastMutex("log")
	s.ready = k.NewCell("high done", 0)
	k.PsCreateSystemThread("logger", 4, func() {
		for range 2 {
			k.ExAcquireFastMutex(s.mutex)
			k.Compute(des.Duration(3+env.Choose("log time", 3)*3) * des.Microsecond)
			s.logged++
			k.ExReleaseFastMutex(s.mutex)
			k.KeDelayExecutionThread(2 * des.Microsecond)
		}
	})
	k.PsCreateSystemThread("high", 12, func() {
		k.KeDelayExecutionThread(des.Duration(2+env.Choose("high arrives", 3)*2) * des.Microsecond)
		k.ExAcquireFastMutex(s.mutex)
		s.highOK = true
		k.ExReleaseFastMutex(s.mutex)
		k.InterlockedExchange(s.ready, 1)
	})
	for i := range 2 {
		k.PsCreateSystemThread(fmt.Sprintf("medium %d", i), 8, func() {
			k.KeDelayExecutionThread(des.Duration(3+env.Choose("medium arrives", 3)*2) * des.Microsecond)
			if env.Is("spin-on-flag") {
				for k.Read(s.ready) == 0 {
					k.Compute(des.Microsecond)
				}
				return
			}
			for range 40 {
				k.Compute(des.Microsecond)
			}
		})
	}
	env.AtEnd("logger and high thread finished", func() error {
		if s.logged != 2 || !s.highOK {
			return fmt.Errorf("logged %d of 2, high thread had the mutex: %v", s.logged, s.highOK)
		}
		return nil
	})
	return nil
}
