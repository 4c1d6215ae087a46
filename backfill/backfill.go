// Package backfill makes up the history a steady service would have left:
// minute buckets of every CUJ at a given traffic, failure ratio and latency
// distribution, as a proxy's recorder would have counted them. The lab
// writes one into its store before it starts, so that every window from 5
// minutes to 30 days is full from the first minute and budgets, burn rates
// and alert timings are what production would show. The store marks these
// minutes as synthetic.
//
// Counts are exact, not drawn: a CUJ at r requests a minute has
// ⌊(k+1)·r + o⌋ − ⌊k·r + o⌋ of them in minute k (o a seeded offset in
// [0, 1)), so every run of minutes holds its share to within one request,
// as the load generator sends them. Failures are spread the same way over
// the requests (the first n requests hold ⌊n·b + o⌋ of them), and each
// minute's requests over the histogram's buckets by largest remainders,
// carrying what each bucket was owed into the next minute, so that every
// run of minutes holds each bucket's share to within a request or so.
package backfill

import (
	"cmp"
	"fmt"
	"iter"
	"math"
	"math/big"
	"math/bits"
	"math/rand/v2"
	"slices"
	"sort"
	"time"

	"slolab.dev/slolab/sli"
)

// CUJ is one journey's steady behaviour.
type CUJ struct {
	Name string
	// PerMinute is its traffic, in requests a minute.
	PerMinute *big.Rat
	// Bad is the share of its requests that fail (5xx or no answer).
	Bad *big.Rat
	// Latency is the distribution of its requests' latencies: a mixture
	// of delays, each with its weight (the routes the traffic hits).
	Latency []Part
	// Threshold is its latency SLO's threshold; zero without one (no
	// request counts as slow).
	Threshold time.Duration
}

// Part is one component of a latency mixture.
type Part struct {
	Quantile func(u float64) time.Duration // the inverse distribution function; spec.Delay.Quantile is one
	Weight   float64
}

// Config is what a history is made of.
type Config struct {
	CUJs []CUJ
	// Bounds are the histogram's upper bounds (the recorder's), ascending;
	// the last bucket is +Inf.
	Bounds []time.Duration
	// From and Until bound the history: the minutes from From (rounded
	// down) to Until; a last, partial minute holds its share of the
	// minute's traffic.
	From, Until time.Time
	// Seed offsets where each CUJ's fractional requests fall.
	Seed uint64
	// Group is the client group the buckets count ("none": no grouping).
	Group string
}

// History is a made-up history: its minutes and what they hold.
type History struct {
	cfg  Config
	cujs []cujPlan
}

type cujPlan struct {
	CUJ
	shares   []float64 // per histogram bucket
	slowAt   int       // the first bucket above the threshold; len(shares) when none
	traffic  steady    // requests by the end of minute k: traffic.upTo(k)
	failures steady    // failures among the first n requests: failures.upTo(n)
	rems     []rem     // apportion's scratch
	xs       []float64
}

// steady counts ⌊x·p/q + a/q⌋ things by x, exactly: x·p/q is the expected
// count and a/q in [0, 1) a seeded offset of where the fractions fall.
type steady struct{ p, q, a uint64 }

func newSteady(r *big.Rat, rng *rand.Rand, what string) (steady, error) {
	if !r.Num().IsUint64() || !r.Denom().IsUint64() || r.Denom().Uint64() > 1<<40 {
		return steady{}, fmt.Errorf("%s %s is too fine to count exactly", what, r.RatString())
	}
	q := r.Denom().Uint64()
	return steady{p: r.Num().Uint64(), q: q, a: rng.Uint64N(q)}, nil
}

func (s steady) upTo(x uint64) uint64 {
	hi, lo := bits.Mul64(x, s.p)
	lo, carry := bits.Add64(lo, s.a, 0)
	hi += carry
	if hi >= s.q { // beyond 2^64 things: not a history anyone writes
		return math.MaxUint64
	}
	n, _ := bits.Div64(hi, lo, s.q)
	return n
}

// New checks cfg and computes each CUJ's latency histogram.
func New(cfg Config) (*History, error) {
	if !cfg.From.Before(cfg.Until) {
		return nil, fmt.Errorf("backfill: an empty span %s..%s", cfg.From, cfg.Until)
	}
	if !slices.IsSorted(cfg.Bounds) {
		return nil, fmt.Errorf("backfill: histogram bounds out of order")
	}
	if cfg.Group == "" {
		cfg.Group = "none"
	}
	h := &History{cfg: cfg}
	rng := rand.New(rand.NewPCG(cfg.Seed, 0x5eed))
	for _, c := range cfg.CUJs {
		if c.PerMinute == nil || c.PerMinute.Sign() < 0 {
			return nil, fmt.Errorf("backfill: CUJ %s: a traffic of at least 0 requests a minute is needed", c.Name)
		}
		if c.Bad == nil {
			c.Bad = new(big.Rat)
		}
		if c.Bad.Sign() < 0 || c.Bad.Cmp(big.NewRat(1, 1)) > 0 {
			return nil, fmt.Errorf("backfill: CUJ %s: a failure share of %s is not in [0, 1]", c.Name, c.Bad.RatString())
		}
		p := cujPlan{CUJ: c, shares: histogram(c.Latency, cfg.Bounds), slowAt: len(cfg.Bounds) + 1}
		if c.Threshold > 0 {
			p.slowAt = sort.Search(len(cfg.Bounds), func(i int) bool { return cfg.Bounds[i] >= c.Threshold }) + 1
		}
		var err error
		if p.traffic, err = newSteady(c.PerMinute, rng, "CUJ "+c.Name+": a traffic of"); err != nil {
			return nil, fmt.Errorf("backfill: %w", err)
		}
		if p.failures, err = newSteady(c.Bad, rng, "CUJ "+c.Name+": a failure share of"); err != nil {
			return nil, fmt.Errorf("backfill: %w", err)
		}
		p.rems, p.xs = make([]rem, len(p.shares)), make([]float64, len(p.shares))
		h.cujs = append(h.cujs, p)
	}
	return h, nil
}

// histogram returns the share of requests in each bucket of bounds (and
// +Inf) under the mixture.
func histogram(parts []Part, bounds []time.Duration) []float64 {
	shares := make([]float64, len(bounds)+1)
	var total float64
	for _, p := range parts {
		total += p.Weight
	}
	if total == 0 {
		shares[0] = 1 // no latency known: every request in the fastest bucket
		return shares
	}
	for _, p := range parts {
		prev := 0.0
		for i, b := range bounds {
			c := cdf(p.Quantile, b)
			shares[i] += (c - prev) * p.Weight / total
			prev = c
		}
		shares[len(bounds)] += (1 - prev) * p.Weight / total
	}
	return shares
}

// cdf returns the share of samples at or below x: the largest u with
// q(u) ≤ x, found by bisection (q is non-decreasing).
func cdf(q func(float64) time.Duration, x time.Duration) float64 {
	if q(0) > x {
		return 0
	}
	top := math.Nextafter(1, 0)
	if q(top) <= x {
		return 1
	}
	lo, hi := 0.0, top
	for range 64 {
		mid := (lo + hi) / 2
		if q(mid) <= x {
			lo = mid
		} else {
			hi = mid
		}
	}
	return lo
}

// Minutes yields the history's buckets, minute by minute, every CUJ in
// order within a minute; empty ones are left out.
func (h *History) Minutes() iter.Seq[sli.Bucket] {
	return func(yield func(sli.Bucket) bool) {
		first := h.cfg.From.Truncate(time.Minute)
		n := int64(h.cfg.Until.Sub(first) / time.Minute)
		partial := h.cfg.Until.Sub(first.Add(time.Duration(n) * time.Minute))
		sent := make([]uint64, len(h.cujs)) // requests before this minute
		owed := make([][]float64, len(h.cujs))
		for i := range owed {
			owed[i] = make([]float64, len(h.cujs[i].shares))
		}
		for k := int64(0); k <= n; k++ {
			// Minute k holds ⌊(k+1)·r + o⌋ − ⌊k·r + o⌋ requests; the last,
			// partial one its share of the minute's.
			if k == n && partial == 0 {
				return
			}
			start := first.Add(time.Duration(k) * time.Minute)
			for i := range h.cujs {
				c := &h.cujs[i]
				end := c.traffic.upTo(uint64(k + 1))
				if k == n {
					end = c.partial(uint64(k), partial)
				}
				total := end - c.traffic.upTo(uint64(k))
				if total == 0 {
					continue
				}
				counts := c.minute(total, owed[i])
				counts.Bad = c.failures.upTo(sent[i]+total) - c.failures.upTo(sent[i])
				sent[i] += total
				if !yield(sli.Bucket{Start: start, CUJ: c.Name, Group: h.cfg.Group, Counts: counts}) {
					return
				}
			}
		}
	}
}

// partial returns the requests by the end of the first d of minute k.
func (c *cujPlan) partial(k uint64, d time.Duration) uint64 {
	x := new(big.Rat).Add(new(big.Rat).SetInt64(int64(k)), new(big.Rat).SetFrac64(int64(d), int64(time.Minute)))
	v := x.Mul(x, new(big.Rat).SetFrac(new(big.Int).SetUint64(c.traffic.p), new(big.Int).SetUint64(c.traffic.q)))
	v.Add(v, new(big.Rat).SetFrac(new(big.Int).SetUint64(c.traffic.a), new(big.Int).SetUint64(c.traffic.q)))
	return new(big.Int).Quo(v.Num(), v.Denom()).Uint64()
}

// minute spreads total requests over the buckets and counts the slow ones.
func (c *cujPlan) minute(total uint64, owed []float64) sli.Counts {
	out := sli.Counts{Total: total, Hist: apportion(total, c.shares, owed, c.rems, c.xs), Span: time.Minute}
	for _, n := range out.Hist[min(c.slowAt, len(out.Hist)):] {
		out.Slow += n
	}
	return out
}

type rem struct {
	i int
	r float64
}

// apportion splits n into parts proportional to shares (which sum to 1) by
// largest remainders: the parts sum to n exactly. owed carries each part's
// shortfall (or excess) from one call to the next; rems and xs are scratch
// of len(shares).
func apportion(n uint64, shares, owed []float64, rems []rem, xs []float64) []uint64 {
	out := make([]uint64, len(shares))
	var given uint64
	for i, s := range shares {
		x := max(s*float64(n)+owed[i], 0)
		xs[i] = x
		out[i] = uint64(math.Floor(x))
		given += out[i]
		rems[i] = rem{i, x - math.Floor(x)}
	}
	defer func() {
		for i := range out {
			owed[i] = xs[i] - float64(out[i])
		}
	}()
	slices.SortStableFunc(rems, func(a, b rem) int { return cmp.Compare(b.r, a.r) })
	for j := 0; given < n; j++ {
		out[rems[j%len(rems)].i]++
		given++
	}
	for given > n { // float rounding gave too many: take from the largest parts
		i := slices.Index(out, slices.Max(out))
		out[i]--
		given--
	}
	return out
}
