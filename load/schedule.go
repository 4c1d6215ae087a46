package load

import (
	"errors"
	"fmt"
	"math"
	"math/big"
	"math/bits"
	"strings"
	"time"

	"slolab.dev/slolab/spec"
)

// Stage is one part of a load plan: a constant rate From, or with Ramp a
// linear ramp from From to To (either may be zero), for Duration. A Duration
// of zero means "until stopped" and is allowed only for a constant last stage.
type Stage struct {
	From, To spec.Rate
	Ramp     bool
	Duration time.Duration
}

// IsRamp reports whether the stage changes its rate.
func (s Stage) IsRamp() bool { return s.Ramp && !sameRate(s.From, s.To) }

func (s Stage) String() string {
	r := s.From.String()
	if s.IsRamp() {
		r += ".." + s.To.String()
	}
	if s.Duration == 0 {
		return r
	}
	return r + ":" + spec.FormatDuration(s.Duration)
}

// ParseStage reads "RATE:DURATION" (a constant rate, "200/s:30s") or
// "RATE..RATE:DURATION" (a linear ramp, "100/s..500/s:1m").
func ParseStage(s string) (Stage, error) {
	bad := fmt.Errorf("want a stage such as 200/s:30s or 100/s..500/s:1m, got %q", s)
	i := strings.LastIndex(s, ":")
	if i < 0 {
		return Stage{}, bad
	}
	d, err := spec.ParseDuration(s[i+1:])
	if err != nil || d <= 0 {
		return Stage{}, fmt.Errorf("stage %q: want a positive duration after ':'", s)
	}
	rates := s[:i]
	from, to, ramp := strings.Cut(rates, "..")
	st := Stage{Duration: d, Ramp: ramp}
	if st.From, err = parseStageRate(from, ramp); err != nil {
		return Stage{}, fmt.Errorf("stage %q: %w", s, err)
	}
	if ramp {
		if st.To, err = parseStageRate(to, true); err != nil {
			return Stage{}, fmt.Errorf("stage %q: %w", s, err)
		}
		if st.From.IsZero() && st.To.IsZero() {
			return Stage{}, fmt.Errorf("stage %q: a ramp from 0 to 0 sends nothing", s)
		}
	}
	return st, nil
}

// parseStageRate reads a rate; a ramp may start or end at 0.
func parseStageRate(s string, zeroOK bool) (spec.Rate, error) {
	if zeroOK && (s == "0" || strings.HasPrefix(s, "0/")) {
		return spec.Rate{Per: time.Second}, nil
	}
	return spec.ParseRate(s)
}

func sameRate(a, b spec.Rate) bool {
	if a.IsZero() || b.IsZero() {
		return a.IsZero() == b.IsZero()
	}
	return perNs(a).Cmp(perNs(b)) == 0
}

// perNs returns a rate in requests per nanosecond, exactly.
func perNs(r spec.Rate) *big.Rat {
	if r.IsZero() || r.Per <= 0 {
		return new(big.Rat)
	}
	return new(big.Rat).SetFrac(new(big.Int).SetUint64(r.Freq), big.NewInt(int64(r.Per)))
}

// MaxRate bounds any single rate: ten million requests per second, far above
// what one machine sends, and low enough that request times never collide.
var MaxRate = spec.Rate{Freq: 10_000_000, Per: time.Second}

// Schedule is when every request of a plan is due: a pure function of the
// request's index and of elapsed time, with no clock inside.
//
// A stage of constant rate r lasting d holds exactly floor(d·r) requests; the
// j-th of them (from 0) is due at the first nanosecond t where floor(t·r) ≥ j+1,
// so after any elapsed time t into the stage exactly floor(t·r) are due. A ramp
// from a to b over T holds floor(A(T)) requests, where A(t) = a·t + (b−a)·t²/2T
// is the area under the rate, and request j is due when floor(A(t)) reaches
// j+1. All of it is computed in integers: no drift however long the run.
type Schedule struct {
	segs []segment
}

type segment struct {
	start time.Duration // from the start of the plan
	dur   time.Duration // 0: open-ended (constant only)
	first uint64        // index of the segment's first request
	count uint64        // requests in the segment; 0 when open-ended
	// constant rate n/d requests per nanosecond
	n, d uint64
	// ramp: A(u) = (ra·u + rb·u²) / rd
	ramp       bool
	ra, rb, rd *big.Int
	af, cf     float64 // a and (b−a)/T as floats, for the first guess only
}

// NewSchedule compiles stages into a schedule.
func NewSchedule(stages ...Stage) (*Schedule, error) {
	if len(stages) == 0 {
		return nil, errors.New("a plan needs at least one stage")
	}
	s := &Schedule{}
	var at time.Duration
	var first uint64
	maxPerNs := perNs(MaxRate)
	for i, st := range stages {
		if st.Duration < 0 {
			return nil, fmt.Errorf("stage %d (%s): negative duration", i+1, st)
		}
		if st.Duration == 0 && (i != len(stages)-1 || st.IsRamp()) {
			return nil, fmt.Errorf("stage %d (%s): only a constant last stage may run until stopped", i+1, st)
		}
		for _, r := range []spec.Rate{st.From, st.To} {
			if perNs(r).Cmp(maxPerNs) > 0 {
				return nil, fmt.Errorf("stage %d (%s): rate %s is above the maximum of %s", i+1, st, r, MaxRate)
			}
		}
		seg := segment{start: at, dur: st.Duration, first: first}
		if st.IsRamp() {
			if err := seg.setRamp(st); err != nil {
				return nil, fmt.Errorf("stage %d (%s): %w", i+1, st, err)
			}
		} else {
			r := perNs(st.From)
			if !r.Num().IsUint64() || !r.Denom().IsUint64() {
				return nil, fmt.Errorf("stage %d (%s): rate out of range", i+1, st)
			}
			seg.n, seg.d = r.Num().Uint64(), r.Denom().Uint64()
			if seg.n != 0 && st.Duration > 0 {
				seg.count = seg.hits(st.Duration)
			}
		}
		if st.Duration > 0 {
			if at > math.MaxInt64-st.Duration {
				return nil, errors.New("the plan is too long")
			}
			at += st.Duration
			if first > math.MaxUint64/2-seg.count {
				return nil, errors.New("the plan holds too many requests")
			}
			first += seg.count
		}
		s.segs = append(s.segs, seg)
	}
	return s, nil
}

func (g *segment) setRamp(st Stage) error {
	a, b := perNs(st.From), perNs(st.To)
	// A(u) = a·u + (b−a)·u²/(2T) over the common denominator 2T·da·db.
	twoT := big.NewInt(2 * int64(st.Duration))
	da, db := a.Denom(), b.Denom()
	g.ramp = true
	g.ra = new(big.Int).Mul(twoT, new(big.Int).Mul(a.Num(), db))
	g.rb = new(big.Int).Sub(new(big.Int).Mul(b.Num(), da), new(big.Int).Mul(a.Num(), db))
	g.rd = new(big.Int).Mul(twoT, new(big.Int).Mul(da, db))
	af, _ := a.Float64()
	bf, _ := b.Float64()
	g.af, g.cf = af, (bf-af)/float64(st.Duration)
	c := g.hits(st.Duration)
	g.count = c
	return nil
}

// hits is the number of the segment's requests due within u of its start,
// for 0 ≤ u ≤ dur (any u ≥ 0 when open-ended).
func (g *segment) hits(u time.Duration) uint64 {
	if u <= 0 {
		return 0
	}
	if g.ramp {
		q := new(big.Int).Quo(g.area(u), g.rd)
		return q.Uint64()
	}
	hi, lo := bits.Mul64(uint64(u), g.n)
	if hi >= g.d {
		return math.MaxUint64
	}
	q, _ := bits.Div64(hi, lo, g.d)
	return q
}

// area returns A(u)·rd for a ramp.
func (g *segment) area(u time.Duration) *big.Int {
	x := big.NewInt(int64(u))
	v := new(big.Int).Mul(g.rb, x)
	v.Add(v, g.ra)
	return v.Mul(v, x)
}

// due returns when, from the segment's start, its j-th request (from 0) is due.
func (g *segment) due(j uint64) (time.Duration, bool) {
	if g.ramp {
		return g.rampDue(j), true
	}
	// The first t with floor(t·n/d) ≥ j+1 is ceil((j+1)·d/n).
	hi, lo := bits.Mul64(j+1, g.d)
	if hi >= g.n {
		return 0, false
	}
	q, r := bits.Div64(hi, lo, g.n)
	if r != 0 {
		q++
	}
	if q > math.MaxInt64 {
		return 0, false
	}
	return time.Duration(q), true
}

// rampDue finds the first u with A(u) ≥ j+1: a float guess from the quadratic
// formula, then an exact search around it.
func (g *segment) rampDue(j uint64) time.Duration {
	m := float64(j + 1)
	var guess float64
	if disc := g.af*g.af + 2*g.cf*m; g.cf != 0 && disc >= 0 {
		guess = 2 * m / (g.af + math.Sqrt(disc))
	} else if g.af > 0 {
		guess = m / g.af
	}
	if math.IsNaN(guess) || guess < 0 {
		guess = 0
	}
	if guess > float64(g.dur) {
		guess = float64(g.dur)
	}
	target := new(big.Int).Mul(new(big.Int).SetUint64(j+1), g.rd)
	reached := func(u time.Duration) bool { return g.area(u).Cmp(target) >= 0 }
	u := time.Duration(guess)
	// Gallop to a bracket lo < answer ≤ hi, then bisect.
	var lo, hi time.Duration
	if reached(u) {
		hi, lo = u, u-1
		for step := time.Duration(1); lo >= 0 && reached(lo); step *= 2 {
			hi = lo
			lo -= step
		}
		if lo < 0 {
			lo = -1
		}
	} else {
		lo, hi = u, u+1
		for step := time.Duration(1); hi < g.dur && !reached(hi); step *= 2 {
			lo = hi
			hi += step
		}
		if hi > g.dur {
			hi = g.dur
		}
	}
	for hi-lo > 1 {
		mid := lo + (hi-lo)/2
		if reached(mid) {
			hi = mid
		} else {
			lo = mid
		}
	}
	return hi
}

// Total returns the number of requests in the plan, and false when the plan
// runs until stopped.
func (s *Schedule) Total() (uint64, bool) {
	last := s.segs[len(s.segs)-1]
	if last.dur == 0 && last.n != 0 {
		return 0, false
	}
	return last.first + last.count, true
}

// Duration returns the length of the plan, and false when it runs until stopped.
func (s *Schedule) Duration() (time.Duration, bool) {
	last := s.segs[len(s.segs)-1]
	if last.dur == 0 {
		return 0, false
	}
	return last.start + last.dur, true
}

// Hits returns how many requests are due within elapsed of the start.
func (s *Schedule) Hits(elapsed time.Duration) uint64 {
	var n uint64
	for i := range s.segs {
		g := &s.segs[i]
		if elapsed <= g.start {
			break
		}
		u := elapsed - g.start
		if g.dur > 0 && u >= g.dur {
			n = g.first + g.count
			continue
		}
		if g.n == 0 && !g.ramp {
			continue
		}
		return g.first + g.hits(u)
	}
	return n
}

// Due returns when request k (from 0) is due, from the start of the plan, and
// false when the plan holds fewer than k+1 requests.
func (s *Schedule) Due(k uint64) (time.Duration, bool) {
	// Few stages: a linear scan from the end is cheaper than a search.
	for i := len(s.segs) - 1; i >= 0; i-- {
		g := &s.segs[i]
		if k < g.first {
			continue
		}
		j := k - g.first
		open := g.dur == 0 && g.n != 0
		if !open && g.count == 0 {
			continue // an empty stage shares its first index with the next one
		}
		if !open && j >= g.count {
			return 0, false
		}
		u, ok := g.due(j)
		if !ok || u > math.MaxInt64-g.start {
			return 0, false
		}
		return g.start + u, true
	}
	return 0, false
}
