package canary

import (
	"math"
	"testing"
)

// relTol is the tolerance against references computed with 50-digit
// arithmetic (mpmath): the tests sum exact terms in float64.
const relTol = 1e-12

func near(got, want float64) bool {
	if want == 0 {
		return got == 0
	}
	return math.Abs(got-want) <= relTol*math.Abs(want)
}

func TestBinomialTailMatchesExactReferences(t *testing.T) {
	for _, tc := range []struct {
		name string
		k, n uint64
		p    float64
		want float64
	}{
		{"6 bad of 12 at a 1% limit is almost impossible", 6, 12, 0.01, 8.77507262858062e-10},
		{"3 bad of 3000 at 0.1% is what 0.1% gives", 3, 3000, 0.001, 0.57692199894116813},
		{"40 bad of 10000 at 0.1% lies far in the tail", 40, 10000, 0.001, 7.0252885221563252e-13},
		{"a million requests sum without overflow", 1200, 1_000_000, 0.001, 4.5896386061007507e-10},
		{"at least one head in ten fair tosses", 1, 10, 0.5, 0.9990234375},
		{"two of two at 0.5%", 2, 2, 0.005, 2.5e-5},
		{"no bad requests is always at least as likely", 0, 50, 0.01, 1},
		{"more bad than requests cannot happen", 5, 4, 0.5, 0},
		{"a zero limit makes any bad request impossible", 1, 10, 0, 0},
	} {
		if got := BinomialTail(tc.k, tc.n, tc.p); !near(got, tc.want) {
			t.Errorf("%s: BinomialTail(%d, %d, %v) = %.17g, want %.17g", tc.name, tc.k, tc.n, tc.p, got, tc.want)
		}
	}
}

func TestFisherMatchesExactReferences(t *testing.T) {
	for _, tc := range []struct {
		name         string
		a, n1, b, n2 uint64
		want         float64
	}{
		{"6 of 12 canary requests bad, none of 38 stable", 6, 12, 0, 38, 5.8147218184220959e-5},
		{"1% vs 0.33%", 10, 1000, 10, 3000, 0.013653982199477654},
		{"equal ratios are no evidence", 5, 20, 5, 20, 0.64178672243188372},
		{"equal ratios over millions", 300, 1_000_000, 900, 3_000_000, 0.51108330159817205},
		{"a 13% rise over millions", 340, 1_000_000, 900, 3_000_000, 0.027378763851257546},
		{"fewer bad requests than stable's share", 250, 1_000_000, 900, 3_000_000, 0.99564307877586171},
		{"3 of 5 against none of 3", 3, 5, 0, 3, 0.17857142857142857},
		{"no canary bad requests", 0, 10, 3, 30, 1},
		{"no stable requests at all", 1, 1, 0, 0, 1},
	} {
		if got := FisherGreater(tc.a, tc.n1, tc.b, tc.n2); !near(got, tc.want) {
			t.Errorf("%s: FisherGreater(%d, %d, %d, %d) = %.17g, want %.17g", tc.name, tc.a, tc.n1, tc.b, tc.n2, got, tc.want)
		}
	}
}

// The p-values of both tests are probabilities for any counts: in [0, 1],
// never NaN, and falling as the canary's bad count rises.
func FuzzTestsGiveProbabilities(f *testing.F) {
	f.Add(uint64(3), uint64(10), uint64(2), uint64(40), uint16(50))
	f.Add(uint64(0), uint64(0), uint64(0), uint64(0), uint16(0))
	f.Add(uint64(1<<40), uint64(1<<41), uint64(7), uint64(1<<41), uint16(1))
	f.Fuzz(func(t *testing.T, a, n1, b, n2 uint64, permille uint16) {
		n1, n2 = n1%(1<<42), n2%(1<<42)
		a, b = a%(n1+1), b%(n2+1)
		p := float64(permille%1001) / 1000
		bt := BinomialTail(a, n1, p)
		fi := FisherGreater(a, n1, b, n2)
		for _, v := range []float64{bt, fi} {
			if math.IsNaN(v) || v < 0 || v > 1 {
				t.Fatalf("p-value %v for a=%d n1=%d b=%d n2=%d p=%v", v, a, n1, b, n2, p)
			}
		}
		if a < n1 && n1 < 1<<20 && n2 < 1<<20 {
			if next := BinomialTail(a+1, n1, p); next > bt*(1+relTol) {
				t.Errorf("BinomialTail rose from %v to %v at k=%d n=%d p=%v", bt, next, a+1, n1, p)
			}
			if next := FisherGreater(a+1, n1, b, n2); next > fi*(1+relTol)+1e-300 {
				t.Errorf("FisherGreater rose from %v to %v at a=%d", fi, next, a+1)
			}
		}
	})
}

func TestMinRequestsIsTheRuleOfThree(t *testing.T) {
	for _, tc := range []struct {
		objective string
		limit     float64
		want      uint64
	}{
		{"99.95%", 0.0005, 5990},
		{"99.9%", 0.001, 2995},
		{"99.5%", 0.005, 598},
		{"99%", 0.01, 299},
		{"95%", 0.05, 59},
		{"0%", 1, 1},
	} {
		got := MinRequests(tc.limit, 0.05)
		if got != tc.want {
			t.Errorf("%s: MinRequests = %d, want %d", tc.objective, got, tc.want)
		}
		// The defining property: zero bad requests of n pass the exact
		// upper bound, of n−1 do not.
		if tc.limit < 1 && (math.Pow(1-tc.limit, float64(got)) > 0.05 || math.Pow(1-tc.limit, float64(got-1)) <= 0.05) {
			t.Errorf("%s: %d is not the least n with (1−limit)^n ≤ α", tc.objective, got)
		}
	}
}
