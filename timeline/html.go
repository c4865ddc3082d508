package timeline

import (
	"bufio"
	"html"
	"io"
	"math"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/wqsim/wqsim/des"
)

// HTML layout, in SVG user units (CSS pixels at 100%).
const (
	svgWidth   = 1400.0
	gutter     = 112.0 // lane and row labels
	rightPad   = 24.0
	plotWidth  = svgWidth - gutter - rightPad
	axisHeight = 34.0
	laneGap    = 10.0

	// Rows inside a lane, relative to its top: two lines of markers (kernel
	// events above; IRPs, work items and bug checks below), then the rows.
	markerA   = 9.0
	markerB   = 21.0
	threadTop = 30.0
	threadH   = 28.0
	dpcTop    = threadTop + threadH + 5
	rowH      = 14.0
	isrTop    = dpcTop + rowH + 3
	irqlTop   = isrTop + rowH + 7
	irqlH     = 34.0
	laneH     = irqlTop + irqlH + 9

	minSliceWidth    = 1.0 // slices narrower than this merge with their neighbours
	maxFlowArrows    = 400 // flow arrows drawn at most
	maxLegendThreads = 16
)

// threadColors are the thread slice fills: light enough for dark labels,
// and none of them purple or red, which mark DPCs and ISRs.
var threadColors = []string{
	"#8fb3de", "#f7b267", "#8cd17d", "#f4a6b7", "#86c5c0", "#e9d173",
	"#b7a48c", "#a6c8f0", "#c7d98a", "#f0b98d", "#9fd6e8", "#d9c2a6",
}

// threadColor returns thread id's fill: the twelve hand-picked colours
// first, then colours spread by the golden angle over the hues that are
// not purple or red, at three lightnesses, so that many threads stay
// distinct and a thread keeps its colour from run to run.
func threadColor(id int32) string {
	if id <= 0 {
		return "#c8ccd2"
	}
	if int(id) <= len(threadColors) {
		return threadColors[id-1]
	}
	n := float64(id - int32(len(threadColors)))
	hue := 25 + math.Mod(n*137.508, 230) // 25°–255°: orange through blue
	light := [...]int{70, 80, 62}[int(n)%3]
	return "hsl(" + strconv.Itoa(int(hue)) + ",55%," + strconv.Itoa(light) + "%)"
}

// WriteHTML writes recs (one run, in emission order) as a
// self-contained, offline HTML page: inline CSS, one inline SVG and a few
// lines of inline script (it moves SVG titles into hover tooltips and
// records the lane count in <body data-lanes>); nothing is fetched. Under
// a title from meta (scenario, seed, outcome) and a legend, each processor
// has a lane, <g class="lane" id="lane-cpuN">, with:
//
//   - thread slices, colored per thread and labelled, hatched while the
//     thread spins on a spin lock;
//   - a DPC row (the drain context and each routine in it) and an ISR row;
//   - the processor's IRQL as a step line;
//   - markers for signal, interrupt and DPC-queue records above, and for
//     IRP, work-item queue/run and bug-check records below, with an arrow
//     from each work item's queueing to its run (PairFlows).
//
// Records without a processor get a "no cpu" row. A bug check draws a red
// line through every lane. The time axis is to scale except for idle gaps
// longer than the rest of the run, drawn as labelled breaks. Above the
// chart, an overview strip (<svg class="overview">) shows the whole run
// with every long idle stretch compressed and a window over the chart's
// visible range; clicking it centres the chart there, dragging across it
// shows the dragged range, dragging the window pans. For large
// runs, slices narrower than a pixel merge into pale blocks tinted by
// their busiest thread, dense marker lines become ticks and flow arrows
// are capped, with a visible note, so the page stays small whatever the
// number of records. The same records always give the same bytes.
func WriteHTML(w io.Writer, recs []des.Record, meta Meta) error {
	p := newPlot(recs, meta)
	bw := bufio.NewWriter(w)
	p.b = bw
	p.document()
	return bw.Flush()
}

// newPlot lays out recs for drawing.
func newPlot(recs []des.Record, meta Meta) *plot {
	m := buildModel(recs, meta.CPUs, meta.End)
	p := &plot{m: m, meta: meta, placed: map[int][2]float64{}, divergence: -1}
	p.layout()
	return p
}

type plot struct {
	m    *model
	meta Meta
	b    *bufio.Writer

	segs     []segment // the time axis, left to right
	shown    des.Time  // time shown to scale (the run less its compressed gaps)
	laneTop  []float64
	extraTop float64 // the "no cpu" row, when there is one; -1 if none
	height   float64
	maxIrql  int8

	mergedSlices, mergedBoxes, mergedMarkers, droppedFlows int

	placed  map[int][2]float64 // flow record index → its marker's position
	bugBand float64            // top of the bug-check label band, if any
	// perturbBand is the top of the band of perturbation labels, if any.
	perturbBand float64
	// divergence is where this run and the one it is compared with first
	// differ (an explanation page), -1 when none is drawn.
	divergence des.Time
	ticks      []float64 // x of the time axis ticks
}

func (p *plot) layout() {
	m := p.m
	p.timeSegments()
	y := axisHeight
	for _, in := range m.instants {
		if in.cat == "bugcheck" {
			p.bugBand = y
			y += 18
			break
		}
	}
	if len(p.meta.Perturbations) > 0 {
		p.perturbBand = y
		y += 18
	}
	p.extraTop = -1
	if p.hasNoCPUMarkers() {
		p.extraTop = y
		y += 26 + laneGap
	}
	for c := 0; c < m.cpus; c++ {
		p.laneTop = append(p.laneTop, y)
		y += laneH + laneGap
	}
	p.height = y + 4
	p.maxIrql = 2
	for _, pts := range m.irql {
		for _, pt := range pts {
			p.maxIrql = max(p.maxIrql, pt.level)
		}
	}
}

func (p *plot) hasNoCPUMarkers() bool {
	for _, in := range p.m.instants {
		if in.cpu < 0 && markerShape(&p.m.recs[in.rec], in) != "" {
			return true
		}
	}
	return false
}

func (p *plot) w(s string) { p.b.WriteString(s) }

func (p *plot) ws(parts ...string) {
	for _, s := range parts {
		p.b.WriteString(s)
	}
}

// f formats a coordinate with one decimal.
func f(v float64) string {
	v = math.Round(v*10) / 10
	if v == 0 {
		v = 0 // no "-0"
	}
	return strconv.FormatFloat(v, 'f', -1, 64)
}

// esc escapes s for HTML and XML text and attributes, dropping characters
// XML does not allow.
func esc(s string) string {
	s = strings.Map(func(r rune) rune {
		if r < 0x20 && r != '\t' && r != '\n' && r != '\r' || r == utf8.RuneError || r == 0xFFFE || r == 0xFFFF {
			return -1
		}
		return r
	}, s)
	return html.EscapeString(s)
}

// document writes the page: head and title, legend, downsampling note,
// the chart, then the tooltip script.
func (p *plot) document() {
	p.header()
	p.chart()
	p.w(pageFooter)
}

// chart writes the legend, the downsampling note and the chart.
func (p *plot) chart() {
	// The SVG is drawn first: the legend and the note depend on what it holds.
	svg := p.draw(p.svg)
	ov := p.draw(p.overview)
	p.legend()
	if n := p.noteText(); n != "" {
		p.ws(`<div class="note" id="downsampled">`, esc(n), "</div>\n")
	}
	p.ws(`<div class="chart">`, "\n", ov, svg, "</div>\n")
}

// header writes the page up to the outcome badge: head with the inline
// style, title, the run's seed, size and time span, and its outcome.
func (p *plot) header() {
	m, meta := p.m, p.meta
	title := "wqsim timeline"
	if meta.Scenario != "" {
		title += " — " + meta.Scenario
	}
	outcome, class := outcomeBadge(meta.Outcome)
	p.ws(`<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>`, esc(title), "</title>\n", pageStyle, `</head>
<body>
<h1>`, esc(title), `</h1>
<div class="meta">seed <b>`, strconv.FormatUint(meta.Seed, 10), `</b> · `,
		strconv.Itoa(m.cpus), plural(m.cpus, " processor", " processors"), ` · `, strconv.Itoa(len(m.recs)), plural(len(m.recs), " record", " records"),
		` · `, esc(fmtTime(int64(m.start))), ` – `, esc(fmtTime(int64(m.end))), `</div>
<div class="outcome `, class, `"><span class="k">outcome</span> `, esc(outcome), `</div>
`)
	p.runFacts()
}

// runFacts lists the run's perturbations (what its schedule did unlike the
// natural one) and the coverage marks it reached.
func (p *plot) runFacts() {
	if ps := p.meta.Perturbations; len(ps) > 0 {
		p.ws(`<div class="facts" id="perturbations"><span class="k">perturbed decisions</span><ul>`)
		for i, pt := range ps {
			who := ""
			if pt.Actor != 0 {
				who = " (for " + actorName(p.m.recs, pt.Actor) + ")"
			}
			p.ws(`<li id="perturbation-`, strconv.Itoa(i+1), `">t=`, esc(fmtTime(int64(pt.At))), esc(who), `: `, esc(pt.Text), `</li>`)
		}
		p.w("</ul></div>\n")
	}
	if len(p.meta.Marks) > 0 {
		p.ws(`<div class="facts" id="marks"><span class="k">racy paths reached</span><ul>`)
		for _, m := range p.meta.Marks {
			p.ws(`<li>`, esc(m), `</li>`)
		}
		p.w("</ul></div>\n")
	}
}

// outcomeBadge returns the outcome to show and its badge's class: "ok",
// "unknown" when the run's outcome was not given, "bad" for any finding.
func outcomeBadge(outcome string) (text, class string) {
	switch outcome {
	case "":
		return "unknown", "unknown"
	case "ok", "unknown":
		return outcome, outcome
	}
	return outcome, "bad"
}

// draw returns what paint writes (the chart's SVG, the overview strip),
// drawn into a buffer of its own.
func (p *plot) draw(paint func()) string {
	main := p.b
	var svg strings.Builder
	p.b = bufio.NewWriter(&svg)
	paint()
	p.b.Flush()
	p.b = main
	return svg.String()
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

func (p *plot) noteText() string {
	var parts []string
	if p.mergedSlices > 0 {
		parts = append(parts, strconv.Itoa(p.mergedSlices)+" slices narrower than a pixel are merged into "+
			strconv.Itoa(p.mergedBoxes)+" pale blocks in the colour of their busiest thread")
	}
	if p.mergedMarkers > 0 {
		parts = append(parts, strconv.Itoa(p.mergedMarkers)+" markers share a pixel with another")
	}
	if p.droppedFlows > 0 {
		parts = append(parts, "only the first "+strconv.Itoa(maxFlowArrows)+" of "+
			strconv.Itoa(maxFlowArrows+p.droppedFlows)+" work-item arrows are drawn")
	}
	if len(parts) == 0 {
		return ""
	}
	return "Downsampled: " + strings.Join(parts, "; ") + ". Hover a block for what it holds; the Perfetto JSON export has every record."
}

func (p *plot) legend() {
	p.w(`<div class="legend"><span class="grp">Threads</span>`)
	for i, t := range p.m.threads {
		if i == maxLegendThreads {
			p.ws(`<span class="i">+`, strconv.Itoa(len(p.m.threads)-i), ` more</span>`)
			break
		}
		p.ws(`<span class="i"><span class="sw" style="background:`, threadColor(t.id), `"></span>`, esc(t.name), `</span>`)
	}
	if len(p.m.threads) == 0 {
		p.w(`<span class="i">none ran</span>`)
	}
	p.w("</div>\n")
	p.w(`<div class="legend"><span class="grp">Key</span>`)
	p.w(`<span class="i"><span class="sw hatch"></span>spinning on a spin lock</span>`)
	p.w(`<span class="i"><span class="sw" style="background:#7b52ab"></span>DPC routine</span>`)
	p.w(`<span class="i"><span class="sw" style="background:#c0392b"></span>ISR</span>`)
	if p.mergedBoxes > 0 {
		p.w(`<span class="i"><span class="sw merged"></span>merged slices</span>`)
	}
	p.w(`<span class="i"><span class="sw irql"></span>IRQL</span>`)
	p.w(`<span class="i"><span class="mk sig"></span>signal</span>`)
	p.w(`<span class="i"><span class="mk int"></span>interrupt</span>`)
	p.w(`<span class="i"><span class="mk dpcq"></span>DPC queued</span>`)
	p.w(`<span class="i"><span class="mk irp"></span>IRP</span>`)
	p.w(`<span class="i"><span class="mk q"></span>work item queued <span class="arrow"></span> <span class="mk r"></span> run</span>`)
	p.w(`<span class="i"><span class="mk bug">✕</span>bug check</span>`)
	if len(p.meta.Perturbations) > 0 {
		p.w(`<span class="i"><span class="sw" style="background:#e67e22;width:3px"></span>perturbed decision (⚑)</span>`)
	}
	p.w("</div>\n")
}

// pageStyle is the page's inline CSS (nothing is fetched).
const pageStyle = `<style>
body{margin:0;padding:18px 22px;font:13px/1.4 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif;color:#1d2330;background:#fff}
h1{font-size:20px;margin:0 0 4px;font-weight:650}
.meta{color:#4a5263;margin-bottom:10px}
.meta b{color:#1d2330;font-weight:600}
.outcome{display:inline-block;padding:3px 10px;border-radius:5px;font-weight:600;font-size:12.5px;margin-bottom:8px;max-width:1320px}
.outcome .k{font-weight:500;opacity:.75;margin-right:4px}
.facts{margin:2px 0 8px;font-size:12.5px}
.facts .k{font-weight:600;color:#b35900}
.facts ul{margin:2px 0 0;padding-left:20px}
h2{font-size:15px;margin:16px 0 6px;font-weight:650}
pre#explain{font-size:11.5px;background:#f6f7f9;padding:8px;overflow-x:auto}
.zoombar{margin:4px 0;font-size:12px}
.zoombar button{font:inherit;padding:1px 8px;margin-right:2px}
.zoombar input{font:inherit;width:260px}
.hit{stroke:#ff00aa !important;stroke-width:2.5px !important}
.outcome.ok{background:#e3f4e5;color:#1e6b2a}
.outcome.unknown{background:#eef0f3;color:#4a5263}
.outcome.bad{background:#fde4e1;color:#a42a1c;border-left:4px solid #d62728}
.legend{display:flex;flex-wrap:wrap;gap:4px 16px;align-items:center;margin:3px 0;font-size:12px;color:#333a48}
.legend .grp{color:#7a8292;font-weight:600;text-transform:uppercase;font-size:10.5px;letter-spacing:.04em;width:58px}
.legend span.i{display:inline-flex;align-items:center;gap:5px}
.sw{display:inline-block;width:18px;height:11px;border-radius:2px;border:1px solid rgba(0,0,0,.25)}
.sw.hatch{background:repeating-linear-gradient(135deg,rgba(30,35,48,.55) 0 1.5px,transparent 1.5px 4px),#8fb3de}
.sw.irql{height:0;border:0;border-top:2px solid #3b5b92;width:18px;border-radius:0}
.sw.merged{background:repeating-linear-gradient(90deg,#8fb3de 0 2px,#f7b267 2px 4px);opacity:.6}
.mk{display:inline-block;width:9px;height:9px}
.mk.irp{background:#1f6fb2;transform:rotate(45deg) scale(.8)}
.mk.q{border:2px solid #d35400;border-radius:50%;width:6px;height:6px;background:#fff}
.mk.r{background:#d35400;border-radius:50%}
.mk.sig{width:0;height:0;border-left:5px solid transparent;border-right:5px solid transparent;border-top:8px solid #7d8592}
.mk.int{width:0;height:0;border-left:5px solid transparent;border-right:5px solid transparent;border-bottom:8px solid #c0392b}
.mk.dpcq{width:0;height:0;border-left:4px solid transparent;border-right:4px solid transparent;border-top:7px solid #7b52ab}
.mk.bug{color:#d62728;font-weight:800;width:auto;height:auto;line-height:1}
.arrow{display:inline-block;width:20px;border-top:1.5px solid #d35400;position:relative}
.note{background:#fff6d6;border:1px solid #eed98a;border-radius:4px;padding:4px 10px;margin:4px 0 8px;font-size:12px;color:#5f4b00}
.chart{overflow-x:auto;margin-top:8px}
svg{display:block;max-width:100%;height:auto}
svg text{font-family:system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif}
#tip{position:absolute;display:none;pointer-events:none;background:rgba(25,29,38,.94);color:#fff;padding:5px 8px;border-radius:4px;font-size:12px;white-space:pre;max-width:520px;z-index:9}
footer{color:#8a91a0;font-size:11px;margin-top:6px}
</style>
`

// pageFooter ends the page: the tooltip, a footer and the inline script.
// The script moves SVG titles into hover tooltips, records the lane count
// in <body data-lanes>, and gives every chart zoom, pan and search (see
// zoomScript).
const pageFooter = `<div id="tip"></div>
<footer>Generated by wqsim from the run's trace records. Hover for details; zoom with the buttons or Ctrl+wheel, drag to pan, and search names and events in the box above each chart. In the overview strip (idle stretches compressed), click to centre the chart there, drag across a range to show it, or drag the window to pan. The Perfetto exports of the same run have every record.</footer>
<script>
` + zoomScript + `</script>
</body>
</html>
`

// zoomScript is the page's only code (nothing is fetched). For each chart
// it keeps every element's original x coordinates and, on zoom or pan,
// maps x ≥ gutter to gutter + (x − gutter − offset)·zoom: rectangles and
// curves stretch, text and markers move without stretching (labels stay
// legible), and whatever falls outside the plot area is hidden or
// clipped. Search marks every element whose tooltip contains the text,
// counts them and zooms to each in turn. Adding #selftest to the address
// zooms, pans and searches once and records the results on <body>, for
// the end-to-end test.
const zoomScript = `(function(){
var tip=document.getElementById("tip");
var charts=document.querySelectorAll("svg.timeline");
document.body.setAttribute("data-lanes",String(document.querySelectorAll("svg.timeline g.lane").length));
function num(e,a){var v=e.getAttribute(a);return v===null?null:parseFloat(v);}
var TOKENS=/([MLCQTSHVAZmlcqtshvaz])|(-?[0-9.]+)/g;
function isX(cmd,k){return cmd===cmd.toUpperCase()&&cmd!=="V"&&(cmd==="H"||k%2===0);}
function coords(s){var out=[],re=new RegExp(TOKENS.source,"g"),m,cmd="M",k=0;
  while((m=re.exec(s))){if(m[1]){cmd=m[1];k=0;continue;}if(isX(cmd,k))out.push(parseFloat(m[2]));k++;}
  return out;}
function elide(name,n){if(name.length<=n)return name;if(n<3)return "";var i=name.indexOf(".");if(i>=0&&name.length-i-1<=n)return name.slice(i+1);
  var c=name.charAt(name.length-1);if(c>="0"&&c<="9")return "\u2026"+name.slice(name.length-n+1);return name.slice(0,n-1)+"\u2026";}
function setup(svg){
  var G=num(svg,"data-gutter"),W=num(svg,"data-plot-width"),z=1,off=0,items=[],hits=[],hit=-1;
  svg.querySelectorAll("title").forEach(function(t){var e=t.parentNode;e.setAttribute("data-tip",t.textContent);e.removeChild(t);});
  svg.querySelectorAll("rect,line,text,circle,path,polygon").forEach(function(e){
    if(e.closest("defs"))return;
    var it={e:e,x:num(e,"x"),w:num(e,"width"),x1:num(e,"x1"),x2:num(e,"x2"),cx:num(e,"cx"),d:e.getAttribute("d"),full:e.getAttribute("data-full"),room:num(e,"data-room"),per:(num(e,"font-size")||12)*0.56};
    var x0=it.x!==null?it.x:it.x1!==null?Math.min(it.x1,it.x2):it.cx;
    if(x0===null&&it.d){var xs=coords(it.d);if(xs.length){x0=Math.min.apply(null,xs);it.span=Math.max.apply(null,xs)-x0;it.x0=x0;}}
    if(x0!==null&&x0>=G-0.5)items.push(it);
  });
  function X(x){return G+(x-G-off)*z;}
  function inPlot(x){return x>=G-0.5&&x<=G+W+0.5;}
  function show(e,v){e.style.display=v?"":"none";}
  function mapPath(s,shift,stretch){var re=new RegExp(TOKENS.source,"g"),m,cmd="M",k=0,out="";
    while((m=re.exec(s))){if(m[1]){cmd=m[1];k=0;out+=m[1];continue;}var v=parseFloat(m[2]);
      if(isX(cmd,k))v=stretch?X(v):v+shift;out+=(/[A-Za-z]$/.test(out)?"":" ")+(Math.round(v*100)/100);k++;}
    return out;}
  function apply(){
    items.forEach(function(it){var e=it.e;
      if(it.x!==null&&it.w!==null){var a=Math.max(X(it.x),G),b=Math.min(X(it.x+it.w),G+W);show(e,b>a||it.w<1&&inPlot(X(it.x)));e.setAttribute("x",a);e.setAttribute("width",Math.max(b-a,Math.min(it.w,0.8)));}
      else if(it.x!==null){var nx=X(it.x);show(e,inPlot(nx));e.setAttribute("x",nx);if(it.full)e.textContent=elide(it.full,Math.floor(Math.min(it.room*z,G+W-nx)/it.per));}
      else if(it.x1!==null&&Math.abs(it.x2-it.x1)<=12&&it.x1!==it.x2){var mid=(it.x1+it.x2)/2,sh=X(mid)-mid;show(e,inPlot(X(mid)));e.setAttribute("x1",it.x1+sh);e.setAttribute("x2",it.x2+sh);}
      else if(it.x1!==null){var p=X(it.x1),q=X(it.x2);show(e,Math.max(p,q)>=G-0.5&&Math.min(p,q)<=G+W+0.5);e.setAttribute("x1",Math.min(Math.max(p,G),G+W));e.setAttribute("x2",Math.min(Math.max(q,G),G+W));}
      else if(it.cx!==null){var c=X(it.cx);show(e,inPlot(c));e.setAttribute("cx",c);}
      else if(it.d){var stretch=it.span>12,mid=it.x0+it.span/2;show(e,inPlot(X(stretch?it.x0:mid)));e.setAttribute("d",mapPath(it.d,X(mid)-mid,stretch));}
    });
    svg.setAttribute("data-zoom",String(z));if(ovSync)ovSync();}
  function zoomAt(f,x){var t=(x-G)/z+off;z=Math.min(Math.max(z*f,1),4096);off=Math.min(Math.max(t-(x-G)/z,0),W-W/z);apply();}
  function panBy(dx){off=Math.min(Math.max(off-dx/z,0),W-W/z);apply();}
  var bar=document.createElement("div");bar.className="zoombar";
  bar.innerHTML='<button data-z="out" title="zoom out">\u2212</button><button data-z="in" title="zoom in">+</button><button data-z="reset">reset</button> <input type="search" placeholder="search threads, events, objects" aria-label="search the timeline"> <span class="hits"></span> <button data-z="next">next</button>';
  svg.parentNode.parentNode.insertBefore(bar,svg.parentNode);
  var input=bar.querySelector("input"),count=bar.querySelector(".hits");
  bar.addEventListener("click",function(ev){var k=ev.target.getAttribute("data-z");if(!k)return;
    if(k==="in")zoomAt(2,G+W/2);if(k==="out")zoomAt(0.5,G+W/2);if(k==="reset"){z=1;off=0;apply();}if(k==="next")next();});
  function orig(e){for(var i=0;i<items.length;i++){var it=items[i];if(it.e===e||it.e.parentNode===e)return it.x!==null?it.x:it.x1!==null?it.x1:it.cx!==null?it.cx:it.x0;}return G;}
  function search(q){hits=[];hit=-1;q=q.toLowerCase();
    svg.querySelectorAll("[data-tip]").forEach(function(e){var m=q!==""&&e.getAttribute("data-tip").toLowerCase().indexOf(q)>=0;e.classList.toggle("hit",m);if(m)hits.push(e);});
    hits.sort(function(a,b){return orig(a)-orig(b);});count.textContent=q===""?"":hits.length+" found";svg.setAttribute("data-hits",String(hits.length));}
  function next(){if(!hits.length)return;hit=(hit+1)%hits.length;var x=orig(hits[hit]);if(z<8)z=8;off=Math.min(Math.max(x-G-W/(2*z),0),W-W/z);apply();}
  input.addEventListener("input",function(){search(input.value);});
  function toSVG(clientX){var r=svg.getBoundingClientRect();return (clientX-r.left)*svg.viewBox.baseVal.width/r.width;}
  svg.addEventListener("wheel",function(ev){if(!ev.ctrlKey&&!ev.metaKey)return;ev.preventDefault();zoomAt(ev.deltaY<0?1.25:0.8,toSVG(ev.clientX));},{passive:false});
  var drag=null;svg.addEventListener("mousedown",function(ev){drag=toSVG(ev.clientX);});
  window.addEventListener("mouseup",function(){drag=null;});
  svg.addEventListener("mousemove",function(ev){if(drag!==null&&z>1){var x=toSVG(ev.clientX);panBy(x-drag);drag=x;}
    var e=ev.target.closest("[data-tip]");if(!e){tip.style.display="none";return;}
    tip.textContent=e.getAttribute("data-tip");tip.style.display="block";tip.style.left=(ev.pageX+14)+"px";tip.style.top=(ev.pageY+14)+"px";});
  svg.addEventListener("mouseleave",function(){tip.style.display="none";});
  var ovSync=overview(svg.parentNode.querySelector("svg.overview"),G,W,function(){return [z,off];},function(nz,noff){z=Math.min(Math.max(nz,1),4096);off=Math.min(Math.max(noff,0),W-W/z);apply();});
  if(ovSync)ovSync();
  svg.wqsim={zoomAt:zoomAt,panBy:panBy,search:search,next:next,reset:function(){z=1;off=0;apply();},visible:function(){var n=0;items.forEach(function(it){if(it.e.tagName==="rect"&&it.e.style.display!=="none")n++;});return n;}};
}
function interp(xs,ys,v){var n=xs.length;if(v<=xs[0])return ys[0];if(v>=xs[n-1])return ys[n-1];
  for(var i=1;i<n;i++)if(v<=xs[i]){var a=xs[i-1],b=xs[i];return b>a?ys[i-1]+(v-a)/(b-a)*(ys[i]-ys[i-1]):ys[i];}
  return ys[n-1];}
function overview(ov,G,W,get,set){if(!ov)return null;
  var K={t:[],o:[],c:[]};ov.getAttribute("data-knots").split(" ").forEach(function(k){var p=k.split(",");K.t.push(+p[0]);K.o.push(+p[1]);K.c.push(+p[2]);});
  var view=ov.querySelector(".ov-view"),brush=ov.querySelector(".ov-brush"),drag=null;
  function sync(){var s=get(),a=G+s[1],b=a+W/s[0],oa=interp(K.c,K.o,a),ob=interp(K.c,K.o,b);
    view.setAttribute("x",oa);view.setAttribute("width",Math.max(ob-oa,2));
    ov.setAttribute("data-view",Math.round(interp(K.c,K.t,a))+","+Math.round(interp(K.c,K.t,b)));}
  function chartX(x){return interp(K.o,K.c,Math.min(Math.max(x,G),G+W));}
  function toX(clientX){var r=ov.getBoundingClientRect();return (clientX-r.left)*ov.viewBox.baseVal.width/r.width;}
  ov.addEventListener("mousedown",function(ev){ev.preventDefault();var x=toX(ev.clientX),vx=+view.getAttribute("x"),vw=+view.getAttribute("width");
    drag={x0:x,last:x,pan:get()[0]>1&&x>=vx&&x<=vx+vw,moved:false};});
  window.addEventListener("mousemove",function(ev){if(!drag)return;var x=toX(ev.clientX),s=get();if(Math.abs(x-drag.x0)>3)drag.moved=true;
    if(drag.pan)set(s[0],s[1]+chartX(x)-chartX(drag.last));
    else if(drag.moved){brush.setAttribute("display","");brush.setAttribute("x",Math.min(x,drag.x0));brush.setAttribute("width",Math.abs(x-drag.x0));}
    drag.last=x;});
  window.addEventListener("mouseup",function(ev){if(!drag)return;var x=toX(ev.clientX),d=drag,s=get();drag=null;brush.setAttribute("display","none");
    if(d.pan&&d.moved)return;
    if(!d.moved){var z=Math.max(s[0],8);set(z,chartX(x)-G-W/(2*z));return;}
    var a=chartX(Math.min(x,d.x0)),b=chartX(Math.max(x,d.x0));if(b-a<0.01)return;set(W/(b-a),a-G);});
  ov.setAttribute("data-ready","1");
  return sync;}
charts.forEach(setup);
if(location.hash==="#selftest"&&charts.length){var s=charts[0],api=s.wqsim,b=document.body,G=parseFloat(s.getAttribute("data-gutter"));
  b.setAttribute("data-rects-1x",String(api.visible()));
  api.zoomAt(16,G+10);b.setAttribute("data-rects-16x",String(api.visible()));b.setAttribute("data-zoom",s.getAttribute("data-zoom"));
  api.panBy(-400);b.setAttribute("data-rects-panned",String(api.visible()));
  api.search("bugcheck");b.setAttribute("data-hits",s.getAttribute("data-hits"));api.next();b.setAttribute("data-zoom-after-next",s.getAttribute("data-zoom"));
  var ov=s.parentNode.querySelector("svg.overview");if(ov){api.reset();b.setAttribute("data-ov-view-0",ov.getAttribute("data-view"));
    var r=ov.getBoundingClientRect(),k=r.width/ov.viewBox.baseVal.width,cy=r.top+10;
    function mouse(type,x){(type==="mousedown"?ov:window).dispatchEvent(new MouseEvent(type,{bubbles:true,cancelable:true,clientX:r.left+x*k,clientY:cy}));}
    var cx=G+0.75*parseFloat(s.getAttribute("data-plot-width"));mouse("mousedown",cx);mouse("mouseup",cx);
    b.setAttribute("data-ov-click-x",String(cx));b.setAttribute("data-ov-view-click",ov.getAttribute("data-view"));b.setAttribute("data-ov-zoom-click",s.getAttribute("data-zoom"));
    var x1=G+100,x2=G+300;mouse("mousedown",x1);mouse("mousemove",(x1+x2)/2);mouse("mousemove",x2);mouse("mouseup",x2);
    b.setAttribute("data-ov-view-drag",ov.getAttribute("data-view"));}}
})();
`
