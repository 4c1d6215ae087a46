// Package fault compiles fault rules into an immutable table that the proxy
// consults on every request without a lock, decides injections at exact
// rates, and keeps the mutable set of rules with their leases.
package fault

import (
	"sync/atomic"

	"slolab.dev/slolab/spec"
)

// Counter decides which requests of a matched stream are injected so that,
// for every prefix of n matched requests, the injected count is within 1 of
// p·n: request n is injected iff floor((n+o)·p) > floor((n+o−1)·p). n comes
// from an atomic counter, so concurrent requests get distinct positions and
// the guarantee holds with no lock.
type Counter struct {
	p        spec.Ratio
	offset   uint64
	matched  atomic.Uint64
	injected atomic.Uint64
}

// NewCounter returns a counter for rate p. A non-zero seed shifts the pattern
// by an offset in [0, 1/p) so that it does not alias with periodic traffic;
// seed 0 injects first at request ceil(1/p).
func NewCounter(p spec.Ratio, seed uint64) *Counter {
	c := &Counter{p: p}
	if seed != 0 && !p.IsZero() {
		period := (p.Den() + p.Num() - 1) / p.Num() // ceil(1/p)
		c.offset = splitmix64(seed) % period
	}
	return c
}

// Next takes the next position in the matched stream and reports whether that
// request is injected, and the request's position among the injected ones
// (1-based) when it is.
func (c *Counter) Next() (inject bool, k uint64) {
	n := c.matched.Add(1) + c.offset
	if c.p.FloorMul(n) == c.p.FloorMul(n-1) {
		return false, 0
	}
	return true, c.injected.Add(1)
}

// Matched and Injected return the counts so far.
func (c *Counter) Matched() uint64 { return c.matched.Load() }

// Injected returns how many matched requests were injected.
func (c *Counter) Injected() uint64 { return c.injected.Load() }

// Rate returns p.
func (c *Counter) Rate() spec.Ratio { return c.p }

// splitmix64 is a fixed, well-mixed function of its input: seeds and
// per-injection indices become reproducible pseudo-random values without any
// shared random source.
func splitmix64(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

// Uniform returns a reproducible value in [0, 1) for the k-th injection of a
// rule with seed: the same draw the HTTP delays use, for other fault kinds.
func Uniform(seed, k uint64) float64 { return unit(seed, k) }

// unit returns a reproducible value in [0, 1) for the k-th injection of a rule with seed.
func unit(seed, k uint64) float64 {
	return float64(splitmix64(seed^splitmix64(k))>>11) / (1 << 53)
}
