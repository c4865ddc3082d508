package drivers

import (
	"fmt"

	"github.com/wqsim/wqsim/des"
	"github.com/wqsim/wqsim/kernel"
	"github.com/wqsim/wqsim/model"
)

// Mailbox is a one-slot hand-off between a producer thread and two
// consumer threads: the producer waits "empty", fills the slot and sets
// "full"; a consumer waits "full", takes the slot and sets "empty". "full"
// must be a synchronization event: setting it satisfies one waiter and
// resets it (REFERENCE §4.8). The bug makes it a notification event that
// the consumer clears after waking, a common port from user-mode code:
// setting a notification event satisfies every waiter at once, so both
// consumers take the same message before either clears it.
var Mailbox = &model.Scenario{
	Name: "mailbox",
	Doc: "A producer hands messages to two consumer threads through a one-slot mailbox guarded by a " +
		"'full' and an 'empty' event. The bug makes 'full' a notification event cleared by the consumer " +
		"after its wait: both consumers wake and process the same message.",
	Section: "REFERENCE §4.8",
	Variants: []model.Variant{
		{Name: "correct", Doc: "'full' is a synchronization event: one consumer wakes per message"},
		{Name: "notification", Bug: true, Doc: "'full' is a notification event cleared with KeClearEvent after the wait: both consumers wake",
			Want: "message processed twice"},
	},
	Setup: mailboxSetup,
}

const mbMessages = 4

// mbBox is the device extension.
type mbBox struct {
	env         *model.Env
	k           *kernel.Kernel
	full, empty *kernel.KEVENT
	stop        *kernel.KEVENT
	slot        int   // message number; written by the holder of the hand-off
	seen        []int // times each message was processed
}

func mailboxSetup(env *model.Env) error {
	k := env.K
	b := &mbBox{env: env, k: k, seen: make([]int, mbMessages+1)}
	fullType := kernel.SynchronizationEvent
	if env.Is("notification") {
		fullType = kernel.NotificationEvent
	}
	b.full = k.KeInitializeEvent("full", fullType, false)
	b.empty = k.KeInitializeEvent("empty", kernel.SynchronizationEvent, true)
	b.stop = k.KeInitializeEvent("stop", kernel.NotificationEvent, false)
	c1 := k.PsCreateSystemThread("consumer 1", 8, b.consume)
	c2 := k.PsCreateSystemThread("consumer 2", 8, b.consume)
	k.PsCreateSystemThread("producer", 9, func() {
		for m := 1; m <= mbMessages; m++ {
			k.KeWaitForSingleObject(b.empty, kernel.Infinite)
			k.Compute(des.Duration(1+env.Choose("produce time", 3)) * des.Microsecond)
			b.slot = m
			k.KeSetEvent(b.full, kernel.IO_NO_INCREMENT, false)
		}
		k.KeWaitForSingleObject(b.empty, kernel.Infinite) // the last message taken
		env.BeginDrain()
		k.KeSetEvent(b.stop, kernel.IO_NO_INCREMENT, false)
		k.KeWaitForSingleObject(c1.Object(), kernel.Infinite)
		k.KeWaitForSingleObject(c2.Object(), kernel.Infinite)
	})
	env.AtEnd("every message processed once", func() error {
		for m := 1; m <= mbMessages; m++ {
			if b.seen[m] != 1 {
				return fmt.Errorf("message %d processed %d times", m, b.seen[m])
			}
		}
		return nil
	})
	return nil
}

// consume takes messages until stop. WaitAny reports the lowest index
// satisfied, so "full" comes first: a message is never left behind stop.
func (b *mbBox) consume() {
	k := b.k
	objs := []kernel.Waitable{b.full, b.stop}
	for {
		st := k.KeWaitForMultipleObjects(objs, kernel.WaitAny, kernel.Infinite)
		if st != kernel.STATUS_WAIT_0 {
			return
		}
		if b.env.Is("notification") {
			k.KeClearEvent(b.full)
		}
		m := b.slot
		b.seen[m]++
		if b.seen[m] > 1 {
			b.env.Violation("message processed twice", "message %d taken by a second consumer", m)
		}
		k.KeSetEvent(b.empty, kernel.IO_NO_INCREMENT, false)
		k.Compute(des.Duration(2+b.env.Choose("consume time", 3)) * des.Microsecond)
	}
}
