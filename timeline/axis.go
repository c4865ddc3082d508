package timeline

import (
	"cmp"
	"math"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/wqsim/wqsim/des"
)

// x maps a time to an SVG x coordinate.
func (p *plot) x(t des.Time) float64 {
	segs := p.segs
	i, _ := slices.BinarySearchFunc(segs, t, func(s segment, t des.Time) int {
		if s.t1 < t {
			return -1
		}
		return 1
	})
	if i == len(segs) {
		i--
	}
	s := segs[i]
	if t <= s.t0 || s.t1 == s.t0 {
		return s.x0
	}
	return s.x0 + float64(t-s.t0)/float64(s.t1-s.t0)*(s.x1-s.x0)
}

// segment is a stretch of the time axis: shown to scale, or a long idle
// gap drawn as a fixed-width break.
type segment struct {
	t0, t1 des.Time
	x0, x1 float64
	gap    bool
}

const (
	breakWidth = 64.0 // pixels of a compressed idle gap
	maxBreaks  = 8
)

// timeSegments lays out the time axis. Idle gaps (no slice open on any
// processor, no instant) longer than everything else shown are compressed
// into breaks, so a run whose last timer fires a second after its work
// still shows the work.
func (p *plot) timeSegments() {
	m := p.m
	start, end := m.start, m.end
	if end <= start {
		end = start + 1000 // one microsecond, so a run of one instant still draws
	}
	var active [][2]des.Time
	for _, s := range m.slices {
		active = append(active, [2]des.Time{s.start, s.end})
	}
	for _, in := range m.instants {
		active = append(active, [2]des.Time{in.at, in.at})
	}
	slices.SortFunc(active, func(a, b [2]des.Time) int { return cmp.Compare(a[0], b[0]) })
	var gaps [][2]des.Time
	last := start
	for _, a := range active {
		if a[0] > last {
			gaps = append(gaps, [2]des.Time{last, a[0]})
		}
		last = max(last, a[1])
	}
	if end > last && len(active) > 0 {
		gaps = append(gaps, [2]des.Time{last, end})
	}
	// Longest first: compress a gap while it is longer than the rest shown.
	slices.SortStableFunc(gaps, func(a, b [2]des.Time) int { return cmp.Compare(b[1]-b[0], a[1]-a[0]) })
	shown := end - start
	var cut [][2]des.Time
	for _, g := range gaps {
		d := g[1] - g[0]
		if len(cut) == maxBreaks || d <= shown-d || shown-d <= 0 {
			break
		}
		cut = append(cut, g)
		shown -= d
	}
	slices.SortFunc(cut, func(a, b [2]des.Time) int { return cmp.Compare(a[0], b[0]) })
	scale := (plotWidth - breakWidth*float64(len(cut))) / float64(shown)
	x, t := gutter, start
	add := func(t1 des.Time, gap bool) {
		w := breakWidth
		if !gap {
			w = float64(t1-t) * scale
		}
		p.segs = append(p.segs, segment{t0: t, t1: t1, x0: x, x1: x + w, gap: gap})
		x, t = x+w, t1
	}
	for _, g := range cut {
		if g[0] > t {
			add(g[0], false)
		}
		add(g[1], true)
	}
	if end > t || len(p.segs) == 0 {
		add(end, false)
	}
	p.shown = shown
}

// axis draws tick labels along the top and grid lines through the lanes,
// and marks compressed idle gaps.
func (p *plot) axis() {
	step := niceStep(float64(p.shown) / 10)
	p.ticks = p.ticks[:0]
	p.w(`<g class="axis">` + "\n")
	lastLabel := math.Inf(-1)
	for _, sg := range p.segs {
		if sg.gap {
			p.ws(`<text x="`, f((sg.x0+sg.x1)/2), `" y="`, f(axisHeight-17), `" font-size="9.5" fill="#7a8292" text-anchor="middle">`,
				esc("+"+fmtTime(roundTo3(int64(sg.t1-sg.t0)))), "</text>\n")
			p.ws(`<path d="M`, f(sg.x0+2), ",", f(axisHeight-4), " l4,-8 M", f(sg.x1-6), ",", f(axisHeight-4), ` l4,-8" stroke="#9aa1ad" stroke-width="1.2" fill="none"/>`, "\n")
			continue
		}
		p.ws(`<line x1="`, f(sg.x0), `" y1="`, f(axisHeight-8), `" x2="`, f(sg.x1), `" y2="`, f(axisHeight-8), `" stroke="#9aa1ad" stroke-width="1"/>`, "\n")
		first := (int64(sg.t0) + step - 1) / step * step
		for t := first; t <= int64(sg.t1); t += step {
			x := p.x(des.Time(t))
			p.ticks = append(p.ticks, x)
			p.ws(`<line x1="`, f(x), `" y1="`, f(axisHeight-8), `" x2="`, f(x), `" y2="`, f(p.height-4), `" stroke="#e6e9ee" stroke-width="1"/>`)
			p.ws(`<line x1="`, f(x), `" y1="`, f(axisHeight-13), `" x2="`, f(x), `" y2="`, f(axisHeight-8), `" stroke="#9aa1ad" stroke-width="1"/>`)
			label := fmtTime(t)
			if x-lastLabel < float64(utf8.RuneCountInString(label))*6.2+10 {
				p.w("\n")
				continue
			}
			lastLabel = x
			p.ws(`<text x="`, f(x), `" y="`, f(axisHeight-17), `" font-size="11" fill="#4a5263" text-anchor="middle">`, esc(label), "</text>\n")
		}
	}
	p.w("</g>\n")
}

// gapBands covers each compressed idle gap, through every lane.
func (p *plot) gapBands() {
	p.w(`<g class="gaps">` + "\n")
	for _, sg := range p.segs {
		if !sg.gap {
			continue
		}
		tip := "idle " + fmtSpan(sg.t0, sg.t1) + ", not to scale"
		p.ws(`<rect x="`, f(sg.x0+1), `" y="`, f(axisHeight-6), `" width="`, f(sg.x1-sg.x0-2), `" height="`, f(p.height-axisHeight+2),
			`" fill="#ffffff" fill-opacity="0.88"><title>`, esc(tip), "</title></rect>\n")
		p.ws(`<rect x="`, f(sg.x0+1), `" y="`, f(axisHeight-6), `" width="`, f(sg.x1-sg.x0-2), `" height="`, f(p.height-axisHeight+2),
			`" fill="url(#gaphatch)" pointer-events="none"/>`, "\n")
	}
	p.w("</g>\n")
}

// roundTo3 rounds ns to three significant digits, for approximate labels.
func roundTo3(ns int64) int64 {
	mag := int64(1)
	for ns/mag >= 1000 {
		mag *= 10
	}
	return (ns + mag/2) / mag * mag
}

// niceStep rounds a raw tick step (ns) up to 1, 2 or 5 times a power of ten.
func niceStep(raw float64) int64 {
	if raw < 1 {
		return 1
	}
	pow := int64(1)
	for float64(pow)*10 <= raw {
		pow *= 10
	}
	for _, m := range []int64{1, 2, 5, 10} {
		if float64(pow*m) >= raw {
			return pow * m
		}
	}
	return pow * 10
}

// fmtTime formats ns with the largest unit that keeps it ≥ 1, exactly.
func fmtTime(ns int64) string {
	neg := ns < 0
	if neg {
		ns = -ns
	}
	unit, name := int64(1), " ns"
	switch {
	case ns >= 1_000_000_000:
		unit, name = 1_000_000_000, " s"
	case ns >= 1_000_000:
		unit, name = 1_000_000, " ms"
	case ns >= 1_000:
		unit, name = 1_000, " µs"
	}
	s := strconv.FormatInt(ns/unit, 10)
	if frac := ns % unit; frac != 0 {
		d := strconv.FormatInt(frac+unit, 10)[1:] // zero-padded
		s += "." + strings.TrimRight(d, "0")
	}
	if ns == 0 {
		s, name = "0", ""
	}
	if neg {
		s = "-" + s
	}
	return s + name
}

func fmtSpan(a, b des.Time) string {
	return fmtTime(int64(a)) + " – " + fmtTime(int64(b)) + " (" + fmtTime(int64(b-a)) + ")"
}
