package spec

import (
	"fmt"
	"math/big"
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
	total := new(big.Rat) // exact: "1m55.741s" is 115,741,000,000ns, not a float's neighbour
	for s != "" {
		i := 0
		for i < len(s) && (s[i] >= '0' && s[i] <= '9' || s[i] == '.') {
			i++
		}
		if i == 0 {
			return 0, fmt.Errorf("want a duration such as 250ms, 5m or 30d, got %q", orig)
		}
		num, ok := new(big.Rat).SetString(s[:i])
		if !ok || strings.Count(s[:i], ".") > 1 {
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
		total.Add(total, num.Mul(num, new(big.Rat).SetInt64(int64(u))))
	}
	ns := new(big.Int).Quo(total.Num(), total.Denom())
	if !ns.IsInt64() {
		return 0, fmt.Errorf("duration %q is too long", orig)
	}
	return time.Duration(ns.Int64()), nil
}

// FormatDuration writes d in the form ParseDuration reads back: the largest
// units first ("30d", "1h30m"), seconds to the millisecond ("1.5s",
// "1m55.741s") and, under a second, milliseconds to the microsecond ("250ms",
// "12.346ms"); below a microsecond, nanoseconds.
func FormatDuration(d time.Duration) string {
	if d == 0 {
		return "0s"
	}
	if d < 0 {
		return "-" + FormatDuration(-d)
	}
	switch {
	case d < time.Microsecond:
		return fmt.Sprintf("%dns", d)
	case d < time.Second:
		// Milliseconds to the microsecond: "250ms", "12.346ms", "0.3ms".
		if r := d.Round(time.Microsecond); r < time.Second {
			return decimals(int64(r/time.Microsecond), 3) + "ms"
		}
		d = time.Second
	case d%time.Second != 0:
		d = d.Round(time.Millisecond) // seconds to the millisecond: "51.84s", "1m55.741s"
	}
	var b strings.Builder
	if frac := d % time.Second; frac != 0 {
		if whole := d - frac; whole > 0 {
			b.WriteString(FormatDuration(whole - whole%time.Minute))
			d = whole%time.Minute + frac
			if b.String() == "0s" {
				b.Reset()
			}
		}
		b.WriteString(decimals(int64(d/time.Millisecond), 3) + "s")
		return b.String()
	}
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

// decimals writes n/10^places as a decimal without trailing zeros.
func decimals(n int64, places int) string {
	s := strconv.FormatInt(n, 10)
	for len(s) <= places {
		s = "0" + s
	}
	s = s[:len(s)-places] + "." + s[len(s)-places:]
	return strings.TrimSuffix(strings.TrimRight(s, "0"), ".")
}

// Duration is a time.Duration that reads and writes the ParseDuration syntax in
// JSON and YAML ("30d", "250ms"): one form everywhere, the largest units
// first, seconds to the millisecond and, under a second, milliseconds to the
// microsecond ("1m55.741s", "51.84s", "12.346ms").
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
