package lab

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
)

func TestMeanInterval(t *testing.T) {
	assert.Equal(t, Interval{}, meanInterval(nil))
	one := meanInterval([]float64{5})
	assert.Equal(t, 5.0, one.Mean)
	assert.Zero(t, one.Half, "one seed: no interval")
	// mean 2, sample sd 1, n 3: 4.303 × 1/√3
	i := meanInterval([]float64{1, 2, 3})
	assert.InDelta(t, 2.0, i.Mean, 1e-12)
	assert.InDelta(t, 4.303/1.7320508, i.Half, 1e-6)
	assert.Less(t, i.Lo(), 2.0)
	assert.Greater(t, i.Hi(), 2.0)
}

func TestShortNumKeepsSmallValues(t *testing.T) {
	assert.Equal(t, "0.0045", shortNum(0.0045), "a tiny bar is not labelled 0.00")
	assert.Equal(t, "0", shortNum(0))
	assert.Equal(t, "33.2", shortNum(33.2))
	assert.Equal(t, "14.5k", shortNum(14_500))
}

// Values over more than two decades get a log axis, and bars, intervals
// and labels then draw without a non-positive value (gonum panics on one).
func TestBarsLogAxisWhenDecadesApart(t *testing.T) {
	assert.True(t, spansDecades(plotter.Values{33, 14500, 0}))
	assert.False(t, spansDecades(plotter.Values{33, 1000}))
	rows := []CellResult{{Policy: "a"}, {Policy: "b"}, {Policy: "c"}}
	vals := []float64{33, 14500, 0}
	for i := range rows {
		rows[i].Lat.P99 = vals[i] * 1000 // ns
		rows[i].CI.LatP99us = Interval{Mean: vals[i], Half: vals[i] * 2, N: 3}
	}
	p, err := barPlot("w", barPanels()[0], rows, []string{"a", "b", "c"}, 3)
	assert.NoError(t, err)
	_, isLog := p.Y.Scale.(plot.LogScale)
	assert.True(t, isLog)
	assert.Contains(t, p.Title.Text, "95% t-interval")
	fig := tiledFigure([][]*plot.Plot{{p, p}, {p, p}})
	_, _, err = fig.render()
	assert.NoError(t, err, "renders without a non-positive value on the log axis")
}
