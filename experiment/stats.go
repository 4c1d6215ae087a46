package experiment

import (
	"encoding/json"
	"math"
	"strconv"
)

// Number is a float that writes JSON null when it is not finite (an odds
// ratio with no bad control request is infinite).
type Number float64

// MarshalJSON implements json.Marshaler.
func (n Number) MarshalJSON() ([]byte, error) {
	f := float64(n)
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return []byte("null"), nil
	}
	return strconv.AppendFloat(nil, f, 'g', -1, 64), nil
}

// UnmarshalJSON implements json.Unmarshaler: null, what a non-finite number
// was written as, reads back as NaN, so a stored report keeps "no finite
// value" rather than turning it into 0.
func (n *Number) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		*n = Number(math.NaN())
		return nil
	}
	return json.Unmarshal(b, (*float64)(n))
}

// FisherTest is Fisher's exact test on a 2×2 table of bad and good requests
// in the experiment and the control group, one-sided: how likely is it that
// the experiment group has at least this many bad requests if both groups
// shared one error rate (given the margins)? Exact for any counts: the
// hypergeometric terms are summed in log space from log-gamma, starting at
// the observed table and walking the tail with the terms' ratio, so large
// counts cost no more than the tail is wide.
type FisherTest struct {
	ExpBad   uint64 `json:"experimentBad"`
	ExpTotal uint64 `json:"experimentTotal"`
	CtlBad   uint64 `json:"controlBad"`
	CtlTotal uint64 `json:"controlTotal"`
	// P is the one-sided p-value (experiment worse than control).
	P float64 `json:"p"`
	// OddsRatio of a bad request in the experiment group against control
	// (+Inf when control had none and the experiment some).
	OddsRatio Number `json:"oddsRatio"`
}

// Fisher runs the test.
func Fisher(expBad, expTotal, ctlBad, ctlTotal uint64) FisherTest {
	t := FisherTest{ExpBad: expBad, ExpTotal: expTotal, CtlBad: ctlBad, CtlTotal: ctlTotal}
	t.P = fisherUpper(float64(expBad), float64(expTotal), float64(ctlTotal), float64(expBad+ctlBad))
	a, b := float64(expBad), float64(expTotal-expBad)
	c, d := float64(ctlBad), float64(ctlTotal-ctlBad)
	switch {
	case b*c > 0:
		t.OddsRatio = Number(a * d / (b * c))
	case a*d > 0:
		t.OddsRatio = Number(math.Inf(1))
	default:
		t.OddsRatio = Number(math.NaN())
	}
	return t
}

// fisherUpper returns P(X ≥ x) for X hypergeometric: n1 draws (the
// experiment group) from n1+n2 requests of which k are bad.
func fisherUpper(x, n1, n2, k float64) float64 {
	hi := math.Min(n1, k)
	lo := math.Max(0, k-n2)
	if x <= lo {
		return 1
	}
	if x > hi {
		return 0
	}
	// Sum whichever tail lies beyond the mode, where the terms only shrink:
	// each is its neighbour times a ratio, relative to the first, so nothing
	// overflows and the sum stops once the terms no longer count.
	mode := math.Floor((n1 + 1) * (k + 1) / (n1 + n2 + 2))
	if x > mode {
		sum, term := 1.0, 1.0
		for i := x; i < hi && term >= sum*1e-17; i++ {
			term *= (n1 - i) * (k - i) / ((i + 1) * (n2 - k + i + 1))
			sum += term
		}
		return math.Min(1, math.Exp(logHyper(x, n1, n2, k)+math.Log(sum)))
	}
	first := x - 1
	sum, term := 1.0, 1.0
	for i := first; i > lo && term >= sum*1e-17; i-- {
		term *= i * (n2 - k + i) / ((n1 - i + 1) * (k - i + 1))
		sum += term
	}
	return math.Max(0, 1-math.Exp(logHyper(first, n1, n2, k)+math.Log(sum)))
}

// logHyper is the log of the hypergeometric probability of exactly x.
func logHyper(x, n1, n2, k float64) float64 {
	return logChoose(n1, x) + logChoose(n2, k-x) - logChoose(n1+n2, k)
}

func logChoose(n, k float64) float64 {
	a, _ := math.Lgamma(n + 1)
	b, _ := math.Lgamma(k + 1)
	c, _ := math.Lgamma(n - k + 1)
	return a - b - c
}

// MannWhitney is the Mann-Whitney U test on two latency histograms with the
// same buckets, one-sided: is the experiment group slower? Requests in the
// same bucket are ties (their order is unknown); U counts, over every pair
// of an experiment and a control request, 1 when the experiment request is in
// a higher bucket and ½ when both share one. The p-value uses the normal
// approximation with the tie correction and a continuity correction, which
// is sound from about ten requests per group.
type MannWhitney struct {
	ExpTotal uint64  `json:"experimentTotal"`
	CtlTotal uint64  `json:"controlTotal"`
	U        float64 `json:"u"`
	Z        float64 `json:"z"`
	P        float64 `json:"p"`
	// Superiority is U/(n1·n2): the probability that an experiment request is
	// slower than a control request, ties counting half. 0.5 means no difference.
	Superiority Number `json:"superiority"`
}

// MannWhitneyU runs the test on non-cumulative bucket counts.
func MannWhitneyU(exp, ctl []uint64) MannWhitney {
	var n1, n2 float64
	for i := range exp {
		n1 += float64(exp[i])
		n2 += float64(ctl[i])
	}
	m := MannWhitney{ExpTotal: uint64(n1), CtlTotal: uint64(n2), P: 1, Superiority: Number(math.NaN())}
	if n1 == 0 || n2 == 0 {
		return m
	}
	var below, ties float64
	for i := range exp {
		e, c := float64(exp[i]), float64(ctl[i])
		m.U += e * (below + c/2)
		below += c
		t := e + c
		ties += t*t*t - t
	}
	n := n1 + n2
	mean := n1 * n2 / 2
	variance := n1 * n2 / 12 * ((n + 1) - ties/(n*(n-1)))
	m.Superiority = Number(m.U / (n1 * n2))
	if variance <= 0 {
		return m // every request in one bucket: no evidence either way
	}
	m.Z = (m.U - mean - 0.5) / math.Sqrt(variance)
	m.P = 0.5 * math.Erfc(m.Z/math.Sqrt2)
	return m
}
