package experiment

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"slolab.dev/slolab/spec"
)

func TestTheExampleExperimentsCompileAgainstTheChatService(t *testing.T) {
	set, err := Load([]string{"../examples/chat-experiments.yaml"}, spec.LoadFile)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(set.Names(), " "); got != "update-errors read-slow" {
		t.Errorf("experiments = %s", got)
	}
	c := set.Experiment("update-errors")
	if c.Service.Name != "chat" || len(c.SteadyState) != 2 || len(c.AbortIf) != 2 || len(c.Expect) != 2 || len(set.GameDays) != 1 {
		t.Errorf("compiled = %+v", c)
	}
}

func TestLoadReportsEveryMistakeOfEveryFile(t *testing.T) {
	dir := t.TempDir()
	write := func(name, text string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	a := write("a.yaml", `apiVersion: slolab.dev/v1
kind: Experiment
metadata: {name: a}
spec:
  service: chat
  serviceFile: missing.yaml
  steadyState: ["true"]
  method: [{duration: 1m}]
---
apiVersion: slolab.dev/v1
kind: GameDay
metadata: {name: g}
spec:
  scenario: [{experiment: b}, {experiment: zzz}]
`)
	b := write("b.yaml", testService+`---
apiVersion: slolab.dev/v1
kind: Experiment
metadata: {name: b}
spec:
  steadyState: ['availability("nope", "1m") > 1']
  method: [{duration: 1m}]
`)
	_, err := Load([]string{a, b}, spec.LoadFile)
	if err == nil {
		t.Fatal("no error")
	}
	got := strings.ReplaceAll(err.Error(), dir+"/", "")
	want := strings.Join([]string{
		"a.yaml:5:12: spec.serviceFile: reading the service spec missing.yaml: open missing.yaml: no such file or directory",
		`a.yaml:14:31: spec.scenario[1].experiment: no experiment "zzz" in the files given (they hold a, b)`,
		`b.yaml:20:31: spec.steadyState[0]: service chat has no CUJ "nope" (it has update, login)`,
	}, "\n")
	if got != want {
		t.Errorf("errors:\n%s\nwant:\n%s", got, want)
	}
}
