package load

import (
	"fmt"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"

	"slolab.dev/slolab/spec"
)

// Report is what a run sent and what came back, per CUJ and in total.
type Report struct {
	Target      string        `json:"target"`
	Plan        []string      `json:"plan"` // the stages, as --stage reads them
	Seed        uint64        `json:"seed"`
	Shard       string        `json:"shard"`
	Users       int           `json:"users"`
	Start       time.Time     `json:"start"`
	Elapsed     spec.Duration `json:"elapsed"` // from the start until sending stopped
	Interrupted bool          `json:"interrupted"`
	CUJs        []CUJReport   `json:"cujs"`
	Total       CUJReport     `json:"total"`
	// ScheduleLag is actual − intended send time over every request sent:
	// how closely the generator kept to the plan.
	ScheduleLag Percentiles       `json:"scheduleLag"`
	Thresholds  []ThresholdResult `json:"thresholds,omitempty"`
}

// CUJReport is one CUJ's part of a run. Latency is measured from each
// request's intended send time until its response body was read.
type CUJReport struct {
	Name  string `json:"name"`
	Share string `json:"share,omitempty"` // "30%", "20/s" or "rest"
	// Due is how many requests of this shard fell due before sending stopped:
	// Sent + Dropped.
	Due       uint64 `json:"due"`
	Sent      uint64 `json:"sent"`
	Late      uint64 `json:"late"`    // sent more than the late-after threshold after their time
	Dropped   uint64 `json:"dropped"` // not sent: max in flight reached
	Cancelled uint64 `json:"cancelled,omitempty"`
	// IntendedRate and Rate are per second over the sending time.
	IntendedRate float64      `json:"intendedRate"`
	Rate         float64      `json:"rate"`
	Status       StatusCounts `json:"status"`
	Errors       uint64       `json:"errors"` // no response: connection errors and timeouts
	LastError    string       `json:"lastError,omitempty"`
	Latency      Percentiles  `json:"latency"`

	hist *hdrhistogram.Histogram
}

// StatusCounts counts responses by status class.
type StatusCounts struct {
	C1xx  uint64 `json:"1xx,omitempty"`
	C2xx  uint64 `json:"2xx"`
	C3xx  uint64 `json:"3xx"`
	C4xx  uint64 `json:"4xx"`
	C5xx  uint64 `json:"5xx"`
	Other uint64 `json:"other,omitempty"`
}

// Failed counts requests that failed as an availability SLO counts them:
// 5xx, no response, or never sent.
func (c *CUJReport) Failed() uint64 { return c.Status.C5xx + c.Errors + c.Dropped }

// Percentiles of a latency distribution, within 0.1%.
type Percentiles struct {
	Count uint64        `json:"count"`
	P50   spec.Duration `json:"p50"`
	P90   spec.Duration `json:"p90"`
	P99   spec.Duration `json:"p99"`
	P999  spec.Duration `json:"p99.9"`
	Max   spec.Duration `json:"max"`
}

func percentiles(h *hdrhistogram.Histogram) Percentiles {
	if h.TotalCount() == 0 {
		return Percentiles{}
	}
	at := func(q float64) spec.Duration { return spec.Duration(h.ValueAtQuantile(q)) }
	return Percentiles{
		Count: uint64(h.TotalCount()),
		P50:   at(50), P90: at(90), P99: at(99), P999: at(99.9),
		Max: spec.Duration(h.Max()),
	}
}

// Quantile returns the latency at quantile q (0 < q ≤ 100) of the CUJ.
func (c *CUJReport) Quantile(q float64) time.Duration {
	if c.hist == nil || c.hist.TotalCount() == 0 {
		return 0
	}
	if q >= 100 {
		return time.Duration(c.hist.Max())
	}
	return time.Duration(c.hist.ValueAtQuantile(q))
}

func (g *Generator) report(start time.Time, interrupted bool) *Report {
	p := g.cfg.Plan
	elapsed := time.Duration(g.stopped.Load())
	r := &Report{
		Target: g.cfg.Target, Seed: p.Seed, Shard: p.Shard.String(), Users: g.cfg.Users.N,
		Start: start, Elapsed: spec.Duration(elapsed), Interrupted: interrupted,
		ScheduleLag: percentiles(g.lag.snapshot()),
	}
	for _, st := range p.Stages {
		r.Plan = append(r.Plan, st.String())
	}
	total := CUJReport{Name: "total", hist: hdrhistogram.New(1, histMax, histSigFigs)}
	for i, st := range g.stats {
		c := CUJReport{
			Name: st.name, Share: p.CUJs[i].Share,
			Sent: st.sent.Load(), Late: st.late.Load(), Dropped: st.dropped.Load(), Cancelled: st.cancelled.Load(),
			Errors: st.errors.Load(),
			Status: StatusCounts{
				C1xx: st.class[1].Load(), C2xx: st.class[2].Load(), C3xx: st.class[3].Load(),
				C4xx: st.class[4].Load(), C5xx: st.class[5].Load(), Other: st.class[0].Load(),
			},
			hist: st.latency.snapshot(),
		}
		c.Due = c.Sent + c.Dropped
		st.mu.Lock()
		c.LastError = st.lastError
		st.mu.Unlock()
		c.Latency = percentiles(c.hist)
		if elapsed > 0 {
			planned := p.CUJs[i].Schedule.Hits(elapsed)
			c.IntendedRate = float64(planned) / float64(max(p.Shard.Of, 1)) / elapsed.Seconds()
			c.Rate = float64(c.Sent) / elapsed.Seconds()
		}
		total.add(&c)
		r.CUJs = append(r.CUJs, c)
	}
	total.Latency = percentiles(total.hist)
	r.Total = total
	return r
}

func (c *CUJReport) add(o *CUJReport) {
	c.Due += o.Due
	c.Sent += o.Sent
	c.Late += o.Late
	c.Dropped += o.Dropped
	c.Cancelled += o.Cancelled
	c.IntendedRate += o.IntendedRate
	c.Rate += o.Rate
	c.Errors += o.Errors
	if o.LastError != "" {
		c.LastError = o.LastError
	}
	s := &c.Status
	s.C1xx += o.Status.C1xx
	s.C2xx += o.Status.C2xx
	s.C3xx += o.Status.C3xx
	s.C4xx += o.Status.C4xx
	s.C5xx += o.Status.C5xx
	s.Other += o.Status.Other
	c.hist.Merge(o.hist)
}

// Progress is a live view of a run.
type Progress struct {
	Elapsed  time.Duration
	Due      uint64 // requests due so far (this shard), from the plan
	Total    uint64 // requests in the plan for this shard; 0 when open-ended
	Sent     uint64
	Late     uint64
	Dropped  uint64
	Failed   uint64 // 5xx and errors
	InFlight int64
	P99      time.Duration // over the whole run so far
}

// Progress returns counts so far; before Run it is zero.
func (g *Generator) Progress() Progress {
	start, ok := g.Started()
	if !ok {
		return Progress{}
	}
	p := g.cfg.Plan
	pr := Progress{Elapsed: max(g.cfg.Now().Sub(start), 0), InFlight: g.inflight.Load()}
	of := max(p.Shard.Of, 1)
	if n, ok := p.Total(); ok {
		pr.Total = n / of
	}
	var worst time.Duration
	for i, st := range g.stats {
		pr.Due += p.CUJs[i].Schedule.Hits(pr.Elapsed)
		pr.Sent += st.sent.Load()
		pr.Late += st.late.Load()
		pr.Dropped += st.dropped.Load()
		pr.Failed += st.class[5].Load() + st.errors.Load()
		st.latency.mu.Lock()
		worst = max(worst, time.Duration(st.latency.h.ValueAtQuantile(99)))
		st.latency.mu.Unlock()
	}
	pr.Due /= of
	pr.P99 = worst
	return pr
}

func (p Progress) String() string {
	s := fmt.Sprintf("%s  sent %d", spec.FormatDuration(p.Elapsed.Truncate(time.Second)), p.Sent)
	if p.Total > 0 {
		s += fmt.Sprintf("/%d", p.Total)
	}
	rate := 0.0
	if p.Elapsed > 0 {
		rate = float64(p.Sent) / p.Elapsed.Seconds()
	}
	return s + fmt.Sprintf("  %.0f/s  in flight %d  failed %d  late %d  dropped %d  worst p99 %s",
		rate, p.InFlight, p.Failed, p.Late, p.Dropped, p.P99.Round(time.Microsecond*100))
}
