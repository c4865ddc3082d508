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

// svg draws the chart: time axis, the "no cpu" row if needed, one lane
// per processor, idle-gap bands, work-item arrows and bug-check lines.
func (p *plot) svg() {
	p.ws(`<svg xmlns="http://www.w3.org/2000/svg" class="timeline" data-gutter="`, f(gutter), `" data-plot-width="`, f(plotWidth), `" width="`, f(svgWidth), `" height="`, f(p.height),
		`" viewBox="0 0 `, f(svgWidth), " ", f(p.height), `" role="img" aria-label="timeline">`, "\n")
	p.w(`<defs>
<pattern id="hatch" width="5" height="5" patternUnits="userSpaceOnUse" patternTransform="rotate(45)"><rect width="1.6" height="5" fill="#1e2330" fill-opacity="0.55"/></pattern>
<pattern id="gaphatch" width="6" height="6" patternUnits="userSpaceOnUse" patternTransform="rotate(45)"><rect width="1" height="6" fill="#c9ced6"/></pattern>
<marker id="arrowhead" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="#d35400"/></marker>
</defs>
`)
	p.axis()
	if p.extraTop >= 0 {
		p.noCPURow()
	}
	for c := 0; c < p.m.cpus; c++ {
		p.lane(c)
	}
	p.gapBands()
	p.flows()
	p.bugChecks()
	p.perturbations()
	p.divergenceLine()
	p.w("</svg>\n")
}

// perturbations draws an orange line through every lane at each of the
// run's non-natural decisions, labelled with its number; the tooltip says
// what was chosen instead of the natural option.
func (p *plot) perturbations() {
	if len(p.meta.Perturbations) == 0 {
		return
	}
	p.w(`<g class="perturbations">` + "\n")
	for i, pt := range p.meta.Perturbations {
		x := p.x(pt.At)
		tip := "t=" + fmtTime(int64(pt.At)) + ": " + pt.Text
		if pt.Actor != 0 {
			tip += " (for " + actorName(p.m.recs, pt.Actor) + ")"
		}
		p.ws(`<g class="perturbation" id="perturbation-mark-`, strconv.Itoa(i+1), `"><title>`, esc(tip), `</title>`)
		p.ws(`<line x1="`, f(x), `" y1="`, f(p.perturbBand+2), `" x2="`, f(x), `" y2="`, f(p.height-4), `" stroke="#e67e22" stroke-width="1.5" stroke-dasharray="2 2"/>`)
		anchor, lx := "end", x-4
		if x < gutter+plotWidth/2 {
			anchor, lx = "start", x+4
		}
		p.ws(`<text x="`, f(lx), `" y="`, f(p.perturbBand+12), `" font-size="11" font-weight="700" fill="#b35900" text-anchor="`, anchor, `">`, esc(perturbationLabel(pt)), "</text></g>\n")
	}
	p.w("</g>\n")
}

// divergenceLine draws, on an explanation page, a blue line where this
// run and the other first differ.
func (p *plot) divergenceLine() {
	if p.divergence < 0 {
		return
	}
	x := p.x(p.divergence)
	p.ws(`<g id="divergence"><title>first difference between the natural and the failing run, t=`, esc(fmtTime(int64(p.divergence))), `</title>`)
	p.ws(`<line x1="`, f(x), `" y1="`, f(axisHeight-8), `" x2="`, f(x), `" y2="`, f(p.height-4), `" stroke="#1f6fd1" stroke-width="2"/></g>`, "\n")
}

// box is a slice to draw, or a run of slices too narrow to draw alone.
type box struct {
	x0, x1   float64
	s        *slice // the slice when n == 1
	n        int
	from     des.Time
	to       des.Time
	names    []tally[string, int]     // slices per name in a merged box
	dominant int32                    // the thread with the most time in a merged box
	time     []tally[int32, des.Time] // time per thread in a merged box
}

// tally is a count or a total per key, in order of first appearance.
type tally[K comparable, V int | des.Time] struct {
	key K
	sum V
}

// addTo adds v to k's entry of l.
func addTo[K comparable, V int | des.Time](l []tally[K, V], k K, v V) []tally[K, V] {
	for i := range l {
		if l[i].key == k {
			l[i].sum += v
			return l
		}
	}
	return append(l, tally[K, V]{k, v})
}

// boxes merges consecutive slices narrower than minSliceWidth whose
// pixels touch.
func (p *plot) boxes(ss []*slice) []box {
	var out []box
	var g *box
	flush := func() {
		if g != nil {
			if g.n > 1 {
				p.mergedSlices += g.n
				p.mergedBoxes++
				best := tally[int32, des.Time]{sum: -1}
				for _, tt := range g.time {
					if tt.sum > best.sum {
						best = tt
					}
				}
				g.dominant = best.key
			}
			out = append(out, *g)
			g = nil
		}
	}
	for _, s := range ss {
		x0, x1 := p.x(s.start), p.x(s.end)
		if x1-x0 >= minSliceWidth {
			flush()
			out = append(out, box{x0: x0, x1: x1, s: s, n: 1, from: s.start, to: s.end})
			continue
		}
		if g != nil && x0 <= g.x1+minSliceWidth {
			g.x1 = max(g.x1, x1)
			g.n++
			g.to = max(g.to, s.end)
			g.s = nil
			g.names = addTo(g.names, s.name, 1)
			g.time = addTo(g.time, s.thread, s.end-s.start)
			continue
		}
		flush()
		g = &box{x0: x0, x1: x1, s: s, n: 1, from: s.start, to: s.end, names: addTo(nil, s.name, 1), time: addTo(nil, s.thread, s.end-s.start)}
	}
	flush()
	return out
}

func (b *box) mergedTip(what string) string {
	var sb strings.Builder
	sb.WriteString(strconv.Itoa(b.n) + " " + what + " in " + fmtSpan(b.from, b.to) + ":")
	for i, nc := range b.names {
		if i == 6 {
			sb.WriteString("\n…")
			break
		}
		sb.WriteString("\n" + nc.key + " ×" + strconv.Itoa(nc.sum))
	}
	return sb.String()
}

// rect writes a rectangle with a tooltip; tiny widths are widened to stay visible.
func (p *plot) rect(x0, x1, y, h float64, fill, extra, tip string) {
	wd := x1 - x0
	if wd < 0.8 {
		x0 -= (0.8 - wd) / 2
		wd = 0.8
	}
	p.ws(`<rect x="`, f(x0), `" y="`, f(y), `" width="`, f(wd), `" height="`, f(h), `" fill="`, fill, `"`, extra, `>`)
	if tip != "" {
		p.ws("<title>", esc(tip), "</title>")
	}
	p.w("</rect>\n")
}

// label writes name inside a box if it fits, elided (see elide) if not;
// an elided label carries its full name and the room it had, so the
// page's zoom can show more of it.
func (p *plot) label(x0, x1, y float64, name, color string, size float64) {
	room := x1 - x0 - 6
	perChar := size * 0.56
	if room < perChar*3 {
		return
	}
	shown := elide(name, int(room/perChar))
	full := ""
	if shown != name {
		full = ` data-full="` + esc(name) + `" data-room="` + f(room) + `"`
	}
	p.ws(`<text x="`, f(x0+4), `" y="`, f(y), `" font-size="`, f(size), `" fill="`, color, `" pointer-events="none"`, full, `>`, esc(shown), "</text>\n")
}

// elide shortens name to at most n characters (n ≥ 3) so that similar
// names stay apart: a name ending in a digit (worker.critical.3) keeps its
// end, others their start; a dotted name first drops its first part.
func elide(name string, n int) string {
	r := []rune(name)
	if len(r) <= n {
		return name
	}
	if _, rest, ok := strings.Cut(name, "."); ok && utf8.RuneCountInString(rest) <= n {
		return rest
	}
	if last := r[len(r)-1]; last >= '0' && last <= '9' {
		return "…" + string(r[len(r)-n+1:])
	}
	return string(r[:n-1]) + "…"
}

// lane draws processor c's lane: its frame and rows, the thread, DPC,
// ISR and spin slices, the IRQL line and the markers.
func (p *plot) lane(c int) {
	top := p.laneTop[c]
	p.ws(`<g class="lane" id="lane-cpu`, strconv.Itoa(c), `" data-cpu="`, strconv.Itoa(c), `">`, "\n")
	p.laneFrame(c, top)
	ss := p.laneSlices(c)
	p.threadRow(ss[sliceThread], top)
	// DPC and ISR rows: the context, then its routines on top.
	p.contextRow(ss[sliceDPC], ss[sliceDPCRoutine], top+dpcTop, "#e4d9f2", "#7b52ab", "DPC drain", "DPC routines")
	p.contextRow(ss[sliceISR], ss[sliceISRRoutine], top+isrTop, "#f6d5d0", "#c0392b", "ISR context", "ISRs")
	p.spinRow(ss[sliceSpin], top)
	p.irqlLine(c, top)
	p.markers(c, [2]float64{top + markerA, top + markerB})
	p.w("</g>\n")
}

// laneFrame draws what a lane shows whatever ran: its background, the
// processor's name, the row labels and backgrounds, and the grid.
func (p *plot) laneFrame(c int, top float64) {
	fill := "#f7f8fa"
	if c%2 == 1 {
		fill = "#fbfbfc"
	}
	p.ws(`<rect x="4" y="`, f(top), `" width="`, f(svgWidth-8), `" height="`, f(laneH), `" rx="6" fill="`, fill, `" stroke="#e1e4e9"/>`, "\n")
	p.ws(`<text x="14" y="`, f(top+threadTop+19), `" font-size="15" font-weight="700" fill="#1d2330">`, "cpu "+strconv.Itoa(c), "</text>\n")
	rowLabel := func(y float64, s string) {
		p.ws(`<text x="`, f(gutter-8), `" y="`, f(y), `" font-size="10.5" fill="#7a8292" text-anchor="end">`, s, "</text>\n")
	}
	rowLabel(top+dpcTop+10.5, "DPC")
	rowLabel(top+isrTop+10.5, "ISR")
	p.ws(`<text x="`, f(gutter-22), `" y="`, f(top+irqlTop+irqlH/2+4), `" font-size="10.5" fill="#7a8292" text-anchor="end">IRQL</text>`, "\n")
	p.ws(`<rect x="`, f(gutter), `" y="`, f(top+threadTop), `" width="`, f(plotWidth), `" height="`, f(threadH), `" fill="#eef0f3"/>`, "\n")
	for _, r := range []float64{dpcTop, isrTop} {
		p.ws(`<rect x="`, f(gutter), `" y="`, f(top+r), `" width="`, f(plotWidth), `" height="`, f(rowH), `" fill="#f1f2f5"/>`, "\n")
	}
	// Grid lines show through idle time.
	p.w(`<g stroke="#dfe3e8" stroke-width="1">`)
	for _, x := range p.ticks {
		p.ws(`<line x1="`, f(x), `" y1="`, f(top+threadTop), `" x2="`, f(x), `" y2="`, f(top+isrTop+rowH), `"/>`)
	}
	p.w("</g>\n")
}

// laneSlices returns processor c's slices by kind, each sorted by start.
func (p *plot) laneSlices(c int) [sliceSpin + 1][]*slice {
	var ss [sliceSpin + 1][]*slice
	for _, s := range p.m.slices {
		if s.cpu == c && int(s.kind) < len(ss) {
			ss[s.kind] = append(ss[s.kind], s)
		}
	}
	for _, l := range ss {
		sortByStart(l)
	}
	return ss
}

// threadRow draws a lane's thread slices, labelled, or merged boxes in
// the colour of their busiest thread.
func (p *plot) threadRow(threads []*slice, top float64) {
	p.w(`<g class="threads">` + "\n")
	for _, b := range p.boxes(threads) {
		y := top + threadTop + 1
		if b.n > 1 {
			p.rect(b.x0, b.x1, y, threadH-2, threadColor(b.dominant), ` fill-opacity="0.55"`, b.mergedTip("thread slices"))
			continue
		}
		s := b.s
		p.rect(b.x0, b.x1, y, threadH-2, threadColor(s.thread), ` stroke="#ffffff" stroke-width="0.6"`, p.threadTip(s))
		p.label(b.x0, b.x1, y+17.5, s.name, "#1d2330", 12)
	}
	p.w("</g>\n")
}

// spinRow draws a lane's spins, hatched over the row of the context that
// spins.
func (p *plot) spinRow(spins []*slice, top float64) {
	p.w(`<g class="spins">` + "\n")
	for _, b := range p.boxes(spins) {
		y, h := top+threadTop+1, threadH-2
		if b.s != nil {
			switch b.s.row {
			case sliceDPC:
				y, h = top+dpcTop, rowH
			case sliceISR:
				y, h = top+isrTop, rowH
			}
		}
		tip := ""
		if b.n > 1 {
			tip = b.mergedTip("spins")
		} else {
			tip = b.s.name + "\n" + fmtSpan(b.s.start, b.s.end)
		}
		p.rect(b.x0, b.x1, y, h, "url(#hatch)", ` stroke="#1e2330" stroke-opacity="0.35" stroke-width="0.6"`, tip)
	}
	p.w("</g>\n")
}

// sortByStart orders slices by start time, stably (they are created in
// time order per processor, so this rarely moves anything).
func sortByStart(ss []*slice) {
	slices.SortStableFunc(ss, func(a, b *slice) int { return cmp.Compare(a.start, b.start) })
}

func (p *plot) threadTip(s *slice) string {
	tip := s.name + " (thread " + strconv.Itoa(int(s.thread)) + ", priority " + strconv.FormatInt(s.prio, 10) + ")\n" +
		fmtSpan(s.start, s.end) + "\nstarted: " + s.why + "\nended: " + s.ended
	if s.unfinished {
		tip += " (still running)"
	}
	return tip
}

func (p *plot) contextRow(ctx, routines []*slice, y float64, ctxFill, fill, ctxWhat, what string) {
	p.w(`<g class="contexts">` + "\n")
	for _, b := range p.boxes(ctx) {
		tip := ""
		if b.n > 1 {
			tip = b.mergedTip(ctxWhat + "s")
		} else {
			tip = ctxWhat + " (" + b.s.why + ")\n" + fmtSpan(b.s.start, b.s.end)
		}
		p.rect(b.x0, b.x1, y, rowH, ctxFill, "", tip)
	}
	for _, b := range p.boxes(routines) {
		if b.n > 1 {
			p.rect(b.x0, b.x1, y+1, rowH-2, fill, ` fill-opacity="0.6"`, b.mergedTip(what))
			continue
		}
		p.rect(b.x0, b.x1, y+1, rowH-2, fill, "", b.s.name+"\n"+fmtSpan(b.s.start, b.s.end))
		p.label(b.x0, b.x1, y+10.5, strings.TrimPrefix(strings.TrimPrefix(b.s.name, "dpc "), "isr "), "#ffffff", 10)
	}
	p.w("</g>\n")
}

// irqlLine draws c's IRQL as a filled step line, at most a few points per
// half pixel.
func (p *plot) irqlLine(c int, top float64) {
	bt := top + irqlTop
	yOf := func(l int8) float64 { return bt + irqlH - 3 - float64(l)/float64(p.maxIrql)*(irqlH-6) }
	p.w(`<g class="irql">` + "\n")
	p.ws(`<rect x="`, f(gutter), `" y="`, f(bt), `" width="`, f(plotWidth), `" height="`, f(irqlH), `" fill="#ffffff" stroke="#e6e9ee"/>`, "\n")
	guides := []int8{0, 2}
	if p.maxIrql > 2 {
		guides = append(guides, p.maxIrql)
	}
	for _, l := range guides {
		p.ws(`<line x1="`, f(gutter), `" y1="`, f(yOf(l)), `" x2="`, f(gutter+plotWidth), `" y2="`, f(yOf(l)), `" stroke="#eceef2" stroke-dasharray="3 3"/>`)
		p.ws(`<text x="`, f(gutter-6), `" y="`, f(yOf(l)+3), `" font-size="9" fill="#9aa1ad" text-anchor="end">`, strconv.Itoa(int(l)), "</text>\n")
	}
	pts := p.m.irql[c]
	var d strings.Builder
	d.WriteString("M" + f(gutter) + "," + f(yOf(0)))
	level := int8(0)
	lastCol := math.Inf(-1)
	for _, pt := range pts {
		x := p.x(pt.at)
		col := math.Floor(x * 2)
		if col == lastCol && pt.level == level {
			continue
		}
		d.WriteString(" H" + f(x) + " V" + f(yOf(pt.level)))
		level = pt.level
		lastCol = col
	}
	d.WriteString(" H" + f(gutter+plotWidth))
	line := d.String()
	p.ws(`<path d="`, line, " V", f(yOf(0)), ` Z" fill="#dfe7f4" stroke="none"/>`, "\n")
	p.ws(`<path d="`, line, `" fill="none" stroke="#3b5b92" stroke-width="1.5" stroke-linejoin="round"><title>`, esc(p.irqlTip(c)), "</title></path>\n")
	p.w("</g>\n")
}

func (p *plot) irqlTip(c int) string {
	pts := p.m.irql[c]
	var sb strings.Builder
	sb.WriteString("cpu " + strconv.Itoa(c) + " IRQL: " + strconv.Itoa(len(pts)-1) + " changes")
	for i, pt := range pts[1:] {
		if i == 8 {
			sb.WriteString("\n…")
			break
		}
		sb.WriteString("\n" + fmtTime(int64(pt.at)) + " → " + strconv.Itoa(int(pt.level)))
	}
	return sb.String()
}

// markerShape returns how an instant is drawn in the HTML, "" if not.
func markerShape(r *des.Record, in instant) string {
	switch in.cat {
	case "irp":
		return "irp"
	case "call":
		switch WorkItemRole(r) { // paired or not: PairFlows pairs by these roles
		case FlowQueue:
			return "queue"
		case FlowRun:
			return "run"
		}
		return "" // other calls of higher layers: in the Perfetto export only
	case "bugcheck":
		return "bug"
	case "signal":
		return "signal"
	case "interrupt":
		return "interrupt"
	case "dpc":
		return "dpcq"
	}
	return ""
}

type marker struct {
	shape string
	x     float64 // the time's x
	px    float64 // where it is drawn
	n     int
	tip   []string
	more  int
	recs  []int // flow instants it stands for
}

// markerLevel says which line of a lane a marker shape sits on: 0 for
// kernel events, 1 for IRPs, work items and bug checks.
func markerLevel(shape string) int {
	switch shape {
	case "irp", "queue", "run", "bug":
		return 1
	}
	return 0
}

// markers draws the markers of processor c (-1: no processor) on the
// lines at ys (one per level), merging those of one shape within two
// pixels and nudging different shapes that would overlap to the right.
func (p *plot) markers(c int, ys [2]float64) {
	var levels [2][]marker
	last := map[string]int{} // shape → index of its latest marker in its level
	for _, in := range p.m.instants {
		if in.cpu != c {
			continue
		}
		r := &p.m.recs[in.rec]
		shape := markerShape(r, in)
		if shape == "" {
			continue
		}
		lv := markerLevel(shape)
		ms := &levels[lv]
		x := p.x(in.at)
		tip := instantTip(r)
		if i, ok := last[shape]; ok && x-(*ms)[i].x < 2 && in.flow == 0 && (*ms)[i].recs == nil {
			mk := &(*ms)[i]
			mk.n++
			p.mergedMarkers++
			if len(mk.tip) < 6 {
				mk.tip = append(mk.tip, tip)
			} else {
				mk.more++
			}
			continue
		}
		px := x
		if n := len(*ms); n > 0 {
			px = min(max(x, (*ms)[n-1].px+10), x+30)
		}
		mk := marker{shape: shape, x: x, px: px, n: 1, tip: []string{tip}}
		if in.flow != 0 {
			mk.recs = []int{in.rec}
			p.placed[in.rec] = [2]float64{px, ys[lv]}
		}
		last[shape] = len(*ms)
		*ms = append(*ms, mk)
	}
	p.w(`<g class="markers">` + "\n")
	for lv, ms := range levels {
		// A dense line becomes a rug of thin ticks at the exact times.
		rug := float64(len(ms)) > plotWidth/14
		if rug {
			for i := range ms {
				ms[i].px = ms[i].x
				for _, rec := range ms[i].recs {
					p.placed[rec] = [2]float64{ms[i].x, ys[lv]}
				}
			}
		}
		for _, mk := range ms {
			tip := strings.Join(mk.tip, "\n")
			if mk.more > 0 {
				tip += "\n… and " + strconv.Itoa(mk.more) + " more"
			}
			if rug {
				p.ws(`<rect x="`, f(mk.x-0.6), `" y="`, f(ys[lv]-5), `" width="1.2" height="10" fill="`, markerColor(mk.shape), `"><title>`, esc(tip), "</title></rect>\n")
				continue
			}
			if mk.px-mk.x > 1 { // nudged: a thin stem to the true time
				p.ws(`<line x1="`, f(mk.x), `" y1="`, f(ys[lv]+5), `" x2="`, f(mk.px), `" y2="`, f(ys[lv]+5), `" stroke="#9aa1ad" stroke-width="1"/>`, "\n")
			}
			p.marker(mk.shape, mk.px, ys[lv], tip)
		}
	}
	p.w("</g>\n")
}

func markerColor(shape string) string {
	switch shape {
	case "irp":
		return "#1f6fb2"
	case "queue", "run":
		return "#d35400"
	case "interrupt":
		return "#c0392b"
	case "dpcq":
		return "#7b52ab"
	case "bug":
		return "#d62728"
	}
	return "#7d8592"
}

func instantTip(r *des.Record) string {
	s := fmtTime(int64(r.At)) + "  " + string(r.What)
	if r.Object != "" {
		s += " " + r.Object
	}
	if r.Actor != "" {
		s += "\nby " + r.Actor
	}
	if r.Kind == 0 {
		return s
	}
	return s + "\n" + KindName(r.Kind) + " a=" + strconv.FormatInt(r.A, 10) + " b=" + strconv.FormatInt(r.B, 10)
}

func (p *plot) marker(shape string, x, y float64, tip string) {
	t := "<title>" + esc(tip) + "</title>"
	switch shape {
	case "irp":
		p.ws(`<path d="M`, f(x), ",", f(y-5.5), " L", f(x+5.5), ",", f(y), " L", f(x), ",", f(y+5.5), " L", f(x-5.5), ",", f(y), ` Z" fill="#1f6fb2" stroke="#fff" stroke-width="0.8">`, t, "</path>\n")
	case "queue":
		p.ws(`<circle cx="`, f(x), `" cy="`, f(y), `" r="4.2" fill="#ffffff" stroke="#d35400" stroke-width="2">`, t, "</circle>\n")
	case "run":
		p.ws(`<circle cx="`, f(x), `" cy="`, f(y), `" r="5" fill="#d35400" stroke="#fff" stroke-width="0.8">`, t, "</circle>\n")
	case "signal":
		p.ws(`<path d="M`, f(x-4.5), ",", f(y-4), " L", f(x+4.5), ",", f(y-4), " L", f(x), ",", f(y+4), ` Z" fill="#7d8592">`, t, "</path>\n")
	case "interrupt":
		p.ws(`<path d="M`, f(x-4.5), ",", f(y+4), " L", f(x+4.5), ",", f(y+4), " L", f(x), ",", f(y-4.5), ` Z" fill="#c0392b">`, t, "</path>\n")
	case "dpcq":
		p.ws(`<path d="M`, f(x-4), ",", f(y-3.5), " L", f(x+4), ",", f(y-3.5), " L", f(x), ",", f(y+3.5), ` Z" fill="#7b52ab">`, t, "</path>\n")
	case "bug":
		p.ws(`<g stroke="#d62728" stroke-width="3" stroke-linecap="round"><line x1="`, f(x-5), `" y1="`, f(y-5), `" x2="`, f(x+5), `" y2="`, f(y+5), `"/><line x1="`,
			f(x-5), `" y1="`, f(y+5), `" x2="`, f(x+5), `" y2="`, f(y-5), `"/>`, t, "</g>\n")
	}
}

func (p *plot) noCPURow() {
	y := p.extraTop
	p.ws(`<g class="nocpu" id="lane-nocpu">`, "\n")
	p.ws(`<rect x="4" y="`, f(y), `" width="`, f(svgWidth-8), `" height="26" rx="6" fill="#fbfbfc" stroke="#e1e4e9"/>`, "\n")
	p.ws(`<text x="14" y="`, f(y+17), `" font-size="11.5" font-weight="600" fill="#4a5263">no cpu</text>`, "\n")
	p.markers(-1, [2]float64{y + 13, y + 13})
	p.w("</g>\n")
}

// flows draws an arrow from each work item's queueing to its run,
// between the markers as drawn.
func (p *plot) flows() {
	style := `stroke-width="1.4" stroke-opacity="0.85"`
	if len(p.m.flows) > 40 {
		style = `stroke-width="1" stroke-opacity="0.4"`
	}
	p.ws(`<g class="flows" fill="none" stroke="#d35400" `, style, ">\n")
	drawn := 0
	for _, fl := range p.m.flows {
		q, okq := p.placed[fl.Queue]
		r, okr := p.placed[fl.Run]
		if !okq || !okr {
			continue
		}
		if drawn == maxFlowArrows {
			p.droppedFlows++
			continue
		}
		drawn++
		x1, y1, x2, y2 := q[0], q[1], r[0], r[1]
		var d string
		if y1 == y2 {
			lift := math.Min(10, 4+math.Abs(x2-x1)/8)
			d = "M" + f(x1) + "," + f(y1-5) + " C" + f(x1) + "," + f(y1-5-lift) + " " + f(x2) + "," + f(y2-5-lift) + " " + f(x2) + "," + f(y2-6)
		} else {
			// Leave the tail and reach the head vertically, so the arrow
			// crosses lanes clear of the markers.
			dy := 5.0
			if y2 < y1 {
				dy = -5
			}
			mid := (y1 + y2) / 2
			d = "M" + f(x1) + "," + f(y1+dy) + " C" + f(x1) + "," + f(mid) + " " + f(x2) + "," + f(mid) + " " + f(x2) + "," + f(y2-dy*1.3)
		}
		qa, ra := p.m.recs[fl.Queue].At, p.m.recs[fl.Run].At
		tip := fl.Item.String() + ": queued " + fmtTime(int64(qa)) + ", runs " + fmtTime(int64(ra)) + " (after " + fmtTime(int64(ra-qa)) + ")"
		p.ws(`<path d="`, d, `" marker-end="url(#arrowhead)"><title>`, esc(tip), "</title></path>\n")
	}
	p.w("</g>\n")
}

// bugChecks draws a red line through every lane at each bug check.
func (p *plot) bugChecks() {
	p.w(`<g class="bugchecks">` + "\n")
	for _, in := range p.m.instants {
		if in.cat != "bugcheck" {
			continue
		}
		r := &p.m.recs[in.rec]
		x := p.x(in.at)
		p.ws(`<line x1="`, f(x), `" y1="`, f(axisHeight-8), `" x2="`, f(x), `" y2="`, f(p.height-4), `" stroke="#d62728" stroke-width="1.5" stroke-dasharray="5 3"/>`, "\n")
		label := "BUGCHECK " + r.Object + " (0x" + strings.ToUpper(strconv.FormatInt(r.A, 16)) + ")"
		anchor, lx := "end", x-6
		if x < gutter+plotWidth/2 {
			anchor, lx = "start", x+6
		}
		y := p.bugBand + 12
		p.ws(`<text x="`, f(lx), `" y="`, f(y), `" font-size="11.5" font-weight="700" fill="#d62728" text-anchor="`, anchor, `">`, esc(label), "</text>\n")
	}
	p.w("</g>\n")
}
