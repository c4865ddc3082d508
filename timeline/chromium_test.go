package timeline

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"image"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wqsim/wqsim/kernel"
)

var screenshot = flag.String("screenshot", "", "TestScreenshot writes a PNG of the demo run's HTML timeline to this path (docs/timeline.png)")

// chromium returns the chromium binary. Without one the test is skipped,
// unless WQSIM_REQUIRE_CHROMIUM is set (CI sets it), when it fails.
func chromium(t *testing.T) string {
	t.Helper()
	path, err := exec.LookPath("chromium")
	if err == nil {
		return path
	}
	if os.Getenv("WQSIM_REQUIRE_CHROMIUM") != "" {
		t.Fatalf("chromium is not on PATH and WQSIM_REQUIRE_CHROMIUM is set: install it (apt-get install chromium): %v", err)
	}
	t.Skip("chromium is not on PATH; set WQSIM_REQUIRE_CHROMIUM=1 to make this a failure")
	return ""
}

// runChromium runs headless chromium on the file at page with extra
// arguments and returns its standard output. Each run has its own
// profile directory and a time limit. A browser that crashes (killed by a
// signal: headless Chromium segfaults now and then on a loaded 2-core box)
// is run again, at most three times in all, and the test log says so; any
// other failure fails the test at once.
func runChromium(t *testing.T, bin, page string, extra ...string) []byte {
	t.Helper()
	for attempt := 1; ; attempt++ {
		out, crashed, err := chromiumOnce(t, bin, page, extra)
		if crashed && attempt < 3 {
			t.Logf("chromium crashed (attempt %d, %v); running it again", attempt, err)
			continue
		}
		require.NoError(t, err)
		return out
	}
}

// chromiumOnce is one run of runChromium; crashed reports death by signal.
func chromiumOnce(t *testing.T, bin, page string, extra []string) (out []byte, crashed bool, err error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	args := []string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--user-data-dir=" + t.TempDir()}
	args = append(args, extra...)
	args = append(args, "file://"+page)
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.WaitDelay = 5 * time.Second
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err = cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("chromium timed out after 90s; stderr:\n%s", tail(stderr.String(), 2000))
	}
	if err != nil {
		var exit *exec.ExitError
		if errors.As(err, &exit) {
			if ws, ok := exit.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
				crashed = true
			}
		}
		return nil, crashed, fmt.Errorf("chromium failed: %w; stderr:\n%s", err, tail(stderr.String(), 2000))
	}
	return stdout.Bytes(), false, nil
}

func tail(s string, n int) string {
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return s
}

// writeDemoPage renders the demo run with a bug check (every kind of
// lane content) to an HTML file and returns its absolute path.
func writeDemoPage(t *testing.T, dir string) string {
	t.Helper()
	recs, out := run(t, demoConfig(), demoBug)
	page := filepath.Join(dir, "timeline.html")
	f, err := os.Create(page)
	require.NoError(t, err)
	require.NoError(t, WriteHTML(f, recs, Meta{Scenario: "demo: ping-pong, spin lock, ISR → DPC → work item", Seed: 1, Outcome: outcomeText(out), End: out.End}))
	require.NoError(t, f.Close())
	abs, err := filepath.Abs(page)
	require.NoError(t, err)
	return abs
}

// TestChromiumRendersLanes opens the HTML timeline in headless Chromium:
// the DOM after load must hold the lanes and show that the page's script
// ran (it counts the lanes onto <body data-lanes> and turns SVG titles
// into data-tip attributes), and a screenshot must be a real picture.
func TestChromiumRendersLanes(t *testing.T) {
	bin := chromium(t)
	dir := t.TempDir()
	page := writeDemoPage(t, dir)

	dom := string(runChromium(t, bin, page, "--dump-dom"))
	require.NotEmpty(t, dom, "chromium dumped no DOM")
	assert.Regexp(t, `<body[^>]* data-lanes="2"`, dom, "the inline script ran and counted two lanes")
	for c := 0; c < 2; c++ {
		assert.Contains(t, dom, `<g class="lane" id="lane-cpu`+strconv.Itoa(c)+`"`)
	}
	assert.Contains(t, dom, "data-tip=", "tooltips were set up")
	assert.NotContains(t, dom, "<title>pinger", "SVG titles were moved into data-tip")

	shot := filepath.Join(dir, "shot.png")
	runChromium(t, bin, page, "--screenshot="+shot, "--window-size=1400,700", "--hide-scrollbars")
	checkPNG(t, shot, 1400, 700)
}

// checkPNG checks that path is a w×h PNG that is not blank: it has some
// size and enough different colours.
func checkPNG(t *testing.T, path string, w, h int) {
	t.Helper()
	st, err := os.Stat(path)
	require.NoError(t, err, "no screenshot")
	assert.Greater(t, st.Size(), int64(20_000), "screenshot is suspiciously small")
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	img, err := png.Decode(f)
	require.NoError(t, err)
	assert.Equal(t, image.Rect(0, 0, w, h), img.Bounds())
	colors := map[uint32]bool{}
	b := img.Bounds()
	for y := b.Min.Y; y < b.Max.Y; y += 3 {
		for x := b.Min.X; x < b.Max.X; x += 3 {
			r, g, bl, _ := img.At(x, y).RGBA()
			colors[r>>8<<16|g>>8<<8|bl>>8] = true
		}
	}
	assert.Greater(t, len(colors), 50, "the screenshot shows more than a few colours")
}

// TestScreenshot writes the README picture:
//
//	go test ./timeline -run TestScreenshot -args -screenshot=$PWD/demo.png
//
// (The README's pictures come from docs/make-pictures.sh, which runs the
// wqsim command as a user would.)
func TestScreenshot(t *testing.T) {
	if *screenshot == "" {
		t.Skip("set -screenshot=PATH to write the README screenshot")
	}
	bin := chromium(t)
	out, err := filepath.Abs(*screenshot)
	require.NoError(t, err)
	require.True(t, strings.HasSuffix(out, ".png"), "-screenshot must name a .png file")
	page := writeDemoPage(t, t.TempDir())
	runChromium(t, bin, page, "--screenshot="+out, "--window-size=1400,560", "--hide-scrollbars")
	checkPNG(t, out, 1400, 560)
	st, err := os.Stat(out)
	require.NoError(t, err)
	assert.Less(t, st.Size(), int64(300_000), "keep the README picture under 300 KB")
	t.Logf("wrote %s (%d bytes)", out, st.Size())
}

// TestChromiumZoomSearchMarks opens a failing run's timeline with its
// perturbed decision in headless Chromium and lets the page's own script
// zoom, pan and search (#selftest): zooming in hides what leaves the plot,
// the search finds the bug check and "next" zooms to it, and the
// perturbation is marked.
func TestChromiumZoomSearchMarks(t *testing.T) {
	bin := chromium(t)
	recs, out := run(t, kernel.DefaultConfig(), demoBug)
	page := filepath.Join(t.TempDir(), "zoom.html")
	f, err := os.Create(page)
	require.NoError(t, err)
	meta := Meta{Scenario: "demo", Seed: 1, Outcome: outcomeText(out), End: out.End, Marks: []string{"demo: completed twice"},
		Perturbations: []Perturbation{{At: recs[len(recs)/2].At, Actor: 1, Text: "decision 7: kernel: inject preemption → early quantum end"}}}
	require.NoError(t, WriteHTML(f, recs, meta))
	require.NoError(t, f.Close())

	dom := string(runChromium(t, bin, page+"#selftest", "--dump-dom"))
	attr := func(name string) int {
		m := regexp.MustCompile(name + `="([0-9.]+)"`).FindStringSubmatch(dom)
		require.NotNil(t, m, "the self-test set %s on <body>", name)
		v, err := strconv.ParseFloat(m[1], 64)
		require.NoError(t, err)
		return int(v)
	}
	assert.Equal(t, 16, attr("data-zoom"))
	assert.Less(t, attr("data-rects-16x"), attr("data-rects-1x"), "zoomed in, slices outside the plot are hidden")
	assert.GreaterOrEqual(t, attr("data-hits"), 1, "search finds the bug check")
	assert.GreaterOrEqual(t, attr("data-zoom-after-next"), 8, "next zooms to the hit")
	assert.Contains(t, dom, `id="perturbation-mark-1"`)
	assert.Contains(t, dom, "early quantum end")
	assert.Contains(t, dom, `class="zoombar"`)
	assert.Contains(t, dom, "demo: completed twice")

	// The overview strip: reset, the chart shows the whole run; a click
	// at three quarters of the strip zooms the chart to 8x centred on the
	// time there; a drag across the strip shows exactly the dragged range.
	assert.Contains(t, dom, `class="overview"`)
	view := func(name string) (float64, float64) {
		m := regexp.MustCompile(name + `="(-?[0-9]+),(-?[0-9]+)"`).FindStringSubmatch(dom)
		require.NotNil(t, m, "the self-test set %s on <body>", name)
		a, _ := strconv.ParseFloat(m[1], 64)
		b, _ := strconv.ParseFloat(m[2], 64)
		return a, b
	}
	m := buildModel(recs, meta.CPUs, meta.End)
	p := &plot{m: m, meta: meta, placed: map[int][2]float64{}}
	p.layout()
	segs := p.overviewSegments()
	timeAt := func(x float64) float64 { // the strip's x → run time
		for _, s := range segs {
			if x <= s.x1 {
				return float64(s.t0) + (x-s.x0)/(s.x1-s.x0)*float64(s.t1-s.t0)
			}
		}
		return float64(m.end)
	}
	a0, b0 := view("data-ov-view-0")
	assert.InDelta(t, float64(m.start), a0, 1)
	assert.InDelta(t, float64(m.end), b0, 1)
	assert.Equal(t, 8, attr("data-ov-zoom-click"), "a click zooms in")
	a1, b1 := view("data-ov-view-click")
	span := float64(m.end - m.start)
	assert.Less(t, b1-a1, span/4, "the click narrowed the visible range")
	assert.InDelta(t, timeAt(float64(attr("data-ov-click-x"))), (a1+b1)/2, span/100, "centred where the strip was clicked")
	a2, b2 := view("data-ov-view-drag")
	assert.InDelta(t, timeAt(gutter+100), a2, span/200, "the drag's start")
	assert.InDelta(t, timeAt(gutter+300), b2, span/200, "the drag's end")
}
