package fltmgr

import (
	"errors"
	"fmt"
	"slices"

	"github.com/wqsim/wqsim/des"
	"github.com/wqsim/wqsim/kernel"
	"github.com/wqsim/wqsim/queues"
)

// Config is the filter manager's configuration. DefaultConfig holds the
// defaults; every field is documented with what it models.
type Config struct {
	// CsqOrder is the step order of the IoCsq library under every FltCbdq
	// (REFERENCE §2.2): Microsoft's flow (default) or ReactOS's.
	CsqOrder queues.CsqOrder
	// FsLatency is how long the simulated file system below the filters
	// takes for an operation, as a blocking delay of the thread that sends
	// it down (a disk transfer). 0 completes at once. A volume may override
	// it (FLT_VOLUME.Latency).
	FsLatency des.Duration
	// CompletionIrql is the IRQL post-operation callbacks run at when the
	// file system completes an operation: PASSIVE_LEVEL (completion in the
	// sending thread) or DISPATCH_LEVEL (completion from a DPC, the case
	// §5.4 warns about). A volume may override it.
	CompletionIrql kernel.IRQL
}

// DefaultConfig returns Microsoft's CSQ order, a 100µs file system and
// completion at DISPATCH_LEVEL, where real storage completes I/O.
func DefaultConfig() Config {
	return Config{CsqOrder: queues.CsqOrderMicrosoft, FsLatency: 100 * des.Microsecond, CompletionIrql: kernel.DISPATCH_LEVEL}
}

// Validate reports impossible values, each with what to do.
func (c *Config) Validate() error {
	var errs []error
	if c.CsqOrder != queues.CsqOrderMicrosoft && c.CsqOrder != queues.CsqOrderReactOS {
		errs = append(errs, fmt.Errorf("CsqOrder = %d: use queues.CsqOrderMicrosoft or queues.CsqOrderReactOS", c.CsqOrder))
	}
	if c.FsLatency < 0 {
		errs = append(errs, fmt.Errorf("FsLatency = %v: must not be negative (0 completes at once)", c.FsLatency))
	}
	if c.CompletionIrql != kernel.PASSIVE_LEVEL && c.CompletionIrql != kernel.APC_LEVEL && c.CompletionIrql != kernel.DISPATCH_LEVEL {
		errs = append(errs, fmt.Errorf("CompletionIrql = %v: post-operation callbacks run at ≤ DISPATCH_LEVEL (§5.4)", c.CompletionIrql))
	}
	return errors.Join(errs...)
}

// FilterManager is fltmgr.sys on one simulated machine: its volumes,
// registered filters and their instances, and the operations in flight.
// Like the kernel it is single-threaded; its routines are called from
// simulated code.
type FilterManager struct {
	k        *kernel.Kernel
	sys      *queues.System
	cfg      Config
	volumes  []*FLT_VOLUME
	filters  []*FLT_FILTER
	topLevel map[*kernel.Thread]any // IoGetTopLevelIrp per thread; never ranged over
	lastOp   int

	contexts    []ctxSlot // attached contexts, in attach order (REFERENCE §5.8)
	lastContext int
	lastItem    int
	hits        kernel.MarkCounts
	sp          *spares         // this Sim's objects from earlier runs (recycle.go)
	hangNote    func() []string // fm.pendedNote, bound once (REFERENCE §5.12)
}

// New returns a filter manager on k. sys provides the system worker queues
// for Flt work items; it may be nil when the scenario queues none (queueing
// one then panics with that advice). Call it before the run or from a
// thread.
func New(k *kernel.Kernel, sys *queues.System, cfg Config) (*FilterManager, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("fltmgr: invalid config: %w", err)
	}
	sim := k.Layer().Sim()
	sp := sparesOf(sim)
	fm := sp.managers.Take(sim)
	top := fm.topLevel // recycled: keep the map's storage, not its contents
	if top == nil {
		top = map[*kernel.Thread]any{}
	}
	clear(top)
	hits := fm.hits
	hits.Reset()
	note := fm.hangNote
	*fm = FilterManager{k: k, sys: sys, cfg: cfg, topLevel: top, sp: sp, hits: hits,
		volumes: reuse(fm.volumes), filters: reuse(fm.filters), hangNote: note}
	if fm.hangNote == nil {
		fm.hangNote = fm.pendedNote
	}
	k.Layer().AddHangNote(fm.hangNote)
	return fm, nil
}

// MustNew is New for configurations known to be valid.
func MustNew(k *kernel.Kernel, sys *queues.System, cfg Config) *FilterManager {
	fm, err := New(k, sys, cfg)
	if err != nil {
		panic(err)
	}
	return fm
}

// Kernel returns the kernel the filter manager runs on.
func (fm *FilterManager) Kernel() *kernel.Kernel { return fm.k }

// Config returns the configuration.
func (fm *FilterManager) Config() Config { return fm.cfg }

// Hits returns how many times the path m ran.
func (fm *FilterManager) Hits(m *kernel.Mark) int { return fm.hits.Count(m) }

// Filters returns the registered filters, in registration order.
func (fm *FilterManager) Filters() []*FLT_FILTER { return fm.filters }

// Volumes returns the mounted volumes, in mount order.
func (fm *FilterManager) Volumes() []*FLT_VOLUME { return fm.volumes }

// FLT_VOLUME is a mounted volume: the file system at the bottom and the
// filter instances attached to it, highest altitude first.
type FLT_VOLUME struct {
	fm        *FilterManager
	Name      string
	instances []*FLT_INSTANCE // attached, highest altitude first
	// Latency overrides Config.FsLatency for this volume when ≥ 0.
	Latency des.Duration
	// CompletionIrql overrides Config.CompletionIrql when ≥ 0.
	CompletionIrql kernel.IRQL
	// FileSystem, if set, replaces the default file system: it is called
	// in the thread sending the operation down, must fill data.IoStatus
	// (Information) and returns the final status. It must not return
	// STATUS_PENDING (the model's file system completes synchronously; use
	// a blocking delay for latency).
	FileSystem func(data *FLT_CALLBACK_DATA) kernel.NTSTATUS
	// SyncFileSystem makes the default file system always complete inline
	// (choice 0 of its completion decision, REFERENCE §5.6) for volumes
	// whose scenario does not explore asynchronous completion.
	SyncFileSystem bool
	// CancelPendedIo makes the default file system's pended requests
	// cancellable (a cancel routine that completes them with
	// STATUS_CANCELLED, REFERENCE §5.9), as a redirector or named-pipe
	// file system does; off, a cancel of a pended request only sets its
	// Cancel flag and the request completes normally.
	CancelPendedIo bool
	fsLabel        string
	dismounted     bool
}

// MountVolume adds a volume named name. Filters that are already filtering
// get an instance on it (InstanceSetup with AUTOMATIC_ATTACHMENT |
// NEWLY_MOUNTED_VOLUME, §5.5), so once a filter has started, MountVolume
// must be called from a thread at PASSIVE_LEVEL; before that, from
// anywhere.
func (fm *FilterManager) MountVolume(name string) *FLT_VOLUME {
	v := fm.sp.volumes.Take(fm.k.Layer().Sim())
	old := *v // recycled: keep the instance list's storage and the label if the name is the same
	*v = FLT_VOLUME{fm: fm, Name: name, Latency: -1, CompletionIrql: -1, instances: reuse(old.instances)}
	if old.Name == name {
		v.fsLabel = old.fsLabel
	}
	fm.volumes = append(fm.volumes, v)
	for _, f := range fm.filters {
		if f.started && f.state == filterRegistered {
			fm.attach(f, v, FLTFL_INSTANCE_SETUP_AUTOMATIC_ATTACHMENT|FLTFL_INSTANCE_SETUP_NEWLY_MOUNTED_VOLUME)
		}
	}
	return v
}

// Instances returns the instances attached to v, highest altitude first.
func (v *FLT_VOLUME) Instances() []*FLT_INSTANCE { return v.instances }

func (v *FLT_VOLUME) latency() des.Duration {
	if v.Latency >= 0 {
		return v.Latency
	}
	return v.fm.cfg.FsLatency
}

func (v *FLT_VOLUME) completionIrql() kernel.IRQL {
	if v.CompletionIrql >= 0 {
		return v.CompletionIrql
	}
	return v.fm.cfg.CompletionIrql
}

// insertInstance keeps v.instances ordered by altitude, highest first;
// equal altitudes keep attach order.
func (v *FLT_VOLUME) insertInstance(inst *FLT_INSTANCE) {
	i := 0
	for i < len(v.instances) && v.instances[i].filter.Altitude >= inst.filter.Altitude {
		i++
	}
	v.instances = slices.Insert(v.instances, i, inst)
}

func (v *FLT_VOLUME) removeInstance(inst *FLT_INSTANCE) {
	v.instances = slices.DeleteFunc(v.instances, func(x *FLT_INSTANCE) bool { return x == inst })
}

// IoGetTopLevelIrp returns the calling thread's TopLevelIrp: nil when the
// thread holds no file-system resources above the file system (§5.2). The
// issuer sets it for the duration of an operation issued with
// IoRequest.TopLevel. In a DPC it is the TopLevelIrp of the thread the DPC
// interrupted, whatever that thread is doing (REFERENCE §5.7). Any IRQL.
func (fm *FilterManager) IoGetTopLevelIrp() any {
	if t := fm.k.Layer().ContextThread(); t != nil {
		return fm.topLevel[t]
	}
	return nil
}

// IoSetTopLevelIrp sets the calling thread's TopLevelIrp (what a file
// system or the cache manager does around recursive calls, §5.2); nil
// clears it. Any IRQL; no scheduling point; ignored in a DPC.
func (fm *FilterManager) IoSetTopLevelIrp(v any) {
	t := fm.k.Layer().ThreadOrNil()
	if t == nil {
		return
	}
	if v == nil {
		delete(fm.topLevel, t)
		return
	}
	fm.topLevel[t] = v
}

// trace emits a filter-manager record attributed to the calling code.
func (fm *FilterManager) trace(kind des.Kind, what des.What, object string, a, b int64) {
	fm.k.Layer().TraceKind(kind, what, object, a, b)
}

func (fm *FilterManager) mark(m *kernel.Mark, object string) {
	fm.hits.Add(m)
	fm.k.Layer().HitMark(m)
	fm.trace(KindFltMark, des.What(m.String()), object, 0, 0)
}

// violation stops the run with a Filter Verifier report.
func (fm *FilterManager) violation(api string, filter *FLT_FILTER, rule, format string, a ...any) {
	v := &VerifierViolation{API: api, At: fm.k.Now(), Rule: rule, Detail: fmt.Sprintf(format, a...)}
	if filter != nil {
		v.Filter = filter.Name
	}
	if t := fm.k.Layer().ThreadOrNil(); t != nil {
		v.Actor = t.Name()
	}
	fm.k.Layer().Fail(v)
}

// pendedNote says, for a hang or deadlock report, which operations a
// filter still holds pended (REFERENCE §5.12): a pre-op returned
// FLT_PREOP_PENDING and FltCompletePendedPreOperation never came, or a
// post-op returned FLT_POSTOP_MORE_PROCESSING_REQUIRED (itself, or through
// FltDoCompletionProcessingWhenSafe) and FltCompletePendedPostOperation
// never came. The issuer waits on the IRP's event and an unload on the
// instance's teardown; the note names the filter that holds the operation.
func (fm *FilterManager) pendedNote() []string {
	var out []string
	for _, f := range fm.filters {
		for _, inst := range f.instances {
			for _, fr := range inst.active {
				switch fr.state {
				case framePended:
					out = append(out, fmt.Sprintf("%s is still pended by %s's pre-operation callback (FLT_PREOP_PENDING): "+
						"nothing called FltCompletePendedPreOperation for it (REFERENCE §1.4, §5.12)", fr.op.data.name, inst.name))
				case framePostPended:
					out = append(out, fmt.Sprintf("%s is still held by %s's post-operation callback (FLT_POSTOP_MORE_PROCESSING_REQUIRED): "+
						"nothing called FltCompletePendedPostOperation for it (REFERENCE §1.4, §5.12)", fr.op.data.name, inst.name))
				}
			}
		}
	}
	return out
}
