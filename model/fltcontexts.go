package model

import (
	"fmt"

	"github.com/wqsim/wqsim/des"
	"github.com/wqsim/wqsim/kernel"
	"github.com/wqsim/wqsim/queues/fltmgr"
)

// A statistics minifilter modelled on the ctx sample's context handling
// (REFERENCE §5.8): each read counts itself in a stream context found or
// created on first use (get; if NOT_FOUND allocate and set with
// KEEP_IF_EXISTS; on STATUS_FLT_CONTEXT_ALREADY_DEFINED use the context
// the winner attached), and a flusher thread started at instance setup
// publishes the instance context's totals until InstanceTeardownStart
// tells it to stop. Bugs that only the context protocol shows, each only
// under one interleaving:
//   - release-old-twice: the reader that loses the set race releases the
//     existing context it got back and returns it to its caller, which
//     releases it again — the count reaches zero while the context is still
//     attached, 0xF5 P1=0x6D;
//   - cached-instance-context: the flusher keeps the instance context's
//     pointer without a reference (and no instance reference either), so
//     when teardown deletes and frees the context between the flusher's
//     stop check and its use, FltReferenceContext is 0xF5 P1=0x6E; and
//     nothing makes the unload wait for the flusher, so a flusher that
//     resumes after the unload has unmapped the filter's image (the
//     flusher was created in its InstanceSetup, REFERENCE §5.11) is 0xCE,
//     which is what most schedules show first.
//
// The correct filter releases the existing context once (its caller's
// release), and its flusher holds an instance rundown reference
// (FltObjectReference, so teardown waits for it) and gets the instance
// context each round.

const (
	fcReaders = 2
	fcReads   = 2
	fcFile    = "stats.dat"
)

var (
	markFcLostSetRace      = NewMark("fltcontexts: lost the stream-context set race")
	markFcFlushInTeardown  = NewMark("fltcontexts: flusher used the instance context while teardown ran")
	markFcFlusherLateStart = NewMark("fltcontexts: flusher found the instance going at start")
)

func init() {
	Register(&Scenario{
		Name: "fltcontexts",
		Doc: "A statistics filter counts reads in a stream context it finds or creates on first use (KEEP_IF_EXISTS, " +
			"the ctx sample's pattern) and flushes its instance context's totals from a thread until teardown. " +
			"Releasing the existing context twice after losing the set race is 0xF5/0x6D; a flusher that keeps " +
			"the instance context without a reference (and no instance reference) outlives teardown: it runs on in " +
			"the unloaded filter's image, 0xCE, or uses the context teardown freed, 0xF5/0x6E.",
		Section: "§5.8, §5.5, §5.11",
		Variants: []Variant{
			{Name: "correct", Doc: "lost set race: release the new context, use the old one, released once by the caller; the flusher holds an instance reference and gets the context each round"},
			{Name: "release-old-twice", Bug: true, Doc: "after STATUS_FLT_CONTEXT_ALREADY_DEFINED the loser releases the old context and returns it, and its caller releases it again",
				Marks: []*Mark{markFcLostSetRace}, Want: "FLTMGR_FILE_SYSTEM (0x6D"},
			{Name: "cached-instance-context", Bug: true, Doc: "the flusher uses a cached instance-context pointer with no reference of its own and no instance reference",
				Want: "0xCE|FLTMGR_FILE_SYSTEM (0x6E"},
		},
		Setup: setupFltContexts,
	})
}

// fcFilter is the filter's global state.
type fcFilter struct {
	*Minifilter
	stop     *kernel.KEVENT      // set by InstanceTeardownStart
	cached   *fltmgr.FLT_CONTEXT // the bug's unreferenced copy of the instance context
	counted  int                 // reads counted by stream contexts freed so far
	instGone int                 // instance contexts cleaned up
	flushed  int                 // flusher rounds that published totals
	started  *kernel.KEVENT      // filtering started
}

// fcStream is a stream context's content; fcInstance an instance context's.
type fcStream struct{ reads int }
type fcInstance struct{ reads int }

func setupFltContexts(env *Env) error {
	k := env.K
	b, err := NewMinifilter(env)
	if err != nil {
		return err
	}
	x := &fcFilter{Minifilter: b, stop: k.KeInitializeEvent("flusher stop", kernel.NotificationEvent, false),
		started: k.KeInitializeEvent("filter started", kernel.NotificationEvent, false)}
	err = x.Register("ctxstats", 364000, &fltmgr.FLT_REGISTRATION{
		OperationRegistration:         []fltmgr.FLT_OPERATION_REGISTRATION{{MajorFunction: fltmgr.IRP_MJ_READ, PreOperation: x.preRead}},
		InstanceSetupCallback:         x.instanceSetup,
		InstanceTeardownStartCallback: x.teardownStart,
	})
	if err != nil {
		return err
	}
	apps := newFltApps(k, fcReaders)
	for i := range fcReaders {
		k.PsCreateSystemThread(fmt.Sprintf("reader%d", i), 8, func() {
			if i == 0 {
				x.StartFiltering()
				k.KeSetEvent(x.started, 0, false)
			}
			k.KeWaitForSingleObject(x.started, kernel.Infinite)
			for j := range fcReads {
				x.Volume.Send(fltmgr.IoRequest{MajorFunction: fltmgr.IRP_MJ_READ, Length: 512, ByteOffset: int64(j) * 512,
					FileObject: fcFile, Tag: fmt.Sprintf("r%d.%d", i, j)})
			}
			apps.finish()
		})
	}
	env.AtEnd("every read counted once in the stream context", func() error {
		if x.counted != fcReaders*fcReads {
			return fmt.Errorf("freed stream contexts counted %d reads, want %d", x.counted, fcReaders*fcReads)
		}
		return nil
	})
	env.AtEnd("instance context cleaned up once", func() error {
		if x.instGone != 1 {
			return fmt.Errorf("instance context cleanup ran %d times, want 1", x.instGone)
		}
		return nil
	})
	x.UnloadWhenDone(apps.done)
	return nil
}

// instanceSetup attaches the instance context and starts the flusher
// (REFERENCE §5.8, §5.5).
func (x *fcFilter) instanceSetup(objs *fltmgr.FLT_RELATED_OBJECTS, _ fltmgr.FLT_INSTANCE_SETUP_FLAGS) kernel.NTSTATUS {
	fm, inst := x.FM, objs.Instance
	c, st := fm.FltAllocateContext(objs.Filter, fltmgr.FLT_INSTANCE_CONTEXT, func(*fltmgr.FLT_CONTEXT, fltmgr.FLT_CONTEXT_TYPE) { x.instGone++ })
	if st != kernel.STATUS_SUCCESS {
		return st
	}
	c.Data = &fcInstance{}
	st = fm.FltSetInstanceContext(inst, fltmgr.FLT_SET_CONTEXT_KEEP_IF_EXISTS, c, nil)
	x.cached = c
	fm.FltReleaseContext(c) // the attachment keeps it
	if st != kernel.STATUS_SUCCESS {
		return st
	}
	referenced := false
	if !x.Env.Is("cached-instance-context") {
		referenced = fm.FltObjectReference(inst) == kernel.STATUS_SUCCESS
		if !referenced {
			x.Env.Hit(markFcFlusherLateStart)
			return kernel.STATUS_SUCCESS
		}
	}
	x.K.PsCreateSystemThread("flusher", 8, func() { x.flusher(inst, referenced) })
	return kernel.STATUS_SUCCESS
}

// teardownStart tells the flusher to stop; the correct flusher's instance
// reference makes teardown wait for it (§5.5 item 6).
func (x *fcFilter) teardownStart(*fltmgr.FLT_RELATED_OBJECTS, fltmgr.FLT_INSTANCE_TEARDOWN_FLAGS) {
	x.K.KeSetEvent(x.stop, kernel.IO_NO_INCREMENT, false)
}

// flusher publishes the instance totals every 20 µs until told to stop.
func (x *fcFilter) flusher(inst *fltmgr.FLT_INSTANCE, referenced bool) {
	k, fm := x.K, x.FM
	for k.KeWaitForSingleObject(x.stop, 20*des.Microsecond) == kernel.STATUS_TIMEOUT {
		k.Compute(4 * des.Microsecond) // format the totals
		if inst.TearingDown() {
			x.Env.Hit(markFcFlushInTeardown)
		}
		var c *fltmgr.FLT_CONTEXT
		if x.Env.Is("cached-instance-context") {
			c = x.cached
			fm.FltReferenceContext(c)
		} else {
			var st kernel.NTSTATUS
			if c, st = fm.FltGetInstanceContext(inst); st != kernel.STATUS_SUCCESS {
				break
			}
		}
		_ = c.Data.(*fcInstance).reads
		x.flushed++
		fm.FltReleaseContext(c)
	}
	if referenced {
		fm.FltObjectDereference(inst)
	}
}

// preRead counts the read in its stream's context and in the instance's.
func (x *fcFilter) preRead(data *fltmgr.FLT_CALLBACK_DATA, objs *fltmgr.FLT_RELATED_OBJECTS, _ *any) fltmgr.FLT_PREOP_CALLBACK_STATUS {
	fm := x.FM
	if c := x.findOrCreateStream(objs, data.Iopb.TargetFileObject); c != nil {
		c.Data.(*fcStream).reads++
		fm.FltReleaseContext(c)
	}
	if c, st := fm.FltGetInstanceContext(objs.Instance); st == kernel.STATUS_SUCCESS {
		c.Data.(*fcInstance).reads++
		fm.FltReleaseContext(c)
	}
	return fltmgr.FLT_PREOP_SUCCESS_NO_CALLBACK
}

// findOrCreateStream returns file's stream context with a reference for
// the caller, creating it on first use (the ctx sample's
// CtxFindOrCreateStreamContext); nil if it cannot.
func (x *fcFilter) findOrCreateStream(objs *fltmgr.FLT_RELATED_OBJECTS, file any) *fltmgr.FLT_CONTEXT {
	fm := x.FM
	if c, st := fm.FltGetStreamContext(objs.Instance, file); st == kernel.STATUS_SUCCESS {
		return c
	}
	n, st := fm.FltAllocateContext(objs.Filter, fltmgr.FLT_STREAM_CONTEXT, x.streamCleanup)
	if st != kernel.STATUS_SUCCESS {
		return nil
	}
	n.Data = &fcStream{}
	var old *fltmgr.FLT_CONTEXT
	st = fm.FltSetStreamContext(objs.Instance, file, fltmgr.FLT_SET_CONTEXT_KEEP_IF_EXISTS, n, &old)
	if st == kernel.STATUS_SUCCESS {
		return n // our allocation reference becomes the caller's
	}
	fm.FltReleaseContext(n) // never attached: this frees it
	if st != fltmgr.STATUS_FLT_CONTEXT_ALREADY_DEFINED {
		return nil
	}
	x.Env.Hit(markFcLostSetRace)
	if x.Env.Is("release-old-twice") {
		fm.FltReleaseContext(old) // the bug: old's reference is the caller's to drop
	}
	return old
}

func (x *fcFilter) streamCleanup(c *fltmgr.FLT_CONTEXT, _ fltmgr.FLT_CONTEXT_TYPE) {
	x.counted += c.Data.(*fcStream).reads
}
