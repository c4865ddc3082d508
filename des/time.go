package des

import (
	"strconv"
	"time"
)

// Duration is a span of virtual time in nanoseconds.
type Duration int64

// Time is a point in virtual time: nanoseconds since the start of the run.
type Time int64

// Units of virtual time.
const (
	Nanosecond  Duration = 1
	Microsecond          = 1000 * Nanosecond
	Millisecond          = 1000 * Microsecond
	Second               = 1000 * Millisecond
	Minute               = 60 * Second
	Hour                 = 60 * Minute
)

// Forever is a time later than any event a run can schedule.
const Forever Time = 1<<63 - 1

// String formats d the way time.Duration does ("1.5ms", "2m0s").
func (d Duration) String() string { return time.Duration(d).String() }

// Add returns t+d.
func (t Time) Add(d Duration) Time { return t + Time(d) }

// Sub returns the duration t-u.
func (t Time) Sub(u Time) Duration { return Duration(t - u) }

// String formats t as seconds with nanosecond precision ("1.000250000s"),
// a fixed shape that sorts and aligns in traces.
func (t Time) String() string {
	return string(AppendTime(make([]byte, 0, 20), t))
}

// AppendTime appends the String form of t to b without allocating.
func AppendTime(b []byte, t Time) []byte {
	if t < 0 {
		b = append(b, '-')
		t = -t
	}
	b = strconv.AppendInt(b, int64(t)/1e9, 10)
	b = append(b, '.')
	frac := int64(t) % 1e9
	for div := int64(1e8); div > 0; div /= 10 {
		b = append(b, byte('0'+frac/div%10))
	}
	return append(b, 's')
}
