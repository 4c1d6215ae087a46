package canary_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"slolab.dev/slolab/canary"
	"slolab.dev/slolab/spec"
)

const shop = `apiVersion: slolab.dev/v1
kind: Service
metadata: {name: shop}
spec:
  cujs:
    - name: browse
      owner: web
      routes: ["GET /products", "GET /products/{id}"]
      availability: {objective: 99%}
      latency: {threshold: 300ms, objective: 99%}
    - name: export
      owner: back-office
      routes: ["POST /export"]
      availability: {objective: 99.5%}
`

func shopService(t testing.TB) *spec.Service {
	t.Helper()
	f, err := spec.Parse("shop.yaml", []byte(shop))
	if err != nil {
		t.Fatal(err)
	}
	svc, err := f.Service()
	if err != nil {
		t.Fatal(err)
	}
	return svc
}

// c is total/bad/slow.
func c(total, bad, slow uint64) canary.Counts {
	return canary.Counts{Total: total, Bad: bad, Slow: slow}
}

func observed(cujs map[string]canary.Revisions) *canary.Observed {
	w := spec.NewRatio(1, 4)
	return &canary.Observed{
		Source: "test", At: time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC),
		Window: 5 * time.Minute, Span: 5 * time.Minute, Weight: &w, CUJs: cujs,
	}
}

type judged struct {
	Verdict canary.Verdict
	CUJs    []string // "cuj verdict: reason | reason"
}

func summary(r canary.Result) judged {
	j := judged{Verdict: r.Verdict}
	for _, c := range r.CUJs {
		j.CUJs = append(j.CUJs, fmt.Sprintf("%s %s: %s", c.CUJ, c.Verdict, strings.Join(c.Reasons, " | ")))
	}
	return j
}

func TestTheJudgeHoldsEveryCUJToItsSLOAndToStable(t *testing.T) {
	svc := shopService(t)
	healthy := canary.Revisions{Canary: c(1000, 2, 3), Stable: c(3000, 6, 9)}
	exportOK := canary.Revisions{Canary: c(700, 1, 0), Stable: c(2100, 3, 0)}
	for _, tc := range []struct {
		name string
		cujs map[string]canary.Revisions
		cfg  canary.Config
		want judged
	}{
		{
			name: "a canary as good as stable with enough traffic passes",
			cujs: map[string]canary.Revisions{"browse": healthy, "export": exportOK},
			want: judged{canary.Pass, []string{
				"browse pass: availability: 2 of 1000 canary requests failed (0.2%), within the 1% its SLO (99%) allows | latency: 3 of 1000 canary requests slower than 300ms (0.3%), within the 1% its SLO (99%) allows",
				"export pass: availability: 1 of 700 canary requests failed (0.1429%), within the 0.5% its SLO (99.5%) allows",
			}},
		},
		{
			name: "a canary that breaks a low-traffic CUJ fails, however small the total error rate",
			cujs: map[string]canary.Revisions{"browse": {Canary: c(4000, 0, 0), Stable: c(12000, 0, 0)}, "export": {Canary: c(12, 6, 0), Stable: c(38, 0, 0)}},
			want: judged{canary.Fail, []string{
				"browse pass: availability: 0 of 4000 canary requests failed (0%), within the 1% its SLO (99%) allows | latency: 0 of 4000 canary requests slower than 300ms (0%), within the 1% its SLO (99%) allows",
				"export fail: availability: 6 of 12 canary requests failed (50%), above the 0.5% its SLO (99.5%) allows (p = 1.4e-11) | availability: canary 50% failed against stable's 0% (0 of 38), worse by more than the 0.05% tolerance (Fisher p = 5.8e-05)",
			}},
		},
		{
			name: "too little traffic is inconclusive, never a pass, and says what would suffice",
			cujs: map[string]canary.Revisions{"browse": healthy, "export": {Canary: c(100, 0, 0), Stable: c(300, 0, 0)}},
			want: judged{canary.Inconclusive, []string{
				"browse pass: availability: 2 of 1000 canary requests failed (0.2%), within the 1% its SLO (99%) allows | latency: 3 of 1000 canary requests slower than 300ms (0.3%), within the 1% its SLO (99%) allows",
				"export inconclusive: too little traffic: a pass needs 598 canary requests in the window, the canary served 100; that takes 7.973 req/s of export traffic at 25% over 5m (now 1.333 req/s), or a window of 29m54s",
			}},
		},
		{
			name: "a canary above its SLO but not significantly is inconclusive",
			cujs: map[string]canary.Revisions{"browse": {Canary: c(1000, 13, 0), Stable: c(3000, 30, 0)}, "export": exportOK},
			want: judged{canary.Inconclusive, []string{
				"browse inconclusive: availability: 13 of 1000 canary requests failed (1.3%), above the 1% its SLO (99%) allows, not yet significantly (p = 0.2075)",
				"export pass: availability: 1 of 700 canary requests failed (0.1429%), within the 0.5% its SLO (99.5%) allows",
			}},
		},
		{
			name: "a canary within its SLO but clearly worse than stable fails",
			cujs: map[string]canary.Revisions{"browse": {Canary: c(100_000, 600, 0), Stable: c(300_000, 300, 0)}, "export": exportOK},
			want: judged{canary.Fail, []string{
				"browse fail: availability: canary 0.6% failed against stable's 0.1% (300 of 300000), worse by more than the 0.1% tolerance (Fisher p = 1.6e-152)",
				"export pass: availability: 1 of 700 canary requests failed (0.1429%), within the 0.5% its SLO (99.5%) allows",
			}},
		},
		{
			name: "a significant difference inside the tolerance does not fail",
			cujs: map[string]canary.Revisions{"browse": {Canary: c(1_000_000, 1100, 0), Stable: c(3_000_000, 3000, 0)}, "export": exportOK},
			want: judged{canary.Pass, []string{
				"browse pass: availability: 1100 of 1000000 canary requests failed (0.11%), within the 1% its SLO (99%) allows | latency: 0 of 1000000 canary requests slower than 300ms (0%), within the 1% its SLO (99%) allows",
				"export pass: availability: 1 of 700 canary requests failed (0.1429%), within the 0.5% its SLO (99.5%) allows",
			}},
		},
		{
			name: "a higher burn rate allowance widens the limit, narrowed to one CUJ",
			cujs: map[string]canary.Revisions{"browse": {Canary: c(1000, 15, 0), Stable: c(3000, 40, 0)}},
			cfg:  canary.Config{MaxBurnRate: spec.NewRatio(2, 1), CUJs: []string{"browse"}},
			want: judged{canary.Pass, []string{
				"browse pass: availability: 15 of 1000 canary requests failed (1.5%), within the 2% its SLO (99%) at 2× burn allows | latency: 0 of 1000 canary requests slower than 300ms (0%), within the 2% its SLO (99%) at 2× burn allows",
			}},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, err := canary.Judge(svc, observed(tc.cujs), tc.cfg)
			if err != nil {
				t.Fatal(err)
			}
			if got := summary(res); fmt.Sprintf("%q", got) != fmt.Sprintf("%q", tc.want) {
				t.Errorf("got\n%s\nwant\n%s", strings.Join(append([]string{string(got.Verdict)}, got.CUJs...), "\n"), strings.Join(append([]string{string(tc.want.Verdict)}, tc.want.CUJs...), "\n"))
			}
		})
	}
}

func TestEveryCheckRunsAtItsShareOfAlpha(t *testing.T) {
	res, err := canary.Judge(shopService(t), observed(nil), canary.Config{})
	if err != nil {
		t.Fatal(err)
	}
	// browse: 2 SLIs, export: 1; each against the SLO and against stable.
	if res.Checks != 6 || res.AlphaPerCheck != 0.05/6.0 || res.ConfidencePercent != 95 || res.WeightPercent != 25 {
		t.Errorf("checks %d at α %v, confidence %v%%, weight %v%%", res.Checks, res.AlphaPerCheck, res.ConfidencePercent, res.WeightPercent)
	}
	want := []string{
		"browse: too little traffic: a pass needs 299 canary requests in the window, the canary served 0; that takes 3.987 req/s of browse traffic at 25% over 5m (now 0 req/s)",
		"export: too little traffic: a pass needs 598 canary requests in the window, the canary served 0; that takes 7.973 req/s of export traffic at 25% over 5m (now 0 req/s)",
		"no request was served by a stable or canary revision in the last 5m: is the proxy splitting traffic (--upstream stable=URL --upstream canary=URL)?",
	}
	if res.Verdict != canary.Inconclusive || fmt.Sprintf("%q", res.Reasons) != fmt.Sprintf("%q", want) {
		t.Errorf("verdict %s, reasons:\n%s", res.Verdict, strings.Join(res.Reasons, "\n"))
	}
}

// The body Argo reads: numbers as numbers, never NaN or null, even for a
// CUJ without a single request.
func TestTheResultIsJSONWithoutNullsOrNaNs(t *testing.T) {
	res, err := canary.Judge(shopService(t), observed(map[string]canary.Revisions{"export": {Canary: c(12, 6, 0), Stable: c(38, 0, 0)}}), canary.Config{})
	if err != nil {
		t.Fatal(err)
	}
	data, err := json.Marshal(res)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(data), "null") || strings.Contains(string(data), "NaN") {
		t.Errorf("null or NaN in %s", data)
	}
	var back struct {
		Verdict string
		CUJs    []struct {
			CUJ     string
			Verdict string
			Canary  struct{ Total, Bad float64 }
			Checks  []struct{ PValue float64 }
		}
	}
	if err := json.Unmarshal(data, &back); err != nil {
		t.Fatal(err)
	}
	if back.Verdict != "fail" || len(back.CUJs) != 2 || back.CUJs[1].CUJ != "export" || back.CUJs[1].Verdict != "fail" || back.CUJs[1].Canary.Bad != 6 || len(back.CUJs[0].Checks) != 4 {
		t.Errorf("decoded %+v", back)
	}
}

func TestConfigMistakes(t *testing.T) {
	svc := shopService(t)
	for _, tc := range []struct {
		cfg  canary.Config
		want string
	}{
		{canary.Config{CUJs: []string{"checkout"}}, `cuj: service shop has no CUJ "checkout" (it has browse, export)`},
		{canary.Config{Confidence: spec.One}, "confidence: must be below 100%, got 100%"},
	} {
		if _, err := canary.Judge(svc, observed(nil), tc.cfg); err == nil || err.Error() != tc.want {
			t.Errorf("%+v: %v, want %q", tc.cfg, err, tc.want)
		}
	}
}

// A model built in code may hold a CUJ without SLOs: it is listed, and passes
// with nothing to judge, rather than blocking every release.
func TestACUJWithoutSLOsHasNothingToJudge(t *testing.T) {
	svc := shopService(t)
	svc.CUJs = append(svc.CUJs, &spec.CUJ{Name: "health", Routes: []spec.Route{{Pattern: "GET /healthz"}}})
	res, err := canary.Judge(svc, observed(nil), canary.Config{CUJs: []string{"health"}})
	if err != nil {
		t.Fatal(err)
	}
	if got := summary(res); res.Checks != 0 || fmt.Sprint(got.CUJs) != "[health pass: no availability or latency SLO: nothing to judge]" {
		t.Errorf("%d checks, %v", res.Checks, got)
	}
}
