package proptest

import (
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
)

// ReadInput reads the regular file at path, at most limit bytes. Anything
// else is refused with a message: a FIFO or a terminal would block, a
// device like /dev/zero would never end, and a file over the limit is not
// one wqsim wrote.
func ReadInput(path string, limit int64) ([]byte, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("%s is not a regular file (%v); give a file wqsim wrote", path, st.Mode().Type())
	}
	if st.Size() > limit {
		return nil, fmt.Errorf("%s is %d bytes, more than the %d this input may have", path, st.Size(), limit)
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("%s grew past %d bytes while being read", path, limit)
	}
	return data, nil
}

// ParseShard parses "i/n" with 0 ≤ i < n.
func ParseShard(s string) (int, int, error) {
	a, b, ok := strings.Cut(s, "/")
	i, err1 := strconv.Atoi(a)
	n, err2 := strconv.Atoi(b)
	if !ok || err1 != nil || err2 != nil || n < 1 || i < 0 || i >= n {
		return 0, 0, fmt.Errorf("%q: want i/n with 0 ≤ i < n, e.g. 0/4", s)
	}
	return i, n, nil
}
