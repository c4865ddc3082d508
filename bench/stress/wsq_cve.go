//go:build stress

package stress

import (
	"runtime"
	"sync"
	"time"
)

// wsq is the CHESS work-stealing queue (see model/sct/wsq.go) in Go.
func wsq(variant string) func(e *env) {
	return func(e *env) {
		const items, attempts = 4, 2
		head, tail := e.word(0), e.word(0)
		elems := []word{e.word(-1), e.word(-1)}
		mask := int64(1)
		var mu sync.Mutex
		spin := e.word(0)
		lock, unlock := mu.Lock, mu.Unlock
		if variant == "push-overwrite-spin" {
			lock = func() {
				for spin.swap(1) != 0 {
					runtime.Gosched()
				}
			}
			unlock = func() { spin.store(0) }
		}
		field := make([]word, items)
		for i := range field {
			field[i] = e.word(0)
		}
		operate := func(v int64, ok bool) {
			if ok {
				field[v].add(1)
			}
		}
		steal := func() (int64, bool) {
			lock()
			defer unlock()
			h := e.ld(head)
			late := variant == "steal-late-head"
			if !late {
				e.st(head, h+1)
			}
			if h < e.ld(tail) {
				if late {
					e.st(head, h+1)
				}
				return e.ld(elems[h&mask]), true
			}
			e.st(head, h)
			return 0, false
		}
		syncPop := func() (int64, bool) {
			lock()
			defer unlock()
			t := e.ld(tail) - 1
			e.st(tail, t)
			var v int64
			found := false
			if e.ld(head) <= t {
				v, found = e.ld(elems[t&mask]), true
			} else {
				e.st(tail, t+1)
			}
			if e.ld(head) > t {
				e.st(head, 0)
				e.st(tail, 0)
				found = false
			}
			return v, found
		}
		pop := func() (int64, bool) {
			t := e.ld(tail) - 1
			late := variant == "pop-late-tail"
			if !late {
				e.st(tail, t)
			}
			if e.ld(head) <= t {
				if late {
					e.st(tail, t)
				}
				return e.ld(elems[t&mask]), true
			}
			e.st(tail, t+1)
			return syncPop()
		}
		syncPush := func(item int64) {
			lock()
			defer unlock()
			h := e.ld(head)
			count := e.ld(tail) - h
			h &= mask
			e.st(head, h)
			e.st(tail, h+count)
			if count >= mask {
				grown := make([]word, 2*(mask+1))
				for i := range grown {
					grown[i] = e.word(-1)
				}
				for i := range count {
					grown[i].store(e.ld(elems[(h+i)&mask]))
				}
				elems, mask = grown, int64(len(grown)-1)
				e.st(head, 0)
				e.st(tail, count)
			}
			t := e.ld(tail)
			e.st(elems[t&mask], item)
			e.st(tail, t+1)
		}
		push := func(item int64) {
			t := e.ld(tail)
			room := mask
			if variant == "push-overwrite" || variant == "push-overwrite-spin" {
				room = mask + 1
			}
			if t < e.ld(head)+room {
				e.st(elems[t&mask], item)
				e.st(tail, t+1)
				return
			}
			syncPush(item)
		}
		// elems and mask change only under the lock in syncPush, but the
		// stealer reads them under the lock too; the owner's lock-free reads
		// are its own writes.
		done := make(chan struct{})
		e.goes(func() {
			defer close(done)
			for range attempts {
				operate(steal())
			}
		})
		for i := range int64(items / 2) {
			push(2 * i)
			push(2*i + 1)
			operate(pop())
		}
		for range items / 2 {
			operate(pop())
		}
		<-done
		for i, f := range field {
			if v := f.load(); v != 1 {
				e.fail("item %d processed %d times", i, v)
			}
		}
	}
}

// The ConVul CVE programs (see model/sct/convul.go) in Go.
func cvePrograms() []program {
	return []program{
		{name: "cve-2009-3547:bug", run: func(e *env) {
			var iMutex sync.Mutex
			pipe := &block{}
			var ptr *block = pipe
			readers := e.word(1)
			e.goes(func() {
				iMutex.Lock()
				p := ptr
				e.touch(p, "pipe_rdwr_open")
				e.st(readers, e.ld(readers)+1)
				iMutex.Unlock()
			})
			e.goes(func() {
				time.Sleep(0)
				iMutex.Lock()
				n := e.ld(readers) - 1
				e.st(readers, n)
				if n == 0 {
					ptr = nil
					e.free(pipe, "pipe")
				}
				iMutex.Unlock()
			})
		}},
		{name: "cve-2016-7911:bug", run: func(e *env) {
			var taskLock sync.Mutex
			ioc := &block{}
			ptr := e.word(1)
			e.goes(func() {
				taskLock.Lock()
				e.st(ptr, 0)
				taskLock.Unlock()
				e.free(ioc, "io_context")
			})
			e.goes(func() {
				if e.ld(ptr) == 1 {
					e.yield()
					e.touch(ioc, "get_task_ioprio")
				}
			})
		}},
		{name: "cve-2017-15265:bug", run: func(e *env) {
			var ports sync.Mutex
			port := &block{}
			listed := e.word(0)
			e.goes(func() {
				ports.Lock()
				e.st(listed, 1)
				ports.Unlock()
				e.touch(port, "snd_seq_set_port_info")
			})
			e.goes(func() {
				ports.Lock()
				found := e.ld(listed) == 1
				if found {
					e.st(listed, 0)
				}
				ports.Unlock()
				if found {
					e.free(port, "port")
				}
			})
		}},
		{name: "cve-2015-7550:bug", run: func(e *env) {
			var sem sync.RWMutex
			revoked := e.word(0)
			payload := &block{}
			var ptr *block = payload
			e.goes(func() {
				sem.Lock()
				e.st(revoked, 1)
				ptr = nil
				e.free(payload, "payload")
				sem.Unlock()
			})
			e.goes(func() {
				if e.ld(revoked) == 1 {
					return
				}
				sem.RLock()
				e.touch(ptr, "keyctl_read_key")
				sem.RUnlock()
			})
		}},
		{name: "cve-2013-1792:bug", run: func(e *env) {
			var mu sync.Mutex
			uid, session := e.word(0), e.word(0)
			install := func() {
				if e.ld(uid) != 0 {
					if e.ld(session) == 0 {
						e.fail("session keyring NULL")
					}
					return
				}
				mu.Lock()
				if e.ld(uid) == 0 {
					e.st(uid, 1)
					e.st(session, 1)
				}
				mu.Unlock()
			}
			e.goes(install)
			e.goes(install)
		}},
	}
}
