package spec

import (
	"fmt"
	"math/big"
	"math/bits"
	"regexp"
	"strconv"
	"strings"
)

// Ratio is an exact non-negative rational number num/den, used for rates,
// objectives and burn rates so that "0.1%" means exactly 1/1000 and every
// comparison against counts is done in integers. The zero value is 0.
type Ratio struct {
	num, den uint64 // reduced; den == 0 is read as 0/1
}

// maxDen bounds denominators so that products with request counts stay well
// inside 128 bits. It allows twelve decimal places (0.0000000001%).
const maxDen = 1_000_000_000_000

// NewRatio returns num/den reduced. It panics if den is 0.
func NewRatio(num, den uint64) Ratio {
	if den == 0 {
		panic("spec.NewRatio: zero denominator")
	}
	g := gcd(num, den)
	return Ratio{num / g, den / g}
}

func gcd(a, b uint64) uint64 {
	for b != 0 {
		a, b = b, a%b
	}
	if a == 0 {
		return 1
	}
	return a
}

// One is the ratio 1 (100%).
var One = Ratio{1, 1}

// ParseRatio parses a rate: a decimal number ("0.001"), a percentage
// ("0.1%") or an exact fraction ("1/3", what String writes for a rate with no
// finite decimal form). No other syntax: exponents ("1e-6"), base prefixes
// ("0x10"), signs and digit separators are refused, so a rate means what it
// reads as.
func ParseRatio(s string) (Ratio, error) { return parseRatio(s, false) }

// ParsePercent parses an objective: "99.9%" or "99.9". A bare number is a percentage.
func ParsePercent(s string) (Ratio, error) { return parseRatio(s, true) }

// ratioSyntax is the one syntax of rates and percentages, before the %.
var ratioSyntax = regexp.MustCompile(`^(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+|[0-9]+/[0-9]+)$`)

func parseRatio(s string, barePercent bool) (Ratio, error) {
	t := strings.TrimSpace(s)
	percent := barePercent
	if strings.HasSuffix(t, "%") {
		t = strings.TrimSpace(strings.TrimSuffix(t, "%"))
		percent = true
	}
	if !ratioSyntax.MatchString(t) {
		return Ratio{}, fmt.Errorf("want a non-negative number or percentage such as 0.1%% or 0.001, got %q", s)
	}
	r, ok := new(big.Rat).SetString(t)
	if !ok {
		return Ratio{}, fmt.Errorf("want a non-negative number or percentage such as 0.1%% or 0.001, got %q", s)
	}
	if percent {
		r.Quo(r, big.NewRat(100, 1))
	}
	if !r.Num().IsUint64() || !r.Denom().IsUint64() || r.Denom().Uint64() > maxDen || r.Num().Uint64() > maxDen*1000 {
		return Ratio{}, fmt.Errorf("%q has too many digits: at most 12 decimal places", s)
	}
	return NewRatio(r.Num().Uint64(), r.Denom().Uint64()), nil
}

// Num and Den return the reduced numerator and denominator.
func (r Ratio) Num() uint64 { return r.num }

// Den returns the reduced denominator (1 for zero).
func (r Ratio) Den() uint64 {
	if r.den == 0 {
		return 1
	}
	return r.den
}

// IsZero reports whether r is 0.
func (r Ratio) IsZero() bool { return r.num == 0 }

// Float returns r as a float64, for display and for distributions only.
func (r Ratio) Float() float64 { return float64(r.num) / float64(r.Den()) }

// Cmp compares r and o exactly: -1, 0 or +1.
func (r Ratio) Cmp(o Ratio) int {
	ah, al := bits.Mul64(r.num, o.Den())
	bh, bl := bits.Mul64(o.num, r.Den())
	switch {
	case ah < bh || ah == bh && al < bl:
		return -1
	case ah == bh && al == bl:
		return 0
	}
	return 1
}

// FloorMul returns floor(n·r) exactly, for any n, provided the result fits in 64 bits
// (always true when r ≤ 1).
func (r Ratio) FloorMul(n uint64) uint64 {
	hi, lo := bits.Mul64(n, r.num)
	den := r.Den()
	if hi >= den {
		panic("spec.Ratio.FloorMul: overflow")
	}
	q, _ := bits.Div64(hi, lo, den)
	return q
}

// OneMinus returns 1 − r. It panics if r > 1.
func (r Ratio) OneMinus() Ratio {
	den := r.Den()
	if r.num > den {
		panic("spec.Ratio.OneMinus: ratio above 1")
	}
	return NewRatio(den-r.num, den)
}

// Mul returns r·o exactly, or ok=false if the result does not fit.
func (r Ratio) Mul(o Ratio) (Ratio, bool) {
	// Cross-reduce first to keep numbers small.
	g1, g2 := gcd(r.num, o.Den()), gcd(o.num, r.Den())
	nh, n := bits.Mul64(r.num/g1, o.num/g2)
	dh, d := bits.Mul64(r.Den()/g2, o.Den()/g1)
	if nh != 0 || dh != 0 {
		return Ratio{}, false
	}
	return NewRatio(n, d), true
}

// AtLeast reports whether bad/total ≥ r, exactly. total must be positive.
func AtLeast(bad, total uint64, r Ratio) bool {
	// bad·den ≥ num·total, in 128 bits.
	ah, al := bits.Mul64(bad, r.Den())
	bh, bl := bits.Mul64(r.num, total)
	return ah > bh || ah == bh && al >= bl
}

// String formats r as an exact percentage ("0.1%", "99.95%") when it has a
// terminating decimal expansion, else as a fraction ("1/3").
func (r Ratio) String() string {
	if s, ok := r.decimal(100); ok {
		return s + "%"
	}
	return fmt.Sprintf("%d/%d", r.num, r.Den())
}

// Decimal formats r as an exact decimal number ("0.001", "14.4") when it has a
// terminating expansion, else as a fraction.
func (r Ratio) Decimal() string {
	if s, ok := r.decimal(1); ok {
		return s
	}
	return fmt.Sprintf("%d/%d", r.num, r.Den())
}

// decimal writes r·scale in decimal if the expansion terminates.
func (r Ratio) decimal(scale int64) (string, bool) {
	x := new(big.Rat).SetFrac(new(big.Int).SetUint64(r.num), new(big.Int).SetUint64(r.Den()))
	x.Mul(x, big.NewRat(scale, 1))
	d := x.Denom().Uint64()
	places := 0
	for d%10 == 0 {
		d /= 10
		places++
	}
	for d%2 == 0 || d%5 == 0 {
		if d%2 == 0 {
			d /= 2
		} else {
			d /= 5
		}
		places++
	}
	if d != 1 {
		return "", false
	}
	s := x.FloatString(places)
	if strings.Contains(s, ".") {
		s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
	}
	return s, true
}

// MarshalText writes the percentage form, which ParseRatio reads back exactly.
func (r Ratio) MarshalText() ([]byte, error) { return []byte(r.String()), nil }

// UnmarshalText reads any form ParseRatio accepts.
func (r *Ratio) UnmarshalText(b []byte) error {
	v, err := ParseRatio(string(b))
	if err != nil {
		return err
	}
	*r = v
	return nil
}

// ratio decodes a rate in [0, 1]: "0.1%" or 0.001.
func (d *decoder) ratio(n *Node, path string) Ratio {
	s, ok := d.scalar(n, path, "a rate such as 0.1% or 0.001")
	if !ok {
		return Ratio{}
	}
	r, err := ParseRatio(s)
	if err != nil {
		d.errorf(n, path, "%v", err)
		return Ratio{}
	}
	if r.Cmp(One) > 0 {
		d.errorf(n, path, "must be at most 100%%, got %s", s)
	}
	return r
}

// objective decodes an SLO objective, a percentage strictly between 0 and 100.
func (d *decoder) objective(n *Node, path string) Ratio {
	s, ok := d.scalar(n, path, "a percentage such as 99.9%")
	if !ok {
		return Ratio{}
	}
	r, err := ParsePercent(s)
	if err != nil {
		d.errorf(n, path, "%v", err)
		return Ratio{}
	}
	if r.IsZero() || r.Cmp(One) >= 0 {
		d.errorf(n, path, "must be in (0, 100), got %s", s)
		return Ratio{}
	}
	if !strings.HasSuffix(strings.TrimSpace(s), "%") && r.Cmp(NewRatio(1, 100)) <= 0 {
		d.errorf(n, path, "%s is read as a percentage (%s); objectives are percentages: did you mean %s%%?", s, r, mustFloatPercent(s))
		return Ratio{}
	}
	return r
}

func mustFloatPercent(s string) string {
	f, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
	if err != nil {
		return s
	}
	return strconv.FormatFloat(f*100, 'f', -1, 64)
}

// burnRate decodes a positive burn-rate factor such as 14.4.
func (d *decoder) burnRate(n *Node, path string) Ratio {
	s, ok := d.scalar(n, path, "a burn rate such as 14.4")
	if !ok {
		return Ratio{}
	}
	r, err := ParseRatio(s)
	if err != nil || strings.HasSuffix(strings.TrimSpace(s), "%") {
		d.errorf(n, path, "want a positive factor such as 14.4, got %q", s)
		return Ratio{}
	}
	if r.IsZero() {
		d.errorf(n, path, "must be positive, got %s", s)
	}
	return r
}
