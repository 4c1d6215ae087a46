package load_test

import (
	"math/rand/v2"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"slolab.dev/slolab/internal/testtool"
	"slolab.dev/slolab/load"
	"slolab.dev/slolab/spec"
)

func chat(t *testing.T) *spec.Service {
	t.Helper()
	svc, err := spec.LoadService(testtool.RepoRoot(t) + "/examples/chat.yaml")
	if err != nil {
		t.Fatal(err)
	}
	return svc
}

func service(t *testing.T, yaml string) *spec.Service {
	t.Helper()
	f, err := spec.Parse("test.yaml", []byte(yaml))
	if err != nil {
		t.Fatal(err)
	}
	svc, err := f.Service()
	if err != nil {
		t.Fatal(err)
	}
	return svc
}

func constant(r spec.Rate, d time.Duration) []load.Stage {
	return []load.Stage{{From: r, Duration: d}}
}

func items(p *load.Plan) []load.Item {
	var out []load.Item
	s := p.Stream()
	for {
		it, ok := s.Next()
		if !ok {
			return out
		}
		out = append(out, it)
	}
}

// TestThePlanSendsItsExactTotalAndEveryCUJItsShare: after t the plan has
// sent exactly ⌊t·r⌋ requests, and every CUJ is within one request of its
// share of them, at every instant.
func TestThePlanSendsItsExactTotalAndEveryCUJItsShare(t *testing.T) {
	p, err := load.NewPlan(chat(t), load.PlanConfig{Stages: constant(rate(1000, time.Second), 10*time.Second), Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	shares := map[string]int64{"login": 10, "send": 30, "update": 15, "read": 35, "upload": 5, "task": 5} // % of 1000/s
	all := items(p)
	if len(all) != 10_000 {
		t.Fatalf("the plan holds %d requests, want 10000", len(all))
	}
	counts := make([]int64, len(p.CUJs))
	next := 0
	for ms := int64(0); ms <= 10_000; ms++ {
		at := time.Duration(ms) * time.Millisecond
		for next < len(all) && all[next].Due <= at {
			counts[all[next].CUJ]++
			next++
		}
		if int64(next) != ms {
			t.Fatalf("after %s the plan sent %d requests, want exactly %d", at, next, ms)
		}
		for i, c := range p.CUJs {
			// |count − ms·share%| < 1, in hundredths.
			if d := 100*counts[i] - ms*shares[c.Name]; d <= -100 || d >= 100 {
				t.Fatalf("after %s CUJ %s has %d requests, want within one of %d%% of %d", at, c.Name, counts[i], shares[c.Name], ms)
			}
		}
	}
	// Due times never go back, and K numbers the whole plan.
	for i := range all {
		if all[i].K != uint64(i) || i > 0 && all[i].Due < all[i-1].Due {
			t.Fatalf("item %d = %+v after %+v", i, all[i], all[max(i-1, 0)])
		}
	}
}

// TestSharesThatDoNotDivideEvenlyStillAddUp: 7/s for 3s is 21 requests,
// though 7/s split 10/30/15/35/5/5 gives no CUJ a whole number of them (the
// CUJs' own floors summed to 20).
func TestSharesThatDoNotDivideEvenlyStillAddUp(t *testing.T) {
	p, err := load.NewPlan(chat(t), load.PlanConfig{Stages: constant(rate(7, time.Second), 3*time.Second)})
	if err != nil {
		t.Fatal(err)
	}
	if n, ok := p.Total(); !ok || n != 21 {
		t.Errorf("the plan holds %d requests, want 21", n)
	}
	if got := len(items(p)); got != 21 {
		t.Errorf("the stream yields %d requests, want 21", got)
	}
}

func TestTemplatesInterleaveByWeightWithinOneRequest(t *testing.T) {
	// chat's read CUJ: /messages?room= weight 3, /messages/{id} weight 1.
	p, err := load.NewPlan(chat(t), load.PlanConfig{Stages: constant(rate(1000, time.Second), 10*time.Second), CUJs: []string{"read"}})
	if err != nil {
		t.Fatal(err)
	}
	var n, first uint64
	for _, it := range items(p) {
		n++
		if it.Template == 0 {
			first++
		}
		// |count − n·3/4| < 1 for every prefix.
		if d := int64(4*first) - int64(3*n); d <= -4 || d >= 4 {
			t.Fatalf("after %d requests template 0 has %d, want within 1 of %d·3/4", n, first, n)
		}
		if n%4 == 0 && first != 3*n/4 {
			t.Fatalf("after %d requests (a whole number of periods) template 0 has %d, want %d", n, first, 3*n/4)
		}
	}
}

func TestSmoothRoundRobinStaysWithinOneOfEveryWeight(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	for range 200 {
		k := 2 + rng.IntN(5)
		var reqs strings.Builder
		weights := make([]uint64, k)
		var total uint64
		for i := range k {
			weights[i] = 1 + rng.Uint64N(20)
			total += weights[i]
			reqs.WriteString("          - path: /r" + string(rune('a'+i)) + "\n            weight: " + strconv.FormatUint(weights[i], 10) + "\n")
		}
		svc := service(t, `apiVersion: slolab.dev/v1
kind: Service
metadata: {name: s}
spec:
  cujs:
    - name: c
      owner: o
      routes: ["GET /"]
      availability: {objective: 99%}
      load:
        requests:
`+reqs.String())
		p, err := load.NewPlan(svc, load.PlanConfig{Stages: constant(rate(1000, time.Second), 2*time.Second)})
		if err != nil {
			t.Fatal(err)
		}
		counts := make([]uint64, k)
		var n uint64
		for _, it := range items(p) {
			n++
			counts[it.Template]++
			for i, w := range weights {
				// |counts[i] − n·w/total| < 1  ⟺  |counts[i]·total − n·w| < total
				if d := int64(counts[i]*total) - int64(n*w); d <= -int64(total) || d >= int64(total) {
					t.Fatalf("weights %v: after %d requests template %d has %d, want within 1 of %d·%d/%d", weights, n, i, counts[i], n, w, total)
				}
			}
		}
	}
}

const splitSpec = `apiVersion: slolab.dev/v1
kind: Service
metadata: {name: s}
spec:
  cujs:
    - {name: a, owner: o, routes: ["GET /a"], availability: {objective: 99%}, load: {share: 50%}}
    - {name: b, owner: o, routes: ["GET /b"], availability: {objective: 99%}, load: {rate: 10/s}}
    - {name: c, owner: o, routes: ["GET /c"], availability: {objective: 99%}}
    - {name: d, owner: o, routes: ["GET /d"], availability: {objective: 99%}}
`

func TestCUJsWithoutShareOrRateSplitWhatIsLeft(t *testing.T) {
	p, err := load.NewPlan(service(t, splitSpec), load.PlanConfig{Stages: []load.Stage{
		{From: rate(100, time.Second), Duration: 10 * time.Second},
		{From: rate(100, time.Second), To: rate(200, time.Second), Ramp: true, Duration: 10 * time.Second},
	}})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string][]string{}
	totals := map[string]uint64{}
	for _, c := range p.CUJs {
		for _, st := range c.Stages {
			got[c.Name] = append(got[c.Name], st.String())
		}
		totals[c.Name], _ = c.Schedule.Total()
	}
	want := map[string][]string{
		"a": {"50/s:10s", "50/s..100/s:10s"},
		"b": {"10/s:10s", "10/s:10s"},
		"c": {"20/s:10s", "20/s..45/s:10s"}, // (100·50% − 10)/2 .. (200·50% − 10)/2
		"d": {"20/s:10s", "20/s..45/s:10s"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("stages = %v, want %v", got, want)
	}
	wantTotals := map[string]uint64{"a": 500 + 750, "b": 100 + 100, "c": 200 + 325, "d": 200 + 325}
	if !reflect.DeepEqual(totals, wantTotals) {
		t.Errorf("totals = %v, want %v", totals, wantTotals)
	}
}

func TestPlansThatCannotAddUpAreRefused(t *testing.T) {
	tests := []struct {
		name, yaml string
		stages     []load.Stage
		msg        string
	}{
		{"own rates above the plan's", splitSpec, constant(rate(10, time.Second), time.Second),
			"stage 1 (10/s:1s): the CUJs' own rates add up to 10/s, more than the plan leaves for them at 10/s"},
		{"shares leaving a rest nobody takes", `apiVersion: slolab.dev/v1
kind: Service
metadata: {name: s}
spec:
  cujs:
    - {name: a, owner: o, routes: ["GET /a"], availability: {objective: 99%}, load: {share: 50%}}
    - {name: b, owner: o, routes: ["GET /b"], availability: {objective: 99%}, load: {share: 40%}}
`, constant(rate(100, time.Second), time.Second),
			"stage 1 (100/s:1s): every CUJ has a share or a rate, but 10/s of the plan's rate is left over; make the shares add up to 100% or leave one CUJ without a share to take the rest"},
		{"shares above 100%", `apiVersion: slolab.dev/v1
kind: Service
metadata: {name: s}
spec:
  cujs:
    - {name: a, owner: o, routes: ["GET /a"], availability: {objective: 99%}, load: {share: 70%}}
    - {name: b, owner: o, routes: ["GET /b"], availability: {objective: 99%}, load: {share: 40%}}
`, constant(rate(100, time.Second), time.Second), "the CUJs' shares add up to 110.00%, more than 100%"},
		{"an unknown placeholder", `apiVersion: slolab.dev/v1
kind: Service
metadata: {name: s}
spec:
  cujs:
    - name: a
      owner: o
      routes: ["GET /a"]
      availability: {objective: 99%}
      load:
        requests:
          - path: /a/{id}
`, constant(rate(100, time.Second), time.Second),
			"test.yaml:12:13: cujs[a].load.requests[0]: unknown placeholder {id}: define it under vars (known: user, seq)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := load.NewPlan(service(t, tt.yaml), load.PlanConfig{Stages: tt.stages})
			if err == nil || err.Error() != tt.msg {
				t.Errorf("error = %v\nwant    %s", err, tt.msg)
			}
		})
	}
}

func TestShardsTogetherReplayTheWholePlanExactlyOnce(t *testing.T) {
	stages := []load.Stage{
		{From: rate(300, time.Second), Duration: 2 * time.Second},
		{From: rate(300, time.Second), To: rate(900, time.Second), Ramp: true, Duration: 3 * time.Second},
	}
	whole, err := load.NewPlan(chat(t), load.PlanConfig{Stages: stages, Seed: 9})
	if err != nil {
		t.Fatal(err)
	}
	want := items(whole)
	for n := uint64(1); n <= 7; n++ {
		merged := make([]load.Item, len(want))
		seen := make([]bool, len(want))
		for i := range n {
			p, err := load.NewPlan(chat(t), load.PlanConfig{Stages: stages, Seed: 9, Shard: load.Shard{Index: i, Of: n}})
			if err != nil {
				t.Fatal(err)
			}
			for _, it := range items(p) {
				if it.K%n != i || seen[it.K] {
					t.Fatalf("shard %d/%d sends request %d", i, n, it.K)
				}
				seen[it.K] = true
				merged[it.K] = it
			}
		}
		if !reflect.DeepEqual(merged, want) {
			t.Fatalf("%d shards together do not replay the plan", n)
		}
	}
}

func TestShardsParseAsIOfN(t *testing.T) {
	if s, err := load.ParseShard("2/3"); err != nil || s != (load.Shard{Index: 2, Of: 3}) {
		t.Errorf("ParseShard(2/3) = %v, %v", s, err)
	}
	for _, bad := range []string{"3/3", "0/0", "1", "a/b", "-1/2", "1/2/3"} {
		if _, err := load.ParseShard(bad); err == nil {
			t.Errorf("ParseShard(%q) accepted", bad)
		}
	}
}
