package lab

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/wqsim/wqsim/des"
	"github.com/wqsim/wqsim/kernel"
)

// rtEvent is one step of an imported rt-app job: compute or sleep.
type rtEvent struct {
	sleep bool
	d     des.Duration
}

// RTAppWorkload is what ParseRTApp makes of an rt-app file.
type RTAppWorkload struct {
	// Tasks are the threads with a timer: periodic real-time tasks whose
	// job is the thread's run/sleep events between two timer ticks.
	Tasks []Task
	// Competing are the threads without a timer: run/sleep loops.
	Competing []Competing
	// Duration is global.duration (zero if absent).
	Duration des.Duration
}

// The rt-app subset (github.com/scheduler-tools/rt-app, doc/tutorial.txt):
// times are integers in microseconds.
//
//	{"global": {"duration": 5, "default_policy": "SCHED_FIFO"},
//	 "tasks": {"video": {"instance": 2, "loop": -1, "policy": "SCHED_FIFO", "priority": 50,
//	                     "run": 3000, "sleep": 500, "run2": 1000,
//	                     "timer": {"ref": "unique", "period": 16667}},
//	           "logger": {"priority": 0, "run": 2000, "sleep": 8000}}}
//
// A task's events ("run", "runtime", "sleep", "timer", numbered like
// "run2" to repeat a kind; they run as run, sleep, run1, sleep1, …, timer
// whatever their order in the file) sit in the task or in a single entry of
// "phases"; "loop" must be -1 (until the workload ends). A task with a
// "timer" is periodic: its events before the timer are one job, released
// every period (SCHED_FIFO/SCHED_RR priorities 1–99 map to kernel
// priorities 16–31; SCHED_OTHER nice values −20…19 to 15…1 around 8). A
// task without one is a run/sleep loop (a Competing group). Logging and
// calibration settings of "global" are accepted and ignored; every other
// key is an error that names it.
var (
	rtAppGlobalKeys  = []string{"duration", "default_policy"}
	rtAppIgnoredKeys = []string{"calibration", "logdir", "log_basename", "log_size", "lock_pages", "ftrace", "gnuplot", "frag", "io_device", "mem_buffer_size", "cumulative_slack", "pi_enabled"}
	rtAppTaskKeys    = []string{"instance", "loop", "policy", "priority", "phases"}
	rtAppEventKinds  = []string{"run", "runtime", "sleep", "timer"}
	rtAppPolicies    = []string{"SCHED_OTHER", "SCHED_FIFO", "SCHED_RR"}
)

// ParseRTApp reads the rt-app subset described above. Its error, an
// Errors, names every unsupported or wrong field by its path.
func ParseRTApp(data []byte) (*RTAppWorkload, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var raw any
	if err := dec.Decode(&raw); err != nil {
		return nil, Errors{syntaxError(data, err)}
	}
	w, errs := rtAppFrom("", raw)
	if len(errs) > 0 {
		return nil, errs
	}
	return w, nil
}

// rtAppReader collects the problems of one rt-app tree.
type rtAppReader struct {
	validator
	policy string // global.default_policy
}

// rtAppFrom converts a parsed rt-app tree; path prefixes error paths.
func rtAppFrom(path string, raw any) (*RTAppWorkload, Errors) {
	r := &rtAppReader{policy: "SCHED_OTHER"}
	w := &RTAppWorkload{}
	top, ok := raw.(map[string]any)
	if !ok {
		r.bad(path, "an rt-app workload is an object {\"global\": ..., \"tasks\": {...}}")
		return nil, r.errs
	}
	for _, k := range sortedKeys(top) {
		switch k {
		case "global":
			w.Duration = r.global(joinPath(path, k), top[k])
		case "tasks":
		default:
			r.bad(joinPath(path, k), "unsupported rt-app section; the lab reads \"global\" and \"tasks\"")
		}
	}
	tasks, ok := top["tasks"].(map[string]any)
	if !ok || len(tasks) == 0 {
		r.bad(joinPath(path, "tasks"), "missing or empty; give an object of threads {\"name\": {\"run\": 1000, \"timer\": {\"period\": 10000}}}")
		return nil, r.errs
	}
	for _, name := range sortedKeys(tasks) {
		r.task(w, joinPath(joinPath(path, "tasks"), name), name, tasks[name])
	}
	return w, r.errs
}

// global reads the "global" object and returns its duration.
func (r *rtAppReader) global(path string, raw any) des.Duration {
	g, ok := raw.(map[string]any)
	if !ok {
		r.bad(path, "want an object")
		return 0
	}
	var d des.Duration
	for _, k := range sortedKeys(g) {
		p := joinPath(path, k)
		switch {
		case k == "duration":
			if s, ok := rtAppInt(g[k]); ok && s > 0 {
				d = des.Duration(s) * des.Second
			} else if !ok || s != -1 {
				r.bad(p, "want a whole number of seconds > 0 (or -1: until the workload's own duration)")
			}
		case k == "default_policy":
			r.policy = r.policyName(p, g[k])
		case slices.Contains(rtAppIgnoredKeys, k):
		default:
			r.bad(p, "unsupported rt-app global setting; the lab reads %s and ignores %s", strings.Join(rtAppGlobalKeys, ", "), strings.Join(rtAppIgnoredKeys, ", "))
		}
	}
	return d
}

func (r *rtAppReader) policyName(path string, raw any) string {
	s, _ := raw.(string)
	if !slices.Contains(rtAppPolicies, s) {
		r.bad(path, "unsupported scheduling policy %s; the lab maps %s onto NT priorities (SCHED_DEADLINE has no NT counterpart)", describe(raw), strings.Join(rtAppPolicies, ", "))
		return "SCHED_OTHER"
	}
	return s
}

// rtAppThread is one rt-app thread as read.
type rtAppThread struct {
	policy   string
	priority int64
	instance int64
	events   []rtEvent
	period   des.Duration // 0: no timer
}

// task reads one thread and adds it to w.
func (r *rtAppReader) task(w *RTAppWorkload, path, name string, raw any) {
	obj, ok := raw.(map[string]any)
	if !ok {
		r.bad(path, "want an object of events such as {\"run\": 1000, \"timer\": {\"period\": 10000}}")
		return
	}
	th := rtAppThread{policy: r.policy, instance: 1}
	body := obj
	for _, k := range sortedKeys(obj) {
		p := joinPath(path, k)
		switch k {
		case "instance":
			if n, ok := rtAppInt(obj[k]); ok && n >= 1 && n <= maxCompeting {
				th.instance = n
			} else {
				r.bad(p, "want 1 to %d instances", maxCompeting)
			}
		case "loop":
			r.loop(p, obj[k])
		case "policy":
			th.policy = r.policyName(p, obj[k])
		case "priority":
			if n, ok := rtAppInt(obj[k]); ok {
				th.priority = n
			} else {
				r.bad(p, "want a whole number")
			}
		case "phases":
			body = r.phase(p, obj[k])
		}
	}
	if body == nil {
		return
	}
	if _, has := obj["phases"]; has {
		for _, k := range sortedKeys(obj) {
			if !slices.Contains(rtAppTaskKeys, k) {
				r.bad(joinPath(path, k), "events belong inside the phase when \"phases\" is given")
			}
		}
	}
	r.events(path, body, &th)
	prio, ok := r.priority(path, th)
	if !ok || len(r.errs) > 0 {
		return
	}
	r.emit(w, name, prio, th)
}

// phase returns the events of a single phase.
func (r *rtAppReader) phase(path string, raw any) map[string]any {
	ph, ok := raw.(map[string]any)
	if !ok || len(ph) != 1 {
		r.bad(path, "the lab runs exactly one phase per thread; give {\"p0\": {events}} or put the events in the thread")
		return nil
	}
	for _, k := range sortedKeys(ph) {
		obj, ok := ph[k].(map[string]any)
		if !ok {
			r.bad(joinPath(path, k), "want an object of events")
			return nil
		}
		if l, has := obj["loop"]; has {
			r.loop(joinPath(joinPath(path, k), "loop"), l)
		}
		return obj
	}
	return nil
}

func (r *rtAppReader) loop(path string, raw any) {
	if n, ok := rtAppInt(raw); !ok || n != -1 {
		r.bad(path, "unsupported loop count %s; the lab repeats a thread until the workload ends (-1)", describe(raw))
	}
}

// events reads the run/sleep/timer events of body in key order (rt-app
// runs them in file order; numbered keys keep that order for repeats).
func (r *rtAppReader) events(path string, body map[string]any, th *rtAppThread) {
	for _, k := range rtAppOrder(body) {
		p := joinPath(path, k)
		kind := strings.TrimRightFunc(k, func(c rune) bool { return c >= '0' && c <= '9' })
		if slices.Contains(rtAppTaskKeys, k) || k == "loop" {
			continue
		}
		if !slices.Contains(rtAppEventKinds, kind) {
			r.bad(p, "unsupported rt-app event %q; the lab reads %s", kind, strings.Join(rtAppEventKinds, ", "))
			continue
		}
		if th.period != 0 {
			r.bad(p, "an event after the timer; put the timer last (it ends the job)")
			continue
		}
		if kind == "timer" {
			th.period = r.timer(p, body[k])
			continue
		}
		us, ok := rtAppInt(body[k])
		if !ok || us <= 0 {
			r.bad(p, "want a duration in microseconds > 0")
			continue
		}
		th.events = append(th.events, rtEvent{sleep: kind == "sleep", d: des.Duration(us) * des.Microsecond})
	}
	if len(th.events) == 0 {
		r.bad(path, "no run or sleep event; give at least {\"run\": microseconds}")
	}
}

// rtAppOrder returns body's keys in the order the lab runs them. rt-app
// runs events in file order, which a decoded JSON object does not keep;
// the lab runs run, sleep, run1, sleep1, run2, … and the timer last, the
// order rt-app's example files use.
func rtAppOrder(body map[string]any) []string {
	keys := sortedKeys(body)
	slices.SortStableFunc(keys, func(a, b string) int {
		return rtAppRank(a) - rtAppRank(b)
	})
	return keys
}

// rtAppRank orders events as rt-app's usual files write them: runs and
// sleeps by their number ("run" < "sleep" < "run1" < "sleep1" …), the
// timer last.
func rtAppRank(k string) int {
	if strings.HasPrefix(k, "timer") {
		return 1 << 20
	}
	kind := strings.TrimRightFunc(k, func(c rune) bool { return c >= '0' && c <= '9' })
	n, _ := strconv.Atoi(k[len(kind):])
	r := n * 4
	if kind == "sleep" {
		r += 2
	}
	return r
}

func (r *rtAppReader) timer(path string, raw any) des.Duration {
	t, ok := raw.(map[string]any)
	if !ok {
		r.bad(path, "want {\"ref\": \"name\", \"period\": microseconds}")
		return 0
	}
	var period des.Duration
	for _, k := range sortedKeys(t) {
		switch k {
		case "ref":
		case "period":
			if us, ok := rtAppInt(t[k]); ok && us > 0 {
				period = des.Duration(us) * des.Microsecond
			} else {
				r.bad(joinPath(path, k), "want a period in microseconds > 0")
			}
		default:
			r.bad(joinPath(path, k), "unsupported timer setting; the lab reads ref and period (an absolute periodic timer)")
		}
	}
	if period == 0 {
		r.bad(path, "missing period")
	}
	return period
}

// priority maps an rt-app policy and priority onto an NT base priority.
func (r *rtAppReader) priority(path string, th rtAppThread) (int, bool) {
	switch th.policy {
	case "SCHED_FIFO", "SCHED_RR":
		if th.priority < 1 || th.priority > 99 {
			r.bad(joinPath(path, "priority"), "%d: SCHED_FIFO/SCHED_RR priorities are 1 to 99", th.priority)
			return 0, false
		}
		return kernel.LOW_REALTIME_PRIORITY + int((th.priority-1)*16/99), true
	default:
		if th.priority < -20 || th.priority > 19 {
			r.bad(joinPath(path, "priority"), "%d: SCHED_OTHER nice values are -20 to 19", th.priority)
			return 0, false
		}
		return int(8 - th.priority*7/20), true
	}
}

// emit adds th's instances to w.
func (r *rtAppReader) emit(w *RTAppWorkload, name string, prio int, th rtAppThread) {
	var run, sleep des.Duration
	for _, e := range th.events {
		if e.sleep {
			sleep += e.d
		} else {
			run += e.d
		}
	}
	for i := range th.instance {
		n := name
		if th.instance > 1 {
			n = fmt.Sprintf("%s.%d", name, i)
		}
		if th.period == 0 {
			p, count := prio, 1
			w.Competing = append(w.Competing, Competing{Name: n, Priority: &p, Count: &count,
				Compute: Dist{Dist: "constant", Mean: Dur(run)}, Sleep: Dist{Dist: "constant", Mean: Dur(max(sleep, 1))}})
			continue
		}
		p := prio
		w.Tasks = append(w.Tasks, Task{Name: n, Period: Dur(th.period), WCET: Dur(run), Priority: &p, events: th.events})
	}
}

// rtAppInt reads a JSON integer.
func rtAppInt(raw any) (int64, bool) {
	n, ok := raw.(json.Number)
	if !ok {
		return 0, false
	}
	i, err := n.Int64()
	return i, err == nil
}
