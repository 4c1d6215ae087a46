package promrules_test

import (
	"errors"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"slolab.dev/slolab/gen/promrules"
	"slolab.dev/slolab/internal/testtool"
	"slolab.dev/slolab/spec"
	"slolab.dev/slolab/spec/slothspec"
)

// alertSet is what routes an alert and what fires it: its name, its labels
// as Alertmanager sees them, and the window pairs with their factors
// ("1h/5m×14.4"), one alert per severity of an SLO.
type alertSet struct {
	name   string
	labels map[string]string
	pairs  []string
}

// promRules is a Prometheus rule file.
type promRules struct {
	Groups []struct {
		Rules []struct {
			Record string
			Alert  string
			Expr   string
			Labels map[string]string
		}
	}
}

// slothWindows finds Sloth's window pairs in an alert expression: each
// pair is a short and a long ratio above factor × budget.
var slothWindows = regexp.MustCompile(`slo:sli_error:ratio_rate(\w+)\{[^}]*\} > \(([0-9.]+) \*`)

// slothAlerts reads Sloth's generated rules: per sloth_id and
// sloth_severity, the alert's name, the labels its firing alert carries
// (the recording series' labels but sloth_window, which the expression's
// max drops, then the rule's), and its window pairs.
func slothAlerts(t *testing.T, data []byte) map[[2]string]alertSet {
	t.Helper()
	var f promRules
	if err := yaml.Unmarshal(data, &f); err != nil {
		t.Fatal(err)
	}
	series := map[string]map[string]string{} // sloth_id → recording labels
	for _, g := range f.Groups {
		for _, r := range g.Rules {
			if r.Record == "slo:sli_error:ratio_rate5m" {
				l := maps.Clone(r.Labels)
				delete(l, "sloth_window")
				series[r.Labels["sloth_id"]] = l
			}
		}
	}
	out := map[[2]string]alertSet{}
	for _, g := range f.Groups {
		for _, r := range g.Rules {
			if r.Alert == "" {
				continue
			}
			id := regexp.MustCompile(`sloth_id="([^"]+)"`).FindStringSubmatch(r.Expr)[1]
			labels := maps.Clone(series[id])
			maps.Copy(labels, r.Labels)
			var pairs []string
			m := slothWindows.FindAllStringSubmatch(r.Expr, -1)
			for i := 0; i+1 < len(m); i += 2 {
				short, long := m[i], m[i+1]
				if short[2] != long[2] {
					t.Fatalf("%s: a pair with factors %s and %s", r.Alert, short[2], long[2])
				}
				pairs = append(pairs, fmt.Sprintf("%s/%s×%s", long[1], short[1], long[2]))
			}
			slices.Sort(pairs)
			out[[2]string{id, labels["sloth_severity"]}] = alertSet{name: r.Alert, labels: labels, pairs: pairs}
		}
	}
	return out
}

// slolabAlerts reads the rules `slolab gen prometheus` wrote for an
// imported spec the same way: per sloth_id and sloth_severity, the name and
// labels shared by the severity's rules (each rule adds its own windows),
// and the window pairs.
func slolabAlerts(t *testing.T, data []byte) map[[2]string]alertSet {
	t.Helper()
	var f promRules
	if err := yaml.Unmarshal(data, &f); err != nil {
		t.Fatal(err)
	}
	out := map[[2]string]alertSet{}
	for _, g := range f.Groups {
		for _, r := range g.Rules {
			if r.Alert == "" {
				continue
			}
			k := [2]string{r.Labels["sloth_id"], r.Labels["sloth_severity"]}
			labels := maps.Clone(r.Labels)
			pair := fmt.Sprintf("%s/%s×%s", labels["long_window"], labels["short_window"], labels["burn_rate"])
			for _, own := range []string{"long_window", "short_window", "burn_rate"} {
				delete(labels, own)
			}
			a, seen := out[k]
			if seen && (a.name != r.Alert || !maps.Equal(a.labels, labels)) {
				t.Errorf("%v: rules of one severity differ: %s %v and %s %v", k, a.name, a.labels, r.Alert, labels)
			}
			a.name, a.labels = r.Alert, labels
			a.pairs = append(a.pairs, pair)
			slices.Sort(a.pairs)
			out[k] = a
		}
	}
	return out
}

// slolabOwnLabels are the labels slolab adds to every alert, besides
// Sloth's: they tell its one-rule-per-window-pair alerts apart and name the
// CUJ; owner and severity count here only where Sloth's alert has none
// (where it has them, the values must be Sloth's).
var slolabOwnLabels = []string{"service", "cuj", "slo", "long_window", "short_window", "burn_rate", "owner", "severity"}

// TestImportedSlothSpecsAlertLikeSloth runs the real Sloth on every example
// of its module and compares, example by example and alert by alert, what
// Sloth generates with what `slolab import sloth` then `slolab gen
// prometheus` generate: the alert name, every label Sloth's firing alert
// carries (slolab's may add only its own), and the window pairs with their
// burn-rate factors. Sloth writes one alert per severity whose expression
// ORs the pairs; slolab writes one rule per pair, each with the same name
// and labels. docs/import.md lists the differences that remain.
func TestImportedSlothSpecsAlertLikeSloth(t *testing.T) {
	sloth := testtool.GoTool(t, testtool.Sloth, "github.com/slok/sloth/cmd/sloth")
	examples, err := filepath.Glob(filepath.Join(testtool.ModuleFile(t, testtool.Sloth, "examples"), "*.y*ml"))
	if err != nil || len(examples) == 0 {
		t.Fatalf("Sloth's examples: %v", err)
	}
	compared := 0
	var summary []string
	for _, path := range examples {
		name := filepath.Base(path)
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		res, err := slothspec.Import(name, data)
		if err != nil {
			summary = append(summary, fmt.Sprintf("%s: not imported (%s)", name, firstLine(err.Error())))
			continue
		}
		out, err := exec.Command(sloth, "generate", "-i", path).Output()
		if err != nil {
			var stderr []byte
			if ee := (*exec.ExitError)(nil); errors.As(err, &ee) {
				stderr = ee.Stderr
			}
			t.Errorf("%s: sloth generate: %v\n%s", name, err, stderr)
			continue
		}
		theirs := slothAlerts(t, out)
		f, err := spec.Parse("imported.yaml", res.Service.YAML())
		if err != nil {
			t.Fatalf("%s: the imported spec: %v", name, err)
		}
		svc, _ := f.Service()
		ours := slolabAlerts(t, generate(t, svc, promrules.Options{}))
		imported := map[string]bool{}
		for _, c := range svc.CUJs {
			imported[c.Alerting.Labels["sloth_id"]] = true
		}
		n := 0
		for k, want := range theirs {
			if !imported[k[0]] {
				continue // an SLO slolab does not import (raw, plugin): its note says so
			}
			n++
			got, ok := ours[k]
			if !ok {
				t.Errorf("%s: %s %s: Sloth alerts as %s, slolab has no such alert", name, k[0], k[1], want.name)
				continue
			}
			if got.name != want.name {
				t.Errorf("%s: %s %s: alert name %s, Sloth's %s", name, k[0], k[1], got.name, want.name)
			}
			for l, v := range want.labels {
				if got.labels[l] != v {
					t.Errorf("%s: %s %s: label %s=%q, Sloth's %q", name, k[0], k[1], l, got.labels[l], v)
				}
			}
			for l := range got.labels {
				if _, sloths := want.labels[l]; !sloths && !slices.Contains(slolabOwnLabels, l) {
					t.Errorf("%s: %s %s: label %s=%q that Sloth's alert has not", name, k[0], k[1], l, got.labels[l])
				}
			}
			if !slices.Equal(got.pairs, want.pairs) {
				t.Errorf("%s: %s %s: window pairs %v, Sloth's %v", name, k[0], k[1], got.pairs, want.pairs)
			}
		}
		for k, got := range ours {
			if _, ok := theirs[k]; !ok {
				t.Errorf("%s: %s %s: slolab alerts as %s %v, Sloth does not alert", name, k[0], k[1], got.name, got.pairs)
			}
		}
		compared++
		summary = append(summary, fmt.Sprintf("%s: %d alerts compared, %d of %d SLOs imported", name, n, len(svc.CUJs), len(imported)+countNotImported(res.Notes)))
	}
	t.Logf("Sloth %s against slolab, per example:\n%s", testtool.Sloth, strings.Join(summary, "\n"))
	if compared < 5 {
		t.Errorf("only %d of Sloth's examples could be compared", compared)
	}
}

func countNotImported(notes []string) int {
	n := 0
	for _, s := range notes {
		if strings.Contains(s, "the SLO is not imported") || strings.Contains(s, "it is not imported") {
			n++
		}
	}
	return n
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}
