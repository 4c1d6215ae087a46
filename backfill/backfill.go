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
	"fmt"
	"iter"
	"math"
	"math/big"
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
	shares []float64 // per histogram bucket
	slowAt int       // the first bucket above the threshold; len(shares) when none
	offset *big.Rat  // in [0, 1)
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
		p.offset = new(big.Rat).SetFrac64(int64(rng.Uint64N(1<<20)), 1<<20)
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
			// partial one its share of the minute.
			end := big.NewRat(k+1, 1)
			if k == n {
				if partial == 0 {
					return
				}
				end.Add(big.NewRat(k, 1), big.NewRat(int64(partial), int64(time.Minute)))
			}
			start := first.Add(time.Duration(k) * time.Minute)
			for i := range h.cujs {
				c := &h.cujs[i]
				total := floorAt(end, c.PerMinute, c.offset) - floorAt(big.NewRat(k, 1), c.PerMinute, c.offset)
				if total == 0 {
					continue
				}
				counts := c.minute(total, owed[i])
				counts.Bad = floorAt(new(big.Rat).SetInt(new(big.Int).SetUint64(sent[i]+total)), c.Bad, c.offset) -
					floorAt(new(big.Rat).SetInt(new(big.Int).SetUint64(sent[i])), c.Bad, c.offset)
				sent[i] += total
				if !yield(sli.Bucket{Start: start, CUJ: c.Name, Group: h.cfg.Group, Counts: counts}) {
					return
				}
			}
		}
	}
}

// floorAt returns ⌊x·r + o⌋.
func floorAt(x, r, o *big.Rat) uint64 {
	v := new(big.Rat).Add(new(big.Rat).Mul(x, r), o)
	return new(big.Int).Quo(v.Num(), v.Denom()).Uint64()
}

// minute spreads total requests over the buckets and counts the slow ones.
func (c *cujPlan) minute(total uint64, owed []float64) sli.Counts {
	out := sli.Counts{Total: total, Hist: apportion(total, c.shares, owed), Span: time.Minute}
	for _, n := range out.Hist[min(c.slowAt, len(out.Hist)):] {
		out.Slow += n
	}
	return out
}

// apportion splits n into parts proportional to shares (which sum to 1) by
// largest remainders: the parts sum to n exactly. owed carries each part's
// shortfall (or excess) from one call to the next.
func apportion(n uint64, shares, owed []float64) []uint64 {
	out := make([]uint64, len(shares))
	type rem struct {
		i int
		r float64
	}
	rems := make([]rem, len(shares))
	xs := make([]float64, len(shares))
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
	sort.SliceStable(rems, func(a, b int) bool { return rems[a].r > rems[b].r })
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
