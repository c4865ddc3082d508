package drivers

import (
	"fmt"

	"github.com/wqsim/wqsim/des"
	"github.com/wqsim/wqsim/kernel"
	"github.com/wqsim/wqsim/model"
	"github.com/wqsim/wqsim/queues/fltmgr"
)

// namecache: a minifilter keeps a cache of file names under a push lock.
// Its pre-read looks the name up shared; a refresher thread rewrites the
// cache exclusively now and then. A push lock is not recursive
// (REFERENCE §4.25): the first bug checks the filter's policy under the
// lock and then calls the lookup helper, which takes the lock shared
// again. That works until the refresher asks for the lock between the two
// acquisitions: the nested request then waits behind the refresher, which
// waits for the outer hold. The second bug returns early on a cache miss
// without releasing the lock, and so also without leaving the critical
// region FltAcquirePushLockShared entered: the reader's next read hangs
// on the lock it still holds once the refresher waits for it, or the
// reading thread ends with kernel APCs disabled (0x20).

// NameCache is the scenario.
var NameCache = &model.Scenario{
	Name: "namecache",
	Doc: "A minifilter's name cache under a push lock, read shared by the pre-read and rewritten exclusively " +
		"by a refresher thread. The bugs acquire the push lock shared a second time inside a shared hold, or " +
		"leave it held on a cache miss.",
	Section: "REFERENCE §4.25",
	Variants: []model.Variant{
		{Name: "correct", Doc: "the pre-read takes the lock once, reads policy and cache under it, releases on every path"},
		{Name: "nested-shared", Bug: true, Doc: "the lookup helper takes the lock shared again inside the pre-read's shared hold: deadlock once the refresher waits in between",
			Want: "deadlock"},
		{Name: "miss-unreleased", Bug: true, Doc: "a cache miss returns without FltReleasePushLock: the reader's next read hangs on the lock it still holds, or it ends inside the critical region the acquisition entered (0x20)",
			Want: "0x20|deadlock"},
	},
	Setup: setupNameCache,
}

const ncReads = 4

type nameCache struct {
	env     *model.Env
	k       *kernel.Kernel
	fm      *fltmgr.FilterManager
	lock    *kernel.EX_PUSH_LOCK
	entries *kernel.Cell // names cached; a read of it is a lookup
	enabled *kernel.Cell // the filter's policy switch
	hits    *kernel.Cell
}

func setupNameCache(env *model.Env) error {
	mf, err := model.NewMinifilter(env)
	if err != nil {
		return err
	}
	k := env.K
	c := &nameCache{env: env, k: k, fm: mf.FM, lock: mf.FM.FltInitializePushLock("name cache"),
		entries: k.NewCell("cached names", 1), enabled: k.NewCell("policy", 1), hits: k.NewCell("hits", 0)}
	err = mf.Register("namecache", 360000, &fltmgr.FLT_REGISTRATION{
		OperationRegistration: []fltmgr.FLT_OPERATION_REGISTRATION{{MajorFunction: fltmgr.IRP_MJ_READ, PreOperation: c.preRead}},
	})
	if err != nil {
		return err
	}
	done := k.KeInitializeEvent("readers done", kernel.NotificationEvent, false)
	left := k.NewCell("readers left", 2)
	k.PsCreateSystemThread("app", 8, func() {
		mf.StartFiltering()
		for r := range 2 {
			k.PsCreateSystemThread(fmt.Sprintf("reader%d", r), 8, func() {
				for i := range ncReads / 2 {
					k.KeDelayExecutionThread(des.Duration(1+env.Choose("read gap", 3)*2) * des.Microsecond)
					mf.Volume.Issue(fltmgr.IoRequest{MajorFunction: fltmgr.IRP_MJ_READ, Tag: fmt.Sprintf("read%d.%d", r, i)}).Wait()
				}
				if k.InterlockedDecrement(left) == 0 {
					k.KeSetEvent(done, kernel.IO_NO_INCREMENT, false)
				}
			})
		}
		k.PsCreateSystemThread("refresher", 9, c.refresh)
		k.KeWaitForSingleObject(done, kernel.Infinite)
		env.BeginDrain()
		mf.Unload()
	})
	return nil
}

// refresher rewrites the cache a few times, a few microseconds apart.
func (c *nameCache) refresh() {
	k := c.k
	for i := range 3 {
		k.KeDelayExecutionThread(des.Duration(2+c.env.Choose("refresh gap", 4)*2) * des.Microsecond)
		c.fm.FltAcquirePushLockExclusive(c.lock)
		k.Write(c.entries, int64(i%2)) // odd rounds empty the cache: the next lookup misses
		c.fm.FltReleasePushLock(c.lock)
	}
}

// preRead counts a cache hit for the file the read targets.
func (c *nameCache) preRead(_ *fltmgr.FLT_CALLBACK_DATA, _ *fltmgr.FLT_RELATED_OBJECTS, _ *any) fltmgr.FLT_PREOP_CALLBACK_STATUS {
	k := c.k
	c.fm.FltAcquirePushLockShared(c.lock)
	if k.Read(c.enabled) == 0 {
		c.fm.FltReleasePushLock(c.lock)
		return fltmgr.FLT_PREOP_SUCCESS_NO_CALLBACK
	}
	var hit bool
	if c.env.Is("nested-shared") {
		hit = c.lookupLocked()
	} else {
		hit = k.Read(c.entries) > 0
	}
	if !hit && c.env.Is("miss-unreleased") {
		return fltmgr.FLT_PREOP_SUCCESS_NO_CALLBACK
	}
	if hit {
		k.InterlockedIncrement(c.hits)
	}
	c.fm.FltReleasePushLock(c.lock)
	return fltmgr.FLT_PREOP_SUCCESS_NO_CALLBACK
}

// lookupLocked is a helper written to be called on its own: it takes the
// lock itself.
func (c *nameCache) lookupLocked() bool {
	c.fm.FltAcquirePushLockShared(c.lock)
	hit := c.k.Read(c.entries) > 0
	c.fm.FltReleasePushLock(c.lock)
	return hit
}
