package lab

import (
	"math/rand/v2"

	"github.com/wqsim/wqsim/des"
	"github.com/wqsim/wqsim/kernel"
)

// rtSpec is one real-time task as the machine runs it.
type rtSpec struct {
	PeriodicTask
	priority int          // kernel priority, 1–31
	offset   des.Duration // first nominal release
	jitter   sampler      // release jitter (zero sampler: none)
	hasJit   bool
	extra    sampler // sporadic: added to Period between arrivals
	sporadic bool
	exec     sampler // execution time of a job (≤ WCET by validation)
	hasExec  bool
	events   []rtEvent // an imported job body: compute and sleep steps
	rng      *rand.Rand
	// affinity pins the task's thread (partitioned placement): its first
	// act is KeSetSystemAffinityThreadEx(affinity), before any job. Zero:
	// it may run on any processor (global placement).
	affinity kernel.KAFFINITY
}

// rtTask is a real-time task running on a machine: a kernel thread at its
// priority that waits on a semaphore, and a KTIMER whose DPC releases one
// job (one semaphore unit) per expiry. A strictly periodic task uses a
// periodic timer (KeSetTimerEx with the task's period, cancelled after the
// last release); a task with release jitter or sporadic arrivals re-arms a
// one-shot timer from the DPC for each release. Jobs of a task run in
// release order, one at a time, as the response-time analysis assumes; a
// job that overruns its period delays the next one instead of dropping it
// (waiting on the timer object itself would merge the releases).
type rtTask struct {
	spec    rtSpec
	k       *kernel.Kernel
	horizon des.Time // no release at or after it
	thread  *kernel.Thread
	timer   *kernel.KTIMER
	dpc     *kernel.KDPC
	sem     *kernel.KSEMAPHORE
	pinned  *kernel.KSEMAPHORE // released once the thread has pinned itself

	nominal  []des.Time // nominal release times of every released job
	done     int        // jobs completed; nominal[done] is the one to run
	next     des.Time   // the next nominal release
	final    bool       // no release after the ones in nominal
	deadline des.Time   // absolute deadline of the job running or next to run (for deadline-aware policies)

	resp      samples
	released  int
	misses    int
	tardiness []des.Duration // of late jobs only
}

// newRTTask creates t's kernel objects and thread; nothing is armed yet.
func newRTTask(k *kernel.Kernel, s rtSpec, horizon des.Time) *rtTask {
	t := &rtTask{spec: s, k: k, horizon: horizon, next: des.Time(s.offset)}
	t.timer = k.KeInitializeTimerEx(s.Name+".release", kernel.SynchronizationEvent)
	t.dpc = k.KeInitializeDpc(s.Name+".release", t.release, nil)
	t.sem = k.KeInitializeSemaphore(s.Name+".jobs", 0, 1<<30)
	t.thread = k.PsCreateSystemThread(s.Name, s.priority, t.run)
	return t
}

// arm schedules the first release; it runs in simulated code (the
// release controller thread).
func (t *rtTask) arm() {
	if t.next >= t.horizon {
		t.final = true
		t.k.KeReleaseSemaphore(t.sem, 0, 1, false) // wake the thread to exit
		return
	}
	if t.periodic() {
		t.k.KeSetTimerEx(t.timer, max(0, t.next.Sub(t.k.Now())), t.spec.Period, t.dpc)
		return
	}
	t.armAt(t.next)
}

// periodic reports whether a periodic timer releases t.
func (t *rtTask) periodic() bool { return !t.spec.sporadic && !t.spec.hasJit }

// armAt arms the timer for the nominal release at, plus jitter.
func (t *rtTask) armAt(at des.Time) {
	if t.spec.hasJit {
		at = at.Add(t.spec.jitter.draw(t.spec.rng))
	}
	t.k.KeSetTimer(t.timer, max(0, at.Sub(t.k.Now())), t.dpc)
}

// release is the timer's DPC: it releases the job due now and arms the
// next release.
func (t *rtTask) release(*kernel.KDPC, any, any, any) {
	t.nominal = append(t.nominal, t.next)
	t.released++
	if t.done == len(t.nominal)-1 {
		// the thread is idle: its next job is this one, due before it is readied
		t.deadline = t.next.Add(t.spec.deadline())
	}
	gap := t.spec.Period
	if t.spec.sporadic {
		gap += t.spec.extra.draw(t.spec.rng)
	}
	t.next = t.next.Add(gap)
	switch {
	case t.next >= t.horizon:
		t.final = true
		if t.periodic() {
			t.k.KeCancelTimer(t.timer)
		}
	case !t.periodic():
		t.armAt(t.next)
	}
	t.k.KeReleaseSemaphore(t.sem, 0, 1, false)
}

// run is the task's thread: one job per semaphore unit, until the last
// release has been served.
func (t *rtTask) run() {
	k := t.k
	if t.spec.affinity != 0 {
		k.KeSetSystemAffinityThreadEx(t.spec.affinity) // REFERENCE §4.7
		k.KeReleaseSemaphore(t.pinned, 0, 1, false)
	}
	for {
		if t.final && t.done == len(t.nominal) {
			return
		}
		k.KeWaitForSingleObject(t.sem, kernel.Infinite)
		if t.done == len(t.nominal) {
			continue // the exit wake-up of a task with no release
		}
		rel := t.nominal[t.done]
		t.job()
		t.finish(rel, k.Now())
	}
}

// job runs one job: the imported steps, or a compute of the execution
// time.
func (t *rtTask) job() {
	k := t.k
	if len(t.spec.events) > 0 {
		for _, e := range t.spec.events {
			if e.sleep {
				k.KeDelayExecutionThread(e.d)
			} else {
				k.Compute(e.d)
			}
		}
		return
	}
	c := t.spec.WCET
	if t.spec.hasExec {
		c = min(t.spec.exec.draw(t.spec.rng), t.spec.WCET)
	}
	k.Compute(c)
}

// finish records a job released (nominally) at rel that completed at end.
func (t *rtTask) finish(rel, end des.Time) {
	r := end.Sub(rel)
	t.resp.add(r)
	if late := r - t.spec.deadline(); late > 0 {
		t.misses++
		t.tardiness = append(t.tardiness, late)
	}
	t.done++
	if t.done < len(t.nominal) {
		t.deadline = t.nominal[t.done].Add(t.spec.deadline())
	}
}

// worst returns the largest response time of t's jobs (0 if none ran).
func (t *rtTask) worst() des.Duration { return t.resp.max }

// startRTTasks creates the tasks' threads and a release controller at
// priority 31 that arms every first release at time 0 and exits. When
// tasks are pinned (partitioned placement) the controller first waits
// until every pinned thread has moved to its processor, so that no job is
// released while a thread still sits elsewhere (at zero call costs all of
// this happens at time 0).
func startRTTasks(k *kernel.Kernel, specs []rtSpec, horizon des.Time) []*rtTask {
	tasks := make([]*rtTask, len(specs))
	pinned := 0
	var ready *kernel.KSEMAPHORE
	for i, s := range specs {
		if s.affinity != 0 {
			if ready == nil {
				ready = k.KeInitializeSemaphore("rt.pinned", 0, 1<<30)
			}
			pinned++
		}
		tasks[i] = newRTTask(k, s, horizon)
		tasks[i].pinned = ready
	}
	k.PsCreateSystemThread("rt.release", kernel.HIGH_PRIORITY, func() {
		for range pinned {
			k.KeWaitForSingleObject(ready, kernel.Infinite)
		}
		for _, t := range tasks {
			t.arm()
		}
	})
	return tasks
}
