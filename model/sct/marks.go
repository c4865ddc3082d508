package sct

import "github.com/wqsim/wqsim/model"

// Coverage marks of the suite: the racy path each bug reaches (see
// model.Mark), declared once and used by the variants and the programs.
var (
	markAccountCheckerRanAfter              = model.NewMark("account: checker ran after both updates")
	markBluetoothDriverStopCompletedBetween = model.NewMark("bluetooth_driver: stop completed between the flag check and the increment")
	markCarter01WaitsForL                   = model.NewMark("carter01: waits for l while holding m")
	markCircularBufferAnIterationPassed     = model.NewMark("circular_buffer: an iteration passed without its turn")
	markDeadlock01SecondLockHeld            = model.NewMark("deadlock01: second lock held by the other thread")
	markLazy01CheckerRanAfter               = model.NewMark("lazy01: checker ran after both adders")
	markQueueConsumerIterationFound         = model.NewMark("queue: consumer iteration found nothing")
	markReorderCheckerSawA                  = model.NewMark("reorder: checker saw a half-done setter")
	markStackPopOnAn                        = model.NewMark("stack: pop on an empty stack")
	markStackPushOnA                        = model.NewMark("stack: push on a full stack")
	markTokenRingRingStagesRan              = model.NewMark("token_ring: ring stages ran out of order")
	markTwostageReaderBetweenThe            = model.NewMark("twostage: reader between the two stages")
	markWorkstealqueueItemProcessedOther    = model.NewMark("workstealqueue: item processed other than once")
	markWorkstealqueuePopAndSteal           = model.NewMark("workstealqueue: pop and steal took the same element")
	markWorkstealqueuePushOverwroteThe      = model.NewMark("workstealqueue: push overwrote the slot a steal is taking")
	markWronglockIncrementUnderThe          = model.NewMark("wronglock: increment under the other lock in the window")
	markCve20093547OpenAfterThe             = model.NewMark("cve-2009-3547: open after the last release")
	markCve20167911ContextFreedBetween      = model.NewMark("cve-2016-7911: context freed between the check and the read")
	markCve201715265PortDeletedWhile        = model.NewMark("cve-2017-15265: port deleted while its creator still uses it")
	markCve20157550KeyRevokedBetween        = model.NewMark("cve-2015-7550: key revoked between the check and the read")
	markCve20131792SawTheFirst              = model.NewMark("cve-2013-1792: saw the first keyring but not the second")
)
