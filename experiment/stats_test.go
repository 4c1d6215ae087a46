package experiment

import (
	"math"
	"math/rand/v2"
	"testing"
)

// The p-values come from exact rational sums of binomial coefficients
// (Python's fractions and math.comb), so the test checks the log-gamma
// arithmetic against the definition.
func TestFisherMatchesExactSums(t *testing.T) {
	tests := []struct {
		name                             string
		expBad, expTotal, ctlBad, ctlTot uint64
		want                             float64
	}{
		{"Fisher's tea tasting", 3, 4, 1, 4, 0.24285714285714285},
		{"ten failures among a hundred and none among nine hundred", 10, 100, 0, 900, 6.571632945319454e-11},
		{"one failure is not evidence", 1, 10, 0, 90, 0.1},
		{"no failures at all", 0, 100, 0, 900, 1},
		{"the experiment group doing better", 5, 1000, 50, 9000, 0.6554811572832473},
		{"large counts at the same rate", 120, 10000, 1000, 90000, 0.2245361157978434},
		{"a small difference made clear by counts", 30, 1000, 10, 9000, 2.122766553943314e-22},
		{"a tail below the mode", 60, 600, 400, 5400, 0.01686177305586328},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Fisher(tt.expBad, tt.expTotal, tt.ctlBad, tt.ctlTot).P
			if math.Abs(got-tt.want) > 1e-9*tt.want {
				t.Errorf("p = %.17g, want %.17g", got, tt.want)
			}
		})
	}
}

func TestFisherHandlesMillionsOfRequests(t *testing.T) {
	// 0.2% against 0.1% over ten million requests each: overwhelming.
	f := Fisher(20_000, 10_000_000, 10_000, 10_000_000)
	if f.P > 1e-100 || math.Abs(float64(f.OddsRatio)-2.002) > 0.001 {
		t.Errorf("p = %g, odds ratio %g", f.P, f.OddsRatio)
	}
	// The same rate over millions: no evidence.
	if f := Fisher(1_000, 1_000_000, 9_000, 9_000_000); f.P < 0.4 || f.P > 0.6 {
		t.Errorf("same rate: p = %g", f.P)
	}
}

// U from buckets equals U counted over every pair of requests.
func TestMannWhitneyCountsEveryPair(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for trial := range 50 {
		exp, ctl := make([]uint64, 6), make([]uint64, 6)
		for i := range exp {
			exp[i], ctl[i] = uint64(rng.IntN(8)), uint64(rng.IntN(8))
		}
		var pairs float64
		for i, e := range exp {
			for j, c := range ctl {
				switch {
				case i > j:
					pairs += float64(e * c)
				case i == j:
					pairs += float64(e*c) / 2
				}
			}
		}
		if got := MannWhitneyU(exp, ctl).U; got != pairs {
			t.Fatalf("trial %d: U = %g, want %g (exp %v, ctl %v)", trial, got, pairs, exp, ctl)
		}
	}
}

func TestMannWhitneyTellsASlowerGroup(t *testing.T) {
	tests := []struct {
		name     string
		exp, ctl []uint64
		slower   bool
		superior float64
	}{
		{"the experiment group a bucket slower", []uint64{0, 10, 90, 0}, []uint64{10, 90, 0, 0}, true, 0.955},
		{"the same distribution", []uint64{10, 80, 10, 0}, []uint64{100, 800, 100, 0}, false, 0.5},
		{"everything in one bucket", []uint64{0, 50, 0, 0}, []uint64{0, 500, 0, 0}, false, 0.5},
		{"the experiment group faster", []uint64{90, 10, 0, 0}, []uint64{0, 10, 90, 0}, false, 0.005},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := MannWhitneyU(tt.exp, tt.ctl)
			if (m.P < 0.05) != tt.slower || math.Abs(float64(m.Superiority)-tt.superior) > 1e-9 {
				t.Errorf("p = %g, superiority %g; want slower=%v, superiority %g", m.P, m.Superiority, tt.slower, tt.superior)
			}
		})
	}
}
