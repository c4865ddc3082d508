package queues

// QueueState is a snapshot of one worker queue, what a PoolPolicy decides
// on. All counts are at the moment of the call.
type QueueState struct {
	Type       WORK_QUEUE_TYPE
	Depth      int    // items queued and not yet taken by a worker
	Active     int    // workers counted active by the KQUEUE (got an item, not blocked elsewhere)
	Limit      int    // the KQUEUE concurrency limit
	Idle       int    // workers waiting in KeRemoveQueue
	Threads    int    // live workers, static and dynamic
	Static     int    // live static workers
	Dynamic    int    // live dynamic workers
	MaxDynamic int    // PoolConfig.MaxDynamic
	Created    int    // dynamic workers created so far
	Processed  uint64 // routines that have returned

	// What the balance manager saw at its previous periodic pass.
	DepthLastPass     int
	ProcessedLastPass uint64
}

// PoolPolicy decides when a queue gets another dynamic worker thread. The
// System enforces PoolConfig.MaxDynamic whatever the policy says, and
// creates the threads from its balance manager thread (thread creation
// needs PASSIVE_LEVEL while ExQueueWorkItem may run at DISPATCH_LEVEL).
// Policies are stateless; the System holds the counters they read.
type PoolPolicy interface {
	// Name identifies the policy in experiment output.
	Name() string
	// GrowOnInsert reports whether q needs a dynamic thread now. It is
	// asked after every insert into q (a true answer wakes the balance
	// manager) and again by the manager when it wakes, before it creates
	// the thread (ReactOS re-checks, REFERENCE §1.1 step (d), §3.2).
	GrowOnInsert(q QueueState) bool
	// GrowOnPass reports whether the periodic pass adds a thread to q.
	GrowOnPass(q QueueState) bool
	// Periodic reports whether the balance manager makes periodic passes.
	// If false its timer is never armed. It is asked after inserts and at
	// each manager step, so it must always give the same answer.
	Periodic() bool
}

// Fixed returns the policy that never adds threads: only the static ones
// serve. With it the worker-pool exhaustion of REFERENCE §3.4 is a hang.
func Fixed() PoolPolicy { return fixedPolicy{} }

type fixedPolicy struct{}

func (fixedPolicy) Name() string                 { return "fixed" }
func (fixedPolicy) GrowOnInsert(QueueState) bool { return false }
func (fixedPolicy) GrowOnPass(QueueState) bool   { return false }
func (fixedPolicy) Periodic() bool               { return false }

// ReactOS returns the ReactOS rules (RO:ntoskrnl/ex/work.c, REFERENCE §3.2),
// the default:
//
//   - on insert, only the critical queue grows, and only when items are
//     waiting while fewer workers than the concurrency limit are active
//     (the others are blocked elsewhere) and it has fewer than MaxDynamic
//     dynamic threads;
//   - every BalancePeriod the deadlock detector adds a thread to any queue
//     that had items queued at the previous pass and has completed none
//     since.
func ReactOS() PoolPolicy { return reactOSPolicy{} }

type reactOSPolicy struct{}

func (reactOSPolicy) Name() string { return "reactos" }

func (reactOSPolicy) GrowOnInsert(q QueueState) bool {
	return q.Type == CriticalWorkQueue && q.Depth > 0 && q.Active < q.Limit && q.Dynamic < q.MaxDynamic
}

func (reactOSPolicy) GrowOnPass(q QueueState) bool {
	return q.DepthLastPass > 0 && q.Processed == q.ProcessedLastPass && q.Dynamic < q.MaxDynamic
}

func (reactOSPolicy) Periodic() bool { return true }

// GrowOnDemand returns a research policy: any queue grows the moment an
// item is left waiting with no idle worker and a free concurrency slot,
// up to limit dynamic threads per queue (and MaxDynamic); there is no
// periodic pass. It resolves the exhaustion deadlock of REFERENCE §3.4 at
// once instead of after a second, at the price of more threads.
func GrowOnDemand(limit int) PoolPolicy { return growOnDemandPolicy{limit: limit} }

type growOnDemandPolicy struct{ limit int }

func (p growOnDemandPolicy) Name() string { return "grow-on-demand" }

func (p growOnDemandPolicy) GrowOnInsert(q QueueState) bool {
	return q.Depth > 0 && q.Idle == 0 && q.Active < q.Limit && q.Dynamic < p.limit
}

func (growOnDemandPolicy) GrowOnPass(QueueState) bool { return false }
func (growOnDemandPolicy) Periodic() bool             { return false }
