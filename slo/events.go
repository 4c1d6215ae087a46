package slo

import (
	"math/big"
	"math/bits"

	"slolab.dev/slolab/spec"
)

// Kind names an SLO of a CUJ: availability (bad = 5xx or no response) or
// latency (bad = slower than the CUJ's threshold).
type Kind string

// The SLO kinds.
const (
	Availability Kind = "availability"
	Latency      Kind = "latency"
)

// Kinds lists the SLO kinds in the order status reports them.
var Kinds = []Kind{Availability, Latency}

// Key names one SLO: a CUJ and a kind.
type Key struct {
	CUJ  string
	Kind Kind
}

func (k Key) String() string { return k.CUJ + "/" + string(k.Kind) }

// Events counts what an SLO saw over some span: requests and bad requests.
type Events struct {
	Total uint64 `json:"total"`
	Bad   uint64 `json:"bad"`
}

// Add returns e + o.
func (e Events) Add(o Events) Events { return Events{e.Total + o.Total, e.Bad + o.Bad} }

// Good returns the requests that were not bad.
func (e Events) Good() uint64 { return e.Total - e.Bad }

// Counts are what a CUJ saw: requests, availability-bad and latency-bad
// requests. Its two SLOs share the total.
type Counts struct {
	Total uint64
	Bad   uint64 // 5xx or no response
	Slow  uint64 // slower than the latency threshold
}

// Events returns the events of one of the CUJ's SLOs.
func (c Counts) Events(k Kind) Events {
	if k == Latency {
		return Events{c.Total, c.Slow}
	}
	return Events{c.Total, c.Bad}
}

// u192 is an unsigned 192-bit integer, most significant word first: the
// product of three 64-bit factors always fits.
type u192 [3]uint64

// mul3 returns a·b·c exactly.
func mul3(a, b, c uint64) u192 {
	hi, lo := bits.Mul64(a, b) // a·b = hi·2^64 + lo
	h1, l1 := bits.Mul64(lo, c)
	h2, l2 := bits.Mul64(hi, c)
	mid, carry := bits.Add64(h1, l2, 0)
	return u192{h2 + carry, mid, l1}
}

func (x u192) cmp(y u192) int {
	for i := range x {
		switch {
		case x[i] < y[i]:
			return -1
		case x[i] > y[i]:
			return 1
		}
	}
	return 0
}

// budgetDen returns the objective's parts: objective = n/d, so the budget
// share 1 − objective = (d − n)/d.
func budgetParts(objective spec.Ratio) (n, d uint64) {
	return objective.Num(), objective.Den()
}

// BurnRateAtLeast reports exactly whether e burns the budget of an SLO with
// the given objective at least factor times as fast as the SLO allows:
// (Bad/Total) / (1 − objective) ≥ factor. It is false when Total is 0.
func BurnRateAtLeast(e Events, objective, factor spec.Ratio) bool {
	if e.Total == 0 {
		return false
	}
	n, d := budgetParts(objective)
	// Bad·d·factor.den ≥ factor.num·Total·(d − n), in 192 bits.
	return mul3(e.Bad, d, factor.Den()).cmp(mul3(factor.Num(), e.Total, d-n)) >= 0
}

// BurnRate returns the exact burn rate (Bad/Total)/(1 − objective), or nil
// when Total is 0.
func BurnRate(e Events, objective spec.Ratio) *big.Rat {
	if e.Total == 0 {
		return nil
	}
	n, d := budgetParts(objective)
	num := new(big.Int).Mul(new(big.Int).SetUint64(e.Bad), new(big.Int).SetUint64(d))
	den := new(big.Int).Mul(new(big.Int).SetUint64(e.Total), new(big.Int).SetUint64(d-n))
	return new(big.Rat).SetFrac(num, den)
}

// burnFloat is BurnRate for display.
func burnFloat(e Events, objective spec.Ratio) float64 {
	if e.Total == 0 {
		return 0
	}
	return float64(e.Bad) / float64(e.Total) / objective.OneMinus().Float()
}

// Allowed returns the exact number of bad events the budget allows among
// Total: (1 − objective)·Total.
func Allowed(e Events, objective spec.Ratio) *big.Rat {
	n, d := budgetParts(objective)
	return new(big.Rat).SetFrac(
		new(big.Int).Mul(new(big.Int).SetUint64(e.Total), new(big.Int).SetUint64(d-n)),
		new(big.Int).SetUint64(d))
}

// SLI returns the exact share of good events, or nil when Total is 0.
func SLI(e Events) *big.Rat {
	if e.Total == 0 {
		return nil
	}
	return new(big.Rat).SetFrac(new(big.Int).SetUint64(e.Good()), new(big.Int).SetUint64(e.Total))
}

// Met reports exactly whether the SLI meets the objective: Good/Total ≥
// objective. An SLO with no events is met.
func Met(e Events, objective spec.Ratio) bool {
	if e.Total == 0 {
		return true
	}
	return spec.AtLeast(e.Good(), e.Total, objective)
}
