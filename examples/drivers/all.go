package drivers

import "github.com/wqsim/wqsim/model"

// All lists the package's scenarios, for cli.Main and the tests.
var All = []*model.Scenario{ClassicCancel, CsqDriver, PendFilter, ResourceCache, DeviceStack, MutexApc, TryWork, FltPair, WaitAll, DpcRearm, DpcRemove, OwnIrp, ResUpgrade, Rundown, DeferredPre, RemoveLock, Heartbeat, CsqTimeout, WaitAny, ResWriter, Mailbox, StatsLock, Outstanding, Inversion, LockOrder, FltWork, DpcCount, Requeue, CsqDpc, PostDefer, BatchTimer, IsrSync, ReuseIrp, Lookaside, DpcRef, KqPool, SemThrottle, PagedLog, CtxScan, StartIo, StartPacket, TdpcStats, RwTable, IoTimeout, SelfTerm, StripeFlush, ReadTimeout, CbdqDeadline, Plotter, WatchdogIrp, NameCache, SlistWork, PollReady, RssCount, RenameLog, WriteThrottle, CtxItem, NestWait, AlertWait}
