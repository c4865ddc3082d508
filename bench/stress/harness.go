//go:build stress

package stress

import (
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// word is a shared machine word: atomic in hit-rate runs, plain (racy in
// Go's memory model, as in the C originals) in detector runs.
type word interface {
	load() int64
	store(int64)
	add(int64) int64
	swap(int64) int64
}

type atomicWord struct{ v atomic.Int64 }

func (w *atomicWord) load() int64        { return w.v.Load() }
func (w *atomicWord) store(v int64)      { w.v.Store(v) }
func (w *atomicWord) add(d int64) int64  { return w.v.Add(d) }
func (w *atomicWord) swap(v int64) int64 { return w.v.Swap(v) }

type plainWord struct{ v int64 }

func (w *plainWord) load() int64       { return w.v }
func (w *plainWord) store(v int64)     { w.v = v }
func (w *plainWord) add(d int64) int64 { w.v += d; return w.v }
func (w *plainWord) swap(v int64) int64 {
	old := w.v
	w.v = v
	return old
}

// env is what one execution of a program gets: shared words, a yield at
// every shared access (runtime.Gosched with -stress.gosched), goroutines
// and joins, and its failure.
type env struct {
	plain   bool
	gosched bool
	wg      sync.WaitGroup
	mu      sync.Mutex
	err     error
}

func (e *env) word(v int64) word {
	if e.plain {
		return &plainWord{v}
	}
	w := &atomicWord{}
	w.v.Store(v)
	return w
}

// ld and st are a shared access followed by the developer's yield.
func (e *env) ld(w word) int64 { v := w.load(); e.yield(); return v }
func (e *env) st(w word, v int64) {
	w.store(v)
	e.yield()
}

func (e *env) yield() {
	if e.gosched {
		runtime.Gosched()
	}
}

// goes starts body on a goroutine the execution waits for.
func (e *env) goes(body func()) {
	e.wg.Add(1)
	go func() { defer e.wg.Done(); body() }()
}

// fail records the execution's first failure (the original's assert).
func (e *env) fail(format string, args ...any) {
	e.mu.Lock()
	if e.err == nil {
		e.err = fmt.Errorf(format, args...)
	}
	e.mu.Unlock()
}

// block is heap memory a program frees: touching it after the free is the
// use after free the simulated kernel reports as 0xD5; freeing it twice is
// a double free.
type block struct{ freed atomic.Bool }

func (e *env) touch(b *block, what string) {
	if b == nil {
		e.fail("%s dereferenced a NULL pointer", what)
		return
	}
	if b.freed.Load() {
		e.fail("%s touched freed memory", what)
	}
	e.yield()
}

func (e *env) free(b *block, what string) {
	if b.freed.Swap(true) {
		e.fail("%s freed twice", what)
	}
}

// errHang is an execution whose goroutines did not finish within the
// watchdog: a deadlock or a lost wakeup.
var errHang = errors.New("hang: goroutines still blocked after the watchdog")

// program is one execution of a ported program.
type program struct {
	name  string // the scenario:variant it mirrors
	run   func(e *env)
	hangs bool // the bug is a deadlock or lost wakeup: a watchdog expiry is a hit
}

// once runs p once and reports its failure. For a program whose bug is a
// hang, a run that does not finish within watchdog is that hang (its
// goroutines are left blocked); any other program is waited for, however
// slow the loaded host makes it.
func once(p program, plain, gosched bool, watchdog time.Duration) error {
	e := &env{plain: plain, gosched: gosched}
	done := make(chan struct{})
	go func() {
		p.run(e)
		e.wg.Wait()
		close(done)
	}()
	if !p.hangs {
		<-done
		return e.err
	}
	select {
	case <-done:
	case <-time.After(watchdog):
		return errHang
	}
	return e.err
}
