package drivers

import (
	"fmt"

	"github.com/wqsim/wqsim/des"
	"github.com/wqsim/wqsim/kernel"
	"github.com/wqsim/wqsim/model"
	"github.com/wqsim/wqsim/queues"
	"github.com/wqsim/wqsim/queues/fltmgr"
)

// ctxscan: a content-scanning minifilter keeps a stream context per file
// (found or created on first read, KEEP_IF_EXISTS) holding the stream's
// last scan verdict. Each pre-read hands the stream to a generic work item,
// queued against the filter, that scans the file and records the verdict in
// the context. The filter unloads while reads arrive: instance teardown
// deletes the stream contexts (it drops only the attachment's reference,
// REFERENCE §5.5 item 5, §5.8), and FltUnregisterFilter then waits for the
// work routines, which hold the filter's rundown, not the instance's
// (§1.3). So the work item must own a context reference of its own, taken
// before queueing and released by the routine — or dropped by the pre-op
// when FltQueueGenericWorkItem refuses with STATUS_FLT_DELETING_OBJECT.
//
// The bugs: the pre-op hands over its pointer without a reference for the
// item, so a routine still scanning when teardown deletes the context
// records into freed memory; the routine's "filter is stopping" early exit
// releases the context and then falls into the common cleanup, which
// releases it again; the pre-op frees a refused work item but keeps the
// reference it took for it (Windows-driver-samples issue #1360's kind of
// leak: Filter Verifier stops the unload on the leaked context).

var (
	markScanAfterDelete = model.NewMark("ctxscan: a scan routine recorded into a stream context that teardown deleted")
	markScanStopping    = model.NewMark("ctxscan: a scan routine saw the filter stopping")
	markScanRefused     = model.NewMark("ctxscan: FltQueueGenericWorkItem refused the scan at teardown")
)

// CtxScan is the scenario.
var CtxScan = &model.Scenario{
	Name: "ctxscan",
	Doc: "A scanning minifilter keeps a stream context per file and hands each read's stream to a generic work " +
		"item queued against the filter, which scans and records the verdict in the context; the filter unloads " +
		"while reads arrive. The bugs give the item no context reference of its own (the routine records into a " +
		"context teardown freed, 0xD5), release the context twice on the routine's early exit (0xF5), or keep the " +
		"item's reference when queueing is refused (a context leaked at unload).",
	Section: "REFERENCE §1.3, §5.5, §5.8",
	Variants: []model.Variant{
		{Name: "correct", Doc: "FltReferenceContext for the item before queueing, released by the routine, or by the pre-op when queueing fails"},
		{Name: "no-item-reference", Bug: true, Doc: "the item borrows the pre-op's pointer, which the pre-op releases: a routine still scanning at teardown records into a freed context",
			Marks: []*model.Mark{markScanAfterDelete}, Want: "0xD5"},
		{Name: "release-twice", Bug: true, Doc: "the routine's early exit for a stopping filter releases the context, then the common cleanup releases it again",
			Marks: []*model.Mark{markScanStopping}, Want: "FLTMGR_FILE_SYSTEM"},
		{Name: "leak-on-refused", Bug: true, Doc: "a pre-op whose FltQueueGenericWorkItem fails frees the item but keeps the context reference it took for it",
			Marks: []*model.Mark{markScanRefused}, Want: "leak"},
	},
	Setup: setupCtxScan,
}

const (
	csReaders = 2
	csReads   = 2
)

// csStream is a stream context's content.
type csStream struct {
	file    string
	scans   int // verdicts recorded
	verdict int
}

// csJob is what a scan work item carries.
type csJob struct {
	ctx  *fltmgr.FLT_CONTEXT
	file string
}

type ctxScan struct {
	env      *model.Env
	k        *kernel.Kernel
	fm       *fltmgr.FilterManager
	filter   *fltmgr.FLT_FILTER
	stopping bool // set by InstanceTeardownStart; read by routines (a plain flag, as the C driver's)
	scanned  int  // verdicts recorded, for the end check
	freed    int  // stream contexts cleaned up
	created  int  // stream contexts attached
}

func setupCtxScan(env *model.Env) error {
	mf, err := model.NewMinifilter(env)
	if err != nil {
		return err
	}
	k := env.K
	d := &ctxScan{env: env, k: k, fm: mf.FM}
	err = mf.Register("ctxscan", 365000, &fltmgr.FLT_REGISTRATION{
		OperationRegistration:         []fltmgr.FLT_OPERATION_REGISTRATION{{MajorFunction: fltmgr.IRP_MJ_READ, PreOperation: d.preRead}},
		InstanceTeardownStartCallback: d.teardownStart,
	})
	if err != nil {
		return err
	}
	d.filter = mf.Filter
	k.PsCreateSystemThread("app", 8, func() {
		mf.StartFiltering()
		done := k.KeInitializeEvent("readers done", kernel.NotificationEvent, false)
		left := csReaders
		for i := range csReaders {
			k.PsCreateSystemThread(fmt.Sprintf("reader%d", i), 8, func() {
				for j := range csReads {
					k.KeDelayExecutionThread(des.Duration(1+d.env.Choose("read gap", 3)*4) * des.Microsecond)
					mf.Volume.Send(fltmgr.IoRequest{MajorFunction: fltmgr.IRP_MJ_READ, Length: 4096, ByteOffset: int64(j) * 4096,
						FileObject: fmt.Sprintf("file%d", j), Tag: fmt.Sprintf("r%d.%d", i, j)})
				}
				if left--; left == 0 {
					k.KeSetEvent(done, kernel.IO_NO_INCREMENT, false)
				}
			})
		}
		k.KeDelayExecutionThread(des.Duration(4+env.Choose("unload at", 4)*6) * des.Microsecond)
		env.BeginDrain()
		mf.Unload()
		k.KeWaitForSingleObject(done, kernel.Infinite)
	})
	env.AtEnd("every stream context cleaned up", func() error {
		if d.freed != d.created {
			return fmt.Errorf("%d stream contexts attached, %d cleaned up", d.created, d.freed)
		}
		return nil
	})
	return nil
}

func (d *ctxScan) teardownStart(*fltmgr.FLT_RELATED_OBJECTS, fltmgr.FLT_INSTANCE_TEARDOWN_FLAGS) {
	d.stopping = true
}

// preRead finds the stream's context and queues a scan of the stream.
func (d *ctxScan) preRead(data *fltmgr.FLT_CALLBACK_DATA, objs *fltmgr.FLT_RELATED_OBJECTS, _ *any) fltmgr.FLT_PREOP_CALLBACK_STATUS {
	fm := d.fm
	c := d.streamContext(objs, data.Iopb.TargetFileObject)
	if c == nil {
		return fltmgr.FLT_PREOP_SUCCESS_NO_CALLBACK
	}
	item := fm.FltAllocateGenericWorkItem()
	if item != nil {
		if !d.env.Is("no-item-reference") {
			fm.FltReferenceContext(c) // the item's own reference
		}
		job := &csJob{ctx: c, file: fmt.Sprint(data.Iopb.TargetFileObject)}
		if st := fm.FltQueueGenericWorkItem(item, d.filter, d.scan, queues.DelayedWorkQueue, job); st != kernel.STATUS_SUCCESS {
			d.env.Hit(markScanRefused)
			fm.FltFreeGenericWorkItem(item)
			if !d.env.Is("no-item-reference") && !d.env.Is("leak-on-refused") {
				fm.FltReleaseContext(c) // nothing was queued: the item's reference is ours to drop
			}
		}
	}
	fm.FltReleaseContext(c) // the get (or allocate) reference
	return fltmgr.FLT_PREOP_SUCCESS_NO_CALLBACK
}

// streamContext returns file's stream context with a reference for the
// caller, creating it on first use; nil if it cannot (teardown).
func (d *ctxScan) streamContext(objs *fltmgr.FLT_RELATED_OBJECTS, file any) *fltmgr.FLT_CONTEXT {
	fm := d.fm
	if c, st := fm.FltGetStreamContext(objs.Instance, file); st == kernel.STATUS_SUCCESS {
		return c
	}
	n, st := fm.FltAllocateContext(objs.Filter, fltmgr.FLT_STREAM_CONTEXT, d.cleanup)
	if st != kernel.STATUS_SUCCESS {
		return nil
	}
	n.Data = &csStream{file: fmt.Sprint(file)}
	var old *fltmgr.FLT_CONTEXT
	st = fm.FltSetStreamContext(objs.Instance, file, fltmgr.FLT_SET_CONTEXT_KEEP_IF_EXISTS, n, &old)
	if st == kernel.STATUS_SUCCESS {
		d.created++
		return n
	}
	n.Data = nil
	fm.FltReleaseContext(n) // never attached: this frees it
	if st == fltmgr.STATUS_FLT_CONTEXT_ALREADY_DEFINED {
		return old
	}
	return nil
}

func (d *ctxScan) cleanup(c *fltmgr.FLT_CONTEXT, _ fltmgr.FLT_CONTEXT_TYPE) {
	if c.Data != nil {
		d.freed++
	}
}

// scan is the work routine: it scans the stream, then records the verdict
// in the stream context.
func (d *ctxScan) scan(item *fltmgr.FLT_GENERIC_WORKITEM, _ fltmgr.FltObject, ctx any) {
	k, fm := d.k, d.fm
	job := ctx.(*csJob)
	c := job.ctx
	if d.stopping {
		d.env.Hit(markScanStopping)
		if d.env.Is("release-twice") {
			fm.FltReleaseContext(c) // the bug: the cleanup below releases it as well
		}
		goto cleanup
	}
	k.Compute(des.Duration(4+d.env.Choose("scan time", 3)*5) * des.Microsecond) // read and scan the file
	if c.Freed() {
		d.env.Hit(markScanAfterDelete)
	}
	k.AccessPool(c.Block(), "scan routine recording the verdict in its stream context")
	c.Data.(*csStream).scans++
	c.Data.(*csStream).verdict = 1
	d.scanned++
cleanup:
	if !d.env.Is("no-item-reference") {
		fm.FltReleaseContext(c)
	}
	fm.FltFreeGenericWorkItem(item)
}
