package fltmgr

import (
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

// LIST_ENTRY is the kernel's checked list link (REFERENCE §4.8), used for
// FLT_CALLBACK_DATA.QueueLinks and the minifilter's own list heads; the
// list routines are the kernel's (k.InsertTailList, k.RemoveEntryList, …),
// which fast-fail a corrupted unlink as 0x139 P1 = 3 (REFERENCE §2.7C).
type LIST_ENTRY = kernel.LIST_ENTRY

// KERNEL_SECURITY_CHECK_FAILURE is the fast-fail bug check of a corrupted
// LIST_ENTRY (REFERENCE §2.7C, §4.8).
const KERNEL_SECURITY_CHECK_FAILURE = kernel.KERNEL_SECURITY_CHECK_FAILURE

// CbdFromQueueLinks is CONTAINING_RECORD(e, FLT_CALLBACK_DATA, QueueLinks):
// the callback data whose QueueLinks e is, or nil.
func CbdFromQueueLinks(e *LIST_ENTRY) *FLT_CALLBACK_DATA {
	d, _ := e.Container.(*FLT_CALLBACK_DATA)
	return d
}
