// Package report renders SLO reviews, backtests and statuses for people and
// programs: Markdown for the SLO meeting's notes, self-contained HTML to
// share, JSON for scripts.
package report

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"

	"slolab.dev/slolab/slo"
	"slolab.dev/slolab/spec"
)

// Format renders a review.
type Format func(io.Writer, *slo.Review) error

// Formats is the closed set of review formats, by the name --format takes.
var Formats = map[string]Format{
	"md":   Markdown,
	"html": HTML,
	"json": JSON,
}

// FormatNames lists the formats in a stable order, for messages.
func FormatNames() []string {
	names := make([]string, 0, len(Formats))
	for n := range Formats {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// JSON writes the review as indented JSON.
func JSON(w io.Writer, r *slo.Review) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// Percent writes a percentage with up to decimals places, trailing zeros trimmed: "99.95%".
func Percent(v float64, decimals int) string {
	s := strconv.FormatFloat(v, 'f', decimals, 64)
	if strings.Contains(s, ".") {
		s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
	}
	return s + "%"
}

// SLIPercent writes an SLI: "—" without events, else three decimals.
func SLIPercent(v *float64) string {
	if v == nil {
		return "—"
	}
	return Percent(math.Floor(*v*1000)/1000, 3) // rounded down: never shows a met SLO that is not
}

// Count writes n with thousands separators: 1,234,567.
func Count(n uint64) string {
	s := strconv.FormatUint(n, 10)
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}

// Allowed writes a number of allowed bad events: "1,234.5".
func Allowed(v float64) string {
	whole := uint64(v)
	frac := v - float64(whole)
	if frac < 0.05 {
		return Count(whole)
	}
	if frac >= 0.95 {
		return Count(whole + 1)
	}
	return Count(whole) + "." + strconv.Itoa(int(frac*10+0.5))
}

// SLOName writes an SLO for tables: "availability 99.9%", "latency 99% < 1s".
func SLOName(kind slo.Kind, objective spec.Ratio, threshold spec.Duration) string {
	if kind == slo.Latency {
		return fmt.Sprintf("latency %s ≤ %s", objective, spec.FormatDuration(time.Duration(threshold)))
	}
	return fmt.Sprintf("availability %s", objective)
}

// Sparkline draws values in [0, 100] as block characters.
func Sparkline(values []float64) string {
	bars := []rune("▁▂▃▄▅▆▇█")
	var b strings.Builder
	for _, v := range values {
		i := int(math.Round(max(min(v, 100), 0) / 100 * float64(len(bars)-1)))
		b.WriteRune(bars[i])
	}
	return b.String()
}

// alertSummary writes what fired: "2 pages, 1 ticket".
func alertSummary(eps []slo.Episode) string {
	pages, tickets := 0, 0
	for _, e := range eps {
		if e.Severity == "page" {
			pages++
		} else {
			tickets++
		}
	}
	var parts []string
	if pages > 0 {
		parts = append(parts, plural(pages, "page", "pages"))
	}
	if tickets > 0 {
		parts = append(parts, plural(tickets, "ticket", "tickets"))
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, ", ")
}

func plural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %s", n, many)
}

// Time writes an instant for reports: "2026-03-04 05:06 UTC".
func Time(t time.Time) string { return t.UTC().Format("2006-01-02 15:04 UTC") }

// Span writes a duration for reports, to the minute: "1h32m", "3d4h".
func Span(d time.Duration) string {
	if d < time.Minute {
		return spec.FormatDuration(d.Round(time.Second))
	}
	return spec.FormatDuration(d.Round(time.Minute))
}

// remaining returns the budget left after each trend step.
func remaining(tr []slo.TrendPoint) []float64 {
	out := make([]float64, len(tr))
	for i, p := range tr {
		out[i] = p.RemainingPercent
	}
	return out
}

// lasted writes how long an episode fired, "still firing" when unresolved.
func lasted(e slo.Episode, end time.Time) string {
	if e.Resolved == nil {
		return Span(e.Duration(end)) + ", still firing"
	}
	return Span(e.Duration(end))
}

func resolvedAt(e slo.Episode) string {
	if e.Resolved == nil {
		return "—"
	}
	return Time(*e.Resolved)
}
