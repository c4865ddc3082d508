//go:build stress

package stress

import (
	"fmt"
	"sync"
)

// The model/sct programs (bug variants) in plain Go. Each mirrors the
// scenario's doc; the SCTBench/ConVul origin is cited there.

func sctPrograms() []program {
	ps := []program{
		{name: "sct-account:bug", run: account},
		{name: "sct-carter01:bug", run: carter01, hangs: true},
		{name: "sct-deadlock01:bug", run: deadlock01, hangs: true},
		{name: "sct-lazy01:bug", run: lazy01},
		{name: "sct-token_ring:bug", run: tokenRing},
		{name: "sct-wronglock:n3", run: wronglock(3)},
		{name: "sct-wronglock:n7", run: wronglock(7)},
		{name: "sct-stack:bug", run: stack},
		{name: "sct-queue:bug", run: queue},
		{name: "sct-circular_buffer:bug", run: circularBuffer},
		{name: "sct-bluetooth_driver:bug", run: bluetooth},
	}
	for _, n := range []int{3, 4, 5, 10, 20, 50, 100} {
		ps = append(ps, program{name: fmt.Sprintf("sct-reorder:n%d", n), run: reorder(n)})
	}
	for _, n := range []int{2, 3, 5, 10, 20, 50, 100} {
		ps = append(ps, program{name: fmt.Sprintf("sct-twostage:n%d", n), run: twostage(n)})
	}
	for _, v := range []string{"push-overwrite", "push-overwrite-spin", "steal-late-head", "pop-late-tail"} {
		ps = append(ps, program{name: "sct-workstealqueue:" + v, run: wsq(v)})
	}
	return ps
}

func account(e *env) {
	var m sync.Mutex
	const x, y, z = 1, 2, 4
	balance, dd, wd := e.word(x), e.word(0), e.word(0)
	e.goes(func() {
		m.Lock()
		if e.ld(dd) == 1 && e.ld(wd) == 1 {
			if b := e.ld(balance); b != x-y-z {
				e.fail("balance %d, checker expects %d", b, x-y-z)
			}
		}
		m.Unlock()
	})
	e.goes(func() { m.Lock(); e.st(balance, e.ld(balance)+y); e.st(dd, 1); m.Unlock() })
	e.goes(func() { m.Lock(); e.st(balance, e.ld(balance)-z); e.st(wd, 1); m.Unlock() })
}

func carter01(e *env) {
	var m, l sync.Mutex
	class := func(count word) {
		m.Lock()
		e.st(count, e.ld(count)+1)
		if e.ld(count) == 1 {
			l.Lock()
		}
		m.Unlock()
		m.Lock()
		e.st(count, e.ld(count)-1)
		if e.ld(count) == 0 {
			l.Unlock()
		}
		m.Unlock()
	}
	a, b := e.word(0), e.word(0)
	e.goes(func() { class(a) })
	e.goes(func() { class(b) })
}

func deadlock01(e *env) {
	var a, b sync.Mutex
	c := e.word(1)
	e.goes(func() {
		a.Lock()
		e.yield()
		b.Lock()
		c.add(1)
		b.Unlock()
		a.Unlock()
	})
	e.goes(func() {
		b.Lock()
		e.yield()
		a.Lock()
		c.add(-1)
		a.Unlock()
		b.Unlock()
	})
}

func lazy01(e *env) {
	var m sync.Mutex
	data := e.word(0)
	add := func(d int64) func() { return func() { m.Lock(); e.st(data, e.ld(data)+d); m.Unlock() } }
	e.goes(add(1))
	e.goes(add(2))
	e.goes(func() {
		m.Lock()
		if v := e.ld(data); v >= 3 {
			e.fail("data = %d", v)
		}
		m.Unlock()
	})
}

func tokenRing(e *env) {
	var atomicBlock sync.Mutex
	x1, x2, x3 := e.word(1), e.word(2), e.word(1)
	f1, f2, f3 := e.word(0), e.word(0), e.word(0)
	stage := func(dst, flag word, f func() int64) func() {
		return func() { atomicBlock.Lock(); e.st(dst, f()); e.st(flag, 1); atomicBlock.Unlock() }
	}
	e.goes(stage(x1, f1, func() int64 { return (e.ld(x3) + 1) % 4 }))
	e.goes(stage(x2, f2, func() int64 { return e.ld(x1) }))
	e.goes(stage(x3, f3, func() int64 { return e.ld(x2) }))
	e.goes(func() {
		atomicBlock.Lock()
		if e.ld(f1) == 1 && e.ld(f2) == 1 && e.ld(f3) == 1 {
			if v1, v2, v3 := e.ld(x1), e.ld(x2), e.ld(x3); v1 != v2 || v2 != v3 {
				e.fail("ring %d %d %d", v1, v2, v3)
			}
		}
		atomicBlock.Unlock()
	})
}

func wronglock(n int) func(e *env) {
	return func(e *env) {
		var dataLock, thisLock sync.Mutex
		v := e.word(0)
		e.goes(func() {
			dataLock.Lock()
			x := e.ld(v)
			e.st(v, e.ld(v)+1)
			if got := e.ld(v); got != x+1 {
				e.fail("dataValue %d after one increment of %d", got, x)
			}
			dataLock.Unlock()
		})
		for range n {
			e.goes(func() { thisLock.Lock(); e.st(v, e.ld(v)+1); thisLock.Unlock() })
		}
	}
}

func stack(e *env) {
	const size = 10
	var m sync.Mutex
	top, flag := e.word(0), e.word(0)
	e.goes(func() {
		for range size {
			m.Lock()
			e.st(top, e.ld(top)+1)
			e.st(flag, 1)
			m.Unlock()
		}
	})
	e.goes(func() {
		for range size {
			m.Lock()
			if e.ld(flag) == 1 {
				t := e.ld(top)
				if t == 0 {
					e.fail("stack underflow")
				}
				e.st(top, t-1)
			}
			m.Unlock()
		}
	})
}

func queue(e *env) {
	const size = 20
	var m sync.Mutex
	var q []int64
	stored := make([]word, size)
	for i := range stored {
		stored[i] = e.word(0)
	}
	enq, deq := e.word(1), e.word(0)
	e.goes(func() {
		m.Lock()
		value := int64(0)
		q = append(q, value)
		e.st(stored[0], value)
		m.Unlock()
		for i := range size - 1 {
			m.Lock()
			if e.ld(enq) == 1 {
				value++
				q = append(q, value)
				e.st(stored[i+1], value)
				e.st(enq, 0)
				e.st(deq, 1)
			}
			m.Unlock()
		}
	})
	e.goes(func() {
		for i := range size {
			m.Lock()
			if e.ld(deq) == 1 {
				got := q[0]
				q = q[1:]
				if want := e.ld(stored[i]); got != want {
					e.fail("dequeued %d, stored_elements[%d] = %d", got, i, want)
				}
				e.st(deq, 0)
				e.st(enq, 1)
			}
			m.Unlock()
		}
	})
}

func circularBuffer(e *env) {
	const max, n = 10, 7
	var m sync.Mutex
	buf := make([]int64, max)
	first, next := e.word(0), e.word(0)
	send, receive := e.word(1), e.word(0)
	e.goes(func() {
		for i := range n {
			m.Lock()
			if e.ld(send) == 1 {
				nx := e.ld(next)
				buf[nx] = int64(i)
				e.st(next, (nx+1)%max)
				e.st(send, 0)
				e.st(receive, 1)
			}
			m.Unlock()
		}
	})
	e.goes(func() {
		for i := range n {
			m.Lock()
			if e.ld(receive) == 1 {
				f := e.ld(first)
				got := int64(-1)
				if e.ld(next) > 0 && f < max {
					e.st(first, f+1)
					got = buf[f]
				}
				if got != int64(i) {
					e.fail("removed %d in iteration %d", got, i)
				}
				e.st(receive, 0)
				e.st(send, 1)
			}
			m.Unlock()
		}
	})
}

func bluetooth(e *env) {
	pending, stopping, stopped := e.word(1), e.word(0), e.word(0)
	var stopEvent sync.Once
	stoppedEv := e.word(0)
	dec := func() {
		if pending.add(-1) == 0 {
			stopEvent.Do(func() { stoppedEv.store(1) })
		}
	}
	e.goes(func() {
		e.st(stopping, 1)
		dec()
		if e.ld(stoppedEv) == 1 {
			e.st(stopped, 1)
		}
	})
	e.goes(func() { // PnpAdd on the main thread
		if e.ld(stopping) == 1 {
			return
		}
		pending.add(1)
		e.yield()
		if e.ld(stopped) == 1 {
			e.fail("I/O on a stopped device")
		}
		dec()
	})
}

func reorder(n int) func(e *env) {
	setters, checkers := n-1, 1
	if n >= 20 {
		setters, checkers = n/2, n/2
	}
	return func(e *env) {
		a, b := e.word(0), e.word(0)
		for range setters {
			e.goes(func() { e.st(a, 1); e.st(b, -1) })
		}
		for range checkers {
			e.goes(func() {
				va, vb := e.ld(a), e.ld(b)
				if !((va == 0 && vb == 0) || (va == 1 && vb == -1)) {
					e.fail("checker read a=%d b=%d", va, vb)
				}
			})
		}
	}
}

func twostage(n int) func(e *env) {
	return func(e *env) {
		var l1, l2 sync.Mutex
		d1, d2 := e.word(0), e.word(0)
		for range n - 1 {
			e.goes(func() {
				l1.Lock()
				e.st(d1, 1)
				l1.Unlock()
				l2.Lock()
				e.st(d2, e.ld(d1)+1)
				l2.Unlock()
			})
		}
		e.goes(func() {
			l1.Lock()
			if e.ld(d1) == 0 {
				l1.Unlock()
				return
			}
			t1 := e.ld(d1)
			l1.Unlock()
			l2.Lock()
			t2 := e.ld(d2)
			l2.Unlock()
			if t2 != t1+1 {
				e.fail("data1 %d data2 %d", t1, t2)
			}
		})
	}
}
