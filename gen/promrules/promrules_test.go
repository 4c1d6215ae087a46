package promrules_test

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"slolab.dev/slolab/gen/promrules"
	"slolab.dev/slolab/internal/testtool"
	"slolab.dev/slolab/spec"
	"slolab.dev/slolab/spec/cuespec"
)

func chat(t *testing.T) *spec.Service {
	t.Helper()
	svc, err := spec.LoadService("../../examples/chat.yaml")
	if err != nil {
		t.Fatal(err)
	}
	return svc
}

func generate(t *testing.T, svc *spec.Service, opt promrules.Options) []byte {
	t.Helper()
	out, err := promrules.Generate(svc, opt)
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Files) != 1 {
		t.Fatalf("%d files, want 1", len(out.Files))
	}
	return out.Files[0].Data
}

func TestRulesForTheChatExampleMatchTheGoldenFiles(t *testing.T) {
	svc := chat(t)
	testtool.Golden(t, "testdata/chat.rules.yaml", generate(t, svc, promrules.Options{}))
	testtool.Golden(t, "testdata/chat.prometheusrule.yaml", generate(t, svc, promrules.Options{
		PrometheusRule: true, Namespace: "monitoring", Labels: map[string]string{"release": "kube-prometheus-stack"},
		Matchers: `job="chat-proxy"`, RunbookURL: "https://runbooks.example.com/{{.service}}/{{.cuj}}#{{.slo}}",
	}))
}

func TestTheSameSpecInYAMLAndCUEGivesTheSameBytes(t *testing.T) {
	f, err := cuespec.LoadFile("../../examples/chat.cue")
	if err != nil {
		t.Fatal(err)
	}
	fromCUE, err := f.Service()
	if err != nil {
		t.Fatal(err)
	}
	if a, b := generate(t, chat(t), promrules.Options{}), generate(t, fromCUE, promrules.Options{}); !bytes.Equal(a, b) {
		t.Error("chat.yaml and chat.cue generate different rules")
	}
}

func TestEverySLOStaysWithinSlothsRuleCount(t *testing.T) {
	var file struct {
		Groups []struct {
			Name  string
			Rules []map[string]any
		}
	}
	if err := yaml.Unmarshal(generate(t, chat(t), promrules.Options{}), &file); err != nil {
		t.Fatal(err)
	}
	if len(file.Groups) != 13 || file.Groups[12].Name != "slolab-chat-increases" {
		t.Errorf("%d groups, want one per SLO (12) and slolab-chat-increases", len(file.Groups))
	}
	for _, g := range file.Groups {
		if len(g.Rules) > promrules.MaxRulesPerSLO {
			t.Errorf("%s has %d rules, more than %d", g.Name, len(g.Rules), promrules.MaxRulesPerSLO)
		}
	}
}

func TestPromtoolAcceptsTheRules(t *testing.T) {
	promtool := testtool.Path(t, "promtool")
	dir := t.TempDir()
	path := filepath.Join(dir, "chat.rules.yaml")
	if err := os.WriteFile(path, generate(t, chat(t), promrules.Options{}), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(promtool, "check", "rules", path).CombinedOutput()
	if err != nil {
		t.Fatalf("promtool check rules: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "SUCCESS: 196 rules found") {
		t.Errorf("promtool check rules said:\n%s", out)
	}
}

func TestUserQueriesCustomTablesAndCalendarMonths(t *testing.T) {
	svc, err := spec.LoadService("testdata/istio.yaml")
	if err != nil {
		t.Fatal(err)
	}
	out, err := promrules.Generate(svc, promrules.Options{})
	if err != nil {
		t.Fatal(err)
	}
	testtool.Golden(t, "testdata/istio.rules.yaml", out.Files[0].Data)
	want := []string{"pay-availability: PromQL has no calendar windows, so the budget of the calendar-month SLO is computed over a rolling 30d; burn-rate alerts do not depend on the window"}
	if strings.Join(out.Notes, "\n") != strings.Join(want, "\n") {
		t.Errorf("notes = %q, want %q", out.Notes, want)
	}
	promtool := testtool.Path(t, "promtool")
	path := filepath.Join(t.TempDir(), "istio.rules.yaml")
	if err := os.WriteFile(path, out.Files[0].Data, 0o644); err != nil {
		t.Fatal(err)
	}
	if b, err := exec.Command(promtool, "check", "rules", path).CombinedOutput(); err != nil || !strings.Contains(string(b), "SUCCESS") {
		t.Fatalf("promtool check rules: %v\n%s", err, b)
	}
}
