package sct

import (
	"github.com/wqsim/wqsim/kernel"
	"github.com/wqsim/wqsim/model"
)

// The small SV-COMP pthread programs of SCTBench
// (github.com/mc-imperial/sctbench, benchmarks/concurrent-software-benchmarks/).

const origin = "SCTBench (github.com/mc-imperial/sctbench) benchmarks/concurrent-software-benchmarks/"

func init() {
	model.Register(&model.Scenario{
		Name: "sct-account",
		Doc: "A deposit thread adds y to a balance and a withdraw thread takes z away, each under one mutex; " +
			"a checker thread created first asserts, once both are done, that the balance is x-y-z: the " +
			"assertion is wrong (it should be x+y-z), so the bug is any schedule where the checker runs last. " +
			"Origin: " + origin + "account_bad.c (fixed: account_ok.c).",
		Section: "SCTBench CS/account",
		Config:  oneCPU,
		Variants: []model.Variant{
			{Name: "correct", Doc: "account_ok.c: the checker asserts x+y-z"},
			{Name: "bug", Bug: true, Doc: "account_bad.c: the checker asserts x-y-z",
				Marks: []*model.Mark{markAccountCheckerRanAfter}, Want: "sct-account: balance"},
		},
		Setup: setupAccount,
	})
	model.Register(&model.Scenario{
		Name: "sct-carter01",
		Doc: "Two classes of threads share a lock l: the first of a class to enter takes l while holding " +
			"the entry mutex m, the last to leave releases it under m. A class-A thread that blocks on l " +
			"while holding m, with the class-B holder of l waiting for m to leave, deadlocks. " +
			"Origin: " + origin + "carter01_bad.c (no fixed form).",
		Section: "SCTBench CS/carter01",
		Config:  oneCPU,
		Variants: []model.Variant{
			{Name: "bug", Bug: true, Doc: "carter01_bad.c: lock l taken while holding m",
				Marks: []*model.Mark{markCarter01WaitsForL}, Want: "deadlock"},
		},
		Setup: setupCarter01,
	})
	model.Register(&model.Scenario{
		Name: "sct-deadlock01",
		Doc: "Two threads take two mutexes in opposite orders: the textbook lock-order deadlock. " +
			"Origin: " + origin + "deadlock01_bad.c (no fixed form).",
		Section: "SCTBench CS/deadlock01",
		Config:  oneCPU,
		Variants: []model.Variant{
			{Name: "bug", Bug: true, Doc: "deadlock01_bad.c: a then b against b then a",
				Marks: []*model.Mark{markDeadlock01SecondLockHeld}, Want: "deadlock"},
		},
		Setup: setupDeadlock01,
	})
	model.Register(&model.Scenario{
		Name: "sct-lazy01",
		Doc: "Two threads add 1 and 2 to a counter under a mutex; a third asserts, under the same mutex, " +
			"that the counter is below 3: it fails whenever it runs after both (also in the plain order, " +
			"as in the original). Origin: " + origin + "lazy01_bad.c (lazy01_ok.c drops the assertion: no fixed form to port).",
		Section: "SCTBench CS/lazy01",
		Config:  oneCPU,
		Variants: []model.Variant{
			{Name: "bug", Bug: true, Doc: "lazy01_bad.c",
				Marks: []*model.Mark{markLazy01CheckerRanAfter}, Want: "sct-lazy01: data"},
		},
		Setup: setupLazy01,
	})
	model.Register(&model.Scenario{
		Name: "sct-token_ring",
		Doc: "Three threads pass a token round a ring, each in an atomic block (x1 = (x3+1)%4, x2 = x1, " +
			"x3 = x2); a fourth asserts, once all three ran, that x1 = x2 = x3, which holds only when they " +
			"ran in ring order. Origin: " + origin + "token_ring_bad.c (no fixed form).",
		Section: "SCTBench CS/token_ring",
		Config:  oneCPU,
		Variants: []model.Variant{
			{Name: "bug", Bug: true, Doc: "token_ring_bad.c",
				Marks: []*model.Mark{markTokenRingRingStagesRan}, Want: "sct-token_ring: ring"},
		},
		Setup: setupTokenRing,
	})
	model.Register(&model.Scenario{
		Name: "sct-wronglock",
		Doc: "One thread increments a value under dataLock and checks that its increment was the only one; " +
			"N others increment it under a different lock (thisLock), so they can slip between its read and " +
			"its check. Size: N = 7 (wronglock_bad.c) or 3 (wronglock_3_bad.c). Origin: " + origin +
			"wronglock_bad.c, wronglock_3_bad.c (no fixed form; ours: every thread takes dataLock).",
		Section: "SCTBench CS/wronglock, CS/wronglock_3",
		Config:  oneCPU,
		Variants: append([]model.Variant{{Name: "correct", Doc: "ours: the N threads take dataLock too (N = 7)"}},
			sizeVariants([]int{3, 7}, "N = %d threads increment under the wrong lock",
				[]*model.Mark{markWronglockIncrementUnderThe}, "sct-wronglock: dataValue")...),
		Setup: setupWrongLock,
	})
}

func setupAccount(env *model.Env) error {
	p := newProg(env, "sct-account")
	m := p.newMutex("m")
	const x, y, z = 1, 2, 4
	balance := p.cell("balance", x)
	depositDone, withdrawDone := p.cell("deposit_done", 0), p.cell("withdraw_done", 0)
	p.spawn("check_result", func() {
		m.lock()
		if p.k.Read(depositDone) == 1 && p.k.Read(withdrawDone) == 1 {
			want := int64(x - y - z)
			if env.Is("correct") {
				want = x + y - z
			}
			got := p.k.Read(balance)
			p.check(got == want, markAccountCheckerRanAfter, "balance",
				"balance = %d after deposit and withdraw, the checker expects %d", got, want)
		}
		m.unlock()
	})
	p.spawn("deposit", func() {
		m.lock()
		p.k.Write(balance, p.k.Read(balance)+y)
		p.k.Write(depositDone, 1)
		m.unlock()
	})
	p.spawn("withdraw", func() {
		m.lock()
		p.k.Write(balance, p.k.Read(balance)-z)
		p.k.Write(withdrawDone, 1)
		m.unlock()
	})
	return nil
}

// carter01's class thread: enter (first takes l), operate, leave (last
// releases l), each step under m.
func carterClass(p *prog, m, l *mutex, count *kernel.Cell, held *bool) {
	m.lock()
	p.k.Write(count, p.k.Read(count)+1)
	if p.k.Read(count) == 1 {
		if *held {
			p.env.Hit(markCarter01WaitsForL)
		}
		l.lock()
		*held = true
	}
	m.unlock()
	m.lock()
	p.k.Write(count, p.k.Read(count)-1)
	if p.k.Read(count) == 0 {
		*held = false
		l.unlock()
	}
	m.unlock()
}

func setupCarter01(env *model.Env) error {
	p := newProg(env, "sct-carter01")
	m, l := p.newMutex("m"), p.newMutex("l")
	a, b := p.cell("A", 0), p.cell("B", 0)
	held := false // model-only: l is owned
	p.main(func() {
		ts := []*kernel.Thread{
			p.spawn("a1", func() { carterClass(p, m, l, a, &held) }),
			p.spawn("b1", func() { carterClass(p, m, l, b, &held) }),
			p.spawn("a2", func() {}),
			p.spawn("b2", func() {}),
		}
		p.join(ts...)
	})
	return nil
}

func setupDeadlock01(env *model.Env) error {
	p := newProg(env, "sct-deadlock01")
	a, b := p.newMutex("a"), p.newMutex("b")
	counter := p.cell("counter", 1)
	var owner [2]string // model-only: which thread holds a, b
	take := func(m *mutex, i int, me string) {
		if owner[i] != "" && owner[i] != me {
			env.Hit(markDeadlock01SecondLockHeld)
		}
		m.lock()
		owner[i] = me
	}
	give := func(m *mutex, i int) { owner[i] = ""; m.unlock() }
	p.main(func() {
		t1 := p.spawn("thread1", func() {
			take(a, 0, "thread1")
			take(b, 1, "thread1")
			p.k.InterlockedIncrement(counter)
			give(b, 1)
			give(a, 0)
		})
		t2 := p.spawn("thread2", func() {
			take(b, 1, "thread2")
			take(a, 0, "thread2")
			p.k.InterlockedDecrement(counter)
			give(a, 0)
			give(b, 1)
		})
		p.join(t1, t2)
	})
	return nil
}

func setupLazy01(env *model.Env) error {
	p := newProg(env, "sct-lazy01")
	m := p.newMutex("mutex")
	data := p.cell("data", 0)
	add := func(d int64) func() {
		return func() {
			m.lock()
			p.k.Write(data, p.k.Read(data)+d)
			m.unlock()
		}
	}
	p.main(func() {
		t1 := p.spawn("thread1", add(1))
		t2 := p.spawn("thread2", add(2))
		t3 := p.spawn("thread3", func() {
			m.lock()
			v := p.k.Read(data)
			p.check(v < 3, markLazy01CheckerRanAfter, "data", "data = %d when the checker ran (asserts < 3)", v)
			m.unlock()
		})
		p.join(t1, t2, t3)
	})
	return nil
}

func setupTokenRing(env *model.Env) error {
	p := newProg(env, "sct-token_ring")
	at := p.newAtomic()
	x1, x2, x3 := p.cell("x1", 1), p.cell("x2", 2), p.cell("x3", 1)
	f1, f2, f3 := p.cell("flag1", 0), p.cell("flag2", 0), p.cell("flag3", 0)
	stage := func(dst *kernel.Cell, flag *kernel.Cell, f func() int64) func() {
		return func() {
			at.begin()
			p.k.Write(dst, f())
			p.k.Write(flag, 1)
			at.end()
		}
	}
	p.spawn("t1", stage(x1, f1, func() int64 { return (p.k.Read(x3) + 1) % 4 }))
	p.spawn("t2", stage(x2, f2, func() int64 { return p.k.Read(x1) }))
	p.spawn("t3", stage(x3, f3, func() int64 { return p.k.Read(x2) }))
	p.spawn("t4", func() {
		at.begin()
		if p.k.Read(f1) == 1 && p.k.Read(f2) == 1 && p.k.Read(f3) == 1 {
			v1, v2, v3 := p.k.Read(x1), p.k.Read(x2), p.k.Read(x3)
			p.check(v1 == v2 && v2 == v3, markTokenRingRingStagesRan, "ring",
				"x1, x2, x3 = %d, %d, %d after all three stages (assert all equal)", v1, v2, v3)
		}
		at.end()
	})
	return nil
}

func setupWrongLock(env *model.Env) error {
	p := newProg(env, "sct-wronglock")
	n := 7
	if !env.Is("correct") {
		n = sizeOf(env.Variant)
	}
	dataLock, thisLock := p.newMutex("dataLock"), p.newMutex("thisLock")
	if env.Is("correct") {
		thisLock = dataLock
	}
	value := p.cell("dataValue", 0)
	inWindow := false // model-only: funcA is between its read and its check
	p.main(func() {
		ts := []*kernel.Thread{p.spawn("funcA", func() {
			dataLock.lock()
			x := p.k.Read(value)
			inWindow = true
			p.k.Write(value, p.k.Read(value)+1)
			got := p.k.Read(value)
			inWindow = false
			p.check(got == x+1, markWronglockIncrementUnderThe, "dataValue",
				"dataValue = %d after one increment of %d", got, x)
			dataLock.unlock()
		})}
		for i := range n {
			ts = append(ts, p.spawn("funcB"+itoa(i), func() {
				thisLock.lock()
				if inWindow {
					env.Hit(markWronglockIncrementUnderThe)
				}
				p.k.Write(value, p.k.Read(value)+1)
				thisLock.unlock()
			}))
		}
		p.join(ts...)
	})
	return nil
}
