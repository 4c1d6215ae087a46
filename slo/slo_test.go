package slo_test

import (
	"context"
	"math/big"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"slolab.dev/slolab/slo"
	"slolab.dev/slolab/spec"
)

var base = time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)

func ratio(t *testing.T, s string) spec.Ratio {
	t.Helper()
	r, err := spec.ParseRatio(s)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func service(t *testing.T, text string) *spec.Service {
	t.Helper()
	f, err := spec.Parse("test.yaml", []byte(text))
	if err != nil {
		t.Fatal(err)
	}
	svc, err := f.Service()
	if err != nil {
		t.Fatal(err)
	}
	return svc
}

const chat = `apiVersion: slolab.dev/v1
kind: Service
metadata: {name: chat}
spec:
  policy:
    - {when: remaining < 25%, action: freeze features}
    - {when: consumed >= 100%, action: stop releases}
  cujs:
    - name: update
      owner: messaging
      routes: ["POST /update"]
      availability: {objective: 99.9%, window: 30d}
      latency: {threshold: 1s, objective: 99%, window: 30d}
`

// firing names the alerts that fire, as "page 1h/5m".
func firing(s slo.SLOStatus) []string {
	var out []string
	for _, a := range s.Firing() {
		out = append(out, a.Severity+" "+a.Pair())
	}
	return out
}

// TestWorkbookTable reproduces the SRE Workbook's table: over a 30-day
// window with steady traffic, burning at 14.4 for 1h, 6 for 6h or 1 for 3d
// consumes exactly 2%, 5% or 10% of the budget, and exactly the alert built
// for that burn fires.
func TestWorkbookTable(t *testing.T) {
	svc := service(t, chat)
	const perMinute = 5000 // at 99.9% the budget is 5 bad requests a minute
	cases := []struct {
		name         string
		badPerMinute uint64 // the burn rate × 5
		span         time.Duration
		consumed     *big.Rat
		fires        []string
	}{
		{"burn rate 14.4 over 1h consumes 2% and pages through 1h/5m", 72, time.Hour, big.NewRat(2, 100), []string{"page 1h/5m"}},
		{"burn rate 6 over 6h consumes 5% and pages through 6h/30m", 30, 6 * time.Hour, big.NewRat(5, 100), []string{"page 6h/30m"}},
		{"burn rate 1 over 3d consumes 10% and opens a ticket through 3d/6h", 5, 72 * time.Hour, big.NewRat(10, 100), []string{"ticket 3d/6h"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			at := base.Add(30 * spec.Day)
			b := slo.NewHistoryBuilder(base, at)
			for m := time.Duration(0); m < 30*spec.Day; m += time.Minute {
				cnt := slo.Counts{Total: perMinute}
				if m >= 30*spec.Day-c.span {
					cnt.Bad = c.badPerMinute
				}
				b.AddCounts("update", base.Add(m), cnt)
			}
			h, err := b.Build()
			if err != nil {
				t.Fatal(err)
			}
			st, err := slo.Evaluate(context.Background(), svc, h, at)
			if err != nil {
				t.Fatal(err)
			}
			avail := st.SLOs[0]
			if got := avail.Budget.Consumed(); got.Cmp(c.consumed) != 0 {
				t.Errorf("consumed %s of the budget, want %s", got.RatString(), c.consumed.RatString())
			}
			if got := firing(avail); !slices.Equal(got, c.fires) {
				t.Errorf("alerts firing: %v, want %v", got, c.fires)
			}
			if got := firing(st.SLOs[1]); got != nil {
				t.Errorf("latency alerts firing: %v, want none", got)
			}
		})
	}
}

// outage is a steady stream of one request every step: good before the
// outage starts at base, all bad from then on.
type outage struct {
	step  time.Duration
	first int64 // index of the first request (negative: before the outage)
}

// count returns how many requests with index ≥ from fall in [a, b).
func (o outage) count(r slo.Range, from int64) uint64 {
	ceil := func(t time.Time) int64 {
		d := int64(t.Sub(base))
		s := int64(o.step)
		q := d / s
		if d%s != 0 && d > 0 {
			q++
		}
		return max(q, from)
	}
	n := ceil(r.To) - ceil(r.From)
	return uint64(max(n, 0))
}

func (o outage) events(r slo.Range) slo.Events {
	return slo.Events{Total: o.count(r, o.first), Bad: o.count(r, 0)}
}

// TestTotalOutagePagesAfter51_84s: at 99.9% the 1h/5m page needs an error
// ratio of 14.4 × 0.1% = 1.44% in both windows. A total outage under steady
// traffic (one request every 10 ms, a clean hour before) puts x/3600 s of
// the last hour's requests in error after x seconds, and x/300 s of the last
// five minutes'. The hour decides: x = 3600 s × 1.44% = 51.84 s exactly,
// the 5,184th failed request. The short window reached 1.44% at 4.32 s.
// Three clean days precede the outage, so the longer windows are full: the
// next alert, 6h/30m, would need 129.6 s.
func TestTotalOutagePagesAfter51_84s(t *testing.T) {
	svc := service(t, chat)
	s := slo.SLOs(svc)[0]
	stream := outage{step: 10 * time.Millisecond, first: -3 * 24 * 360_000}
	var fired time.Duration = -1
	for k := int64(0); k <= 6000; k++ { // each instant a request has just completed
		at := base.Add(time.Duration(k) * stream.step)
		st := slo.Judge(&s, at, stream.events)
		if len(firing(st)) > 0 {
			fired = at.Sub(base)
			if got := firing(st); !slices.Equal(got, []string{"page 1h/5m"}) {
				t.Errorf("at %v: %v fire, want only page 1h/5m", fired, got)
			}
			if bad := st.Alerts[0].LongBad; bad != 5184 {
				t.Errorf("the long window holds %d bad requests when it fires, want 5184", bad)
			}
			break
		}
	}
	if want := 51840 * time.Millisecond; fired != want {
		t.Errorf("the page fired after %v of outage, want exactly %v", fired, want)
	}
	predicted, ok := slo.DetectionTime(slo.Workbook[0], s.Objective, spec.One)
	if !ok || predicted != fired {
		t.Errorf("DetectionTime = %v, %v; want %v (what the replay saw)", predicted, ok, fired)
	}
}

func TestDetectionTime(t *testing.T) {
	obj := ratio(t, "99.9%")
	cases := []struct {
		name  string
		alert spec.BurnRateAlert
		errs  string
		want  time.Duration
		fires bool
	}{
		{"a total outage pages through 1h/5m after 51.84s", slo.Workbook[0], "100%", 51840 * time.Millisecond, true},
		{"burning at exactly 14.4 pages after the whole hour", slo.Workbook[0], "1.44%", time.Hour, true},
		{"burning at 28.8 pages after half an hour", slo.Workbook[0], "2.88%", 30 * time.Minute, true},
		{"burning at 14.4 reaches 6h/30m's factor 6 after 2.5h", slo.Workbook[1], "1.44%", 150 * time.Minute, true},
		{"burning at 1 opens the 3d/6h ticket after 3 days", slo.Workbook[3], "0.1%", 72 * time.Hour, true},
		{"burning below the factor never pages", slo.Workbook[0], "1.43%", 0, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, ok := slo.DetectionTime(c.alert, obj, ratio(t, c.errs))
			if got != c.want || ok != c.fires {
				t.Errorf("got %v, %v; want %v, %v", got, ok, c.want, c.fires)
			}
		})
	}
}

func TestLowTrafficGuard(t *testing.T) {
	svc := service(t, chat)
	s := slo.SLOs(svc)[0] // min bad events: the default, 5
	at := base.Add(time.Hour)
	judge := func(longBad, shortBad uint64) slo.AlertState {
		st := slo.Judge(&s, at, func(r slo.Range) slo.Events {
			switch {
			case r.Duration() > 6*time.Hour:
				return slo.Events{Total: 1000, Bad: longBad}
			case r.Duration() == 5*time.Minute:
				return slo.Events{Total: 10, Bad: shortBad}
			}
			return slo.Events{Total: 10, Bad: longBad}
		})
		return st.Alerts[0]
	}
	for _, c := range []struct {
		name            string
		long, short     uint64
		firing, guarded bool
	}{
		{"four bad requests out of ten burn fast enough but are held back", 4, 4, false, true},
		{"the fifth bad request in both windows pages", 5, 5, true, false},
		{"five in the hour but four in the last five minutes are held back", 5, 4, false, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			a := judge(c.long, c.short)
			if a.Firing != c.firing || a.Guarded != c.guarded {
				t.Errorf("firing %v guarded %v; want firing %v guarded %v", a.Firing, a.Guarded, c.firing, c.guarded)
			}
		})
	}
}

// TestAYoungHistoryDoesNotAlertOnAHandfulOfFailures is the worked example
// of docs/slo.md: a CUJ with one request a minute, an hour after its
// history began, with 3 failures among its 60 requests. Every window from
// 1h to 30d holds those 60 requests, so the 1d and 3d windows burn at
// 50 (5% over an allowed 0.1%), far above the tickets' factors; but the
// guard counts the bad requests the windows hold, never extrapolating
// them to the window's length, and 3 is fewer than 5: nothing fires, and
// every window shows too few to judge. Two more failures in the last two
// hours fire both tickets, and then no window they use is marked too few.
func TestAYoungHistoryDoesNotAlertOnAHandfulOfFailures(t *testing.T) {
	svc := service(t, chat)
	at := base.Add(time.Hour)
	for _, c := range []struct {
		name  string
		fails []int // minutes of the hour that fail
		fires []string
	}{
		{"three failures in the first hour fire nothing", []int{10, 30, 50}, nil},
		{"five failures in the first hour open both tickets", []int{10, 20, 30, 40, 50}, []string{"ticket 1d/2h", "ticket 3d/6h"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			b := slo.NewHistoryBuilder(at.Add(-30*spec.Day), at)
			for m := range 60 {
				cnt := slo.Counts{Total: 1}
				if slices.Contains(c.fails, m) {
					cnt.Bad = 1
				}
				b.AddCounts("update", base.Add(time.Duration(m)*time.Minute), cnt)
			}
			b.SetSpan(slo.Span{Start: base})
			h, err := b.Build()
			if err != nil {
				t.Fatal(err)
			}
			st, err := slo.Evaluate(t.Context(), svc, h, at)
			if err != nil {
				t.Fatal(err)
			}
			avail := st.SLOs[0]
			if got := firing(avail); !slices.Equal(got, c.fires) {
				t.Errorf("firing %v, want %v", got, c.fires)
			}
			for _, a := range avail.Alerts {
				for _, w := range avail.Windows {
					uses := w.Window == a.Long || w.Window == a.Short
					if a.Firing && uses && w.TooFewToJudge {
						t.Errorf("%s fires but its %v window is marked too few to judge", a.String(), w.Window)
					}
				}
			}
			if len(c.fires) == 0 {
				for _, w := range avail.Windows {
					if time.Duration(w.Window) >= time.Hour && !w.TooFewToJudge {
						t.Errorf("the %v window holding 60 requests and 3 failures is not marked too few to judge", w.Window)
					}
				}
			}
		})
	}
}

func TestTooFewToJudge(t *testing.T) {
	svc := service(t, chat)
	s := slo.SLOs(svc)[0]
	// At 99.9% and 5 bad events, a window needs 5,000 requests, or 5 bad ones.
	for _, c := range []struct {
		name string
		ev   slo.Events
		want bool
	}{
		{"4,999 clean requests are too few", slo.Events{Total: 4999}, true},
		{"5,000 clean requests are enough to expect 5 failures", slo.Events{Total: 5000}, false},
		{"no request is too few", slo.Events{}, true},
		{"4 failures in 100 are too few", slo.Events{Total: 100, Bad: 4}, true},
		{"5 failures in 100 are enough", slo.Events{Total: 100, Bad: 5}, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			st := slo.Judge(&s, base, func(slo.Range) slo.Events { return c.ev })
			if got := st.Windows[0].TooFewToJudge; got != c.want {
				t.Errorf("too few %v, want %v", got, c.want)
			}
		})
	}
}

func TestBudgetAndPolicy(t *testing.T) {
	svc := service(t, chat)
	s := slo.SLOs(svc)[0]
	at := base.Add(40 * spec.Day)
	cases := []struct {
		name      string
		period    slo.Events
		hour      slo.Events
		remaining float64
		ttl       *time.Duration
		policy    []string
	}{
		// 1,000 requests an hour: 360 old failures leave the window at half
		// a failure an hour while new ones come at 2 an hour, so the 360
		// left of 720 allowed are gone after 360/1.5 = 240 hours.
		{"half the budget left at burn 2 lasts 10 days as old failures leave the window", slo.Events{Total: 720_000, Bad: 360}, slo.Events{Total: 1000, Bad: 2},
			50, ptr(240 * time.Hour), nil},
		{"exactly 25% left is not below 25%", slo.Events{Total: 1_000_000, Bad: 750}, slo.Events{Total: 1000},
			25, nil, nil},
		{"less than 25% left freezes features", slo.Events{Total: 1_000_000, Bad: 751}, slo.Events{Total: 1000},
			24.9, nil, []string{"freeze features"}},
		{"an overspent budget is exhausted now and stops releases", slo.Events{Total: 1_000_000, Bad: 1500}, slo.Events{Total: 1000, Bad: 5},
			-50, ptr(time.Duration(0)), []string{"freeze features", "stop releases"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			st := slo.Judge(&s, at, func(r slo.Range) slo.Events {
				if r.Duration() == 30*spec.Day {
					return c.period
				}
				return c.hour
			})
			b := st.Budget
			if d := b.RemainingPercent - c.remaining; d > 1e-9 || d < -1e-9 {
				t.Errorf("remaining %v%%, want %v%%", b.RemainingPercent, c.remaining)
			}
			var ttl *time.Duration
			if b.TimeToExhaustion != nil {
				ttl = ptr(time.Duration(*b.TimeToExhaustion))
			}
			if (ttl == nil) != (c.ttl == nil) || ttl != nil && *ttl != *c.ttl {
				t.Errorf("time to exhaustion %v, want %v", fmtPtr(ttl), fmtPtr(c.ttl))
			}
			var actions []string
			for _, p := range st.Policy {
				actions = append(actions, p.Action)
			}
			if !slices.Equal(actions, c.policy) {
				t.Errorf("policy %v, want %v", actions, c.policy)
			}
		})
	}
}

func ptr[T any](v T) *T { return &v }

func fmtPtr(d *time.Duration) string {
	if d == nil {
		return "none"
	}
	return d.String()
}

func TestCalendarMonth(t *testing.T) {
	w := spec.Window{Calendar: "month"}
	at := time.Date(2026, 2, 15, 12, 0, 0, 0, time.UTC)
	if got, want := slo.Period(w, at), (slo.Range{From: time.Date(2026, 2, 1, 0, 0, 0, 0, time.UTC), To: at}); got != want {
		t.Errorf("period %v, want %v", got, want)
	}
	if got := slo.PeriodLength(w, at); got != 28*spec.Day {
		t.Errorf("February lasts %v, want 28d", got)
	}
	rolling := spec.Window{Rolling: 30 * spec.Day}
	if got, want := slo.Period(rolling, at), (slo.Range{From: at.Add(-30 * spec.Day), To: at}); got != want {
		t.Errorf("rolling period %v, want %v", got, want)
	}
}

// TestHistoryMatchesNaiveSums checks the prefix-sum layout against plain
// sums over random buckets and ranges, including a column too busy for
// 32-bit hour offsets.
func TestHistoryMatchesNaiveSums(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	const minutes = 3*24*60 + 17
	from := base
	b := slo.NewHistoryBuilder(from, from.Add(minutes*time.Minute))
	type row struct{ total, bad, slow uint64 }
	rows := map[string][]row{"quiet": make([]row, minutes), "busy": make([]row, minutes)}
	for m := range minutes {
		q := row{rng.Uint64N(100), 0, 0}
		q.bad, q.slow = rng.Uint64N(q.total+1), rng.Uint64N(q.total+1)
		rows["quiet"][m] = q
		big := row{rng.Uint64N(1 << 28), 0, 0} // an hour of these overflows 32 bits
		big.bad = rng.Uint64N(big.total + 1)
		rows["busy"][m] = big
		for cuj, r := range rows {
			b.AddCounts(cuj, from.Add(time.Duration(m)*time.Minute+time.Duration(rng.IntN(60))*time.Second),
				slo.Counts{Total: r[m].total, Bad: r[m].bad, Slow: r[m].slow})
		}
	}
	b.AddCounts("quiet", from.Add(-time.Minute), slo.Counts{Total: 99}) // before: ignored
	b.AddCounts("quiet", from.Add(minutes*time.Minute), slo.Counts{Total: 99})
	h, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	for range 2000 {
		i, j := rng.IntN(minutes+1), rng.IntN(minutes+1)
		if i > j {
			i, j = j, i
		}
		r := slo.Range{From: from.Add(time.Duration(i) * time.Minute), To: from.Add(time.Duration(j) * time.Minute)}
		for cuj, rs := range rows {
			var want row
			for _, x := range rs[i:j] {
				want.total += x.total
				want.bad += x.bad
				want.slow += x.slow
			}
			if got := h.Between(slo.Key{CUJ: cuj, Kind: slo.Availability}, r); got != (slo.Events{Total: want.total, Bad: want.bad}) {
				t.Fatalf("%s availability over minutes [%d, %d): %+v, want total %d bad %d", cuj, i, j, got, want.total, want.bad)
			}
			if got := h.Between(slo.Key{CUJ: cuj, Kind: slo.Latency}, r); got != (slo.Events{Total: want.total, Bad: want.slow}) {
				t.Fatalf("%s latency over minutes [%d, %d): %+v, want total %d slow %d", cuj, i, j, got, want.total, want.slow)
			}
		}
	}
	if got := h.Between(slo.Key{CUJ: "quiet", Kind: slo.Availability}, slo.Range{From: from.Add(-time.Hour), To: from.Add(time.Hour * 1000)}); got.Total == 0 {
		t.Error("a range wider than the history should count the whole history")
	}

	// AddMinutes is AddCounts in bulk, clipped to the history.
	bulk := slo.NewHistoryBuilder(from, from.Add(minutes*time.Minute))
	cs := make([]slo.Counts, minutes+10)
	for m := range cs {
		if m >= 5 && m-5 < minutes {
			r := rows["quiet"][m-5]
			cs[m] = slo.Counts{Total: r.total, Bad: r.bad, Slow: r.slow}
		} else {
			cs[m] = slo.Counts{Total: 1 << 20}
		}
	}
	bulk.AddMinutes("quiet", from.Add(-5*time.Minute), cs)
	hb, err := bulk.Build()
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []slo.Key{{CUJ: "quiet", Kind: slo.Availability}, {CUJ: "quiet", Kind: slo.Latency}} {
		for _, r := range []slo.Range{{From: from, To: from.Add(minutes * time.Minute)}, {From: from.Add(time.Hour), To: from.Add(30 * time.Hour)}} {
			if a, b := h.Between(k, r), hb.Between(k, r); a != b {
				t.Errorf("%s over %v: AddMinutes %+v, AddCounts %+v", k, r, b, a)
			}
		}
	}
}
