//go:build stress

package stress

import (
	"sync"
	"sync/atomic"
	"time"
)

// The model/reports scenarios (bug variants) in Go; see each scenario's
// doc for the report it follows.
func reportPrograms() []program {
	return []program{
		{name: "ebpf-4790:double-remove", run: ebpf4790},
		{name: "usbip-188:reused-item", run: usbip188, hangs: true},
		{name: "cldflt-csq:free-while-held", run: cldflt},
		{name: "zephyr-35225:dequeue-window", run: zephyr35225},
		{name: "zephyr-51872:ignore-failed-cancel", run: zephyr51872},
		{name: "nuttx-7065:cancel-outside-lock", run: nuttx7065},
		{name: "nuttx-10668:async-cancel", run: nuttx10668},
		{name: "serial-217:cancel-routine-set", run: serial217},
	}
}

// irp is an IRP reduced to its cancel routine slot and completion count.
type irp struct {
	cancel    atomic.Pointer[func()]
	completed atomic.Int32
}

func (e *env) complete(i *irp, what string) {
	if i.cancel.Load() != nil {
		e.fail("%s completed the IRP with its cancel routine set", what)
	}
	if i.completed.Add(1) > 1 {
		e.fail("%s completed the IRP twice", what)
	}
}

// cancelIrp is IoCancelIrp: swap the routine out, call it.
func cancelIrp(i *irp) {
	if r := i.cancel.Swap(nil); r != nil {
		(*r)()
	}
}

func ebpf4790(e *env) {
	var lock sync.Mutex
	onList := true
	ctx := &block{}
	q := &irp{}
	cancel := func() {
		lock.Lock()
		e.touch(ctx, "cancel callback")
		if !onList {
			e.fail("context removed twice")
		}
		onList = false
		lock.Unlock()
		e.complete(q, "cancel")
		e.free(ctx, "context")
	}
	q.cancel.Store(&cancel)
	e.goes(func() { // completion
		lock.Lock()
		mine := onList
		onList = false
		lock.Unlock()
		if !mine {
			return
		}
		q.cancel.Swap(nil)
		e.touch(ctx, "completion")
		e.complete(q, "completion")
		e.free(ctx, "context")
	})
	e.goes(func() { cancelIrp(q) })
}

func usbip188(e *env) {
	var running atomic.Pointer[int] // the marker: the running callback's identity
	var busy sync.WaitGroup
	attached := make(chan struct{})
	var enqueue func(cb func(id *int))
	enqueue = func(cb func(id *int)) {
		busy.Add(1)
		go func() {
			id := new(int)
			running.Store(id)
			cb(id)
			running.Store(nil) // clears a later run's marker too
			busy.Done()
		}()
	}
	e.goes(func() {
		enqueue(func(*int) {
			enqueue(func(id *int) { // phase 2 on the same work item
				e.yield()
				if running.Load() != id {
					busy.Wait() // delete waits for running callbacks, itself included
				}
				close(attached)
			})
			e.yield()
		})
		<-attached
	})
}

func cldflt(e *env) {
	var lock sync.Mutex
	q := &block{}
	pending := e.word(2)
	take := func() bool {
		e.touch(q, "csq lock")
		lock.Lock()
		n := e.ld(pending) - 1
		e.st(pending, n)
		lock.Unlock()
		return n == 0
	}
	e.goes(func() { // cleanup: two lock sections
		take()
		e.yield()
		e.touch(q, "csq lock")
		lock.Lock()
		lock.Unlock()
	})
	e.goes(func() { // completion frees the queue once empty
		if take() {
			e.free(q, "queue object")
		} else {
			time.Sleep(10 * time.Microsecond)
			e.free(q, "queue object")
		}
	})
}

// goWorkQueue is the driver work queue (model/reports/dwq.go) in Go.
type goWorkQueue struct {
	e      *env
	mu     sync.Mutex
	list   []*goWork
	wake   chan struct{}
	split  bool
	double bool // an item appended twice (nuttx-7065)
}

type goWork struct {
	state   int // 0 idle, 1 queued, 2 running
	handler func()
	done    chan struct{}
}

func newGoWorkQueue(e *env, split bool) *goWorkQueue {
	q := &goWorkQueue{e: e, wake: make(chan struct{}, 1), split: split}
	return q
}

func (q *goWorkQueue) kick() {
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// runAll runs the worker until the list has been empty once after stop.
func (q *goWorkQueue) worker(stop *atomic.Bool) {
	for {
		q.mu.Lock()
		if len(q.list) == 0 {
			q.mu.Unlock()
			if stop.Load() {
				return
			}
			select {
			case <-q.wake:
			case <-time.After(time.Millisecond):
			}
			continue
		}
		w := q.list[0]
		q.list = q.list[1:]
		if q.split {
			w.state = 0
			q.mu.Unlock()
			q.e.yield()
			q.mu.Lock()
		}
		w.state = 2
		q.mu.Unlock()
		w.handler()
		q.mu.Lock()
		w.state = 0
		q.mu.Unlock()
		select {
		case w.done <- struct{}{}:
		default:
		}
	}
}

func (q *goWorkQueue) remove(w *goWork) {
	for i, x := range q.list {
		if x == w {
			q.list = append(q.list[:i:i], q.list[i+1:]...)
			return
		}
	}
}

func zephyr35225(e *env) {
	q := newGoWorkQueue(e, true)
	ctx := &block{}
	w := &goWork{done: make(chan struct{}, 1)}
	w.handler = func() { e.touch(ctx, "work handler") }
	var stop atomic.Bool
	e.goes(func() { q.worker(&stop) })
	e.goes(func() {
		q.mu.Lock()
		w.state = 1
		q.list = append(q.list, w)
		q.mu.Unlock()
		q.kick()
		e.yield()
		q.mu.Lock()
		mustWait := false
		switch w.state {
		case 1:
			q.remove(w)
			w.state = 0
		case 2:
			mustWait = true
		}
		q.mu.Unlock()
		if mustWait {
			<-w.done
		}
		e.free(ctx, "work context")
		stop.Store(true)
		q.kick()
	})
}

func nuttx7065(e *env) {
	q := newGoWorkQueue(e, false)
	w := &goWork{done: make(chan struct{}, 1), handler: func() {}}
	queueWork := func() {
		q.mu.Lock()
		q.remove(w) // work_cancel, in its own critical section
		q.mu.Unlock()
		e.yield()
		q.mu.Lock()
		for _, x := range q.list {
			if x == w {
				e.fail("the same work item appended twice")
			}
		}
		q.list = append(q.list, w)
		q.mu.Unlock()
		q.kick()
	}
	var stop atomic.Bool
	var callers sync.WaitGroup
	callers.Add(2)
	e.goes(func() { q.worker(&stop) })
	for range 2 {
		e.goes(func() { queueWork(); callers.Done() })
	}
	e.goes(func() { callers.Wait(); stop.Store(true); q.kick() })
}

func nuttx10668(e *env) {
	q := newGoWorkQueue(e, false)
	timer := &block{}
	w := &goWork{done: make(chan struct{}, 1)}
	w.handler = func() { e.yield(); e.touch(timer, "notification worker") }
	var stop atomic.Bool
	e.goes(func() { q.worker(&stop) })
	e.goes(func() {
		q.mu.Lock()
		w.state = 1
		q.list = append(q.list, w)
		q.mu.Unlock()
		q.kick()
		e.yield()
		q.mu.Lock() // work_cancel: cannot stop a running handler
		if w.state == 1 {
			q.remove(w)
			w.state = 0
		}
		q.mu.Unlock()
		e.free(timer, "timer")
		stop.Store(true)
		q.kick()
	})
}

func zephyr51872(e *env) {
	const delay = 200 * time.Microsecond
	var mu sync.Mutex
	delayed := false
	var lastCall, lastRun atomic.Int64
	var flushes sync.WaitGroup
	var t *time.Timer
	expire := func() {
		mu.Lock()
		run := delayed
		delayed = false
		mu.Unlock()
		if run {
			lastRun.Store(time.Now().UnixNano())
		}
	}
	reschedule := func() {
		mu.Lock()
		if delayed && t != nil {
			t.Stop() // the result (false: the callback is in flight) ignored
		}
		delayed = true
		flushes.Add(1)
		t = time.AfterFunc(delay, func() { expire(); flushes.Done() })
		lastCall.Store(time.Now().UnixNano())
		mu.Unlock()
	}
	e.goes(func() {
		reschedule()
		time.Sleep(delay)
		reschedule()
		time.Sleep(3 * delay)
		if lastRun.Load() < lastCall.Load()+int64(delay) {
			e.fail("the rescheduled flush was lost")
		}
	})
}

func serial217(e *env) {
	var mu sync.Mutex
	buffered := false
	var waiting *irp
	read := &irp{}
	e.goes(func() { // receive DPC
		e.yield()
		mu.Lock()
		i := waiting
		if i == nil {
			buffered = true
			mu.Unlock()
			return
		}
		waiting = nil
		mu.Unlock()
		e.complete(i, "receive DPC")
	})
	e.goes(func() { // the read
		mu.Lock()
		if buffered {
			mu.Unlock()
			e.complete(read, "read")
			return
		}
		cancel := func() { e.complete(read, "cancel routine") }
		read.cancel.Store(&cancel)
		waiting = read
		mu.Unlock()
	})
}
