package cli

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/wqsim/wqsim/des"
	"github.com/wqsim/wqsim/proptest"
)

// FuzzFlags feeds argument lists (NUL-separated) to every command's flag
// parser and to --shard: no panic; an error is a usage error with a
// message; a shard that parses is in range and prints back to itself; an
// explore flag set that parses builds valid options or says why not.
//
//	go test ./cli -run '^$' -fuzz FuzzFlags -fuzztime 5m -parallel 1
func FuzzFlags(f *testing.F) {
	for _, s := range []string{"--shard\x000/4", "--shard\x005/2", "--execs\x00-1", "--parallel\x0010000000", "--seed\x003\x00lostupdate",
		"-o\x00-", "--format\x00pdf", "--time\x00-1s", "--watchdog\x001ns", "--shard\x00 1/2", "--shard\x001/+2", "-h", "--scale\x00NaN"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, joined string) {
		args := strings.Split(joined, "\x00")
		for name, mk := range flagSets {
			fs := mk()
			if _, err := parseFlags(fs, args); err != nil && err.Error() == "" {
				t.Fatalf("%s: an error with no message", name)
			}
		}
		for _, a := range args {
			i, n, err := parseShard(a)
			if err != nil {
				continue
			}
			if i < 0 || i >= n {
				t.Fatalf("shard %q parsed to %d/%d", a, i, n)
			}
			if i2, n2, err := parseShard(fmt.Sprintf("%d/%d", i, n)); err != nil || i2 != i || n2 != n {
				t.Fatalf("shard %d/%d does not print back", i, n)
			}
		}
		fs, o := exploreFlags()
		if pos, err := parseFlags(fs, args); err == nil && len(pos) <= 1 {
			spec := "lostupdate:racy"
			if len(pos) == 1 {
				spec = pos[0]
			}
			if opts, err := o.build(spec); err == nil {
				if opts.Execs <= 0 || opts.Parallel <= 0 || opts.Parallel > proptest.MaxParallel || opts.Shard >= opts.Shards || opts.Watchdog < 0 {
					t.Fatalf("%q built invalid options %+v", args, opts)
				}
			} else if err.Error() == "" {
				t.Fatal("an error with no message")
			}
		}
	})
}

// FuzzTraceArg: trace's FILE-or-SCENARIO argument, whatever it is (a path
// to a device, a FIFO, a directory, a spec with odd colons), comes back
// within the watchdog with a result or a message, never a panic.
//
//	go test ./cli -run '^$' -fuzz FuzzTraceArg -fuzztime 5m -parallel 1
func FuzzTraceArg(f *testing.F) {
	for _, s := range []string{"lostupdate", "lostupdate:racy", "/dev/zero", "/dev/stdin", "/", ".", "", ":", "nosuch.fail",
		"../proptest/testdata", "lostupdate:racy:x", "/proc/self/fd/0"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, arg string) {
		o := &traceOpts{format: "text", seed: 1, watchdog: 5 * time.Second}
		start := time.Now()
		_, err := traceRun(context.Background(), arg, o, &des.RecordSink{})
		if time.Since(start) > 20*time.Second {
			t.Fatalf("trace %q took %v", arg, time.Since(start))
		}
		if err != nil && err.Error() == "" {
			t.Fatalf("trace %q: an error with no message", arg)
		}
	})
}
