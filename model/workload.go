package model

import (
	"slices"

	"github.com/wqsim/wqsim/des"
	"github.com/wqsim/wqsim/kernel"
)

// Pieces the scenarios' workloads share.

// countdown counts workload threads down and sets done when the last one
// finishes.
type countdown struct {
	k    *kernel.Kernel
	left *kernel.Cell
	done *kernel.KEVENT // notification event
}

// newCountdown creates the counter (named running, starting at n) and then
// the event (named done), in that order.
func newCountdown(k *kernel.Kernel, n int, running, done string) *countdown {
	c := &countdown{}
	c.init(k, n, running, done)
	return c
}

// init is newCountdown for a countdown the caller keeps.
func (c *countdown) init(k *kernel.Kernel, n int, running, done string) {
	left := k.NewCell(running, int64(n))
	*c = countdown{k: k, left: left, done: k.KeInitializeEvent(done, kernel.NotificationEvent, false)}
}

// finish is called by each workload thread as its last act.
func (c *countdown) finish() {
	if c.k.InterlockedDecrement(c.left) == 0 {
		c.k.KeSetEvent(c.done, 0, false)
	}
}

// removeFirst removes the first x from s, if s holds one, keeping the
// order of the rest.
func removeFirst[S ~[]E, E comparable](s S, x E) S {
	if i := slices.Index(s, x); i >= 0 {
		return slices.Delete(s, i, i+1)
	}
	return s
}

// cancelAfterChoice is a canceller's workload decision: never (choice 0,
// the plain workload) or after c×20µs for a choice c in [1, n), then
// cancel.
func cancelAfterChoice(env *Env, label string, n int, cancel func()) {
	if c := env.Choose(label, n); c > 0 {
		env.K.KeDelayExecutionThread(des.Duration(c) * 20 * des.Microsecond)
		cancel()
	}
}
