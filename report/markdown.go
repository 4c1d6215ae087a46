package report

import (
	"bufio"
	"fmt"
	"io"
	"strings"
	"time"

	"slolab.dev/slolab/slo"
	"slolab.dev/slolab/spec"
)

// Markdown writes the review as Markdown: a summary table, then per CUJ its
// SLOs' budgets, burn-down, alerts and the policy's actions.
func Markdown(out io.Writer, r *slo.Review) error {
	w := bufio.NewWriter(out)
	p := func(format string, args ...any) { fmt.Fprintf(w, format, args...) }
	p("# SLO review: %s\n\n", r.Service)
	p("Window: %s, %s → %s. Budgets and SLIs count every request in the window; the burn-down has a row per %s.\n\n",
		spec.FormatDuration(time.Duration(r.Window)), Time(r.From), Time(r.To), stepName(r.Step))
	for _, n := range HistoryNotes(&r.Span, r.To, time.Duration(r.Window)) {
		p("> %s\n\n", n)
	}
	p("| CUJ | Owner | SLO | SLI | Budget left | Alerts | Policy |\n|---|---|---|---|---|---|---|\n")
	for _, c := range r.CUJs {
		for _, s := range c.SLOs {
			policy := "—"
			if len(s.Policy) > 0 {
				parts := make([]string, len(s.Policy))
				for i, h := range s.Policy {
					parts[i] = h.When
				}
				policy = strings.Join(parts, "; ")
			}
			p("| %s | %s | %s | %s | %s | %s | %s |\n", c.Name, c.Owner, SLOName(s.Kind, s.Objective, s.Threshold),
				SLIPercent(s.SLIPercent), budgetLeft(s), alertSummary(s.Alerts), policy)
		}
	}
	for _, c := range r.CUJs {
		p("\n## %s (%s)\n\n", c.Name, c.Owner)
		if c.Description != "" {
			p("%s\n\n", c.Description)
		}
		for _, s := range c.SLOs {
			p("### %s\n\n", capitalise(SLOName(s.Kind, s.Objective, s.Threshold)))
			p("- SLI %s: %s requests, %s %s.", SLIPercent(s.SLIPercent), Count(s.Events.Total), Count(s.Events.Bad), badWord(s.Kind))
			if s.Events.Total > 0 {
				if s.Met {
					p(" The objective is met.")
				} else {
					p(" **The objective is missed.**")
				}
			}
			if s.TooFewToJudge {
				p(" Too few to judge: fewer bad requests than an alert needs, and too few requests to expect that many at the objective.")
			}
			p("\n")
			p("- Budget: %s bad requests allowed, %s spent (%s): %s.\n",
				Allowed(s.Budget.Allowed), Count(s.Budget.Spent), Percent(s.Budget.ConsumedPercent, 1), budgetState(s))
			p("- Burn-down (budget left after each %s): `%s`\n\n", stepName(r.Step), Sparkline(remaining(s.Trend)))
			p("| %s | Requests | Bad | Spent | Left |\n|---|---|---|---|---|\n", capitalise(stepName(r.Step)))
			for _, tp := range s.Trend {
				p("| %s | %s | %s | %s | %s |\n", stepLabel(tp.End, time.Duration(r.Step)), Count(tp.Events.Total), Count(tp.Events.Bad),
					Percent(tp.ConsumedPercent, 1), Percent(tp.RemainingPercent, 1))
			}
			p("\n")
			if len(s.Alerts) == 0 {
				p("No alert fired.\n\n")
			} else {
				p("| Alert | Windows | Fired | Resolved | Lasted | Peak burn rate |\n|---|---|---|---|---|---|\n")
				for _, e := range s.Alerts {
					p("| %s | %s ≥ %s | %s | %s | %s | %.1f |\n", e.Severity, e.Pair(), e.Factor, Time(e.Fired), resolvedAt(e), lasted(e, r.To), e.PeakBurn)
				}
				p("\n")
			}
		}
		if len(c.Policy) > 0 {
			p("**Error-budget policy:**\n\n")
			for _, h := range c.Policy {
				p("- %s: %s\n", h.When, h.Action)
			}
			p("\n")
		}
	}
	return w.Flush()
}

func budgetLeft(s slo.SLOReview) string {
	if s.Budget.Exhausted {
		return "exhausted (" + Percent(s.Budget.RemainingPercent, 1) + ")"
	}
	return Percent(s.Budget.RemainingPercent, 1)
}

// budgetState says what is left in words.
func budgetState(s slo.SLOReview) string {
	if s.Budget.Exhausted {
		return "exhausted, overspent by " + Percent(-s.Budget.RemainingPercent, 1)
	}
	return Percent(s.Budget.RemainingPercent, 1) + " left"
}

func badWord(k slo.Kind) string {
	if k == slo.Latency {
		return "slow"
	}
	return "failed"
}

func stepName(step spec.Duration) string {
	if time.Duration(step) == spec.Day {
		return "day"
	}
	return "hour"
}

// stepLabel names the burn-down period that ends at end. A period that is a
// calendar day (or a clock hour) in UTC is named by it; any other names its
// start and end, so that a rolling day ending this afternoon is not filed
// under yesterday's date.
func stepLabel(end time.Time, step time.Duration) string {
	start, end := end.Add(-step).UTC(), end.UTC()
	switch {
	case step == spec.Day && start.Equal(start.Truncate(spec.Day)):
		return start.Format("2006-01-02")
	case step == spec.Day:
		return start.Format("01-02 15:04") + " → " + end.Format("01-02 15:04")
	case start.Equal(start.Truncate(time.Hour)):
		return start.Format("01-02 15:04")
	}
	return start.Format("01-02 15:04") + " → " + end.Format("15:04")
}

func capitalise(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}
