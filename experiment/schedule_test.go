package experiment

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"testing/synctest"
	"time"
)

func TestTheSchedulerRunsInsideWindowsOneAtATimeAndKeepsAHistory(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		// synctest's clock starts on Saturday 2000-01-01 00:00 UTC.
		nightly := compileFor(t, `  schedule: "0 * * * *"
  steadyState: ["true"]
  method: [{duration: 1m}]
  guardrails:
    allowedWindows: [{days: daily, hours: "01:00-03:00"}]
`, "hourly")
		often := compileFor(t, `  schedule: "*/20 * * * *"
  steadyState: ["true"]
  method: [{duration: 1m}]
`, "often")
		s, err := NewScheduler(SchedulerConfig{
			Experiments: []*Compiled{nightly, often},
			Run: func(ctx context.Context, c *Compiled) (*Report, error) {
				d := 5 * time.Minute
				if c.Experiment.Name == "hourly" {
					d = 45 * time.Minute // long enough to make "often" miss its slots
				}
				select {
				case <-time.After(d):
				case <-ctx.Done():
					return &Report{Verdict: Interrupted, Reason: "interrupted"}, nil
				}
				return &Report{Verdict: Held, Reason: "held"}, nil
			},
		})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Hour+30*time.Minute)
		defer cancel()
		if err := s.Run(ctx); err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, e := range s.History() {
			line := fmt.Sprintf("%s %s %s", e.Due.Format("15:04"), e.Experiment, e.Verdict)
			if !e.Started.IsZero() {
				line += fmt.Sprintf(" %s-%s", e.Started.Format("15:04"), e.Ended.Format("15:04"))
			}
			if e.Verdict == Skipped {
				line += ": " + e.Reason
			}
			got = append(got, line)
		}
		want := []string{
			"00:20 often held 00:20-00:25",
			"00:40 often held 00:40-00:45",
			"01:00 hourly held 01:00-01:45",
			"01:00 often skipped: 3 due times while hourly ran (until 2000-01-01T01:45:00Z); experiments run one at a time",
			"02:00 hourly held 02:00-02:45",
			"02:00 often skipped: 3 due times while hourly ran (until 2000-01-01T02:45:00Z); experiments run one at a time",
			"03:00 hourly skipped: outside the allowed windows: Sat 2000-01-01 03:00 is outside the allowed windows (daily 01:00-03:00, UTC)",
			"03:00 often held 03:00-03:05",
			"03:20 often held 03:20-03:25",
		}
		if strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Errorf("history:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
		if up := s.Upcoming(); up[0].Experiment != "often" || up[0].Due.Format("15:04") != "03:40" || up[1].Due.Format("15:04") != "04:00" {
			t.Errorf("upcoming = %+v", up)
		}
	})
}

func compileFor(t *testing.T, body, name string) *Compiled {
	t.Helper()
	c, err := compileDoc(t, strings.Replace(experimentDoc(body), "metadata: {name: x}", "metadata: {name: "+name+"}", 1))
	if err != nil {
		t.Fatal(err)
	}
	return c
}
