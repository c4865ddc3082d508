package proptest

import (
	"slices"

	"github.com/wqsim/wqsim/model"
)

// coverage collects what one worker's executions reached: each
// execution's trace hash (its schedule fingerprint) and, per mark, the
// lowest execution index that hit it. Indexes are kept so that a parallel
// run can count exactly the executions a serial run would have run.
type coverage struct {
	hashes    []execHash
	marks     map[string]int
	sometimes []string
}

type execHash struct {
	exec int
	hash uint64
}

func newCoverage() *coverage { return &coverage{marks: map[string]int{}} }

func (c *coverage) add(i int, r model.Result) {
	c.hashes = append(c.hashes, execHash{i, r.Outcome.Hash})
	for _, m := range r.Marks {
		if first, ok := c.marks[m]; !ok || i < first {
			c.marks[m] = i
		}
	}
	for _, m := range r.Sometimes {
		if !slices.Contains(c.sometimes, m) {
			c.sometimes = append(c.sometimes, m)
		}
	}
}

// fill sets the report's coverage from the workers' collections, counting
// only executions with index < upTo.
func fillCoverage(rep *Report, upTo int, parts ...*coverage) {
	seen := map[uint64]bool{}
	reached := map[string]bool{}
	var declared []string
	for _, c := range parts {
		for _, h := range c.hashes {
			if h.exec < upTo {
				seen[h.hash] = true
			}
		}
		for m, first := range c.marks {
			if first < upTo {
				reached[m] = true
			}
		}
		for _, m := range c.sometimes {
			if !slices.Contains(declared, m) {
				declared = append(declared, m)
			}
		}
	}
	rep.Fingerprints = len(seen)
	rep.Missed = nil
	for _, m := range declared {
		if !reached[m] {
			rep.Missed = append(rep.Missed, m)
		}
	}
	slices.Sort(rep.Missed)
}
