package experiment

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"slolab.dev/slolab/demoapp"
	"slolab.dev/slolab/internal/testtool"
	"slolab.dev/slolab/spec"
)

// The GameDay of the closing note, against the example app: the
// demo chat service of examples/chat.yaml behind the proxy, six hours of
// light use, then a drill in which a fifth of the users see half of their
// edits fail until a responder mitigates.
func TestAGameDayAgainstTheDemoApp(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		chat, err := spec.LoadService("../examples/chat.yaml")
		if err != nil {
			t.Fatal(err)
		}
		app, err := demoapp.New(demoapp.Config{Seed: 1, Blobs: "127.0.0.1:1"}) // no uploads in this drill
		if err != nil {
			t.Fatal(err)
		}
		defer app.Close()
		l := newLabFor(t, chat, app.Handler())
		time.Sleep(time.Millisecond)
		// A quiet night, then the morning's traffic as the drill begins (the
		// SQLite behind the app makes every request count under -race).
		// Requests never arrive as an interval closes or an evaluation runs.
		l.traffic(10*time.Second, 500, "POST /update", "GET /messages?room=general")
		time.Sleep(6*time.Hour + 2400*time.Millisecond - time.Millisecond)
		l.traffic(time.Second, 500, "POST /update", "GET /messages?room=general")
		time.Sleep(100 * time.Millisecond)
		f, err := spec.Parse("drill.yaml", []byte(`apiVersion: slolab.dev/v1
kind: Experiment
metadata: {name: edits-fail}
spec:
  steadyState:
    - availability("update", "5m", "control") >= 99.9
    - latency_ratio("read", "5m") >= 99
  blastRadius: {by: "header:X-User-ID", experiment: 20%}
  method:
    - duration: 30m
      faults: [{name: update-500, match: {cuj: update}, status: 500, rate: 50%}]
  expect:
    - recovers_within("update", 1m)
    - availability("update", "run", "control") >= 99.9
    - latency_ratio("read", "run", "experiment") >= 99
---
apiVersion: slolab.dev/v1
kind: GameDay
metadata: {name: edits-failing}
spec:
  facilitator: dana
  responders: [alex, sam]
  wrapUp: 15m
  scenario: [{experiment: edits-fail}]
`))
		if err != nil {
			t.Fatal(err)
		}
		c, err := Compile(f.Experiments[0], chat)
		if err != nil {
			t.Fatal(err)
		}
		responses := make(chan Response)
		go func() {
			time.Sleep(10 * time.Minute)
			responses <- Response{Kind: ResponseAck, Who: "alex", Text: "edits failing for some users", At: time.Now()}
			time.Sleep(2 * time.Minute)
			responses <- Response{Kind: ResponseMitigate, Who: "alex", Text: "drained the bad canary", At: time.Now()}
		}()
		rep, err := RunGameDay(context.Background(), GameDayConfig{
			GameDay: f.GameDays[0], Set: &Set{Experiments: []*Compiled{c}, GameDays: f.GameDays},
			Proxy: l.admin, View: AdminView{Client: l.admin}, Responses: responses,
		})
		if err != nil {
			t.Fatal(err)
		}
		fig := rep.Figures
		t.Logf("detected after %s by %s; acknowledged after %s; mitigated after %s; recovered after %s",
			fig.TimeToDetect, fig.DetectedBy, fig.TimeToAcknowledge, fig.TimeToMitigate, fig.TimeToRecover)
		if fig.TimeToDetect == 0 || fig.TimeToDetect > spec.Duration(10*time.Minute) || !strings.HasPrefix(fig.DetectedBy, "alert: update availability page") ||
			fig.TimeToAcknowledge != spec.Duration(10*time.Minute) || fig.TimeToMitigate != spec.Duration(12*time.Minute) ||
			fig.TimeToRecover <= fig.TimeToMitigate || fig.TimeToRecover > spec.Duration(12*time.Minute+time.Minute) {
			t.Errorf("figures = %+v", fig)
		}
		x := rep.Experiments[0]
		if x.Verdict != Held || len(x.Comparison) != 2 {
			t.Fatalf("experiment %s: %s", x.Verdict, x.Reason)
		}
		if up := x.Comparison[0]; up.CUJ != "update" || !up.Degraded || !up.Control.WithinSLO || up.Control.Bad != 0 {
			t.Errorf("update: %s", up.Summary)
		}
		if read := x.Comparison[1]; read.CUJ != "read" || read.Degraded {
			t.Errorf("read: %s", read.Summary)
		}
		if left := l.leftovers(); len(left) != 0 {
			t.Errorf("left behind: %v", left)
		}
		var md bytes.Buffer
		if err := rep.WriteMarkdown(&md); err != nil {
			t.Fatal(err)
		}
		testtool.Golden(t, filepath.Join("testdata", "gameday-demoapp.md"), md.Bytes())
	})
}
