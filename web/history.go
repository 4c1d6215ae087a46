package web

import (
	"sync"
	"time"

	"slolab.dev/slolab/proxy/admin"
	"slolab.dev/slolab/slo"
	"slolab.dev/slolab/spec"
)

// The metrics of one CUJ in one sample, in chart order.
const (
	mRate = iota // requests per second over the last minute
	mAvailability
	mLatencyGood
	mBurn1m
	mBurn5m
	mBurn1h
	mLatencyBurn5m
	mLatencyBurn1h
	mP50 // milliseconds
	mP90
	mP99
	mIntended // percent of requests made bad by a simulation
	mRealised // percent of requests bad (failed or slow, as the simulation intends) over the last minute
	numMetrics
)

// frame is one poll's values for every CUJ.
type frame struct {
	at   time.Time
	cujs map[string][numMetrics]num
}

// history is a ring of frames; the poller writes, API readers copy.
type history struct {
	mu     sync.Mutex
	frames []frame
	next   int
	full   bool
}

func newHistory(n int) *history { return &history{frames: make([]frame, max(n, 2))} }

func (h *history) add(f frame) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.frames[h.next] = f
	h.next = (h.next + 1) % len(h.frames)
	h.full = h.full || h.next == 0
}

// ordered returns the frames oldest first.
func (h *history) ordered() []frame {
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.full {
		return append([]frame(nil), h.frames[:h.next]...)
	}
	return append(append([]frame(nil), h.frames[h.next:]...), h.frames[:h.next]...)
}

// sampleAll computes one frame from a snapshot.
func sampleAll(svc *spec.Service, s *snapshot, sims map[string]*Intended) frame {
	f := frame{at: s.at, cujs: map[string][numMetrics]num{}}
	for _, c := range s.cujs.CUJs {
		sc := svc.CUJ(c.Name)
		if sc == nil {
			continue
		}
		f.cujs[c.Name] = sample(sc, c, sims[c.Name])
	}
	return f
}

func sample(c *spec.CUJ, live admin.CUJStatus, sim *Intended) [numMetrics]num {
	var v [numMetrics]num
	for i := range v {
		v[i] = nan
	}
	pct := func(p *float64) num {
		if p == nil {
			return nan
		}
		return num(*p)
	}
	burn := func(w admin.WindowSLI, ok bool, bad uint64, objective spec.Ratio) num {
		if !ok {
			return nan
		}
		return pct(burnRate(bad, w.Total, objective))
	}
	m, ok1 := window(live.Windows, time.Minute)
	m5, ok5 := window(live.Windows, 5*time.Minute)
	h, okH := window(live.Windows, time.Hour)
	if ok1 && m.Span > 0 {
		v[mRate] = num(float64(m.Total) / time.Duration(m.Span).Seconds())
	}
	if ok1 {
		v[mAvailability], v[mLatencyGood] = pct(m.Availability), pct(m.LatencyGood)
		if m.Total > 0 {
			v[mP50] = num(float64(m.P50) / float64(time.Millisecond))
			v[mP90] = num(float64(m.P90) / float64(time.Millisecond))
			v[mP99] = num(float64(m.P99) / float64(time.Millisecond))
		}
	}
	if a := c.Availability; a != nil {
		v[mBurn1m] = burn(m, ok1, m.Bad, a.Objective)
		v[mBurn5m] = burn(m5, ok5, m5.Bad, a.Objective)
		v[mBurn1h] = burn(h, okH, h.Bad, a.Objective)
	}
	if l := c.Latency; l != nil {
		v[mLatencyBurn5m] = burn(m5, ok5, m5.Slow, l.Objective)
		v[mLatencyBurn1h] = burn(h, okH, h.Slow, l.Objective)
	}
	if sim != nil {
		v[mIntended] = num(100 * sim.Share.Float())
		if ok1 && m.Total > 0 {
			bad := m.Bad
			if sim.Kind == KindLatency {
				bad = m.Slow
			}
			v[mRealised] = num(100 * float64(bad) / float64(m.Total))
		}
	}
	return v
}

// Series is the body of GET /api/series: one CUJ's history, column by
// column as uPlot draws it. Times are Unix seconds; null means no data.
type Series struct {
	CUJ string `json:"cuj"`
	// Objective and LatencyObjective are the SLOs in percent, ThresholdMs
	// the latency threshold; AlertFactors the burn rates that alert.
	Objective        *float64 `json:"objective"`
	LatencyObjective *float64 `json:"latencyObjective"`
	ThresholdMs      *float64 `json:"thresholdMs"`
	AlertFactors     []num    `json:"alertFactors"`

	T             []float64 `json:"t"`
	Rate          []num     `json:"rate"`
	Availability  []num     `json:"availability"`
	LatencyGood   []num     `json:"latencyGood"`
	Burn1m        []num     `json:"burn1m"`
	Burn5m        []num     `json:"burn5m"`
	Burn1h        []num     `json:"burn1h"`
	LatencyBurn5m []num     `json:"latencyBurn5m"`
	LatencyBurn1h []num     `json:"latencyBurn1h"`
	P50           []num     `json:"p50"`
	P90           []num     `json:"p90"`
	P99           []num     `json:"p99"`
	Intended      []num     `json:"intended"`
	Realised      []num     `json:"realised"`
}

func (h *history) series(svc *spec.Service, c *spec.CUJ) Series {
	frames := h.ordered()
	s := Series{CUJ: c.Name, AlertFactors: []num{}}
	if a := c.Availability; a != nil {
		o := 100 * a.Objective.Float()
		s.Objective = &o
	}
	if l := c.Latency; l != nil {
		o := 100 * l.Objective.Float()
		t := float64(l.Threshold) / float64(time.Millisecond)
		s.LatencyObjective, s.ThresholdMs = &o, &t
	}
	seen := map[string]bool{}
	for _, a := range slo.AlertsFor(svc, c) {
		if k := a.Factor.Decimal(); !seen[k] {
			seen[k] = true
			s.AlertFactors = append(s.AlertFactors, num(a.Factor.Float()))
		}
	}
	cols := []*[]num{
		mRate: &s.Rate, mAvailability: &s.Availability, mLatencyGood: &s.LatencyGood,
		mBurn1m: &s.Burn1m, mBurn5m: &s.Burn5m, mBurn1h: &s.Burn1h,
		mLatencyBurn5m: &s.LatencyBurn5m, mLatencyBurn1h: &s.LatencyBurn1h,
		mP50: &s.P50, mP90: &s.P90, mP99: &s.P99, mIntended: &s.Intended, mRealised: &s.Realised,
	}
	s.T = make([]float64, 0, len(frames))
	for _, col := range cols {
		*col = make([]num, 0, len(frames))
	}
	for _, f := range frames {
		v, ok := f.cujs[c.Name]
		if !ok {
			continue
		}
		s.T = append(s.T, float64(f.at.UnixMilli())/1000)
		for i, col := range cols {
			*col = append(*col, v[i])
		}
	}
	return s
}
