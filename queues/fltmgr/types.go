package fltmgr

import (
	"fmt"

	"github.com/wqsim/wqsim/des"
	"github.com/wqsim/wqsim/kernel"
)

// Trace record kinds of the filter manager (stable numbers, part of trace
// hashes; 250–259 are IoCsq's, 260–279 are this package's).
const (
	KindFltObject   des.Kind = 260 // register, start, attach, teardown phases, unregister, references
	KindFltOp       des.Kind = 261 // an operation issued, pended, resumed, reissued, completed
	KindFltCallback des.Kind = 262 // a filter callback called (A: 0 pre, 1 post, 2 draining post) and what it returned (B)
	KindFltWorkItem des.Kind = 263 // Flt work items allocated, queued, run, freed
	KindFltCbdq     des.Kind = 264 // FltCbdq* calls
	KindFltMark     des.Kind = 265 // a coverage mark: which path ran
)

// UCHAR is the type of major and minor function codes. The filter
// manager's own negative codes are stored as in C, (UCHAR)-n.
type UCHAR = uint8

// Major function codes (wdm.h; the negative ones from RO:fltkernel.h, §5.1).
const (
	IRP_MJ_CREATE                    UCHAR = 0x00
	IRP_MJ_CLOSE                     UCHAR = 0x02
	IRP_MJ_READ                      UCHAR = 0x03
	IRP_MJ_WRITE                     UCHAR = 0x04
	IRP_MJ_QUERY_INFORMATION         UCHAR = 0x05
	IRP_MJ_SET_INFORMATION           UCHAR = 0x06
	IRP_MJ_FLUSH_BUFFERS             UCHAR = 0x09
	IRP_MJ_DIRECTORY_CONTROL         UCHAR = 0x0C
	IRP_MJ_FILE_SYSTEM_CONTROL       UCHAR = 0x0D
	IRP_MJ_DEVICE_CONTROL            UCHAR = 0x0E
	IRP_MJ_LOCK_CONTROL              UCHAR = 0x11
	IRP_MJ_CLEANUP                   UCHAR = 0x12
	IRP_MJ_ACQUIRE_FOR_SECTION_SYNC  UCHAR = 0xFF // (UCHAR)-1: FsFilter callback
	IRP_MJ_RELEASE_FOR_SECTION_SYNC  UCHAR = 0xFE // (UCHAR)-2
	IRP_MJ_ACQUIRE_FOR_MOD_WRITE     UCHAR = 0xFD // (UCHAR)-3
	IRP_MJ_RELEASE_FOR_MOD_WRITE     UCHAR = 0xFC // (UCHAR)-4
	IRP_MJ_ACQUIRE_FOR_CC_FLUSH      UCHAR = 0xFB // (UCHAR)-5
	IRP_MJ_RELEASE_FOR_CC_FLUSH      UCHAR = 0xFA // (UCHAR)-6
	IRP_MJ_FAST_IO_CHECK_IF_POSSIBLE UCHAR = 0xF3 // (UCHAR)-13: fast I/O only
	IRP_MJ_NETWORK_QUERY_OPEN        UCHAR = 0xF2 // (UCHAR)-14
	IRP_MJ_MDL_READ                  UCHAR = 0xF1 // (UCHAR)-15
	IRP_MJ_MDL_READ_COMPLETE         UCHAR = 0xF0 // (UCHAR)-16
	IRP_MJ_PREPARE_MDL_WRITE         UCHAR = 0xEF // (UCHAR)-17
	IRP_MJ_MDL_WRITE_COMPLETE        UCHAR = 0xEE // (UCHAR)-18
	IRP_MJ_VOLUME_MOUNT              UCHAR = 0xED // (UCHAR)-19
	IRP_MJ_VOLUME_DISMOUNT           UCHAR = 0xEC // (UCHAR)-20
)

// isFsFilterMajor reports the FsFilter callback codes (−1…−6): neither IRP
// nor fast I/O, flag FLTFL_CALLBACK_DATA_FS_FILTER_OPERATION (§5.1).
func isFsFilterMajor(m UCHAR) bool { return m >= IRP_MJ_RELEASE_FOR_CC_FLUSH }

// fastIoOnlyMajor reports the codes that exist only as fast I/O (−13…−18).
func fastIoOnlyMajor(m UCHAR) bool {
	return m >= IRP_MJ_MDL_WRITE_COMPLETE && m <= IRP_MJ_FAST_IO_CHECK_IF_POSSIBLE
}

// fastIoPossible reports the operations that can arrive as IRP or as fast
// I/O (WDD:ifs/operations-that-can-be-irp-based-or-fast-i-o.md, §5.1).
func fastIoPossible(m UCHAR) bool {
	switch m {
	case IRP_MJ_READ, IRP_MJ_WRITE, IRP_MJ_QUERY_INFORMATION, IRP_MJ_DEVICE_CONTROL, IRP_MJ_LOCK_CONTROL:
		return true
	}
	return fastIoOnlyMajor(m)
}

// IRP flags the model reads besides kernel.IRP_PAGING_IO and
// kernel.IRP_SYNCHRONOUS_PAGING_IO (wdm.h).
const IRP_NOCACHE uint32 = 0x00000001

// FLT_CALLBACK_DATA.Flags bits (RO:fltkernel.h, §5.1).
const (
	FLTFL_CALLBACK_DATA_IRP_OPERATION       uint32 = 0x00000001
	FLTFL_CALLBACK_DATA_FAST_IO_OPERATION   uint32 = 0x00000002
	FLTFL_CALLBACK_DATA_FS_FILTER_OPERATION uint32 = 0x00000004
	FLTFL_CALLBACK_DATA_SYSTEM_BUFFER       uint32 = 0x00000008
	FLTFL_CALLBACK_DATA_GENERATED_IO        uint32 = 0x00010000
	FLTFL_CALLBACK_DATA_REISSUED_IO         uint32 = 0x00020000
	FLTFL_CALLBACK_DATA_DRAINING_IO         uint32 = 0x00040000
	FLTFL_CALLBACK_DATA_POST_OPERATION      uint32 = 0x00080000
	FLTFL_CALLBACK_DATA_NEW_SYSTEM_BUFFER   uint32 = 0x00100000
	FLTFL_CALLBACK_DATA_DIRTY               uint32 = 0x80000000
)

// FLT_PREOP_CALLBACK_STATUS is what a pre-operation callback returns (§5.3).
type FLT_PREOP_CALLBACK_STATUS int32

// Pre-operation return values (§5.3).
const (
	FLT_PREOP_SUCCESS_WITH_CALLBACK FLT_PREOP_CALLBACK_STATUS = 0
	FLT_PREOP_SUCCESS_NO_CALLBACK   FLT_PREOP_CALLBACK_STATUS = 1
	FLT_PREOP_PENDING               FLT_PREOP_CALLBACK_STATUS = 2
	FLT_PREOP_DISALLOW_FASTIO       FLT_PREOP_CALLBACK_STATUS = 3
	FLT_PREOP_COMPLETE              FLT_PREOP_CALLBACK_STATUS = 4
	FLT_PREOP_SYNCHRONIZE           FLT_PREOP_CALLBACK_STATUS = 5
	FLT_PREOP_DISALLOW_FSFILTER_IO  FLT_PREOP_CALLBACK_STATUS = 6
)

var preopNames = [...]string{
	"FLT_PREOP_SUCCESS_WITH_CALLBACK", "FLT_PREOP_SUCCESS_NO_CALLBACK", "FLT_PREOP_PENDING",
	"FLT_PREOP_DISALLOW_FASTIO", "FLT_PREOP_COMPLETE", "FLT_PREOP_SYNCHRONIZE", "FLT_PREOP_DISALLOW_FSFILTER_IO",
}

func (s FLT_PREOP_CALLBACK_STATUS) String() string {
	if s >= 0 && int(s) < len(preopNames) {
		return preopNames[s]
	}
	return fmt.Sprintf("FLT_PREOP_CALLBACK_STATUS(%d)", int32(s))
}

// FLT_POSTOP_CALLBACK_STATUS is what a post-operation callback returns (§5.4).
type FLT_POSTOP_CALLBACK_STATUS int32

// Post-operation return values (§5.4).
const (
	FLT_POSTOP_FINISHED_PROCESSING      FLT_POSTOP_CALLBACK_STATUS = 0
	FLT_POSTOP_MORE_PROCESSING_REQUIRED FLT_POSTOP_CALLBACK_STATUS = 1
	FLT_POSTOP_DISALLOW_FSFILTER_IO     FLT_POSTOP_CALLBACK_STATUS = 2
)

func (s FLT_POSTOP_CALLBACK_STATUS) String() string {
	switch s {
	case FLT_POSTOP_FINISHED_PROCESSING:
		return "FLT_POSTOP_FINISHED_PROCESSING"
	case FLT_POSTOP_MORE_PROCESSING_REQUIRED:
		return "FLT_POSTOP_MORE_PROCESSING_REQUIRED"
	case FLT_POSTOP_DISALLOW_FSFILTER_IO:
		return "FLT_POSTOP_DISALLOW_FSFILTER_IO"
	}
	return fmt.Sprintf("FLT_POSTOP_CALLBACK_STATUS(%d)", int32(s))
}

// FLT_POST_OPERATION_FLAGS are passed to a post-operation callback (§5.4).
type FLT_POST_OPERATION_FLAGS uint32

// FLTFL_POST_OPERATION_DRAINING: the instance is being detached; the
// callback gets a copy of the data and must only clean up (§5.4).
const FLTFL_POST_OPERATION_DRAINING FLT_POST_OPERATION_FLAGS = 0x1

// FLT_OPERATION_REGISTRATION.Flags (RO:fltkernel.h, §5.2).
const (
	FLTFL_OPERATION_REGISTRATION_SKIP_PAGING_IO   uint32 = 0x1
	FLTFL_OPERATION_REGISTRATION_SKIP_CACHED_IO   uint32 = 0x2
	FLTFL_OPERATION_REGISTRATION_SKIP_NON_DASD_IO uint32 = 0x4
)

// FLT_REGISTRATION.Flags (§5.5 item 7).
const FLTFL_REGISTRATION_DO_NOT_SUPPORT_SERVICE_STOP uint32 = 0x1

// FLT_INSTANCE_TEARDOWN_FLAGS: why an instance is torn down (§5.5 item 1).
type FLT_INSTANCE_TEARDOWN_FLAGS uint32

// Teardown reasons (§5.5).
const (
	FLTFL_INSTANCE_TEARDOWN_MANUAL                  FLT_INSTANCE_TEARDOWN_FLAGS = 0x01
	FLTFL_INSTANCE_TEARDOWN_FILTER_UNLOAD           FLT_INSTANCE_TEARDOWN_FLAGS = 0x02
	FLTFL_INSTANCE_TEARDOWN_MANDATORY_FILTER_UNLOAD FLT_INSTANCE_TEARDOWN_FLAGS = 0x04
	FLTFL_INSTANCE_TEARDOWN_VOLUME_DISMOUNT         FLT_INSTANCE_TEARDOWN_FLAGS = 0x08
	FLTFL_INSTANCE_TEARDOWN_INTERNAL_ERROR          FLT_INSTANCE_TEARDOWN_FLAGS = 0x10
)

// FLT_INSTANCE_SETUP_FLAGS: how an instance is being attached.
type FLT_INSTANCE_SETUP_FLAGS uint32

// Setup flags (fltkernel.h).
const (
	FLTFL_INSTANCE_SETUP_AUTOMATIC_ATTACHMENT FLT_INSTANCE_SETUP_FLAGS = 0x1
	FLTFL_INSTANCE_SETUP_MANUAL_ATTACHMENT    FLT_INSTANCE_SETUP_FLAGS = 0x2
	FLTFL_INSTANCE_SETUP_NEWLY_MOUNTED_VOLUME FLT_INSTANCE_SETUP_FLAGS = 0x4
)

// FLT_INSTANCE_QUERY_TEARDOWN_FLAGS is passed to InstanceQueryTeardown
// (no flags are defined).
type FLT_INSTANCE_QUERY_TEARDOWN_FLAGS uint32

// FLT_FILTER_UNLOAD_FLAGS is passed to FilterUnloadCallback.
type FLT_FILTER_UNLOAD_FLAGS uint32

// FLTFL_FILTER_UNLOAD_MANDATORY: the unload cannot be refused (service
// stop), §5.5 item 7.
const FLTFL_FILTER_UNLOAD_MANDATORY FLT_FILTER_UNLOAD_FLAGS = 0x1

// Coverage marks of the filter manager: paths that tests and explorers want
// to see reached (see kernel.Mark). fm.Hits(m) counts them; each hit is
// also a KindFltMark trace record.
var (
	MarkCompletedBeforePending    = kernel.NewMark("flt: completed before pre-op returned pending")          // FltCompletePendedPreOperation ran before the pre-op returned PENDING (§1.4)
	MarkPended                    = kernel.NewMark("flt: pre-op pended")                                     // a pre-op returned FLT_PREOP_PENDING and the operation waits
	MarkFastIoReissued            = kernel.NewMark("flt: fast io reissued as irp")                           // fast I/O refused with DISALLOW_FASTIO and reissued as an IRP (§5.1)
	MarkSynchronized              = kernel.NewMark("flt: synchronize post-op in pre-op thread")              // a SYNCHRONIZE post-op was handed back to the pre-op's thread (§5.3)
	MarkPostPended                = kernel.NewMark("flt: post-op pended")                                    // a post-op returned MORE_PROCESSING_REQUIRED (§5.4)
	MarkPostCompletedBeforePended = kernel.NewMark("flt: completed before post-op returned more processing") // FltCompletePendedPostOperation ran while the post-op still ran (§5.4)
	MarkPostDrained               = kernel.NewMark("flt: post-op drained")                                   // a post-op was called with FLTFL_POST_OPERATION_DRAINING (§5.4, §5.5)
	MarkTeardownWaited            = kernel.NewMark("flt: teardown waited for operations")                    // teardown waited for outstanding operations (§5.5 item 4)
	MarkCbdqDisabledInsert        = kernel.NewMark("cbdq: insert refused, queue disabled")                   // FltCbdqInsertIo refused: queue disabled (§1.5)
	MarkCbdqInsertCancelled       = kernel.NewMark("cbdq: insert completed cancelled data")                  // FltCbdqInsertIo found the IRP cancelled and completed it (§1.5)
	MarkDeferredNotSafe           = kernel.NewMark("flt: deferred work item not safe to post")               // FltQueueDeferredIoWorkItem refused: paging I/O, TopLevelIrp or not IRP (§1.3)
	MarkDeletingObject            = kernel.NewMark("flt: object being deleted")                              // a reference or work item refused: object being torn down (§1.3, §5.5)
	MarkFsPended                  = kernel.NewMark("flt: file system pended the operation")                  // the file system returned STATUS_PENDING; completion comes from its DPC or a worker (§5.6)
	MarkPostInDpc                 = kernel.NewMark("flt: post-op in a dpc")                                  // post-ops ran in a DPC at DISPATCH_LEVEL, in an arbitrary thread's context (§5.7)
	MarkPostWhenSafe              = kernel.NewMark("flt: completion processing posted when safe")            // FltDoCompletionProcessingWhenSafe posted the post-op work to a worker (§5.7)
	MarkAsyncCallbackInDpc        = kernel.NewMark("flt: async io callback in a dpc")                        // a FltPerformAsynchronousIo completion callback ran in a DPC at DISPATCH_LEVEL (§5.9)
	MarkFreedInFlight             = kernel.NewMark("flt: callback data freed before its callback")           // FltFreeCallbackData while the operation was in flight (§5.9)
	MarkCancelAfterCompletion     = kernel.NewMark("flt: cancel after completion")                           // FltCancelIo for an operation that had completed (§5.9)
	MarkFsCancelled               = kernel.NewMark("flt: file system completed a cancelled request")         // the file system's cancel routine completed a pended request (§5.9)
)

// VerifierViolation is a Filter Verifier report: a minifilter broke a
// documented contract that Windows does not bug-check but Filter Verifier
// breaks into the debugger for (an invalid callback return status, pending
// a non-IRP operation, completing an operation that is not pended; §1.3,
// §1.4, §5.3). The run stops with it.
type VerifierViolation struct {
	API    string   // the routine or callback return that broke the rule
	Filter string   // the filter concerned
	Actor  string   // the thread that did it
	At     des.Time // virtual time
	Rule   string   // the documented rule, with its REFERENCE section
	Detail string   // what happened
}

func (v *VerifierViolation) Error() string {
	return fmt.Sprintf("Filter Verifier: %s by filter %q (%s, t=%v): %s; rule: %s", v.API, v.Filter, v.Actor, v.At, v.Detail, v.Rule)
}

// Class implements des.Finding.
func (v *VerifierViolation) Class() des.Class { return des.ClassVerifier }

// Signature implements des.Finding: the routine or callback and the filter.
func (v *VerifierViolation) Signature() string { return "verifier " + v.API + " " + v.Filter }
