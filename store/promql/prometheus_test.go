package promql_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"slolab.dev/slolab/internal/promtest"
	"slolab.dev/slolab/internal/testtool"
	"slolab.dev/slolab/sli"
	"slolab.dev/slolab/slo"
	"slolab.dev/slolab/spec"
	"slolab.dev/slolab/store/promql"
	"slolab.dev/slolab/store/sqlite"
)

const specText = `apiVersion: slolab.dev/v1
kind: Service
metadata: {name: chat}
spec:
  cujs:
    - {name: update, owner: msg, routes: ["POST /update"], availability: {objective: 99.9%}, latency: {threshold: 1s, objective: 99%}}
    - {name: read, owner: msg, routes: ["GET /messages"], availability: {objective: 99.9%}, latency: {threshold: 300ms, objective: 99%}}
    - {name: login, owner: id, routes: ["POST /login"], availability: {objective: 99.95%, window: month}, latency: {threshold: 500ms, objective: 99%}}
`

func service(t *testing.T) *spec.Service {
	t.Helper()
	f, err := spec.Parse("chat.yaml", []byte(specText))
	if err != nil {
		t.Fatal(err)
	}
	return f.Services[0]
}

var bounds = []time.Duration{100 * time.Millisecond, 300 * time.Millisecond, 500 * time.Millisecond, time.Second, 2 * time.Second}

// history is synthetic proxy traffic, minute by minute: what two proxies
// (instances a and b) counted per CUJ and group, with an availability burst
// on update, a slow spell on read and a restart of proxy b.
type history struct {
	start   time.Time
	minutes int
	restart int // the minute during which proxy b restarted
	// counts[minute][series]: per minute, per (cuj, instance, group), codes and latency buckets.
	counts []map[seriesKey]*minuteCounts
}

type seriesKey struct{ cuj, instance, group string }

type minuteCounts struct {
	codes map[string]uint64 // "200", "503", "0"
	hist  []uint64          // per bounds + +Inf
}

var routes = map[string][2]string{"update": {"POST", "POST /update"}, "read": {"GET", "GET /messages"}, "login": {"POST", "POST /login"}}

func generate(start time.Time, minutes int) *history {
	rng := rand.New(rand.NewPCG(3, 14))
	h := &history{start: start, minutes: minutes, restart: minutes * 2 / 3}
	for m := range minutes {
		row := map[seriesKey]*minuteCounts{}
		for _, cuj := range []string{"update", "read", "login"} {
			for _, inst := range []string{"a", "b"} {
				for _, grp := range []string{"none", "experiment"} {
					n := 10 + rng.Uint64N(30)
					mc := &minuteCounts{codes: map[string]uint64{}, hist: make([]uint64, len(bounds)+1)}
					bad := uint64(0)
					if rng.IntN(50) == 0 {
						bad = 1
					}
					if cuj == "update" && m >= minutes/2 && m < minutes/2+90 {
						bad = n / 4 // a burst: burn rate 250
					}
					mc.codes["503"] = bad - bad/3
					mc.codes["0"] = bad / 3
					mc.codes["200"] = n - bad
					slowFrom := 0 // index of the first bucket above 300ms
					for i := range n {
						b := int(rng.IntN(2))
						if cuj == "read" && m >= minutes/4 && m < minutes/4+200 && i%10 == 0 {
							b = 2 + slowFrom + rng.IntN(3)
						}
						if rng.IntN(500) == 0 {
							b = len(bounds) // +Inf
						}
						mc.hist[b]++
					}
					row[seriesKey{cuj, inst, grp}] = mc
				}
			}
		}
		h.counts = append(h.counts, row)
	}
	return h
}

// buckets returns the store's view: per minute, CUJ and group, both proxies summed.
func (h *history) buckets(svc *spec.Service) []sli.Bucket {
	var out []sli.Bucket
	for m, row := range h.counts {
		sum := map[[2]string]*sli.Bucket{}
		for k, mc := range row {
			b := sum[[2]string{k.cuj, k.group}]
			if b == nil {
				b = &sli.Bucket{Start: h.start.Add(time.Duration(m) * time.Minute), CUJ: k.cuj, Group: k.group, Counts: sli.Counts{Hist: make([]uint64, len(bounds)+1)}}
				sum[[2]string{k.cuj, k.group}] = b
			}
			for code, n := range mc.codes {
				b.Total += n
				if code != "200" {
					b.Bad += n
				}
			}
			thr := svc.CUJ(k.cuj).Latency.Threshold
			for i, n := range mc.hist {
				b.Hist[i] += n
				if i == len(bounds) || bounds[i] > thr {
					b.Slow += n
				}
			}
		}
		for _, b := range sum {
			out = append(out, *b)
		}
	}
	return out
}

// openMetrics writes the proxies' counters as Prometheus would have scraped
// them at every minute boundary, for promtool's backfill.
func (h *history) openMetrics(path string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer f.Close()
	w := bufio.NewWriter(f)
	keys := make([]seriesKey, 0)
	for k := range h.counts[0] {
		keys = append(keys, k)
	}
	// value walks the cumulative counter of one series: cum(k) is what the
	// series showed at minute boundary k. Proxy b restarts just after the
	// boundary h.restart−1, so from boundary h.restart on it counts afresh.
	type cum struct{ v uint64 }
	series := func(k seriesKey, get func(*minuteCounts) uint64, emit func(ts int64, v uint64)) {
		var c cum
		for m := 0; m <= h.minutes; m++ {
			emit(h.start.Add(time.Duration(m)*time.Minute).Unix(), c.v)
			if m == h.minutes {
				break
			}
			if k.instance == "b" && m == h.restart-1 {
				c.v = 0
			}
			c.v += get(h.counts[m][k])
		}
	}
	fmt.Fprintf(w, "# HELP %s requests\n# TYPE %s counter\n", strings.TrimSuffix(sli.MetricRequests, "_total"), strings.TrimSuffix(sli.MetricRequests, "_total"))
	for _, k := range keys {
		for _, code := range []string{"200", "503", "0"} {
			labels := fmt.Sprintf(`code=%q,cuj=%q,group=%q,instance=%q,method=%q,route=%q`, code, k.cuj, k.group, k.instance, routes[k.cuj][0], routes[k.cuj][1])
			series(k, func(mc *minuteCounts) uint64 { return mc.codes[code] }, func(ts int64, v uint64) {
				fmt.Fprintf(w, "%s{%s} %d %d\n", sli.MetricRequests, labels, v, ts)
			})
		}
	}
	fmt.Fprintf(w, "# HELP %s duration\n# TYPE %s histogram\n", sli.MetricDuration, sli.MetricDuration)
	for _, k := range keys {
		labels := fmt.Sprintf(`cuj=%q,group=%q,instance=%q`, k.cuj, k.group, k.instance)
		type point struct {
			ts int64
			v  []uint64
		}
		var points []point
		for i := range len(bounds) + 1 {
			j := 0
			series(k, func(mc *minuteCounts) uint64 {
				var s uint64
				for _, n := range mc.hist[:i+1] {
					s += n
				}
				return s
			}, func(ts int64, v uint64) {
				if i == 0 {
					points = append(points, point{ts, make([]uint64, len(bounds)+1)})
				}
				points[j].v[i] = v
				j++
			})
		}
		for _, p := range points {
			for i, v := range p.v {
				le := "+Inf"
				if i < len(bounds) {
					le = strconv.FormatFloat(bounds[i].Seconds(), 'g', -1, 64)
				}
				fmt.Fprintf(w, "%s_bucket{%s,le=%q} %d %d\n", sli.MetricDuration, labels, le, v, p.ts)
			}
			fmt.Fprintf(w, "%s_count{%s} %d %d\n", sli.MetricDuration, labels, p.v[len(bounds)], p.ts)
			fmt.Fprintf(w, "%s_sum{%s} %g %d\n", sli.MetricDuration, labels, float64(p.v[len(bounds)])*0.2, p.ts)
		}
	}
	fmt.Fprintln(w, "# EOF")
	return w.Flush()
}

func jsonOf(t *testing.T, v any) string {
	t.Helper()
	b, err := json.MarshalIndent(v, "", " ")
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestPrometheusAgreesWithTheStore backfills a real Prometheus with the
// counters two proxies would have exposed over 26 hours (with a restart),
// stores the same traffic as minute buckets, and checks the engine judges
// every SLO identically from both, to the last event: status at several
// instants, and the backtest over the whole span.
func TestPrometheusAgreesWithTheStore(t *testing.T) {
	promtool := testtool.Path(t, "promtool")
	svc := service(t)
	end := slo.Align(time.Now().Add(-2*time.Hour), time.Minute)
	h := generate(end.Add(-26*time.Hour), 26*60)

	dir := t.TempDir()
	om := filepath.Join(dir, "backfill.om")
	if err := h.openMetrics(om); err != nil {
		t.Fatal(err)
	}
	data := filepath.Join(dir, "data")
	if out, err := exec.Command(promtool, "tsdb", "create-blocks-from", "openmetrics", om, data).CombinedOutput(); err != nil {
		t.Fatalf("promtool backfill: %v\n%s", err, out)
	}
	url := promtest.Start(t, "global: {scrape_interval: 1m}\n", data)

	ctx := context.Background()
	store, err := sqlite.Open(ctx, sqlite.Config{Path: filepath.Join(dir, "slolab.db"), Now: func() time.Time { return end }})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	if err := store.Add(ctx, bounds, h.buckets(svc), end); err != nil {
		t.Fatal(err)
	}
	prom, err := promql.New(promql.Config{URL: url, Service: svc})
	if err != nil {
		t.Fatal(err)
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
			fromStore, err := slo.Evaluate(ctx, svc, store, at)
			if err != nil {
				t.Fatal(err)
			}
			fromProm, err := slo.Evaluate(ctx, svc, prom, at)
			if err != nil {
				t.Fatal(err)
			}
			if a, b := jsonOf(t, fromStore), jsonOf(t, fromProm); a != b {
				t.Errorf("store and prometheus disagree at %v:\nstore:\n%s\nprometheus:\n%s", at, a, b)
			}
			if fromStore.SLOs[0].Events.Total == 0 {
				t.Error("no events: the comparison proves nothing")
			}
		})
	}

	t.Run("user-supplied queries", func(t *testing.T) { testUserQueries(t, url, end) })

	t.Run("backtest over the whole span", func(t *testing.T) {
		hs, err := store.History(ctx, h.start, end)
		if err != nil {
			t.Fatal(err)
		}
		hp, err := prom.History(ctx, h.start, end)
		if err != nil {
			t.Fatal(err)
		}
		from := h.start.Add(time.Hour)
		bs, bp := slo.Replay(svc, hs, from, end, time.Minute), slo.Replay(svc, hp, from, end, time.Minute)
		if a, b := jsonOf(t, bs), jsonOf(t, bp); a != b {
			t.Errorf("backtests disagree:\nstore:\n%s\nprometheus:\n%s", a, b)
		}
		if len(bs.Episodes) == 0 {
			t.Error("no alert fired in the backtest: the burst should page")
		}
	})
}

// userQueries reads an SLI from queries a spec gives (here, made-up ones
// that exercise the {{.window}} template and rounding to whole events).
const userQueries = `apiVersion: slolab.dev/v1
kind: Service
metadata: {name: shop}
spec:
  cujs:
    - name: checkout
      owner: shop
      routes: ["POST /checkout"]
      availability: {objective: 99.9%}
      queries:
        availability:
          total: 'sum(count_over_time(vector(1)[{{.window}}:1m])) * 0 + 1000'
          bad: 'vector(2.6)'
`

func testUserQueries(t *testing.T, url string, at time.Time) {
	f, err := spec.Parse("shop.yaml", []byte(userQueries))
	if err != nil {
		t.Fatal(err)
	}
	prom, err := promql.New(promql.Config{URL: url, Service: f.Services[0]})
	if err != nil {
		t.Fatal(err)
	}
	got, err := prom.Events(context.Background(), slo.Last(time.Hour, at))
	if err != nil {
		t.Fatal(err)
	}
	if want := (slo.Events{Total: 1000, Bad: 3}); got[slo.Key{CUJ: "checkout", Kind: slo.Availability}] != want {
		t.Errorf("user queries gave %v, want checkout/availability %+v", got, want)
	}
}

func TestDurationAndIncrease(t *testing.T) {
	for d, want := range map[time.Duration]string{
		5 * time.Minute: "5m", 30 * spec.Day: "30d", 90 * time.Minute: "1h30m", 1500 * time.Millisecond: "1500ms",
		30*spec.Day - time.Second: "29d23h59m59s",
	} {
		if got := promql.Duration(d); got != want {
			t.Errorf("Duration(%v) = %q, want %q", d, got, want)
		}
	}
	got := promql.Increase(`x{cuj="a"}`, time.Hour, time.Minute, "cuj")
	want := `sum_over_time((sum by (cuj) ((x{cuj="a"} - x{cuj="a"} offset 1m) >= 0 or x{cuj="a"}))[59m59s:1m])`
	if got != want {
		t.Errorf("Increase:\n%s\nwant\n%s", got, want)
	}
}
