package timeline

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wqsim/wqsim/des"
	"github.com/wqsim/wqsim/kernel"
)

func writeHTML(t *testing.T, recs []des.Record, meta Meta) string {
	t.Helper()
	var b bytes.Buffer
	require.NoError(t, WriteHTML(&b, recs, meta))
	return b.String()
}

// svgPart returns the page's one chart, <svg class="timeline">…</svg>.
func svgPart(t *testing.T, page string) string {
	t.Helper()
	return svgOfClass(t, page, "timeline")
}

// svgOfClass returns the page's one <svg> of class class.
func svgOfClass(t *testing.T, page, class string) string {
	t.Helper()
	open := `<svg xmlns="http://www.w3.org/2000/svg" class="` + class + `"`
	require.Equal(t, 1, strings.Count(page, open), "the page has one SVG of class %q", class)
	i := strings.Index(page, open)
	j := strings.Index(page[i:], "</svg>")
	require.True(t, j > 0)
	return page[i : i+j+len("</svg>")]
}

// svgStats parses the SVG strictly and returns the ids of its lanes in
// order and the number of elements of each name.
func svgStats(t *testing.T, svg string) (lanes []string, elems map[string]int) {
	t.Helper()
	dec := xml.NewDecoder(strings.NewReader(svg))
	dec.Strict = true
	elems = map[string]int{}
	depth := 0
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			break
		}
		require.NoError(t, err, "SVG is not well-formed XML")
		switch e := tok.(type) {
		case xml.StartElement:
			depth++
			elems[e.Name.Local]++
			if e.Name.Local == "svg" {
				assert.Equal(t, "http://www.w3.org/2000/svg", e.Name.Space)
			}
			var class, id string
			for _, a := range e.Attr {
				switch a.Name.Local {
				case "class":
					class = a.Value
				case "id":
					id = a.Value
				}
			}
			if e.Name.Local == "g" && class == "lane" {
				lanes = append(lanes, id)
			}
		case xml.EndElement:
			depth--
		}
	}
	assert.Zero(t, depth, "unbalanced elements")
	return lanes, elems
}

func laneIDs(n int) []string {
	var ids []string
	for c := 0; c < n; c++ {
		ids = append(ids, "lane-cpu"+strconv.Itoa(c))
	}
	return ids
}

// checkOffline fails if the page would load anything: every URL in it is
// the SVG namespace or a fragment.
func checkOffline(t *testing.T, page string) {
	t.Helper()
	for _, m := range regexp.MustCompile(`(?i)(https?:|//[a-z0-9.-]+\.[a-z]{2,}/|src=|href=|@import|url\()[^"' )]*`).FindAllString(page, -1) {
		switch {
		case m == "http://www.w3.org/2000/svg":
		case strings.HasPrefix(m, "url(#"):
		default:
			t.Errorf("page refers to something outside itself: %q", m)
		}
	}
	assert.NotContains(t, page, "<link")
	assert.NotContains(t, page, "<img")
	assert.NotContains(t, page, "<iframe")
}

func TestHTMLDemo(t *testing.T) {
	recs, out := run(t, demoConfig(), demo)
	page := writeHTML(t, recs, metaFor("demo", out))
	lanes, elems := svgStats(t, svgPart(t, page))
	assert.Equal(t, laneIDs(2), lanes, "one lane per processor, in order")
	for _, id := range laneIDs(2) {
		assert.Equal(t, 1, strings.Count(page, `id="`+id+`"`))
	}
	assert.Contains(t, page, "<title>wqsim timeline — demo</title>")
	assert.Contains(t, page, "seed <b>7</b>")
	assert.Contains(t, page, `<div class="outcome ok"><span class="k">outcome</span> ok</div>`)
	assert.Contains(t, page, "76 records")
	checkOffline(t, page)
	// Thread slices, labelled; DPC, ISR, spins, IRQL, markers, one flow arrow.
	for _, s := range []string{">pinger</text>", ">ponger</text>", ">locker</text>", ">worker</text>",
		`class="threads"`, `class="contexts"`, `class="spins"`, `class="irql"`, `class="markers"`, `class="axis"`,
		"url(#hatch)", "#7b52ab", "#c0392b", "irp 1 (read)", "workitem log: queued 38.4 µs, runs 40.6 µs (after 2.2 µs)"} {
		assert.Contains(t, page, s)
	}
	assert.Equal(t, 1, strings.Count(page, `marker-end="url(#arrowhead)"`), "one work-item arrow")
	assert.Positive(t, elems["rect"])
	assert.Equal(t, 2, strings.Count(page, `class="irql"`))
	// Legend: every thread that ran, and the key.
	for _, s := range []string{"pinger</span>", "ponger</span>", "locker</span>", "worker</span>", "bug check</span>", "IRP</span>"} {
		assert.Contains(t, page, s)
	}
	assert.NotContains(t, page, `id="downsampled"`, "nothing merged in a short run")
	assert.NotContains(t, page, `class="bugchecks"><line`, "no bug check")
	// The script only reads the page: no fetches, no timers, no document.write.
	for _, s := range []string{"fetch(", "XMLHttpRequest", "setTimeout", "setInterval", "document.write", "import("} {
		assert.NotContains(t, page, s)
	}
}

func TestHTMLBugCheck(t *testing.T) {
	recs, out := run(t, demoConfig(), demoBug)
	page := writeHTML(t, recs, metaFor("demo-bug", out))
	lanes, _ := svgStats(t, svgPart(t, page))
	assert.Equal(t, laneIDs(2), lanes)
	assert.Contains(t, page, `<div class="outcome bad">`)
	assert.Contains(t, page, "MULTIPLE_IRP_COMPLETE_REQUESTS")
	assert.Contains(t, page, "BUGCHECK MULTIPLE_IRP_COMPLETE_REQUESTS (0x44)")
	assert.Contains(t, page, "(still running)", "threads cut by the bug check say so")
}

func TestHTMLLargeRunIsDownsampled(t *testing.T) {
	recs, out := run(t, kernel.DefaultConfig(), busy(1000))
	require.Greater(t, len(recs), 10_000)
	page := writeHTML(t, recs, metaFor("busy", out))
	lanes, elems := svgStats(t, svgPart(t, page))
	assert.Equal(t, laneIDs(2), lanes)
	assert.Contains(t, page, `id="downsampled"`, "a visible note says what was merged")
	assert.Contains(t, page, "Downsampled: ")
	assert.Less(t, len(page), 1_500_000, "page size stays bounded")
	total := 0
	for _, n := range elems {
		total += n
	}
	assert.Less(t, total, 15_000, "SVG elements stay bounded")
	checkOffline(t, page)
}

func TestHTMLManyProcessorsAndNoCPU(t *testing.T) {
	cfg := kernel.DefaultConfig()
	cfg.Processors = 4
	recs, out := run(t, cfg, busy(100))
	recs = append(recs, des.Record{At: out.End, CPU: -1, IRQL: -1, Kind: kernel.KindCall, What: "ExQueueWorkItem", Object: "late"})
	meta := metaFor("busy4", out)
	meta.CPUs = 6 // two processors that never ran anything still get lanes
	page := writeHTML(t, recs, meta)
	lanes, _ := svgStats(t, svgPart(t, page))
	assert.Equal(t, laneIDs(6), lanes)
	assert.Contains(t, page, `id="lane-nocpu"`)
}

func TestHTMLEscapesNames(t *testing.T) {
	recs := []des.Record{
		{At: 0, CPU: 0, IRQL: 0, Thread: 1, Kind: kernel.KindSwitch, What: "dispatch", Actor: `a<b>&"c'`, Object: `a<b>&"c'`},
		{At: 3000, CPU: 0, IRQL: 0, Thread: 1, Kind: kernel.KindIRP, What: "IoCompleteRequest", Object: "irp </svg><script>x</script>\x01"},
		{At: 9000, CPU: 0, IRQL: 0, Thread: 1, Kind: kernel.KindThread, What: "exit", Object: `a<b>&"c'`},
	}
	page := writeHTML(t, recs, Meta{Scenario: "<script>alert(1)</script>", Outcome: "bad & worse"})
	svgStats(t, svgPart(t, page))
	assert.NotContains(t, page, "<script>alert")
	assert.NotContains(t, page, "<script>x")
	assert.Contains(t, page, "bad &amp; worse")
	assert.Equal(t, 1, strings.Count(page, "<script>"), "only the page's own script")
}

func TestHTMLEmpty(t *testing.T) {
	page := writeHTML(t, nil, Meta{})
	lanes, _ := svgStats(t, svgPart(t, page))
	assert.Equal(t, laneIDs(1), lanes)
	assert.Contains(t, page, "outcome</span> unknown")
}

func TestFmtTime(t *testing.T) {
	for ns, want := range map[int64]string{
		0: "0", 1: "1 ns", 999: "999 ns", 1000: "1 µs", 2200: "2.2 µs", 62800: "62.8 µs",
		1_500_000: "1.5 ms", 9_856_800: "9.8568 ms", 2_000_000_000: "2 s", 1_000_000_001: "1.000000001 s", -2200: "-2.2 µs",
	} {
		assert.Equal(t, want, fmtTime(ns), "%d ns", ns)
	}
	for raw, want := range map[float64]int64{0.3: 1, 1: 1, 7: 10, 11: 20, 30: 50, 6280: 10000, 985680: 1000000} {
		assert.Equal(t, want, niceStep(raw), "%v", raw)
	}
}

func TestHTMLCompressesLongIdleGaps(t *testing.T) {
	recs, out := run(t, kernel.DefaultConfig(), lateTimer)
	require.NoError(t, out.Err)
	page := writeHTML(t, recs, metaFor("late timer", out))
	svgStats(t, svgPart(t, page))
	assert.Contains(t, page, ">+1 s</text>", "the break says how long the gap is")
	assert.Contains(t, page, "not to scale")

	m := buildModel(recs, 2, out.End)
	p := &plot{m: m, placed: map[int][2]float64{}}
	p.layout()
	require.Len(t, p.segs, 3, "work, break, timer DPC")
	assert.True(t, p.segs[1].gap)
	assert.Equal(t, breakWidth, p.segs[1].x1-p.segs[1].x0)
	assert.InDelta(t, gutter+plotWidth, p.segs[2].x1, 1e-9, "the axis still spans the plot")
	// The work before the gap gets most of the width, to scale.
	assert.Greater(t, p.segs[0].x1-p.segs[0].x0, plotWidth/2)
	for i := 1; i < len(p.segs); i++ {
		assert.Equal(t, p.segs[i-1].t1, p.segs[i].t0, "segments are contiguous")
		assert.Equal(t, p.segs[i-1].x1, p.segs[i].x0)
	}
	// x is monotonic over the whole run.
	prev := -1.0
	for at := m.start; at <= m.end; at += (m.end - m.start) / 997 {
		x := p.x(at)
		require.GreaterOrEqual(t, x, prev)
		prev = x
	}
	assert.Equal(t, gutter, p.x(m.start))
	assert.InDelta(t, gutter+plotWidth, p.x(m.end), 1e-9)
}

func TestHTMLKeepsShortIdleToScale(t *testing.T) {
	recs, out := run(t, demoConfig(), demo)
	m := buildModel(recs, 2, out.End)
	p := &plot{m: m, placed: map[int][2]float64{}}
	p.layout()
	require.Len(t, p.segs, 1, "idle stretches shorter than the rest are shown as they are")
	assert.False(t, p.segs[0].gap)
	page := writeHTML(t, recs, metaFor("demo", out))
	assert.NotContains(t, page, "not to scale")
}

// TestHTMLOverviewCompressesIdle draws a run that works for a few
// microseconds, idles a second and runs a timer DPC: the overview strip
// shows both bursts of work, the second of idle as one compressed break,
// and its knots map strip, chart and time monotonically over the whole
// plot width.
func TestHTMLOverviewCompressesIdle(t *testing.T) {
	recs, out := run(t, kernel.DefaultConfig(), lateTimer)
	require.NoError(t, out.Err)
	page := writeHTML(t, recs, metaFor("late timer", out))
	checkOffline(t, page)
	ov := svgOfClass(t, page, "overview")
	_, elems := svgStats(t, ov)
	assert.Equal(t, 1, strings.Count(ov, `class="ov-idle"`), "the long idle stretch is one break")
	assert.Contains(t, ov, "idle ", "the break says how long it is")
	assert.Contains(t, ov, `class="ov-view"`, "a window shows the chart's visible range")
	assert.Greater(t, elems["rect"], 4, "busy spans of both processors")
	assert.Less(t, strings.Index(page, `class="overview"`), strings.Index(page, `class="timeline"`), "the strip is above the chart")

	m := buildModel(recs, 2, out.End)
	p := &plot{m: m, placed: map[int][2]float64{}}
	p.layout()
	segs := p.overviewSegments()
	var gaps []segment
	for _, s := range segs {
		if s.gap {
			gaps = append(gaps, s)
		}
	}
	require.Len(t, gaps, 1)
	assert.Greater(t, gaps[0].t1-gaps[0].t0, 990*des.Millisecond)
	assert.Equal(t, ovIdleW, gaps[0].x1-gaps[0].x0)
	assert.InDelta(t, gutter+plotWidth, segs[len(segs)-1].x1, 1e-9)
	// The work before the gap is to scale and gets most of the width.
	assert.Greater(t, segs[0].x1-segs[0].x0, plotWidth/2)

	var prevT, prevO, prevC float64 = -1, -1, -1
	knots := strings.Split(regexp.MustCompile(`data-knots="([^"]*)"`).FindStringSubmatch(ov)[1], " ")
	require.GreaterOrEqual(t, len(knots), 4)
	for _, k := range knots {
		var tt, o, c float64
		_, err := fmt.Sscanf(k, "%g,%g,%g", &tt, &o, &c)
		require.NoError(t, err, k)
		assert.Greater(t, tt, prevT)
		assert.GreaterOrEqual(t, o, prevO)
		assert.GreaterOrEqual(t, c, prevC)
		prevT, prevO, prevC = tt, o, c
	}
	assert.Equal(t, float64(m.end), prevT)
	assert.InDelta(t, gutter+plotWidth, prevO, 0.1)
	assert.InDelta(t, gutter+plotWidth, prevC, 0.1)
}

// TestHTMLOverviewKeepsShortIdle: a run with short idle stretches only is
// drawn to scale in the strip too.
func TestHTMLOverviewKeepsShortIdle(t *testing.T) {
	recs, out := run(t, demoConfig(), demo)
	page := writeHTML(t, recs, metaFor("demo", out))
	assert.NotContains(t, svgOfClass(t, page, "overview"), `class="ov-idle"`)
}
