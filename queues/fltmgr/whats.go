package fltmgr

import "github.com/wqsim/wqsim/des"

// Sub-kinds of the filter manager's trace records (the What field; see
// kernel/whats.go): tools compare against them instead of matching text.
// Records of a routine call or a callback's return status carry the
// routine's name or the status's name instead.
const (
	WhatCompletionWhenSafe            des.What = "completion when safe"
	WhatContextAllocate               des.What = "context-allocate"
	WhatContextRelease                des.What = "context-release"
	WhatContextFree                   des.What = "context-free"
	WhatContextSet                    des.What = "context-set"
	WhatAsyncCallback                 des.What = "async io callback"
	WhatAttach                        des.What = "attach"
	WhatComplete                      des.What = "complete"
	WhatCompleteCanceledIo            des.What = "CompleteCanceledIo"
	WhatDeferredRoutine               des.What = "deferred routine"
	WhatDetached                      des.What = "detached"
	WhatFileSystem                    des.What = "file system"
	WhatFilterUnload                  des.What = "FilterUnload"
	WhatFilterUnloadReturned          des.What = "FilterUnload returned"
	WhatFltCbdqInsertIo               des.What = "FltCbdqInsertIo"
	WhatFltObjectDereference          des.What = "FltObjectDereference"
	WhatFltObjectReference            des.What = "FltObjectReference"
	WhatFltRegisterFilter             des.What = "FltRegisterFilter"
	WhatFltStartFiltering             des.What = "FltStartFiltering"
	WhatFltUnregisterFilter           des.What = "FltUnregisterFilter"
	WhatGenericRoutine                des.What = "generic routine"
	WhatInstanceQueryTeardown         des.What = "InstanceQueryTeardown"
	WhatInstanceQueryTeardownReturned des.What = "InstanceQueryTeardown returned"
	WhatInstanceSetup                 des.What = "InstanceSetup"
	WhatInstanceSetupReturned         des.What = "InstanceSetup returned"
	WhatIssue                         des.What = "issue"
	WhatPostOp                        des.What = "post-op"
	WhatPreOp                         des.What = "pre-op"
	WhatResumeCompletedEarly          des.What = "resume (completed early)"
	WhatRoutineReturned               des.What = "routine returned"
	WhatTeardownComplete              des.What = "teardown complete"
	WhatTeardownStart                 des.What = "teardown start"
	WhatUnregistered                  des.What = "unregistered"
)

// An operation's completion and an asynchronous I/O's callback carry its
// NTSTATUS in A: shown in hex in the text trace.
func init() {
	des.ShowArgsAs(KindFltOp, WhatComplete, des.Hex, des.Decimal)
	des.ShowArgsAs(KindFltOp, WhatAsyncCallback, des.Hex, des.Decimal)
}
