package lab

import (
	"encoding/csv"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/wqsim/wqsim/des"
)

// CSVHeader is the header of results.csv. Units are in the names: _us
// microseconds, _ms milliseconds, _per_s per second of virtual time;
// util and _frac are fractions of the window. The _ci95 columns, filled on
// aggregate rows only, are the half-widths of 95 % Student-t confidence
// intervals of the mean across seeds (empty with one seed). p_wait is
// the fraction of items whose routine did not start at once; the
// erlang_c_ columns, filled only when the workload is an M/M/c queue under
// the row's pool (see MMc), are the theory's servers, probability of
// waiting and mean wait, beside the measured p_wait and lat_mean_us.
var CSVHeader = []string{
	"workload", "policy", "dispatcher", "pool", "seed", "outcome",
	"processors", "window_ms", "offered_per_s", "arrived", "completed", "unfinished",
	"lat_p50_us", "lat_p90_us", "lat_p99_us", "lat_max_us", "lat_mean_us",
	"resp_p50_us", "resp_p99_us", "throughput_per_s",
	"util_mean", "util_per_cpu", "switches", "preemptions", "round_robins",
	"inversion_ms", "inversion_frac", "starvation_ms", "ready_wait_mean_us",
	"threads_peak", "dyn_created", "drain_ms",
	"lat_p99_ci95_us", "throughput_ci95_per_s", "preemptions_ci95_per_s", "inversion_ci95_pct",
	"p_wait", "lat_mean_ci95_us", "p_wait_ci95", "erlang_c_servers", "erlang_c_p_wait", "erlang_c_wait_mean_us",
}

// WriteCSV writes results.csv: one row per cell, then one aggregate row
// (seed "all") per workload × policy.
func (r *Results) WriteCSV(w io.Writer) error {
	cw := csv.NewWriter(w)
	if err := cw.Write(CSVHeader); err != nil {
		return err
	}
	for i := range r.Cells {
		if err := cw.Write(r.Cells[i].row()); err != nil {
			return err
		}
	}
	for i := range r.Aggregates {
		if err := cw.Write(r.Aggregates[i].row()); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}

func (c *CellResult) row() []string {
	seed := strconv.FormatUint(c.Seed, 10)
	if c.Aggregate {
		seed = "all"
	}
	utils := make([]string, len(c.Util))
	for i, u := range c.Util {
		utils[i] = ff(u, 4)
	}
	return []string{
		c.Workload, c.Policy, c.Dispatcher, c.Pool, seed, c.Outcome,
		strconv.Itoa(c.Processors), ff(ms(float64(c.Window)), 3), ff(c.Offered, 3),
		strconv.Itoa(c.Arrived), strconv.Itoa(c.Completed), strconv.Itoa(c.Unfinished),
		ff(us(c.Lat.P50), 3), ff(us(c.Lat.P90), 3), ff(us(c.Lat.P99), 3), ff(us(c.Lat.Max), 3), ff(us(c.Lat.Mean), 3),
		ff(us(c.Resp.P50), 3), ff(us(c.Resp.P99), 3), ff(c.Throughput, 3),
		ff(c.UtilMean, 4), strings.Join(utils, ";"),
		strconv.Itoa(c.Switches), strconv.Itoa(c.Preemptions), strconv.Itoa(c.RoundRobins),
		ff(ms(float64(c.Inversion)), 3), ff(c.InversionFrac, 4), ff(ms(float64(c.Starvation)), 3),
		ff(us(float64(c.ReadyWaitMean)), 3),
		strconv.Itoa(c.ThreadsPeak), strconv.Itoa(c.DynCreated), ff(ms(float64(c.Drain)), 3),
		half(c.CI.LatP99us, 3), half(c.CI.Throughput, 3), half(c.CI.PreemptRate, 3), half(c.CI.InversionPc, 4),
		ff(c.WaitFrac, 4), half(c.CI.LatMeanUs, 3), half(c.CI.WaitFrac, 4),
		mmcServers(c.MMc), mmcField(c.MMc, func(m *MMc) float64 { return m.PWait }, 4),
		mmcField(c.MMc, func(m *MMc) float64 { return us(m.MeanWait) }, 3),
	}
}

// mmcServers and mmcField format an Erlang C column, "" when the cell is
// not an M/M/c queue.
func mmcServers(m *MMc) string {
	if m == nil {
		return ""
	}
	return strconv.Itoa(m.C)
}

func mmcField(m *MMc, v func(*MMc) float64, dec int) string {
	if m == nil {
		return ""
	}
	return ff(v(m), dec)
}

// half formats an interval's half-width, or "" where there is none (a
// per-seed row, or a single seed).
func half(i Interval, dec int) string {
	if i.N < 2 {
		return ""
	}
	return ff(i.Half, dec)
}

// preemptionRate is Preemptions per second of the window.
func (c *CellResult) preemptionRate() float64 { return float64(c.Preemptions) / secs(c.Window) }

func us(ns float64) float64 { return ns / float64(des.Microsecond) }
func ms(ns float64) float64 { return ns / float64(des.Millisecond) }

// ff formats a float with fixed decimals: the same bits give the same
// text on every machine.
func ff(v float64, dec int) string { return strconv.FormatFloat(v, 'f', dec, 64) }

// WriteTable prints the aggregate rows as an aligned table.
func (r *Results) WriteTable(w io.Writer) error {
	if r.Experiment.Acceptance != nil {
		return r.writeAcceptanceTable(w)
	}
	if r.Experiment.Placement != nil {
		return r.writePlacementTable(w)
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "workload\tpolicy\tp50 µs\tp99 µs\tmax µs\tthroughput/s\tutil\tpreempt/s\tinversion\tstarvation ms\tthreads\toutcome\t")
	for _, a := range r.Aggregates {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%d\t%s\t\n",
			a.Workload, a.Policy, ff(us(a.Lat.P50), 1), ff(us(a.Lat.P99), 1), ff(us(a.Lat.Max), 1),
			ff(a.Throughput, 1), ff(a.UtilMean, 3), ff(a.preemptionRate(), 1),
			ff(100*a.InversionFrac, 2)+"%", ff(ms(float64(a.Starvation)), 2), a.ThreadsPeak, a.Outcome)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	r.writeApproxNote(w)
	r.writeErlangC(w)
	if !r.hasTasks() {
		return nil
	}
	fmt.Fprintln(w)
	return r.writeTaskTable(w)
}

// writeApproxNote says so when a cell's percentiles came from the
// bounded histogram rather than from every sample (samples.go).
func (r *Results) writeApproxNote(w io.Writer) {
	for _, c := range r.Cells {
		if c.Lat.Approx || c.Resp.Approx {
			fmt.Fprintf(w, "percentiles of cells with more than %d items come from a histogram: each is rounded down by less than %.1f %% (max and mean are exact)\n",
				ExactSamples, 100*histRelErr)
			return
		}
	}
}

// Problems lists the cells whose run ended in a finding, one line each.
func (r *Results) Problems() []string {
	var out []string
	for _, c := range r.Cells {
		if c.Outcome != "ok" {
			out = append(out, fmt.Sprintf("workload %s, policy %s, seed %d: %s: %s", c.Workload, c.Policy, c.Seed, c.Outcome, firstLine(c.Detail)))
		}
	}
	return out
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	return clipTo(s, 300)
}

// writeErlangC prints, for each aggregate row that is an M/M/c queue, the
// measured mean wait and P(wait) with their intervals beside Erlang C.
func (r *Results) writeErlangC(w io.Writer) {
	for _, a := range r.Aggregates {
		m := a.MMc
		if m == nil {
			continue
		}
		fmt.Fprintf(w, "M/M/%d check, %s %s: mean wait %s µs ± %s, Erlang C %s µs; P(wait) %s ± %s, Erlang C %s (± is the 95%% t-interval over seeds)\n",
			m.C, a.Workload, a.Policy, ff(us(a.Lat.Mean), 1), ff(a.CI.LatMeanUs.Half, 1), ff(us(m.MeanWait), 1),
			ff(a.WaitFrac, 4), ff(a.CI.WaitFrac.Half, 4), ff(m.PWait, 4))
	}
}
