package drivers

import (
	"fmt"

	"github.com/wqsim/wqsim/des"
	"github.com/wqsim/wqsim/kernel"
	"github.com/wqsim/wqsim/model"
	"github.com/wqsim/wqsim/queues"
)

// ResUpgrade is a name cache behind an ERESOURCE: lookups run as delayed
// work items and hold it shared; a miss must insert the name, which needs
// it exclusive. An ERESOURCE cannot be upgraded: the correct code releases
// its shared hold, acquires exclusive and looks again, since another
// work item may have inserted the name in between. The bugs ask for
// exclusive while still holding shared (the owner waits for itself), and
// release-then-acquire without the second look (the name goes in twice).
var ResUpgrade = &model.Scenario{
	Name: "resupgrade",
	Doc: "Lookups in delayed work items hold an ERESOURCE shared; a miss inserts under exclusive. The bugs " +
		"upgrade in place (a shared owner waiting for exclusive waits for itself) or drop shared and take " +
		"exclusive without looking again (a name inserted twice).",
	Section: "REFERENCE §4.6, §1.1",
	Variants: []model.Variant{
		{Name: "correct", Doc: "release shared, acquire exclusive, look again, insert only if still missing"},
		{Name: "upgrade", Bug: true, Doc: "ExAcquireResourceExclusiveLite while holding the resource shared: the work item waits for itself",
			Want: "deadlock|hang"},
		{Name: "no-recheck", Bug: true, Doc: "release shared, acquire exclusive and insert without looking again: two lookups of one name both insert it",
			Want: "invariant"},
	},
	Setup: resUpgradeSetup,
}

const (
	ruLookups = 4
	ruNames   = 2
)

// ruCache is the driver's cache.
type ruCache struct {
	env     *model.Env
	k       *kernel.Kernel
	res     *kernel.ERESOURCE
	names   [ruNames]int // name → times inserted, guarded by res
	done    *kernel.Cell
	allDone *kernel.KEVENT
}

func resUpgradeSetup(env *model.Env) error {
	k := env.K
	sys, err := queues.NewSystem(k, queues.DefaultPoolConfig())
	if err != nil {
		return err
	}
	c := &ruCache{env: env, k: k}
	c.res = k.ExInitializeResourceLite("name cache")
	c.done = k.NewCell("lookups done", 0)
	c.allDone = k.KeInitializeEvent("lookups done", kernel.NotificationEvent, false)
	env.Invariant("each name inserted once", func() error {
		for name, n := range c.names {
			if n > 1 {
				return fmt.Errorf("name %d inserted %d times", name, n)
			}
		}
		return nil
	})
	items := make([]queues.WORK_QUEUE_ITEM, ruLookups)
	k.PsCreateSystemThread("opener", 8, func() {
		for i := range items {
			name := env.Choose("name looked up", ruNames) // two lookups of one name are likely
			queues.ExInitializeWorkItem(&items[i], func(any) { c.lookup(name) }, nil)
			sys.ExQueueWorkItem(&items[i], queues.DelayedWorkQueue)
			k.Compute(des.Duration(1+env.Choose("open gap", 3)) * des.Microsecond)
		}
		k.KeWaitForSingleObject(c.allDone, kernel.Infinite)
		env.BeginDrain()
	})
	env.AtEnd("every lookup finished", func() error {
		if n := c.done.Peek(); n != ruLookups {
			return fmt.Errorf("%d of %d lookups finished", n, ruLookups)
		}
		return nil
	})
	return nil
}

// lookup finds name, inserting it on a miss.
func (c *ruCache) lookup(name int) {
	k := c.k
	k.KeEnterCriticalRegion()
	k.ExAcquireResourceSharedLite(c.res, true)
	k.Compute(des.Microsecond) // hash and walk the bucket
	hit := c.names[name] > 0
	if !hit {
		switch {
		case c.env.Is("upgrade"):
			k.ExAcquireResourceExclusiveLite(c.res, true) // never granted: we hold it shared
			c.names[name]++
			k.ExReleaseResourceLite(c.res)
		case c.env.Is("no-recheck"):
			k.ExReleaseResourceLite(c.res)
			k.ExAcquireResourceExclusiveLite(c.res, true)
			c.names[name]++
		default:
			k.ExReleaseResourceLite(c.res)
			k.ExAcquireResourceExclusiveLite(c.res, true)
			if c.names[name] == 0 {
				c.names[name]++
			}
		}
		k.Compute(des.Microsecond) // link the entry
	}
	k.ExReleaseResourceLite(c.res)
	k.KeLeaveCriticalRegion()
	if k.InterlockedIncrement(c.done) == ruLookups {
		k.KeSetEvent(c.allDone, kernel.IO_NO_INCREMENT, false)
	}
}
