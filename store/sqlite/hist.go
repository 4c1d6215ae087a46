package sqlite

import (
	"encoding/binary"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"
)

// A histogram is stored as pairs of uvarints (gap, count) for its non-zero
// buckets, where gap is the bucket's index minus the previous non-zero
// bucket's index minus one: a minute with traffic in three latency buckets
// takes about six bytes. Bucket i's upper bound is bounds[i]; the last
// bucket, len(bounds), is +Inf.

func encodeHist(hist []uint64) []byte {
	var out []byte
	prev := -1
	for i, c := range hist {
		if c == 0 {
			continue
		}
		out = binary.AppendUvarint(out, uint64(i-prev-1))
		out = binary.AppendUvarint(out, c)
		prev = i
	}
	if out == nil {
		out = []byte{}
	}
	return out
}

func decodeHist(b []byte, n int) ([]uint64, error) {
	hist := make([]uint64, n)
	i := -1
	for len(b) > 0 {
		gap, k := binary.Uvarint(b)
		if k <= 0 {
			return nil, fmt.Errorf("corrupt histogram")
		}
		b = b[k:]
		c, k := binary.Uvarint(b)
		if k <= 0 {
			return nil, fmt.Errorf("corrupt histogram")
		}
		b = b[k:]
		i += int(gap) + 1
		if i >= n {
			return nil, fmt.Errorf("histogram bucket %d beyond its %d bounds", i, n-1)
		}
		hist[i] = c
	}
	return hist, nil
}

func formatBounds(bounds []time.Duration) string {
	parts := make([]string, len(bounds))
	for i, b := range bounds {
		parts[i] = strconv.FormatInt(int64(b), 10)
	}
	return strings.Join(parts, ",")
}

func parseBounds(s string) ([]time.Duration, error) {
	if s == "" {
		return nil, nil
	}
	parts := strings.Split(s, ",")
	out := make([]time.Duration, len(parts))
	for i, p := range parts {
		v, err := strconv.ParseInt(p, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("corrupt histogram bounds %q", s)
		}
		out[i] = time.Duration(v)
	}
	return out, nil
}

// remap moves a histogram onto other bounds: each bucket's count goes to the
// first new bucket whose upper bound is at least the old one's, so no
// request is counted faster than it was. Only minutes written across a
// change of the spec's latency thresholds are remapped.
func remap(hist []uint64, from, to []time.Duration) []uint64 {
	out := make([]uint64, len(to)+1)
	for i, c := range hist {
		if c == 0 {
			continue
		}
		j := len(to)
		if i < len(from) {
			j = sort.Search(len(to), func(k int) bool { return to[k] >= from[i] })
		}
		out[j] += c
	}
	return out
}
