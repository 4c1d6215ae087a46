package experiment

import (
	"bytes"
	"context"
	"path/filepath"
	"testing"
	"testing/synctest"
	"time"

	"slolab.dev/slolab/internal/testtool"
)

// A whole run in a synctest bubble is deterministic when nothing happens at
// the same instant: requests arrive 1ms after every 50ms, the recorder closes
// intervals on 10s boundaries, and the run starts half a second off them with
// a 7s interval, so no two timers ever fire together. The report's three
// renderings are compared with golden files.
func TestReportsRenderAsGolden(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := newLab(t, testService)
		time.Sleep(time.Millisecond)
		l.traffic(50*time.Millisecond, 200, "POST /update", "POST /login")
		time.Sleep(time.Minute + 499*time.Millisecond)
		c := l.compile(`  interval: 7s
  description: Half the experiment group's edits fail; the control group does not notice.
  steadyState:
    - expr: availability("update", "1m", "control") >= 99.9
      description: the control group keeps its SLO
    - p99("update", "1m") < 800ms
  blastRadius: {by: "header:X-User-ID", experiment: 20%, salt: golden}
  method:
    - name: errors
      duration: 1m
      ramp: {from: 10%, stages: 2}
      faults:
        - {name: update-500, match: {cuj: update}, status: 500, rate: 50%}
  guardrails:
    abortIf: ['burn_rate("login", "5m") > 14.4']
  expect:
    - recovers_within("update", 30s)
    - availability("update", "run", "control") >= 99.9
`)
		rep := l.run(context.Background(), c)
		var js, md, html bytes.Buffer
		if err := rep.WriteJSON(&js); err != nil {
			t.Fatal(err)
		}
		if err := rep.WriteMarkdown(&md); err != nil {
			t.Fatal(err)
		}
		if err := rep.WriteHTML(&html); err != nil {
			t.Fatal(err)
		}
		testtool.Golden(t, filepath.Join("testdata", "report.json"), js.Bytes())
		testtool.Golden(t, filepath.Join("testdata", "report.md"), md.Bytes())
		testtool.Golden(t, filepath.Join("testdata", "report.html"), html.Bytes())
	})
}
