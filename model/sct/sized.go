package sct

import (
	"github.com/wqsim/wqsim/kernel"
	"github.com/wqsim/wqsim/model"
)

// reorder_N and twostage_N: one racy window, hidden among N threads. The
// bigger N, the rarer a uniformly random schedule hits it (the published
// tools' figures fall off with N), while the window itself needs one
// preemption.

func init() {
	model.Register(&model.Scenario{
		Name: "sct-reorder",
		Doc: "Setter threads write a = 1, then b = -1; checker threads assert (a, b) is (0, 0) or (1, -1). " +
			"A checker that reads between a setter's two writes, or a setter's writes between its two " +
			"reads, sees a mixed pair. Size N threads: N-1 setters and one checker for N ≤ 10 (as reorder_3/4/5/10_bad.c), " +
			"N/2 of each for N ≥ 20 (as reorder_20_bad.c; assumed for the 50 and 100 of the SURW/RFF evaluations). " +
			"Origin: " + origin + "reorder_N_bad.c (no fixed form).",
		Section: "SCTBench CS/reorder_N",
		Config:  oneCPU,
		Variants: sizeVariants([]int{3, 4, 5, 10, 20, 50, 100}, "reorder_%d",
			[]*model.Mark{markReorderCheckerSawA}, "sct-reorder: mixed"),
		Setup: setupReorder,
	})
	model.Register(&model.Scenario{
		Name: "sct-twostage",
		Doc: "Writer threads set data1 = 1 under one lock, then data2 = data1+1 under another; a reader " +
			"that reads data1 (1) after a writer's first stage and data2 (still 0) before any second stage " +
			"fails its assertion data2 = data1+1. Size N threads: N-1 writers and one reader (twostage_bad.c is " +
			"N = 2, twostage_100_bad.c N = 100). Origin: " + origin + "twostage_bad.c, twostage_100_bad.c " +
			"(no fixed form; ours: one lock over both stages, N = 3).",
		Section: "SCTBench CS/twostage_N",
		Config:  oneCPU,
		Variants: append([]model.Variant{{Name: "correct", Doc: "ours: each writer holds one lock over both stages (N = 3)"}},
			sizeVariants([]int{2, 3, 5, 10, 20, 50, 100}, "twostage_%d",
				[]*model.Mark{markTwostageReaderBetweenThe}, "sct-twostage: data2")...),
		Setup: setupTwoStage,
	})
}

func setupReorder(env *model.Env) error {
	p := newProg(env, "sct-reorder")
	n := sizeOf(env.Variant)
	setters, checkers := n-1, 1
	if n >= 20 {
		setters, checkers = n/2, n/2
	}
	a, b := p.cell("a", 0), p.cell("b", 0)
	p.main(func() {
		var ts []*kernel.Thread
		for i := range setters {
			ts = append(ts, p.spawn("setThread"+itoa(i), func() {
				p.k.Write(a, 1)
				p.k.Write(b, -1)
			}))
		}
		for i := range checkers {
			ts = append(ts, p.spawn("checkThread"+itoa(i), func() {
				va := p.k.Read(a)
				vb := p.k.Read(b)
				p.check((va == 0 && vb == 0) || (va == 1 && vb == -1), markReorderCheckerSawA, "mixed",
					"checker read a = %d, b = %d", va, vb)
			}))
		}
		p.join(ts...)
	})
	return nil
}

func setupTwoStage(env *model.Env) error {
	p := newProg(env, "sct-twostage")
	n := 3
	if !env.Is("correct") {
		n = sizeOf(env.Variant)
	}
	lock1, lock2 := p.newMutex("data1Lock"), p.newMutex("data2Lock")
	d1, d2 := p.cell("data1Value", 0), p.cell("data2Value", 0)
	p.main(func() {
		var ts []*kernel.Thread
		for i := range n - 1 {
			ts = append(ts, p.spawn("funcA"+itoa(i), func() {
				if env.Is("correct") {
					lock1.lock()
					p.k.Write(d1, 1)
					p.k.Write(d2, p.k.Read(d1)+1)
					lock1.unlock()
					return
				}
				lock1.lock()
				p.k.Write(d1, 1)
				lock1.unlock()
				lock2.lock()
				p.k.Write(d2, p.k.Read(d1)+1)
				lock2.unlock()
			}))
		}
		if env.Is("correct") {
			lock2 = lock1
		}
		ts = append(ts, p.spawn("funcB", func() {
			lock1.lock()
			if p.k.Read(d1) == 0 {
				lock1.unlock()
				return
			}
			t1 := p.k.Read(d1)
			lock1.unlock()
			lock2.lock()
			t2 := p.k.Read(d2)
			lock2.unlock()
			p.check(t2 == t1+1, markTwostageReaderBetweenThe, "data2",
				"read data1 = %d, then data2 = %d (want data1+1)", t1, t2)
		}))
		p.join(ts...)
	})
	return nil
}
