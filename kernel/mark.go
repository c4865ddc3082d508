package kernel

// Mark is a coverage mark: a named path through driver or library code (a
// cancel that raced an insert, a work item freed while queued) that tests
// and exploration want to see reached. It is the one mark type of every
// layer: the cancel-safe queue library (queues.CsqMark...), the filter
// manager (fltmgr.Mark...) and scenarios (model.NewMark) all declare theirs
// with NewMark, once, as package-level variables, and refer to them by
// variable, so each text is written once.
type Mark struct{ text string }

// NewMark declares a mark. text is what traces, results and fail files
// show; it should name its owner first ("csq: remove lost to cancel").
func NewMark(text string) *Mark {
	if text == "" {
		panic("kernel: NewMark needs a text")
	}
	return &Mark{text: text}
}

// String returns the mark's text.
func (m *Mark) String() string { return m.text }

// MarkCounts counts hits per mark, in first-hit order. The zero value is
// ready to use. It allocates only when a mark is hit for the first time.
type MarkCounts struct {
	marks []*Mark
	n     []int
}

// Add counts one hit of m.
func (c *MarkCounts) Add(m *Mark) {
	for i, x := range c.marks {
		if x == m {
			c.n[i]++
			return
		}
	}
	c.marks = append(c.marks, m)
	c.n = append(c.n, 1)
}

// Reset forgets every hit but keeps the storage, for a counter recycled
// into a new run (kernel/recycle.go): the slice an earlier Marks returned is
// then overwritten.
func (c *MarkCounts) Reset() { c.marks, c.n = c.marks[:0], c.n[:0] }

// Count returns how often m was hit.
func (c *MarkCounts) Count(m *Mark) int {
	for i, x := range c.marks {
		if x == m {
			return c.n[i]
		}
	}
	return 0
}

// Marks returns the marks hit at least once, in first-hit order. The
// slice is the counter's own: do not modify it.
func (c *MarkCounts) Marks() []*Mark { return c.marks }
