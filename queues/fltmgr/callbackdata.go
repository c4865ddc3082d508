package fltmgr

import (
	"fmt"

	"github.com/wqsim/wqsim/kernel"
)

// FLT_PARAMETERS holds the operation parameters the model carries (a
// read/write view of the union).
type FLT_PARAMETERS struct {
	Length     uint32
	ByteOffset int64
	// MdlAddress is set once the buffer is locked (FltLockUserBuffer).
	MdlAddress any
}

// FLT_IO_PARAMETER_BLOCK is FLT_CALLBACK_DATA.Iopb.
type FLT_IO_PARAMETER_BLOCK struct {
	IrpFlags         uint32 // IRP_PAGING_IO, IRP_SYNCHRONOUS_PAGING_IO, IRP_NOCACHE …
	MajorFunction    UCHAR
	MinorFunction    UCHAR
	OperationFlags   UCHAR
	TargetFileObject any
	TargetInstance   *FLT_INSTANCE // the instance whose callback is running
	Parameters       FLT_PARAMETERS
}

// FLT_CALLBACK_DATA describes one I/O operation as the filters see it. An
// IRP-based operation is backed by a kernel IRP (completion, cancellation
// and the leak check at the end of the run go through it); fast I/O and
// FsFilter operations have none. The filter manager allocates it;
// minifilters read and write the exported fields as in C.
type FLT_CALLBACK_DATA struct {
	Flags    uint32 // FLTFL_CALLBACK_DATA_*
	Thread   *kernel.Thread
	Iopb     *FLT_IO_PARAMETER_BLOCK
	IoStatus kernel.IO_STATUS_BLOCK
	// QueueLinks and QueueContext are free for the minifilter while it
	// owns the pended operation (a cbdq list, its own context).
	QueueLinks   LIST_ENTRY
	QueueContext [2]any

	op   *operation
	irp  *kernel.IRP
	name string
}

// Name is "cbd N" plus the IRP it is backed by, for traces and reports.
func (d *FLT_CALLBACK_DATA) Name() string { return d.name }

// Irp returns the IRP behind an IRP-based operation, nil otherwise. A
// minifilter has no business with it; tests and the issuer use it.
func (d *FLT_CALLBACK_DATA) Irp() *kernel.IRP { return d.irp }

// FLT_IS_IRP_OPERATION reports an IRP-based operation (DDI:FLT_IS_IRP_OPERATION, §5.1).
func FLT_IS_IRP_OPERATION(d *FLT_CALLBACK_DATA) bool {
	return d.Flags&FLTFL_CALLBACK_DATA_IRP_OPERATION != 0
}

// FLT_IS_FASTIO_OPERATION reports a fast I/O operation.
func FLT_IS_FASTIO_OPERATION(d *FLT_CALLBACK_DATA) bool {
	return d.Flags&FLTFL_CALLBACK_DATA_FAST_IO_OPERATION != 0
}

// FLT_IS_FS_FILTER_OPERATION reports an FsFilter callback operation.
func FLT_IS_FS_FILTER_OPERATION(d *FLT_CALLBACK_DATA) bool {
	return d.Flags&FLTFL_CALLBACK_DATA_FS_FILTER_OPERATION != 0
}

func (d *FLT_CALLBACK_DATA) pagingIo() bool {
	return d.Iopb.IrpFlags&(kernel.IRP_PAGING_IO|kernel.IRP_SYNCHRONOUS_PAGING_IO) != 0
}

// LIST_ENTRY is a doubly linked list link, for FLT_CALLBACK_DATA.QueueLinks
// and the minifilter's own list heads. Unlinking an entry whose neighbours
// do not point back at it is the list corruption that modern Windows
// fast-fails (§2.7C): KERNEL_SECURITY_CHECK_FAILURE 0x139 with P1 = 3.
type LIST_ENTRY struct {
	Flink, Blink *LIST_ENTRY
	owner        *FLT_CALLBACK_DATA // set for QueueLinks
}

// KERNEL_SECURITY_CHECK_FAILURE is the fast-fail bug check of a corrupted
// LIST_ENTRY unlink (P1 = 3, FAST_FAIL_CORRUPT_LIST_ENTRY). The code is not
// in REFERENCE §1.8's table; §2.7C names it as the inferred outcome.
const KERNEL_SECURITY_CHECK_FAILURE uint32 = 0x139

// InitializeListHead makes head an empty list.
func InitializeListHead(head *LIST_ENTRY) { head.Flink, head.Blink = head, head }

// IsListEmpty reports whether the list at head is empty.
func IsListEmpty(head *LIST_ENTRY) bool { return head.Flink == head }

// InsertTailList links e at the tail of the list at head.
func InsertTailList(head, e *LIST_ENTRY) {
	e.Flink, e.Blink = head, head.Blink
	head.Blink.Flink = e
	head.Blink = e
}

// InsertHeadList links e at the head of the list at head.
func InsertHeadList(head, e *LIST_ENTRY) {
	e.Flink, e.Blink = head.Flink, head
	head.Flink.Blink = e
	head.Flink = e
}

// RemoveEntryList unlinks e and reports whether the list is now empty. An
// entry that is not linked (never inserted, or already removed) is a
// corrupted unlink: for a callback data's QueueLinks it bug-checks 0x139
// from the calling simulated code; for another entry it panics.
func RemoveEntryList(e *LIST_ENTRY) bool {
	if e.Flink == nil || e.Blink == nil || e.Flink.Blink != e || e.Blink.Flink != e {
		if d := e.owner; d != nil && d.op != nil {
			d.op.fm.k.Layer().BugCheckFrom("RemoveEntryList", KERNEL_SECURITY_CHECK_FAILURE, 3, 0, 0, 0,
				fmt.Sprintf("corrupted LIST_ENTRY unlink of %s.QueueLinks (removed twice or never inserted, §2.7C)", d.name))
			return false
		}
		panic("fltmgr: RemoveEntryList on an entry that is not linked (removed twice or never inserted)")
	}
	next, prev := e.Flink, e.Blink
	prev.Flink, next.Blink = next, prev
	return next == prev
}

// CbdFromQueueLinks is CONTAINING_RECORD(e, FLT_CALLBACK_DATA, QueueLinks):
// the callback data whose QueueLinks e is, or nil.
func CbdFromQueueLinks(e *LIST_ENTRY) *FLT_CALLBACK_DATA { return e.owner }
