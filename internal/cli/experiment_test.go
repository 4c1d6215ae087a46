package cli

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
)

const cliExperiment = `apiVersion: slolab.dev/v1
kind: Experiment
metadata: {name: %s}
spec:
  service: chat
  serviceFile: %s
  interval: 1s
  steadyState: ['%s']
  method: [{duration: 1s}]
`

func experimentFile(t *testing.T, dir, name, steady string) string {
	t.Helper()
	chat, _ := filepath.Abs("../../examples/chat.yaml")
	return writeFile(t, dir, name+".yaml", fmt.Sprintf(cliExperiment, name, chat, steady))
}

func TestExperimentRunHoldsRefusesAndWritesReports(t *testing.T) {
	adminURL := startStack(t)
	dir := t.TempDir()
	reports := filepath.Join(dir, "reports")

	// Nothing is failing and nothing is injected: the hypothesis holds.
	held := experimentFile(t, dir, "calm", "true")
	store := filepath.Join(dir, "slolab.db")
	code, out, errOut := runCLI(t, nil, "experiment", "run", held, "--admin", adminURL, "--report-dir", reports, "--store", store)
	if code != ExitOK || !strings.HasPrefix(out, "experiment calm: held\n") {
		t.Fatalf("held: exit %d\n%s\n%s", code, out, errOut)
	}
	files, _ := filepath.Glob(filepath.Join(reports, "calm-*"))
	if len(files) != 3 {
		t.Errorf("reports: %v", files)
	}

	// No traffic reached the update journey: the steady state does not hold.
	unsteady := experimentFile(t, dir, "quiet", `requests("update", "1m") > 0`)
	code, out, _ = runCLI(t, nil, "experiment", "run", unsteady, "--admin", adminURL, "--report-dir", "", "-o", "json", "--store", store)
	var rep struct {
		Verdict string
		Reason  string
		Failed  struct{ Expr string }
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil || code != ExitFailure || rep.Verdict != "refused" ||
		rep.Reason != `the system is not steady: requests("update", "1m") > 0 is false (requests("update", "1m") = 0)` || rep.Failed.Expr != `requests("update", "1m") > 0` {
		t.Errorf("unsteady: exit %d %+v %v\n%s", code, rep, err, out)
	}

	// No proxy at all.
	code, out, _ = runCLI(t, nil, "experiment", "run", held, "--admin", "http://127.0.0.1:1", "--report-dir", "", "--store", "-")
	if code != ExitFailure || !strings.HasPrefix(out, "experiment calm: refused\n  cannot reach the proxy: admin API http://127.0.0.1:1: dial tcp 127.0.0.1:1: connect: connection refused") {
		t.Errorf("no proxy: exit %d %q", code, out)
	}

	// The store keeps both runs, newest first, with their reports.
	code, out, _ = runCLI(t, nil, "experiment", "history", "--store", store, "-o", "json")
	var runs []struct {
		Name, Verdict string
		Report        struct{ Verdict string }
	}
	if err := json.Unmarshal([]byte(out), &runs); err != nil || code != ExitOK || len(runs) != 2 ||
		runs[0].Name != "quiet" || runs[0].Verdict != "refused" || runs[1].Name != "calm" || runs[1].Report.Verdict != "held" {
		t.Errorf("history: exit %d %v\n%s", code, err, out)
	}
	// $SLOLAB_STORE, which the lab prints, stands for --store.
	code, envOut, _ := runCLI(t, map[string]string{"SLOLAB_STORE": store}, "experiment", "history", "-o", "json")
	if code != ExitOK || envOut != out {
		t.Errorf("history from $SLOLAB_STORE: exit %d\n%s\nwant\n%s", code, envOut, out)
	}
	code, out, _ = runCLI(t, nil, "experiment", "history", "--store", store, "--name", "calm")
	if lines := strings.Split(strings.TrimSpace(out), "\n"); code != ExitOK || len(lines) != 2 || !strings.Contains(lines[1], "experiment  calm  held") {
		t.Errorf("history of calm: exit %d\n%s", code, out)
	}
}

func TestExperimentCommandMistakes(t *testing.T) {
	dir := t.TempDir()
	chat, _ := filepath.Abs("../../examples/chat.yaml")
	two := writeFile(t, dir, "two.yaml", strings.Join([]string{
		"apiVersion: slolab.dev/v1\nkind: Experiment\nmetadata: {name: a}\nspec:\n  serviceFile: " + chat + "\n  steadyState: [\"true\"]\n  method: [{duration: 1m}]\n",
		"apiVersion: slolab.dev/v1\nkind: Experiment\nmetadata: {name: b}\nspec:\n  serviceFile: " + chat + "\n  steadyState: [\"true\"]\n  method: [{duration: 1m}]\n",
	}, "---\n"))
	bad := writeFile(t, dir, "bad.yaml", "apiVersion: slolab.dev/v1\nkind: Experiment\nmetadata: {name: c}\nspec:\n  serviceFile: "+chat+"\n  steadyState: ['availability(\"updte\", \"1m\") > 99']\n  method: [{duration: 1m}]\n")
	tests := []struct {
		name   string
		args   []string
		code   int
		stderr string
	}{
		{"a history without a store", []string{"experiment", "history", "--store", "-"}, ExitUsage, "slolab: --store: give the store to read\n"},
		{"no file", []string{"experiment", "run"}, ExitUsage, "slolab: experiment run needs the spec file holding the experiment\nRun 'slolab experiment run --help' for usage.\n"},
		{"two experiments and no name", []string{"experiment", "run", two}, ExitUsage, "slolab: " + two + " holds 2 experiments; choose one with --name (a, b)\n"},
		{"a name that is not there", []string{"experiment", "run", two, "--name", "z"}, ExitUsage, "slolab: --name z: no such experiment in " + two + " (there are: a, b)\n"},
		{"an unknown format", []string{"experiment", "run", two, "--format", "pdf"}, ExitUsage, "slolab: --format \"pdf\": want md, html or json\n"},
		{"an expression naming a missing CUJ", []string{"experiment", "run", bad}, ExitInvalid, bad + ":6:31: spec.steadyState[0]: service chat has no CUJ \"updte\" (it has login, send, update, read, upload, task)\n"},
		{"a schedule without scheduled experiments", []string{"experiment", "schedule", two}, ExitUsage, "slolab: no experiment has a schedule (spec.schedule, e.g. \"0 11 * * 2\")\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, _, errOut := runCLI(t, nil, tt.args...)
			if code != tt.code || errOut != tt.stderr {
				t.Errorf("exit %d, stderr:\n%s\nwant exit %d:\n%s", code, errOut, tt.code, tt.stderr)
			}
		})
	}
}

func TestValidateCompilesExperimentsAndGameDays(t *testing.T) {
	code, out, errOut := runCLI(t, nil, "validate", "../../examples/chat-experiments.yaml")
	want := `../../examples/chat-experiments.yaml: ok: experiment update-errors on service chat: 2 steps over 6m, 2 hypotheses, 2 guardrails, 2 expectations
../../examples/chat-experiments.yaml: ok: experiment read-slow on service chat: 1 step over 3m, 1 hypothesis, 1 guardrail, 1 expectation
../../examples/chat-experiments.yaml: ok: GameDay edits-failing: 1 experiment, unannounced
`
	if code != ExitOK || out != want {
		t.Errorf("exit %d\n%s\n%s", code, out, errOut)
	}
}
