package promql_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"slolab.dev/slolab/gen/promrules"
	"slolab.dev/slolab/internal/promtest"
	"slolab.dev/slolab/internal/testtool"
	"slolab.dev/slolab/slo"
	"slolab.dev/slolab/spec"
	"slolab.dev/slolab/store/promql"
)

// increasesRules writes the rule group of `slolab gen prometheus` that
// records the per-minute increases, as generated for svc, to a file.
func increasesRules(t *testing.T, svc *spec.Service, dir string) string {
	t.Helper()
	out, err := promrules.Generate(svc, promrules.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var file struct {
		Groups []map[string]any `yaml:"groups"`
	}
	if err := yaml.Unmarshal(out.Files[0].Data, &file); err != nil {
		t.Fatal(err)
	}
	var keep []map[string]any
	for _, g := range file.Groups {
		if strings.HasSuffix(g["name"].(string), "-increases") {
			keep = append(keep, g)
		}
	}
	if len(keep) != 1 {
		t.Fatalf("%d increases groups in the generated rules, want 1", len(keep))
	}
	b, err := yaml.Marshal(map[string]any{"groups": keep})
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "increases.rules.yaml")
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// copyBlocks copies the TSDB blocks (ULID directories) of src into dst.
func copyBlocks(t *testing.T, src, dst string) {
	t.Helper()
	entries, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if !e.IsDir() || len(e.Name()) != 26 {
			continue
		}
		if out, err := exec.Command("cp", "-r", filepath.Join(src, e.Name()), filepath.Join(dst, e.Name())).CombinedOutput(); err != nil {
			t.Fatalf("cp: %v\n%s", err, out)
		}
	}
}

// TestTheRecordedIncreasesGiveTheCountersAnswers backfills a real
// Prometheus with two proxies' counters over 26 hours (with a restart),
// backfills the generated rules' per-minute increases over the same span
// with promtool, as an operator adding the rules would, and checks the
// engine judges every SLO identically from the records and from the
// counters: status at several instants, to the last event, and the
// backtest over the whole span.
func TestTheRecordedIncreasesGiveTheCountersAnswers(t *testing.T) {
	promtool := testtool.Path(t, "promtool")
	svc := service(t)
	end := slo.Align(time.Now().Add(-2*time.Hour), time.Minute)
	h := generate(end.Add(-26*time.Hour), 26*60)

	dir := t.TempDir()
	om := filepath.Join(dir, "backfill.om")
	if err := h.openMetrics(om); err != nil {
		t.Fatal(err)
	}
	raw := filepath.Join(dir, "raw")
	if out, err := exec.Command(promtool, "tsdb", "create-blocks-from", "openmetrics", om, raw).CombinedOutput(); err != nil {
		t.Fatalf("promtool backfill: %v\n%s", err, out)
	}
	first := filepath.Join(dir, "first")
	if err := os.Mkdir(first, 0o755); err != nil {
		t.Fatal(err)
	}
	copyBlocks(t, raw, first)
	url := promtest.Start(t, "global: {scrape_interval: 1m}\n", first)

	// The rules as an operator backfills them: evaluated by promtool against
	// the Prometheus holding the counters, each minute at the group's offset.
	recorded := filepath.Join(dir, "recorded")
	rules := increasesRules(t, svc, dir)
	cmd := exec.Command(promtool, "tsdb", "create-blocks-from", "rules", "--url", url,
		"--start", strconv.FormatInt(h.start.Unix(), 10), "--end", strconv.FormatInt(end.Add(2*time.Minute).Unix(), 10),
		"--output-dir", recorded, rules)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("promtool rules backfill: %v\n%s", err, out)
	}
	both := filepath.Join(dir, "both")
	if err := os.Mkdir(both, 0o755); err != nil {
		t.Fatal(err)
	}
	copyBlocks(t, raw, both)
	copyBlocks(t, recorded, both)
	url = promtest.Start(t, "global: {scrape_interval: 1m}\n", both)

	ctx := context.Background()
	counters, err := promql.New(promql.Config{URL: url, Service: svc})
	if err != nil {
		t.Fatal(err)
	}
	records, err := promql.New(promql.Config{URL: url, Service: svc, Recorded: true})
	if err != nil {
		t.Fatal(err)
	}
	// promtool evaluated the rules up to end + 2m, each minute at end + φ
	// (0 < φ < 1m): the last minute recorded ends at end + 1m.
	if latest, err := records.Latest(ctx, end.Add(3*time.Minute)); err != nil || !latest.Equal(end.Add(time.Minute)) {
		t.Errorf("Latest = %v, %v; want %v, the end of the last minute the rules recorded", latest, err, end.Add(time.Minute))
	}
	instants := map[string]time.Time{
		"the end":                         end,
		"inside the update burst":         h.start.Add(time.Duration(h.minutes/2+47) * time.Minute),
		"during the read slow spell":      h.start.Add(time.Duration(h.minutes/4+120) * time.Minute),
		"just after proxy b restarted":    h.start.Add(time.Duration(h.restart+3) * time.Minute),
		"an hour and a minute from start": h.start.Add(61 * time.Minute),
	}
	for name, at := range instants {
		t.Run("status at "+name, func(t *testing.T) {
			fromCounters, err := slo.Evaluate(ctx, svc, counters, at)
			if err != nil {
				t.Fatal(err)
			}
			fromRecords, err := slo.Evaluate(ctx, svc, records, at)
			if err != nil {
				t.Fatal(err)
			}
			if a, b := jsonOf(t, fromCounters), jsonOf(t, fromRecords); a != b {
				t.Errorf("counters and records disagree at %v:\ncounters:\n%s\nrecords:\n%s", at, a, b)
			}
			if fromCounters.SLOs[0].Events.Total == 0 {
				t.Error("no events: the comparison proves nothing")
			}
		})
	}
	t.Run("backtest over the whole span", func(t *testing.T) {
		hc, err := counters.History(ctx, h.start, end)
		if err != nil {
			t.Fatal(err)
		}
		hr, err := records.History(ctx, h.start, end)
		if err != nil {
			t.Fatal(err)
		}
		from := h.start.Add(time.Hour)
		bc, br := slo.Replay(svc, hc, from, end, time.Minute), slo.Replay(svc, hr, from, end, time.Minute)
		if a, b := jsonOf(t, bc), jsonOf(t, br); a != b {
			t.Errorf("backtests disagree:\ncounters:\n%s\nrecords:\n%s", a, b)
		}
	})
	t.Run("an instant past the records is refused", func(t *testing.T) {
		_, err := records.Events(ctx, slo.Last(time.Hour, end.Add(2*time.Minute)))
		if err == nil || !strings.Contains(err.Error(), "the recorded increases of service chat end at") {
			t.Errorf("err = %v, want the records' end named", err)
		}
	})
}
