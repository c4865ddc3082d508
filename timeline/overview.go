package timeline

import (
	"cmp"
	"slices"
	"strconv"
	"strings"

	"github.com/wqsim/wqsim/des"
)

// Overview strip layout, in SVG user units. The strip spans the same
// plot width as the chart below it.
const (
	ovTop       = 3.0
	ovRowsH     = 42.0 // all processor rows together, at most
	ovMaxRowH   = 9.0
	ovIdleW     = 10.0 // a compressed idle stretch
	ovIdleShare = 0.25 // compressed stretches take at most this share of the width
)

// overviewSegments lays out the strip's time axis: the whole run, with
// every idle stretch (no thread running and no DPC or ISR context on any
// processor) that would be wider than ovIdleW drawn ovIdleW wide instead,
// longest first, as long as the compressed stretches take at most
// ovIdleShare of the width. The busy time gets the rest, to scale, so a
// long run that is mostly waiting still shows where its work is.
func (p *plot) overviewSegments() []segment {
	m := p.m
	start, end := m.start, max(m.end, m.start+1000)
	idle := idleStretches(m, start, end)
	slices.SortStableFunc(idle, func(a, b [2]des.Time) int { return cmp.Compare(b[1]-b[0], a[1]-a[0]) })
	shown := end - start
	var cut [][2]des.Time
	for _, g := range idle {
		d := g[1] - g[0]
		n := float64(len(cut) + 1)
		if n*ovIdleW > ovIdleShare*plotWidth || shown-d <= 0 {
			break
		}
		if float64(d)*(plotWidth-n*ovIdleW)/float64(shown-d) <= ovIdleW {
			break // to scale it would be no wider than compressed
		}
		cut = append(cut, g)
		shown -= d
	}
	slices.SortFunc(cut, func(a, b [2]des.Time) int { return cmp.Compare(a[0], b[0]) })
	scale := (plotWidth - ovIdleW*float64(len(cut))) / float64(shown)
	var segs []segment
	x, t := gutter, start
	add := func(t1 des.Time, gap bool) {
		w := ovIdleW
		if !gap {
			w = float64(t1-t) * scale
		}
		segs = append(segs, segment{t0: t, t1: t1, x0: x, x1: x + w, gap: gap})
		x, t = x+w, t1
	}
	for _, g := range cut {
		if g[0] > t {
			add(g[0], false)
		}
		add(g[1], true)
	}
	if end > t || len(segs) == 0 {
		add(end, false)
	}
	return segs
}

// idleStretches returns the stretches of [start, end] in which no
// processor runs a thread, a DPC drain or an ISR, in time order.
func idleStretches(m *model, start, end des.Time) [][2]des.Time {
	busy := busySpans(m, -1)
	var out [][2]des.Time
	last := start
	for _, b := range busy {
		if b[0] > last {
			out = append(out, [2]des.Time{last, b[0]})
		}
		last = max(last, b[1])
	}
	if end > last {
		out = append(out, [2]des.Time{last, end})
	}
	return out
}

// busySpans returns the merged spans in which processor cpu (-1: any)
// runs a thread, a DPC drain or an ISR, in time order.
func busySpans(m *model, cpu int) [][2]des.Time {
	var spans [][2]des.Time
	for _, s := range m.slices {
		if (cpu < 0 || s.cpu == cpu) && (s.kind == sliceThread || s.kind == sliceDPC || s.kind == sliceISR) {
			spans = append(spans, [2]des.Time{s.start, s.end})
		}
	}
	slices.SortFunc(spans, func(a, b [2]des.Time) int { return cmp.Compare(a[0], b[0]) })
	var out [][2]des.Time
	for _, s := range spans {
		if n := len(out); n > 0 && s[0] <= out[n-1][1] {
			out[n-1][1] = max(out[n-1][1], s[1])
			continue
		}
		out = append(out, s)
	}
	return out
}

// segX maps t through segs (as plot.x does through the chart's).
func segX(segs []segment, t des.Time) float64 {
	i, _ := slices.BinarySearchFunc(segs, t, func(s segment, t des.Time) int { return cmp.Compare(s.t1, t) })
	if i == len(segs) {
		i--
	}
	s := segs[i]
	if t <= s.t0 || s.t1 == s.t0 {
		return s.x0
	}
	return s.x0 + float64(t-s.t0)/float64(s.t1-s.t0)*(s.x1-s.x0)
}

// overview writes the strip above the chart: per processor, when it was
// busy (threads grey-blue, DPC and ISR contexts purple), compressed idle
// stretches as grey breaks, the bug check and perturbations as lines, and
// a window showing the chart's visible range. Its data-knots attribute
// ("t,ox,cx" triples) maps between run time, strip x and chart x; both
// axes are linear between knots. The page's script moves the window as
// the chart zooms and pans, and a click on the strip centres the chart
// there, a drag across it shows the dragged range, and a drag of the
// window pans.
func (p *plot) overview() {
	m := p.m
	segs := p.overviewSegments()
	rowH := min(ovMaxRowH, ovRowsH/float64(m.cpus))
	h := ovTop + rowH*float64(m.cpus) + 12
	p.ws(`<svg xmlns="http://www.w3.org/2000/svg" class="overview" width="`, f(svgWidth), `" height="`, f(h), `" viewBox="0 0 `, f(svgWidth), " ", f(h),
		`" role="img" aria-label="overview of the whole run: click or drag to navigate" data-knots="`, p.knots(segs), `">`, "\n")
	p.ws(`<text x="`, f(gutter-8), `" y="`, f(ovTop+rowH*float64(m.cpus)/2+4), `" font-size="11" fill="#4a5263" text-anchor="end">overview</text>`, "\n")
	p.ws(`<rect class="ov-bg" x="`, f(gutter), `" y="`, f(ovTop), `" width="`, f(plotWidth), `" height="`, f(rowH*float64(m.cpus)), `" fill="#f6f7f9"/>`, "\n")
	for c := 0; c < m.cpus; c++ {
		y := ovTop + rowH*float64(c)
		p.ovSpans(segs, busySpans(m, c), y, rowH-1, "#8fa7c8")
		p.ovSpans(segs, dpcSpans(m, c), y+(rowH-1)/2, (rowH-1)/2, "#7b52ab")
	}
	for _, sg := range segs {
		if sg.gap {
			p.ws(`<rect class="ov-idle" x="`, f(sg.x0+1), `" y="`, f(ovTop), `" width="`, f(sg.x1-sg.x0-2), `" height="`, f(rowH*float64(m.cpus)),
				`" fill="#dfe2e7"><title>`, esc("idle "+fmtSpan(sg.t0, sg.t1)+", compressed"), "</title></rect>\n")
		}
	}
	y1 := ovTop + rowH*float64(m.cpus)
	for _, in := range m.instants {
		if in.cat == "bugcheck" {
			x := segX(segs, in.at)
			p.ws(`<line x1="`, f(x), `" y1="`, f(ovTop), `" x2="`, f(x), `" y2="`, f(y1), `" stroke="#d62728" stroke-width="2"/>`, "\n")
		}
	}
	for _, pt := range p.meta.Perturbations {
		x := segX(segs, pt.At)
		p.ws(`<line x1="`, f(x), `" y1="`, f(ovTop), `" x2="`, f(x), `" y2="`, f(y1), `" stroke="#e67e22" stroke-width="1.5"/>`, "\n")
	}
	p.ws(`<text x="`, f(gutter), `" y="`, f(y1+10), `" font-size="9.5" fill="#7a8292">`, esc(fmtTime(int64(m.start))), "</text>\n")
	p.ws(`<text x="`, f(gutter+plotWidth), `" y="`, f(y1+10), `" font-size="9.5" fill="#7a8292" text-anchor="end">`, esc(fmtTime(int64(m.end))), "</text>\n")
	p.ws(`<rect class="ov-brush" x="0" y="`, f(ovTop), `" width="0" height="`, f(rowH*float64(m.cpus)), `" fill="#1f6fd1" fill-opacity="0.15" display="none"/>`, "\n")
	p.ws(`<rect class="ov-view" x="`, f(gutter), `" y="`, f(ovTop-1.5), `" width="`, f(plotWidth), `" height="`, f(rowH*float64(m.cpus)+3),
		`" fill="#1f6fd1" fill-opacity="0.06" stroke="#1f6fd1" stroke-width="1.5" style="cursor:grab"/>`, "\n")
	p.w("</svg>\n")
}

// dpcSpans returns the merged spans of processor cpu's DPC and ISR
// contexts.
func dpcSpans(m *model, cpu int) [][2]des.Time {
	var out [][2]des.Time
	for _, s := range m.slices {
		if s.cpu == cpu && (s.kind == sliceDPC || s.kind == sliceISR) {
			out = append(out, [2]des.Time{s.start, s.end})
		}
	}
	slices.SortFunc(out, func(a, b [2]des.Time) int { return cmp.Compare(a[0], b[0]) })
	return out
}

// ovSpans draws spans as rectangles on the strip, merging those that
// touch within half a unit, so the strip stays small for any run.
func (p *plot) ovSpans(segs []segment, spans [][2]des.Time, y, h float64, fill string) {
	var x0, x1 float64
	open := false
	flush := func() {
		if open {
			p.ws(`<rect x="`, f(x0), `" y="`, f(y), `" width="`, f(max(x1-x0, 0.6)), `" height="`, f(h), `" fill="`, fill, `"/>`)
		}
	}
	for _, s := range spans {
		a, b := segX(segs, s[0]), segX(segs, s[1])
		if open && a <= x1+0.5 {
			x1 = max(x1, b)
			continue
		}
		flush()
		x0, x1, open = a, b, true
	}
	flush()
	p.w("\n")
}

// knots returns "t,ox,cx" for every boundary of the strip's segments and
// the chart's, in time order: between two knots both axes are linear in
// time, so the script can map strip x, chart x and time into each other.
func (p *plot) knots(segs []segment) string {
	var ts []des.Time
	for _, list := range [][]segment{segs, p.segs} {
		for _, s := range list {
			ts = append(ts, s.t0, s.t1)
		}
	}
	slices.Sort(ts)
	ts = slices.Compact(ts)
	parts := make([]string, len(ts))
	for i, t := range ts {
		parts[i] = strconv.FormatInt(int64(t), 10) + "," + f(segX(segs, t)) + "," + f(p.x(t))
	}
	return strings.Join(parts, " ")
}
