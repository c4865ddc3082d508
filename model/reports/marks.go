package reports

import "github.com/wqsim/wqsim/model"

// Coverage marks of the bug-report scenarios: the racy path each bug
// reaches (see model.Mark), declared once and used by the variants and the
// driver code.
var (
	markCldfltCsqQueueFreedWhile      = model.NewMark("cldflt-csq: queue freed while the remover holds it")
	markEbpf4790CancelCallbackRan     = model.NewMark("ebpf-4790: cancel callback ran after completion took the context")
	markNuttx7065AppendedAnItem       = model.NewMark("nuttx-7065: appended an item already on the list")
	markNuttx10668TimerFreedWhile     = model.NewMark("nuttx-10668: timer freed while its work handler runs")
	markUsbip188AnEarlierThunk        = model.NewMark("usbip-188: an earlier thunk cleared the running marker")
	markZephyr35225CancelReportedIdle = model.NewMark("zephyr-35225: cancel reported idle while the item was dequeued")
)
