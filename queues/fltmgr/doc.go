// Package fltmgr models the file-system filter manager (fltmgr.sys) that
// minifilters run under (REFERENCE §5, §1.3–§1.5, §1.7): filter
// registration and instances with their setup, query-teardown,
// teardown-start, teardown-complete and unload callbacks; rundown
// protection on filter and instance objects; FLT_CALLBACK_DATA backed by a
// kernel IRP for IRP-based operations; the pre-/post-operation protocol
// with every FLT_PREOP_* and FLT_POSTOP_* return value, pending,
// SYNCHRONIZE, fast I/O refusal and reissue, post-op draining; teardown
// that waits for pended operations (a hang the kernel reports if they
// never complete); generic and deferred-I/O work items on the executive
// worker queues of package queues; the cancel-safe callback-data
// queue FltCbdq*, built on queues' IoCsq; and filter-initiated I/O
// (FltAllocateCallbackData, FltPerformAsynchronousIo, FltCancelIo, §5.9).
//
// Minifilter code in a scenario is ordinary Go that calls NT-named methods
// on a *FilterManager (fm.FltCbdqInsertIo, fm.FltCompletePendedPreOperation)
// exactly where a C minifilter calls the routine of that name. The I/O
// manager's side — a thread that issues a read and waits for it or cancels
// it — is FLT_VOLUME.Issue and the *IoOp it returns.
//
// Every routine is called from simulated code (a kernel thread, DPC or
// work routine) and passes through kernel calls, so the explorer can
// interleave other processors and inject preemptions inside it. Facts
// follow docs/REFERENCE.md; each routine's doc comment gives its
// caller IRQL, behaviour and section. Where the model goes beyond or
// against a source, the comment says so and why.
//
// Layering: fltmgr imports only queues, kernel and des (and the standard
// library). It must not import model, proptest, bench or cmd.
package fltmgr
