package timeline

import (
	"bufio"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/wqsim/wqsim/des"
)

// Perturbation is a decision of a run that did not take its natural
// choice, placed in time: what the schedule had to do differently.
type Perturbation struct {
	At    des.Time // when the decision was made
	Actor int32    // the thread it was made for, 0 when none
	Text  string   // in words: "decision 89: kernel: inject preemption → early quantum end"
}

// FirstDifference returns the index of the first record at which two runs
// of one scenario differ (time, processor, IRQL, actor, thread, kind,
// sub-kind, object or numbers), or -1 when neither run has a record the
// other lacks. Two runs of one scenario with the same seed agree until
// the first perturbation has an effect; that is where a failing run leaves
// the natural one.
func FirstDifference(a, b []des.Record) int {
	n := min(len(a), len(b))
	for i := 0; i < n; i++ {
		if a[i] != b[i] {
			return i
		}
	}
	if len(a) == len(b) {
		return -1
	}
	return n
}

// Explanation is what WriteExplain and WriteExplainHTML show: a failing run
// beside the natural run of the same scenario and seed.
type Explanation struct {
	Natural, Failing Run
	// Perturbations are the failing run's non-natural decisions.
	Perturbations []Perturbation
	// Context is how many agreeing records to show before the first
	// difference, and how many of each run after it; 0 means 8.
	Context int
}

func (e *Explanation) context() int {
	if e.Context > 0 {
		return e.Context
	}
	return 8
}

// WriteExplain writes the explanation as text: the perturbations, how long
// the two runs agree, the last agreeing records, then each run's records
// from the first difference on, and both outcomes.
func WriteExplain(w io.Writer, e *Explanation) error {
	bw := bufio.NewWriter(w)
	nat, fail := e.Natural.Records, e.Failing.Records
	fmt.Fprintf(bw, "natural run:  %s\nfailing run:  %s\n", e.Natural.Meta.Outcome, e.Failing.Meta.Outcome)
	fmt.Fprintf(bw, "what the failing schedule did differently (%d %s):\n", len(e.Perturbations), plural(len(e.Perturbations), "perturbation", "perturbations"))
	for _, p := range e.Perturbations {
		fmt.Fprintf(bw, "  t=%v  %s\n", p.At, p.Text)
	}
	if len(e.Perturbations) == 0 {
		fmt.Fprintln(bw, "  none: the natural schedule fails by itself")
	}
	d := FirstDifference(nat, fail)
	if d < 0 {
		fmt.Fprintln(bw, "the two runs have identical traces")
		return bw.Flush()
	}
	fmt.Fprintf(bw, "both runs agree on their first %d %s", d, plural(d, "record", "records"))
	if d > 0 {
		fmt.Fprintf(bw, " (until t=%v)", fail[d-1].At)
	}
	fmt.Fprintln(bw, "; the last of them:")
	writeRecords(bw, "  ", nat[max(0, d-e.context()):d])
	fmt.Fprintln(bw, "then the natural run goes on:")
	writeRecords(bw, "  natural  ", nat[d:min(len(nat), d+e.context())])
	fmt.Fprintln(bw, "where the failing run goes on:")
	writeRecords(bw, "  failing  ", fail[d:min(len(fail), d+e.context())])
	return bw.Flush()
}

// writeRecords writes recs in the text trace's columns, each line after
// prefix.
func writeRecords(w *bufio.Writer, prefix string, recs []des.Record) {
	var line strings.Builder
	sink := &des.TextSink{W: &line}
	for i := range recs {
		line.Reset()
		sink.Write(&recs[i])
		w.WriteString(prefix)
		w.WriteString(line.String())
	}
	if len(recs) == 0 {
		w.WriteString(prefix + "(no more records)\n")
	}
}

// WriteExplainHTML writes the explanation as a self-contained offline page:
// the failing run's timeline, with its perturbations marked, above the
// natural run's, each with a line at the first point where the two
// differ, and the text explanation below them.
func WriteExplainHTML(w io.Writer, e *Explanation) error {
	d := FirstDifference(e.Natural.Records, e.Failing.Records)
	at := des.Time(-1)
	if d >= 0 && d < len(e.Failing.Records) {
		at = e.Failing.Records[d].At
	} else if d >= 0 && d < len(e.Natural.Records) {
		at = e.Natural.Records[d].At
	}
	failMeta := e.Failing.Meta
	failMeta.Perturbations = e.Perturbations
	failing := newPlot(e.Failing.Records, failMeta)
	failing.divergence = at
	// The natural run is drawn over the failing run's span, so the two
	// timelines cover the same stretch of virtual time.
	natRecs, natMeta, clipped := clipTo(e.Natural, failing.m.end)
	natural := newPlot(natRecs, natMeta)
	natural.divergence = at

	bw := bufio.NewWriter(w)
	failing.b = bw
	failing.header()
	failing.ws(`<h2>failing run</h2>`, "\n")
	failing.chart()
	natural.b = bw
	natural.ws(`<h2>natural run (every decision takes its natural choice) — `, esc(e.Natural.Meta.Outcome), `</h2>`, "\n")
	if clipped > 0 {
		natural.ws(`<div class="note">Shown up to `, esc(fmtTime(int64(failing.m.end))), `, where the failing run ends; `,
			strconv.Itoa(clipped), ` later records of the natural run are left out (wqsim trace shows them all).</div>`, "\n")
	}
	natural.chart()
	var text strings.Builder
	if err := WriteExplain(&text, e); err != nil {
		return err
	}
	natural.ws(`<h2>explanation</h2>`, "\n", `<pre id="explain">`, esc(text.String()), "</pre>\n")
	natural.w(pageFooter)
	return bw.Flush()
}

// clipTo returns r's records up to end (and its meta ending there) and
// how many records were left out.
func clipTo(r Run, end des.Time) ([]des.Record, Meta, int) {
	n := len(r.Records)
	for n > 0 && r.Records[n-1].At > end {
		n--
	}
	meta := r.Meta
	if n < len(r.Records) {
		meta.End = end
	}
	return r.Records[:n], meta, len(r.Records) - n
}

// perturbationLabel is the short label drawn at a perturbation's line.
func perturbationLabel(p Perturbation) string {
	if i := strings.Index(p.Text, ":"); i > 0 && strings.HasPrefix(p.Text, "decision ") {
		return "⚑ " + p.Text[:i]
	}
	return "⚑ perturbation"
}

// actorName returns the name thread id acted under in the records, or its
// number.
func actorName(recs []des.Record, id int32) string {
	for i := range recs {
		if recs[i].Thread == id && recs[i].Actor != "" {
			return recs[i].Actor
		}
	}
	return "thread " + strconv.Itoa(int(id))
}
