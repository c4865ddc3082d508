package timeline

import (
	"bytes"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wqsim/wqsim/des"
	"github.com/wqsim/wqsim/kernel"
)

func TestFirstDifference(t *testing.T) {
	r := func(at des.Time, what string) des.Record {
		return des.Record{At: at, What: des.What(what), CPU: 0, IRQL: 0}
	}
	a := []des.Record{r(1, "x"), r(2, "y"), r(3, "z")}
	assert.Equal(t, -1, FirstDifference(a, a))
	assert.Equal(t, 1, FirstDifference(a, []des.Record{r(1, "x"), r(2, "w")}), "sub-kind differs")
	assert.Equal(t, 1, FirstDifference(a, []des.Record{r(1, "x"), r(5, "y")}), "time differs")
	assert.Equal(t, 2, FirstDifference(a, a[:2]), "one run is a prefix of the other")
	assert.Equal(t, 0, FirstDifference(nil, a))
}

func TestWriteExplain(t *testing.T) {
	recs, out := run(t, kernel.DefaultConfig(), demo)
	require.NoError(t, out.Err)
	failing := append([]des.Record(nil), recs[:10]...)
	failing = append(failing, des.Record{At: recs[9].At, What: "inject-yield", CPU: 0, IRQL: 0})
	e := &Explanation{
		Natural:       Run{Meta: Meta{Outcome: "ok"}, Records: recs},
		Failing:       Run{Meta: Meta{Outcome: "bug check 0x44"}, Records: failing},
		Perturbations: []Perturbation{{At: recs[9].At, Text: "decision 3: kernel: inject preemption → early quantum end"}},
		Context:       2,
	}
	var b bytes.Buffer
	require.NoError(t, WriteExplain(&b, e))
	s := b.String()
	assert.Contains(t, s, "both runs agree on their first 10 records")
	assert.Contains(t, s, "decision 3: kernel: inject preemption")
	assert.Contains(t, s, "failing  ")
	assert.Contains(t, s, "inject-yield")

	var h bytes.Buffer
	require.NoError(t, WriteExplainHTML(&h, e))
	assert.Contains(t, h.String(), `id="divergence"`)
	assert.Contains(t, h.String(), `id="perturbation-mark-1"`)
	assert.Contains(t, h.String(), "⚑ decision 3")
}

func TestElideKeepsNamesApart(t *testing.T) {
	assert.Equal(t, "app0", elide("app0", 8))
	assert.Equal(t, "critical.3", elide("worker.critical.3", 10), "a dotted name drops its first part")
	assert.Equal(t, "…ical.3", elide("worker.critical.3", 7), "a numbered name keeps its end")
	assert.NotEqual(t, elide("worker.critical.3", 5), elide("worker.critical.4", 5))
	assert.Equal(t, "cance…", elide("canceller", 6))
}

func TestThreadColorsStayDistinct(t *testing.T) {
	seen := map[string]int32{}
	for id := int32(1); id <= 40; id++ {
		c := threadColor(id)
		prev, dup := seen[c]
		assert.False(t, dup, "threads %d and %d share colour %s", prev, id, c)
		seen[c] = id
	}
}
