package load_test

import (
	"math/big"
	"math/rand/v2"
	"reflect"
	"testing"
	"time"

	"slolab.dev/slolab/load"
	"slolab.dev/slolab/spec"
)

func rate(freq uint64, per time.Duration) spec.Rate { return spec.Rate{Freq: freq, Per: per} }

// floorArea is floor(∫ rate) over [0, t] of a stage, computed independently
// of the schedule with big rationals.
func floorArea(st load.Stage, t time.Duration) uint64 {
	a := new(big.Rat).SetFrac64(int64(st.From.Freq), int64(st.From.Per))
	b := a
	if st.IsRamp() {
		b = new(big.Rat).SetFrac64(int64(st.To.Freq), int64(st.To.Per))
	}
	x := new(big.Rat).SetInt64(int64(t))
	// a·t + (b−a)·t²/(2T)
	area := new(big.Rat).Mul(a, x)
	if st.IsRamp() {
		c := new(big.Rat).Sub(b, a)
		c.Mul(c, x)
		c.Mul(c, x)
		c.Quo(c, new(big.Rat).SetInt64(2*int64(st.Duration)))
		area.Add(area, c)
	}
	return new(big.Int).Quo(area.Num(), area.Denom()).Uint64()
}

func TestAConstantScheduleHoldsFloorOfElapsedTimesRate(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	pers := []time.Duration{time.Second, time.Minute, 2 * time.Second, 7 * time.Millisecond, 3 * time.Hour}
	for range 300 {
		st := load.Stage{From: rate(1+rng.Uint64N(20000), pers[rng.IntN(len(pers))]), Duration: time.Duration(1 + rng.Int64N(int64(time.Hour)))}
		s, err := load.NewSchedule(st)
		if err != nil {
			t.Fatalf("%s: %v", st, err)
		}
		total, ok := s.Total()
		if want := floorArea(st, st.Duration); !ok || total != want {
			t.Fatalf("%s: Total = %d, %v; want %d", st, total, ok, want)
		}
		for range 50 {
			el := time.Duration(rng.Int64N(int64(st.Duration) + 1))
			if got, want := s.Hits(el), floorArea(st, el); got != want {
				t.Fatalf("%s: Hits(%d) = %d, want %d", st, el, got, want)
			}
		}
		checkDueInvertsHits(t, s, st.String(), total, rng)
	}
}

// checkDueInvertsHits: request k is due at the first nanosecond where k+1
// requests are due, and at no other.
func checkDueInvertsHits(t *testing.T, s *load.Schedule, name string, total uint64, rng *rand.Rand) {
	t.Helper()
	if total == 0 {
		if _, ok := s.Due(0); ok {
			t.Fatalf("%s: an empty schedule has a request 0", name)
		}
		return
	}
	ks := []uint64{0, total - 1}
	for range 50 {
		ks = append(ks, rng.Uint64N(total))
	}
	for _, k := range ks {
		d, ok := s.Due(k)
		if !ok {
			t.Fatalf("%s: Due(%d) of %d: not ok", name, k, total)
		}
		if h := s.Hits(d); h < k+1 {
			t.Fatalf("%s: Hits(Due(%d)=%d) = %d, want ≥ %d", name, k, d, h, k+1)
		}
		if h := s.Hits(d - 1); h > k {
			t.Fatalf("%s: Hits(Due(%d)−1) = %d, want ≤ %d", name, k, h, k)
		}
	}
	if _, ok := s.Due(total); ok {
		t.Fatalf("%s: Due(%d) exists past the end", name, total)
	}
}

func TestARampHoldsFloorOfTheAreaUnderItsRate(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for range 200 {
		st := load.Stage{
			From:     rate(rng.Uint64N(5000), time.Second),
			To:       rate(1+rng.Uint64N(5000), time.Second),
			Ramp:     true,
			Duration: time.Duration(1+rng.Int64N(600)) * 100 * time.Millisecond,
		}
		if st.From.Freq == 0 {
			st.From = rate(0, time.Second)
		}
		if rng.IntN(2) == 0 { // ramp down as often as up
			st.From, st.To = st.To, st.From
			if st.To.Freq == 0 {
				st.To = rate(0, time.Second)
			}
		}
		if !st.IsRamp() {
			continue
		}
		s, err := load.NewSchedule(st)
		if err != nil {
			t.Fatalf("%s: %v", st, err)
		}
		total, _ := s.Total()
		if want := floorArea(st, st.Duration); total != want {
			t.Fatalf("%s: Total = %d, want %d", st, total, want)
		}
		for range 20 {
			el := time.Duration(rng.Int64N(int64(st.Duration) + 1))
			if got, want := s.Hits(el), floorArea(st, el); got != want {
				t.Fatalf("%s: Hits(%s) = %d, want %d", st, el, got, want)
			}
		}
		checkDueInvertsHits(t, s, st.String(), total, rng)
	}
}

func TestStagesFollowEachOtherAndDueTimesNeverGoBack(t *testing.T) {
	stages := []load.Stage{
		{From: rate(100, time.Second), Duration: 2 * time.Second},
		{From: rate(100, time.Second), To: rate(500, time.Second), Ramp: true, Duration: 4 * time.Second},
		{From: rate(3, 2*time.Second), Duration: time.Second}, // 1.5/s for 1s: floor(1.5) = 1
		{From: rate(500, time.Second), To: rate(0, time.Second), Ramp: true, Duration: time.Second},
	}
	s, err := load.NewSchedule(stages...)
	if err != nil {
		t.Fatal(err)
	}
	// 200 + (100+500)/2·4 + 1 + 500/2 = 200 + 1200 + 1 + 250
	if total, ok := s.Total(); !ok || total != 1651 {
		t.Fatalf("Total = %d, %v; want 1651", total, ok)
	}
	if d, ok := s.Duration(); !ok || d != 8*time.Second {
		t.Fatalf("Duration = %s, %v", d, ok)
	}
	prev := time.Duration(-1)
	for k := range uint64(1651) {
		d, ok := s.Due(k)
		if !ok || d <= prev {
			t.Fatalf("Due(%d) = %s, %v after %s", k, d, ok, prev)
		}
		prev = d
	}
	if got := s.Hits(2 * time.Second); got != 200 {
		t.Errorf("Hits(2s) = %d, want 200", got)
	}
	if got := s.Hits(6 * time.Second); got != 1400 {
		t.Errorf("Hits(6s) = %d, want 1400", got)
	}
}

func TestAnOpenEndedScheduleNeverEnds(t *testing.T) {
	s, err := load.NewSchedule(load.Stage{From: rate(200, time.Second)})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := s.Total(); ok {
		t.Error("an open-ended schedule has a total")
	}
	if d, ok := s.Due(1_000_000_000); !ok || d != 5_000_000*time.Second+5*time.Millisecond {
		t.Errorf("Due(1e9) = %s, %v", d, ok)
	}
}

func TestStagesParseFromTheFlagSyntax(t *testing.T) {
	tests := []struct {
		in   string
		want load.Stage
	}{
		{"200/s:30s", load.Stage{From: rate(200, time.Second), Duration: 30 * time.Second}},
		{"100/s..500/s:1m", load.Stage{From: rate(100, time.Second), To: rate(500, time.Second), Ramp: true, Duration: time.Minute}},
		{"0..60/m:2m", load.Stage{From: rate(0, time.Second), To: rate(60, time.Minute), Ramp: true, Duration: 2 * time.Minute}},
		{"0.5/s:10s", load.Stage{From: rate(1, 2*time.Second), Duration: 10 * time.Second}},
	}
	for _, tt := range tests {
		got, err := load.ParseStage(tt.in)
		if err != nil || !reflect.DeepEqual(got, tt.want) {
			t.Errorf("ParseStage(%q) = %+v, %v; want %+v", tt.in, got, err, tt.want)
		}
		if back, err := load.ParseStage(got.String()); err != nil || !reflect.DeepEqual(back, got) {
			t.Errorf("%q does not read back: %q → %+v, %v", tt.in, got.String(), back, err)
		}
	}
	for in, msg := range map[string]string{
		"200/s":        `want a stage such as 200/s:30s or 100/s..500/s:1m, got "200/s"`,
		"200/s:0s":     `stage "200/s:0s": want a positive duration after ':'`,
		"fast:10s":     `stage "fast:10s": want a rate such as 200/s, 30/m or 5/2s, got "fast"`,
		"0..0:10s":     `stage "0..0:10s": a ramp from 0 to 0 sends nothing`,
		"100/s..x:10s": `stage "100/s..x:10s": want a rate such as 200/s, 30/m or 5/2s, got "x"`,
	} {
		if _, err := load.ParseStage(in); err == nil || err.Error() != msg {
			t.Errorf("ParseStage(%q) error = %v, want %s", in, err, msg)
		}
	}
}

func TestSchedulesRefuseWhatTheyCannotKeep(t *testing.T) {
	tests := []struct {
		name   string
		stages []load.Stage
		msg    string
	}{
		{"a rate above the maximum", []load.Stage{{From: rate(20_000_000, time.Second), Duration: time.Second}},
			"stage 1 (20000000/s:1s): rate 20000000/s is above the maximum of 10000000/s"},
		{"an open-ended stage before another", []load.Stage{{From: rate(1, time.Second)}, {From: rate(1, time.Second), Duration: time.Second}},
			"stage 1 (1/s): only a constant last stage may run until stopped"},
		{"no stage", nil, "a plan needs at least one stage"},
	}
	for _, tt := range tests {
		if _, err := load.NewSchedule(tt.stages...); err == nil || err.Error() != tt.msg {
			t.Errorf("%s: error = %v, want %s", tt.name, err, tt.msg)
		}
	}
}
