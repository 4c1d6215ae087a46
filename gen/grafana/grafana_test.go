package grafana_test

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"slolab.dev/slolab/gen/grafana"
	"slolab.dev/slolab/internal/testtool"
	"slolab.dev/slolab/spec"
)

type dashboard struct {
	UID           string
	SchemaVersion int
	Panels        []struct {
		ID      int
		Type    string
		Title   string
		GridPos struct{ X, Y, W, H int }
		Targets []struct{ Expr string }
	}
}

func generate(t *testing.T) []byte {
	t.Helper()
	svc, err := spec.LoadService("../../examples/chat.yaml")
	if err != nil {
		t.Fatal(err)
	}
	out, err := grafana.Generate(svc)
	if err != nil {
		t.Fatal(err)
	}
	return out.Files[0].Data
}

func TestTheDashboardMatchesTheGoldenFile(t *testing.T) {
	testtool.Golden(t, "testdata/chat-dashboard.json", generate(t))
}

func TestTheDashboardIsWellFormed(t *testing.T) {
	var d dashboard
	if err := json.Unmarshal(generate(t), &d); err != nil {
		t.Fatal(err)
	}
	if d.UID != "slolab-chat" || d.SchemaVersion != grafana.SchemaVersion {
		t.Errorf("uid %q schemaVersion %d", d.UID, d.SchemaVersion)
	}
	kinds := map[string]int{}
	cells := map[[2]int]int{}
	for _, p := range d.Panels {
		kinds[p.Type]++
		if p.GridPos.X+p.GridPos.W > 24 || p.GridPos.W == 0 || p.GridPos.H == 0 {
			t.Errorf("panel %d %q has gridPos %+v", p.ID, p.Title, p.GridPos)
		}
		for x := p.GridPos.X; x < p.GridPos.X+p.GridPos.W; x++ {
			for y := p.GridPos.Y; y < p.GridPos.Y+p.GridPos.H; y++ {
				if other, taken := cells[[2]int{x, y}]; taken {
					t.Fatalf("panels %d and %d overlap at %d,%d", other, p.ID, x, y)
				}
				cells[[2]int{x, y}] = p.ID
			}
		}
	}
	// A row per CUJ and one more; an SLI and a budget panel per SLO; burn
	// rates, requests and faults; the latency heatmap.
	want := map[string]int{"row": 7, "timeseries": 12 + 3, "stat": 12, "heatmap": 1}
	if fmt.Sprint(kinds) != fmt.Sprint(want) {
		t.Errorf("panels by type = %v, want %v", kinds, want)
	}
}

// Every query parses as PromQL: promtool checks them as recording rules,
// with Grafana's variables filled in.
func TestEveryPanelQueryIsValidPromQL(t *testing.T) {
	promtool := testtool.Path(t, "promtool")
	var d dashboard
	if err := json.Unmarshal(generate(t), &d); err != nil {
		t.Fatal(err)
	}
	type rule struct {
		Record string `yaml:"record"`
		Expr   string `yaml:"expr"`
	}
	var rules []rule
	fill := strings.NewReplacer("$__rate_interval", "1m", "$cuj", "update")
	for _, p := range d.Panels {
		for i, tg := range p.Targets {
			rules = append(rules, rule{Record: fmt.Sprintf("panel_%d_%d", p.ID, i), Expr: fill.Replace(tg.Expr)})
		}
	}
	data, err := yaml.Marshal(map[string]any{"groups": []any{map[string]any{"name": "panels", "rules": rules}}})
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "panels.yaml")
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(promtool, "check", "rules", path).CombinedOutput()
	if err != nil || !strings.Contains(string(out), fmt.Sprintf("SUCCESS: %d rules found", len(rules))) {
		t.Fatalf("promtool: %v\n%s", err, out)
	}
}
