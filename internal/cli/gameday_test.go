package cli

import (
	"net"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// A GameDay through the CLI: the run serves the responder API, responders
// ack and mitigate with the CLI, the mitigation ends the experiment's faults,
// and the retrospective has the figures.
func TestGameDayRunTakesResponsesFromTheCLI(t *testing.T) {
	adminURL := startStack(t)
	dir := t.TempDir()
	chat, _ := filepath.Abs("../../examples/chat.yaml")
	file := writeFile(t, dir, "drill.yaml", `apiVersion: slolab.dev/v1
kind: Experiment
metadata: {name: drill}
spec:
  serviceFile: `+chat+`
  interval: 1s
  recovery: 2s
  steadyState: ["true"]
  method: [{duration: 1m, faults: [{name: drill-500, match: {cuj: update}, status: 500, rate: 1%}]}]
---
apiVersion: slolab.dev/v1
kind: GameDay
metadata: {name: drill-day}
spec:
  interval: 1s
  wrapUp: 1s
  scenario: [{experiment: drill}]
`)
	// A free port for the responder API.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()

	var wg sync.WaitGroup
	var code int
	var out, errOut string
	wg.Go(func() {
		code, out, errOut = runCLI(t, nil, "gameday", "run", file, "--admin", adminURL, "--listen", addr, "--report-dir", filepath.Join(dir, "reports"), "--store", filepath.Join(dir, "slolab.db"))
	})
	// Report until the GameDay answers (bounded), then mitigate.
	var ack string
	for range 100 {
		var c int
		c, ack, _ = runCLI(t, nil, "gameday", "ack", "on it", "--gameday", addr, "--who", "alex")
		if c == ExitOK {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if !strings.HasPrefix(ack, "recorded ack at ") || !strings.HasSuffix(ack, " by alex\n") {
		t.Fatalf("ack: %q", ack)
	}
	if c, o, e := runCLI(t, nil, "gameday", "mitigate", "rolled back", "--gameday", addr, "--who", "alex"); c != ExitOK {
		t.Fatalf("mitigate: exit %d %s %s", c, o, e)
	}
	wg.Wait()
	if code != ExitOK || !strings.HasPrefix(out, "GameDay drill-day\n") || !strings.Contains(out, "acknowledged  ") || !strings.Contains(out, "experiment drill: held") {
		t.Errorf("gameday run: exit %d\n%s\n%s", code, out, errOut)
	}
	if !strings.Contains(errOut, "alex: rolled back (the experiment's faults end here)") {
		t.Errorf("the timeline lacks the mitigation:\n%s", errOut)
	}
	files, _ := filepath.Glob(filepath.Join(dir, "reports", "*"))
	if len(files) != 5 { // retrospective md+json, the experiment's md+html+json
		t.Errorf("reports: %v", files)
	}
	code, out, _ = runCLI(t, nil, "experiment", "history", "--store", filepath.Join(dir, "slolab.db"))
	if lines := strings.Split(strings.TrimSpace(out), "\n"); code != ExitOK || len(lines) != 3 || !strings.Contains(out, "gameday     drill-day  held") || !strings.Contains(out, "experiment  drill      held") {
		t.Errorf("history: exit %d\n%s", code, out)
	}
	c, _, e := runCLI(t, nil, "gameday", "note", "late", "--gameday", addr)
	if c != ExitFailure || !strings.Contains(e, "no GameDay answers at http://"+addr) {
		t.Errorf("a note after the end: exit %d %q", c, e)
	}
}

func TestGameDayMistakes(t *testing.T) {
	for _, tt := range []struct {
		args   []string
		code   int
		stderr string
	}{
		{[]string{"gameday", "run"}, ExitUsage, "slolab: gameday run needs the spec file holding the GameDay\nRun 'slolab gameday run --help' for usage.\n"},
		{[]string{"gameday", "run", "../../examples/chat-experiments.yaml", "--listen", "0.0.0.0:9192"}, ExitUsage,
			"slolab: --listen: the responder API would listen on 0.0.0.0:9192, beyond loopback, without a token: set SLOLAB_GAMEDAY_TOKEN (or --token), or listen on 127.0.0.1\n"},
		{[]string{"gameday", "run", "../../examples/chat-experiments.yaml", "--name", "nope"}, ExitUsage,
			"slolab: --name nope: no such GameDay in ../../examples/chat-experiments.yaml (there are: edits-failing)\n"},
		{[]string{"gameday", "ack"}, ExitUsage, "slolab: slolab gameday ack needs the TEXT to record (quote it)\nRun 'slolab gameday ack --help' for usage.\n"},
	} {
		code, _, errOut := runCLI(t, nil, tt.args...)
		if code != tt.code || errOut != tt.stderr {
			t.Errorf("%v: exit %d\n%s\nwant exit %d\n%s", tt.args, code, errOut, tt.code, tt.stderr)
		}
	}
}
