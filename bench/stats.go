package main

import (
	"fmt"
	"math"
	"slices"
	"time"
)

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return math.NaN()
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

func medianDur(xs []time.Duration) time.Duration {
	f := make([]float64, len(xs))
	for i, x := range xs {
		f[i] = float64(x)
	}
	return time.Duration(median(f))
}

// quantileDur returns the q-quantile (0..1) of sorted durations by the
// nearest-rank rule: the smallest value with at least q of them at or below it.
func quantileDur(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(math.Ceil(q*float64(len(sorted)))) - 1
	return sorted[max(0, min(i, len(sorted)-1))]
}

// meanStddev returns the mean and the population standard deviation.
func meanStddev(xs []int) (mean, sd float64) {
	if len(xs) == 0 {
		return 0, 0
	}
	for _, x := range xs {
		mean += float64(x)
	}
	mean /= float64(len(xs))
	for _, x := range xs {
		d := float64(x) - mean
		sd += d * d
	}
	return mean, math.Sqrt(sd / float64(len(xs)))
}

// fmtDur rounds a latency to three significant figures or so, for tables.
func fmtDur(d time.Duration) string {
	switch {
	case d == 0:
		return "0"
	case d < 0:
		return "-" + fmtDur(-d)
	case d >= 10*time.Second:
		return d.Round(10 * time.Millisecond).String()
	case d >= time.Second:
		return d.Round(time.Millisecond).String()
	case d >= 10*time.Millisecond:
		return d.Round(100 * time.Microsecond).String()
	case d >= time.Millisecond:
		return d.Round(10 * time.Microsecond).String()
	}
	return d.Round(time.Microsecond).String()
}

// fmtMS formats a duration in milliseconds with three decimals, for lag tables.
func fmtMS(d time.Duration) string { return fmt.Sprintf("%.3f ms", float64(d)/1e6) }

// fmtRatio formats a ratio for the tables ("—" when undefined).
func fmtRatio(r float64) string {
	if math.IsNaN(r) || math.IsInf(r, 0) {
		return "—"
	}
	return fmt.Sprintf("%.2f", r)
}

// verdict classifies "higher is better" ratio r of slolab to a peer: within
// 5% is on par, since interleaved medians on a shared machine vary that much.
func verdict(r float64) string {
	switch {
	case math.IsNaN(r):
		return "on par"
	case r >= 1.05:
		return "leads"
	case r <= 0.95:
		return "trails"
	}
	return "on par"
}

// reading formats one line of a section's plain reading. The summary at the
// top of docs/benchmarks.md collects these lines from every section.
func reading(v, text string) string { return fmt.Sprintf("- **%s**: %s\n", v, text) }

func fmtKB(kb int64) string {
	switch {
	case kb >= 10<<10:
		return fmt.Sprintf("%.0f MB", float64(kb)/1024)
	case kb >= 1<<10:
		return fmt.Sprintf("%.1f MB", float64(kb)/1024)
	}
	return fmt.Sprintf("%d kB", kb)
}

// costVerdict classifies what a feature keeps of slolab's own throughput
// (r = with / without): keeping 95% or more is on par, less trails.
func costVerdict(r float64) string {
	if r < 0.95 {
		return "trails"
	}
	return "on par"
}

// latencyVerdict compares slolab's latency with a peer's (lower is better).
// Tail latencies on a shared machine vary more than throughput, so within
// 20% or 1 ms either way is on par.
func latencyVerdict(ours, theirs time.Duration) string {
	band := max(time.Duration(0.2*float64(theirs)), time.Millisecond)
	switch {
	case ours <= 0 || theirs <= 0:
		return "on par"
	case ours+band < theirs:
		return "leads"
	case ours > theirs+band:
		return "trails"
	}
	return "on par"
}
