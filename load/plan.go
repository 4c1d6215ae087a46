package load

import (
	"errors"
	"fmt"
	"math/big"
	"strconv"
	"strings"
	"time"

	"slolab.dev/slolab/spec"
)

// Shard says which part of a plan this generator sends: request k of the
// plan goes to shard k mod Of, so Of generators with shards 0..Of−1 together
// send exactly the plan one generator would.
type Shard struct {
	Index, Of uint64
}

// ParseShard reads "i/N" with 0 ≤ i < N.
func ParseShard(s string) (Shard, error) {
	bad := fmt.Errorf("want a shard i/N with 0 ≤ i < N, such as 0/3, got %q", s)
	i, n, ok := strings.Cut(s, "/")
	if !ok {
		return Shard{}, bad
	}
	idx, err1 := strconv.ParseUint(i, 10, 32)
	of, err2 := strconv.ParseUint(n, 10, 32)
	if err1 != nil || err2 != nil || of == 0 || idx >= of {
		return Shard{}, bad
	}
	return Shard{Index: idx, Of: of}, nil
}

func (s Shard) String() string {
	if s.Of <= 1 {
		return "0/1"
	}
	return fmt.Sprintf("%d/%d", s.Index, s.Of)
}

// Plan is what a generator sends: each CUJ's schedule and request templates.
// It is a pure description: the same plan and seed send the same requests at
// the same offsets from the start, on any machine.
type Plan struct {
	Stages []Stage
	CUJs   []*CUJPlan
	Seed   uint64
	Shard  Shard

	// When every CUJ's rate is a constant share of the plan's, the plan
	// sends one stream on the plan's own schedule (total), handing each
	// request to a CUJ by smooth weighted round-robin over the shares
	// (weights): the total is exactly ⌊t·r⌋ and every CUJ within one
	// request of its share at every instant. Summing one schedule per CUJ
	// would drop up to a request per CUJ (7/s for 3s sent 20, not 21).
	total   *Schedule
	weights []int64
}

// CUJPlan is one CUJ's part of a plan.
type CUJPlan struct {
	Name      string
	Share     string // how the CUJ's rate was set, for reports: "30%", "20/s" or "rest"
	Stages    []Stage
	Schedule  *Schedule
	Templates []*Template
}

// PlanConfig is what NewPlan needs besides the spec.
type PlanConfig struct {
	Stages []Stage
	Seed   uint64
	Shard  Shard
	// CUJs limits the plan to these CUJs (all when empty). When every chosen
	// CUJ has a share, the shares are scaled up to fill the plan's rate, so
	// choosing one CUJ sends the whole rate to it.
	CUJs []string
}

// NewPlan splits the stages' rate over the service's CUJs and compiles their
// request templates. A CUJ with `rate:` gets that rate, taken out of the
// total; a CUJ with `share:` gets that share of the total; the CUJs with
// neither split what is left evenly.
func NewPlan(svc *spec.Service, cfg PlanConfig) (*Plan, error) {
	if len(cfg.Stages) == 0 {
		return nil, errors.New("a plan needs a rate or at least one stage")
	}
	if cfg.Shard.Of == 0 {
		cfg.Shard = Shard{0, 1}
	}
	if cfg.Shard.Index >= cfg.Shard.Of {
		return nil, fmt.Errorf("shard %d/%d: the index must be below the count", cfg.Shard.Index, cfg.Shard.Of)
	}
	cujs, err := selectCUJs(svc, cfg.CUJs)
	if err != nil {
		return nil, err
	}
	rates, err := splitRates(cujs, cfg.Stages, len(cfg.CUJs) > 0)
	if err != nil {
		return nil, err
	}
	p := &Plan{Stages: cfg.Stages, Seed: cfg.Seed, Shard: cfg.Shard}
	if w, ok := integerWeights(rates); ok {
		if p.total, err = NewSchedule(cfg.Stages...); err != nil {
			return nil, err
		}
		p.weights = w
	}
	var errs []error
	for i, c := range cujs {
		cp := &CUJPlan{Name: c.Name, Share: rates[i].label, Stages: rates[i].stages}
		if cp.Schedule, err = NewSchedule(cp.Stages...); err != nil {
			errs = append(errs, fmt.Errorf("CUJ %s: %w", c.Name, err))
			continue
		}
		if cp.Templates, err = compileTemplates(c); err != nil {
			errs = append(errs, err)
			continue
		}
		p.CUJs = append(p.CUJs, cp)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return p, nil
}

func selectCUJs(svc *spec.Service, names []string) ([]*spec.CUJ, error) {
	if len(names) == 0 {
		return svc.CUJs, nil
	}
	var out []*spec.CUJ
	seen := map[string]bool{}
	for _, n := range names {
		c := svc.CUJ(n)
		if c == nil {
			return nil, fmt.Errorf("no CUJ %q in service %s (it has %s)", n, svc.Name, strings.Join(svc.CUJNames(), ", "))
		}
		if !seen[n] {
			seen[n] = true
			out = append(out, c)
		}
	}
	return out, nil
}

type cujRate struct {
	label  string
	stages []Stage
	// share is the CUJ's constant share of the plan's rate, when no CUJ
	// has a rate of its own (then every share is constant); else nil.
	share *big.Rat
}

// splitRates gives every CUJ its stages: the same durations as the plan's,
// with rates set by the CUJ's share, its own rate, or an even part of the rest.
func splitRates(cujs []*spec.CUJ, stages []Stage, rescale bool) ([]cujRate, error) {
	one := big.NewRat(1, 1)
	shares := new(big.Rat) // Σ shares
	fixed := new(big.Rat)  // Σ own rates, per ns
	var rest []int
	out := make([]cujRate, len(cujs))
	for i, c := range cujs {
		switch lp := c.Load; {
		case lp != nil && !lp.Rate.IsZero():
			fixed.Add(fixed, perNs(lp.Rate))
			out[i].label = lp.Rate.String()
		case lp != nil && !lp.Share.IsZero():
			shares.Add(shares, ratio(lp.Share))
			out[i].label = lp.Share.String()
		default:
			rest = append(rest, i)
			out[i].label = "rest"
		}
	}
	if shares.Cmp(one) > 0 {
		return nil, fmt.Errorf("the CUJs' shares add up to %s%%, more than 100%%", new(big.Rat).Mul(shares, big.NewRat(100, 1)).FloatString(2))
	}
	scale := big.NewRat(1, 1) // of every share
	if rescale && len(rest) == 0 && fixed.Sign() == 0 && shares.Sign() > 0 {
		scale.Inv(shares)
		shares.SetInt64(1)
	}
	leftShare := new(big.Rat).Sub(one, shares)
	// left(r) is the rate left for the rest at a point where the plan sends r.
	left := func(r *big.Rat) *big.Rat {
		l := new(big.Rat).Mul(r, leftShare)
		return l.Sub(l, fixed)
	}
	for si, st := range stages {
		to := st.To
		if !st.IsRamp() {
			to = st.From
		}
		for _, end := range []spec.Rate{st.From, to} {
			l := left(perNs(end))
			if l.Sign() < 0 {
				return nil, fmt.Errorf("stage %d (%s): the CUJs' own rates add up to %s, more than the plan leaves for them at %s",
					si+1, st, rateString(fixed), end)
			}
			if len(rest) == 0 && l.Sign() > 0 {
				return nil, fmt.Errorf("stage %d (%s): every CUJ has a share or a rate, but %s of the plan's rate is left over; "+
					"make the shares add up to 100%% or leave one CUJ without a share to take the rest", si+1, st, rateString(l))
			}
		}
	}
	evenly := big.NewRat(1, int64(max(len(rest), 1)))
	if fixed.Sign() == 0 {
		for i, c := range cujs {
			if lp := c.Load; lp != nil && !lp.Share.IsZero() {
				out[i].share = new(big.Rat).Mul(ratio(lp.Share), scale)
			} else {
				out[i].share = new(big.Rat).Mul(leftShare, evenly)
			}
		}
	}
	for i, c := range cujs {
		for _, st := range stages {
			to := st.To
			if !st.IsRamp() {
				to = st.From
			}
			var f func(*big.Rat) *big.Rat
			switch lp := c.Load; {
			case lp != nil && !lp.Rate.IsZero():
				f = func(*big.Rat) *big.Rat { return perNs(lp.Rate) }
			case lp != nil && !lp.Share.IsZero():
				f = func(r *big.Rat) *big.Rat { return new(big.Rat).Mul(new(big.Rat).Mul(r, ratio(lp.Share)), scale) }
			default:
				f = func(r *big.Rat) *big.Rat { return new(big.Rat).Mul(left(r), evenly) }
			}
			from, err := toRate(f(perNs(st.From)))
			if err != nil {
				return nil, fmt.Errorf("CUJ %s: %w", c.Name, err)
			}
			cs := Stage{From: from, Duration: st.Duration, Ramp: st.IsRamp()}
			if cs.Ramp {
				if cs.To, err = toRate(f(perNs(to))); err != nil {
					return nil, fmt.Errorf("CUJ %s: %w", c.Name, err)
				}
			}
			out[i].stages = append(out[i].stages, cs)
		}
	}
	return out, nil
}

// integerWeights returns the CUJs' shares as integers in the same ratio, if
// every CUJ has one and their common denominator is small enough to run a
// round-robin over.
func integerWeights(rates []cujRate) ([]int64, bool) {
	lcm := big.NewInt(1)
	for _, r := range rates {
		if r.share == nil {
			return nil, false
		}
		d := r.share.Denom()
		lcm.Div(new(big.Int).Mul(lcm, d), new(big.Int).GCD(nil, nil, lcm, d))
		if lcm.Cmp(big.NewInt(1_000_000)) > 0 {
			return nil, false
		}
	}
	out := make([]int64, len(rates))
	for i, r := range rates {
		out[i] = new(big.Int).Div(new(big.Int).Mul(r.share.Num(), lcm), r.share.Denom()).Int64()
	}
	return out, true
}

func ratio(r spec.Ratio) *big.Rat {
	return new(big.Rat).SetFrac(new(big.Int).SetUint64(r.Num()), new(big.Int).SetUint64(r.Den()))
}

// toRate turns requests per nanosecond back into a spec.Rate, per second
// (or per so many seconds) when it can be written so.
func toRate(r *big.Rat) (spec.Rate, error) {
	if r.Sign() == 0 {
		return spec.Rate{Per: time.Second}, nil
	}
	ps := new(big.Rat).Mul(r, big.NewRat(int64(time.Second), 1))
	if ps.Num().IsUint64() && ps.Denom().IsInt64() && ps.Denom().Int64() <= int64(time.Hour/time.Second) {
		return spec.Rate{Freq: ps.Num().Uint64(), Per: time.Duration(ps.Denom().Int64()) * time.Second}, nil
	}
	if !r.Num().IsUint64() || !r.Denom().IsInt64() {
		return spec.Rate{}, fmt.Errorf("rate %s per ns cannot be represented", r.String())
	}
	return spec.Rate{Freq: r.Num().Uint64(), Per: time.Duration(r.Denom().Int64())}, nil
}

func rateString(perNs *big.Rat) string {
	f, _ := new(big.Rat).Mul(perNs, big.NewRat(1e9, 1)).Float64()
	return fmt.Sprintf("%.6g/s", f)
}

// Total returns how many requests the whole plan holds (all shards), and
// false when it runs until stopped.
func (p *Plan) Total() (uint64, bool) {
	if p.total != nil {
		return p.total.Total()
	}
	var n uint64
	for _, c := range p.CUJs {
		t, ok := c.Schedule.Total()
		if !ok {
			return 0, false
		}
		n += t
	}
	return n, true
}

// Duration returns the plan's length, and false when it runs until stopped.
func (p *Plan) Duration() (time.Duration, bool) {
	var d time.Duration
	for _, st := range p.Stages {
		if st.Duration == 0 {
			return 0, false
		}
		d += st.Duration
	}
	return d, true
}

// Item is one request of a plan.
type Item struct {
	K        uint64        // index in the whole plan, over all CUJs and shards
	CUJ      int           // index in Plan.CUJs
	J        uint64        // index within the CUJ
	Template int           // index in the CUJ's templates
	Due      time.Duration // when it is due, from the start
}

// Stream yields a plan's requests in due order (ties go to the CUJ listed
// first), keeping only this shard's. It is not safe for concurrent use.
type Stream struct {
	plan *Plan
	k    uint64
	next []uint64        // per CUJ: index of its next request
	due  []time.Duration // per CUJ: when that request is due
	ok   []bool          // per CUJ: whether it has one
	mix  []*mixer
	cujs *mixer // with Plan.total: which CUJ each request goes to
}

// Stream returns an iterator over the plan, from request 0.
func (p *Plan) Stream() *Stream {
	s := &Stream{plan: p}
	n := len(p.CUJs)
	s.next, s.due, s.ok, s.mix = make([]uint64, n), make([]time.Duration, n), make([]bool, n), make([]*mixer, n)
	for i, c := range p.CUJs {
		s.due[i], s.ok[i] = c.Schedule.Due(0)
		weights := make([]int64, len(c.Templates))
		for t, tm := range c.Templates {
			weights[t] = tm.Weight
		}
		s.mix[i] = newMixer(weights)
	}
	if p.total != nil {
		s.cujs = newMixer(p.weights)
	}
	return s
}

// Next returns the next request of this shard, or false when the plan is over.
func (s *Stream) Next() (Item, bool) {
	for {
		it, ok := s.nextAny()
		if !ok {
			return Item{}, false
		}
		if s.plan.Shard.Of <= 1 || it.K%s.plan.Shard.Of == s.plan.Shard.Index {
			return it, true
		}
	}
}

func (s *Stream) nextAny() (Item, bool) {
	if s.cujs != nil {
		due, ok := s.plan.total.Due(s.k)
		if !ok {
			return Item{}, false
		}
		c := s.cujs.pick()
		it := Item{K: s.k, CUJ: c, J: s.next[c], Template: s.mix[c].pick(), Due: due}
		s.k++
		s.next[c]++
		return it, true
	}
	best := -1
	for i := range s.due {
		if s.ok[i] && (best < 0 || s.due[i] < s.due[best]) {
			best = i
		}
	}
	if best < 0 {
		return Item{}, false
	}
	it := Item{K: s.k, CUJ: best, J: s.next[best], Template: s.mix[best].pick(), Due: s.due[best]}
	s.k++
	s.next[best]++
	s.due[best], s.ok[best] = s.plan.CUJs[best].Schedule.Due(s.next[best])
	return it, true
}

// mixer interleaves templates by weight with smooth weighted round-robin:
// over every run of Σweights requests each template gets exactly its weight,
// spread evenly rather than in bursts.
type mixer struct {
	weights, current []int64
	total            int64
}

func newMixer(weights []int64) *mixer {
	m := &mixer{weights: weights, current: make([]int64, len(weights))}
	for _, w := range weights {
		m.total += w
	}
	return m
}

func (m *mixer) pick() int {
	if len(m.weights) == 1 {
		return 0
	}
	best := 0
	for i, w := range m.weights {
		m.current[i] += w
		if m.current[i] > m.current[best] {
			best = i
		}
	}
	m.current[best] -= m.total
	return best
}
