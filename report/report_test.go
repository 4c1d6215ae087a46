package report_test

import (
	"bytes"
	"path/filepath"
	"testing"
	"time"

	"slolab.dev/slolab/internal/testtool"
	"slolab.dev/slolab/report"
	"slolab.dev/slolab/slo"
	"slolab.dev/slolab/spec"
)

const chat = `apiVersion: slolab.dev/v1
kind: Service
metadata: {name: chat}
spec:
  policy:
    - {when: remaining < 25%, action: "Freeze feature releases for this CUJ's owner; reliability work first."}
    - {when: consumed >= 100%, action: Stop all releases except fixes.}
  cujs:
    - name: update
      owner: messaging-team
      description: A user edits one of their messages.
      routes: ["POST /update"]
      availability: {objective: 99.9%, window: 30d}
      latency: {threshold: 1s, objective: 99%, window: 30d}
    - name: upload
      owner: files-team
      description: A user attaches a file to a message.
      routes: ["POST /files"]
      availability: {objective: 99.5%, window: 30d}
`

// review is a week of chat traffic: update suffers a 90-minute outage of 20%
// on day 5 (a page) and slow spells; upload stays healthy.
func review(t *testing.T) *slo.Review {
	t.Helper()
	f, err := spec.Parse("chat.yaml", []byte(chat))
	if err != nil {
		t.Fatal(err)
	}
	svc := f.Services[0]
	end := time.Date(2026, 3, 9, 0, 0, 0, 0, time.UTC)
	start := end.Add(-10 * spec.Day)
	b := slo.NewHistoryBuilder(start, end)
	outage := end.Add(-3*spec.Day + 9*time.Hour)
	for m, i := start, 0; m.Before(end); m, i = m.Add(time.Minute), i+1 {
		u := slo.Counts{Total: 600, Slow: uint64(i % 7)}
		if i%97 == 0 {
			u.Bad = 1
		}
		if !m.Before(outage) && m.Before(outage.Add(90*time.Minute)) {
			u.Bad = 120
		}
		b.AddCounts("update", m, u)
		b.AddCounts("upload", m, slo.Counts{Total: 40, Bad: uint64(i % 600 / 599)})
	}
	h, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	return slo.ReviewOf(svc, h, end, spec.Week)
}

func TestGolden(t *testing.T) {
	r := review(t)
	for name, render := range report.Formats {
		t.Run(name, func(t *testing.T) {
			var buf bytes.Buffer
			if err := render(&buf, r); err != nil {
				t.Fatal(err)
			}
			testtool.Golden(t, filepath.Join("testdata", "review."+name), buf.Bytes())
		})
	}
}

func TestFormatting(t *testing.T) {
	v := 99.99996
	for got, want := range map[string]string{
		report.Percent(52.04, 1):                     "52%",
		report.Percent(52.06, 1):                     "52.1%",
		report.SLIPercent(&v):                        "99.999%",
		report.SLIPercent(nil):                       "—",
		report.Count(1234567):                        "1,234,567",
		report.Allowed(1234.56):                      "1,234.6",
		report.Allowed(3.99):                         "4",
		report.Sparkline([]float64{100, 50, 0, -20}): "█▅▁▁",
	} {
		if got != want {
			t.Errorf("got %q, want %q", got, want)
		}
	}
}
