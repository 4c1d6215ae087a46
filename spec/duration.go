package spec

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Day and Week are the units ParseDuration adds to Go's.
const (
	Day  = 24 * time.Hour
	Week = 7 * Day
)

var units = []struct {
	name string
	d    time.Duration
}{
	{"ns", time.Nanosecond}, {"us", time.Microsecond}, {"µs", time.Microsecond},
	{"ms", time.Millisecond}, {"s", time.Second}, {"m", time.Minute},
	{"h", time.Hour}, {"d", Day}, {"w", Week},
}

// ParseDuration parses durations such as "250ms", "1h30m", "30d" or "2w": Go's
// syntax plus d (24h) and w (7d). Fractions are allowed ("1.5s").
func ParseDuration(s string) (time.Duration, error) {
	orig := s
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, fmt.Errorf("want a duration such as 250ms, 5m or 30d, got %q", orig)
	}
	if s == "0" {
		return 0, nil
	}
	var total float64
	for s != "" {
		i := 0
		for i < len(s) && (s[i] >= '0' && s[i] <= '9' || s[i] == '.') {
			i++
		}
		if i == 0 {
			return 0, fmt.Errorf("want a duration such as 250ms, 5m or 30d, got %q", orig)
		}
		num, err := strconv.ParseFloat(s[:i], 64)
		if err != nil {
			return 0, fmt.Errorf("want a duration such as 250ms, 5m or 30d, got %q", orig)
		}
		s = s[i:]
		j := 0
		for j < len(s) && !(s[j] >= '0' && s[j] <= '9' || s[j] == '.') {
			j++
		}
		unit := strings.TrimSpace(s[:j])
		s = s[j:]
		var u time.Duration
		for _, cand := range units {
			if cand.name == unit {
				u = cand.d
			}
		}
		if u == 0 {
			if unit == "" {
				return 0, fmt.Errorf("duration %q needs a unit (ms, s, m, h, d, w)", orig)
			}
			return 0, fmt.Errorf("duration %q has an unknown unit %q (use ns, us, ms, s, m, h, d or w)", orig, unit)
		}
		total += num * float64(u)
	}
	if total > float64(1<<63-1) {
		return 0, fmt.Errorf("duration %q is too long", orig)
	}
	return time.Duration(total), nil
}

// FormatDuration writes d in the shortest form ParseDuration reads back: "30d",
// "1h30m", "250ms", "1.5s".
func FormatDuration(d time.Duration) string {
	if d == 0 {
		return "0s"
	}
	if d < 0 {
		return "-" + FormatDuration(-d)
	}
	if d%time.Second != 0 || d < time.Minute {
		if d >= time.Minute {
			return time.Duration(d).String()
		}
		switch {
		case d%time.Millisecond == 0:
			if d < time.Second {
				return fmt.Sprintf("%dms", d/time.Millisecond)
			}
			return strconv.FormatFloat(d.Seconds(), 'f', -1, 64) + "s"
		default:
			return d.String()
		}
	}
	var b strings.Builder
	for _, u := range []struct {
		name string
		d    time.Duration
	}{{"w", Week}, {"d", Day}, {"h", time.Hour}, {"m", time.Minute}, {"s", time.Second}} {
		if u.name == "w" && d%Week != 0 {
			continue // "10d", not "1w3d"
		}
		if n := d / u.d; n > 0 {
			fmt.Fprintf(&b, "%d%s", n, u.name)
			d -= n * u.d
		}
	}
	return b.String()
}

// Duration is a time.Duration that reads and writes the ParseDuration syntax in
// JSON and YAML ("30d", "250ms").
type Duration time.Duration

func (d Duration) String() string { return FormatDuration(time.Duration(d)) }

// MarshalText writes the short form.
func (d Duration) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// UnmarshalText reads any form ParseDuration accepts.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := ParseDuration(string(b))
	if err != nil {
		return err
	}
	*d = Duration(v)
	return nil
}
