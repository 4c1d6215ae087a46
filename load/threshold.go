package load

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	"slolab.dev/slolab/spec"
)

// Threshold is a pass/fail condition on a run: "update:p99<1s",
// "update:errors<0.1%", "*:p99.9<=2s" (every CUJ) or "_total:late<1%".
type Threshold struct {
	CUJ    string // a CUJ name, "*" for each CUJ, "_total" for the whole run
	Metric string // pNN, max, errors, late or dropped
	Op     string // <, <=, >, >=
	// Limit is a duration for pNN and max, a ratio for errors, late and dropped.
	Latency time.Duration
	Ratio   spec.Ratio
	q       float64
	text    string
}

// Every CUJ, and the whole run, in thresholds.
const (
	EachCUJ  = "*"
	TotalCUJ = "_total"
)

var thresholdRe = regexp.MustCompile(`^([^:]+):\s*(p[0-9]+(?:\.[0-9]+)?|max|errors|late|dropped)\s*(<=|>=|<|>)\s*(\S+)$`)

// ParseThreshold reads CUJ:METRIC OP LIMIT.
func ParseThreshold(s string) (Threshold, error) {
	m := thresholdRe.FindStringSubmatch(strings.TrimSpace(s))
	if m == nil {
		return Threshold{}, fmt.Errorf("want a threshold such as update:p99<1s, update:errors<0.1%% or '*:p99.9<2s' "+
			"(metrics: pNN, max, errors, late, dropped), got %q", s)
	}
	t := Threshold{CUJ: strings.TrimSpace(m[1]), Metric: m[2], Op: m[3], text: s}
	switch {
	case strings.HasPrefix(t.Metric, "p"):
		q, err := strconv.ParseFloat(t.Metric[1:], 64)
		if err != nil || q <= 0 || q >= 100 {
			return Threshold{}, fmt.Errorf("threshold %q: a percentile must be between p0 and p100, exclusive", s)
		}
		t.q = q
		fallthrough
	case t.Metric == "max":
		d, err := spec.ParseDuration(m[4])
		if err != nil {
			return Threshold{}, fmt.Errorf("threshold %q: %w", s, err)
		}
		t.Latency = d
	default:
		r, err := spec.ParseRatio(m[4])
		if err != nil {
			return Threshold{}, fmt.Errorf("threshold %q: %w", s, err)
		}
		if r.Cmp(spec.One) > 0 {
			return Threshold{}, fmt.Errorf("threshold %q: a share must be at most 100%%", s)
		}
		t.Ratio = r
	}
	return t, nil
}

func (t Threshold) String() string {
	limit := t.Ratio.String()
	if t.Metric == "max" || strings.HasPrefix(t.Metric, "p") {
		limit = spec.FormatDuration(t.Latency)
	}
	return fmt.Sprintf("%s:%s%s%s", t.CUJ, t.Metric, t.Op, limit)
}

// ThresholdResult is one threshold checked against one CUJ.
type ThresholdResult struct {
	Threshold string `json:"threshold"`
	CUJ       string `json:"cuj"`
	Value     string `json:"value"`
	OK        bool   `json:"ok"`
}

// Check evaluates thresholds against the report, records the results in it
// and returns whether all held. A threshold naming a CUJ the run did not
// send is an error.
func (r *Report) Check(ts []Threshold) (bool, error) {
	all := true
	for _, t := range ts {
		var targets []*CUJReport
		switch t.CUJ {
		case EachCUJ:
			for i := range r.CUJs {
				targets = append(targets, &r.CUJs[i])
			}
		case TotalCUJ:
			targets = append(targets, &r.Total)
		default:
			for i := range r.CUJs {
				if r.CUJs[i].Name == t.CUJ {
					targets = append(targets, &r.CUJs[i])
				}
			}
			if len(targets) == 0 {
				names := make([]string, len(r.CUJs))
				for i, c := range r.CUJs {
					names[i] = c.Name
				}
				return false, fmt.Errorf("threshold %q: no CUJ %q in this run (CUJs: %s; or * for each, %s for all)",
					t.text, t.CUJ, strings.Join(names, ", "), TotalCUJ)
			}
		}
		for _, c := range targets {
			value, ok := t.eval(c)
			all = all && ok
			r.Thresholds = append(r.Thresholds, ThresholdResult{Threshold: t.String(), CUJ: c.Name, Value: value, OK: ok})
		}
	}
	return all, nil
}

// eval compares exactly: ratios as integers, latencies to HDR's 0.1%.
func (t Threshold) eval(c *CUJReport) (string, bool) {
	if t.Metric == "max" || strings.HasPrefix(t.Metric, "p") {
		q := t.q
		if t.Metric == "max" {
			q = 100
		}
		v := c.Quantile(q)
		return spec.FormatDuration(v.Round(time.Microsecond)), compare(t.Op, cmpDur(v, t.Latency))
	}
	var bad, total uint64
	switch t.Metric {
	case "errors":
		bad, total = c.Failed(), c.Sent+c.Dropped
	case "late":
		bad, total = c.Late, c.Sent
	case "dropped":
		bad, total = c.Dropped, c.Sent+c.Dropped
	}
	if total == 0 {
		return "no requests", compare(t.Op, -1) // nothing failed
	}
	value := fmt.Sprintf("%.4g%% (%d/%d)", 100*float64(bad)/float64(total), bad, total)
	// Compare bad/total with the limit exactly.
	return value, compare(t.Op, spec.NewRatio(bad, total).Cmp(t.Ratio))
}

func cmpDur(a, b time.Duration) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func compare(op string, c int) bool {
	switch op {
	case "<":
		return c < 0
	case "<=":
		return c <= 0
	case ">":
		return c > 0
	case ">=":
		return c >= 0
	}
	return false
}
