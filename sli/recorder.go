// Package sli measures what users experience per CUJ: counts of requests,
// availability-bad requests (5xx or no response) and a latency histogram,
// per route, revision (stable or canary while a split is active) and client
// group. The request path only adds to atomic counters;
// a background snapshotter closes 10-second intervals into a ring kept for
// hours, from which windows, percentiles and store buckets are read.
package sli

import (
	"context"
	"net/http"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"slolab.dev/slolab/match"
	"slolab.dev/slolab/spec"
)

// DefaultBounds are the latency histogram's bucket upper bounds; every CUJ's
// latency threshold is added to them.
var DefaultBounds = []time.Duration{
	1 * time.Millisecond, 2 * time.Millisecond, 3 * time.Millisecond, 5 * time.Millisecond,
	7500 * time.Microsecond, 10 * time.Millisecond, 15 * time.Millisecond, 20 * time.Millisecond,
	30 * time.Millisecond, 50 * time.Millisecond, 75 * time.Millisecond, 100 * time.Millisecond,
	150 * time.Millisecond, 200 * time.Millisecond, 300 * time.Millisecond, 500 * time.Millisecond,
	750 * time.Millisecond, 1 * time.Second, 1500 * time.Millisecond, 2 * time.Second,
	3 * time.Second, 5 * time.Second, 7500 * time.Millisecond, 10 * time.Second,
	15 * time.Second, 20 * time.Second, 30 * time.Second, 60 * time.Second,
}

// Config configures a Recorder.
type Config struct {
	Service *spec.Service
	Routes  *match.Table
	// Interval is the length of a time bucket (default 10s).
	Interval time.Duration
	// Keep is how much history the ring holds (default 6h).
	Keep time.Duration
	// Now is the clock (default time.Now).
	Now func() time.Time
}

func (c *Config) defaults() {
	if c.Interval == 0 {
		c.Interval = 10 * time.Second
	}
	if c.Keep == 0 {
		c.Keep = 6 * time.Hour
	}
	if c.Now == nil {
		c.Now = time.Now
	}
}

// Recorder counts requests per route × revision × group. Observe is
// lock-free and safe for concurrent use; readers never block it.
type Recorder struct {
	cfg        Config
	bounds     []time.Duration
	thresholds []int // per CUJ index: the bucket index whose upper bound is the latency threshold, or -1
	routes     []*match.Route
	cujRoutes  [][]int // per CUJ index: route IDs
	series     [][match.NumRevisions][match.NumGroups]atomic.Pointer[series]

	// runs are the per-run series (runs.go), an immutable list swapped
	// whole when a run first shows up.
	runs atomic.Pointer[[]*runSeries]

	mu    sync.RWMutex // guards the ring below; taken by the snapshotter and readers, never by Observe
	slots int          // ring capacity in intervals
	end   int64        // the first interval not yet closed; intervals [end-slots, end) are in the ring
	start int64        // the first interval the recorder saw
}

// Methods with their own counters; others count as OTHER.
var methods = []string{"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "CONNECT", "TRACE", "OTHER"}

const maxCode = 600

type series struct {
	route    *match.Route
	revision match.Revision
	group    match.Group
	bad      atomic.Uint64
	hist     []atomic.Uint64 // non-cumulative; the last bucket is +Inf
	sumNs    atomic.Uint64
	codes    [10]atomic.Pointer[[maxCode]atomic.Uint64]

	// The snapshotter's own state: cumulative values at the last close and the
	// ring of per-interval deltas, row-major: slot × (1 + len(hist)), bad first.
	last []uint64
	ring []uint32
}

// New returns a Recorder for the routes of a service.
func New(cfg Config) *Recorder {
	cfg.defaults()
	r := &Recorder{cfg: cfg, routes: cfg.Routes.Routes()}
	r.bounds = slices.Clone(DefaultBounds)
	for _, c := range cfg.Service.CUJs {
		if c.Latency != nil && !slices.Contains(r.bounds, c.Latency.Threshold) {
			r.bounds = append(r.bounds, c.Latency.Threshold)
		}
	}
	slices.Sort(r.bounds)
	r.thresholds = make([]int, len(cfg.Routes.CUJs()))
	r.cujRoutes = make([][]int, len(cfg.Routes.CUJs()))
	for i, name := range cfg.Routes.CUJs() {
		r.thresholds[i] = -1
		if c := cfg.Service.CUJ(name); c != nil && c.Latency != nil {
			r.thresholds[i] = slices.Index(r.bounds, c.Latency.Threshold)
		}
	}
	for _, rt := range r.routes {
		r.cujRoutes[rt.CUJ] = append(r.cujRoutes[rt.CUJ], rt.ID)
	}
	r.series = make([][match.NumRevisions][match.NumGroups]atomic.Pointer[series], len(r.routes))
	r.slots = int(cfg.Keep/cfg.Interval) + 1
	k := r.interval(cfg.Now())
	r.end, r.start = k, k
	return r
}

// Bounds returns the latency histogram's upper bounds (the last bucket, +Inf, is implicit).
func (r *Recorder) Bounds() []time.Duration { return r.bounds }

// Keep returns how much history the recorder holds: the longest window it can answer.
func (r *Recorder) Keep() time.Duration { return r.cfg.Keep }

// Interval returns the length of a time bucket.
func (r *Recorder) Interval() time.Duration { return r.cfg.Interval }

func (r *Recorder) interval(t time.Time) int64 {
	return t.UnixNano() / int64(r.cfg.Interval)
}

func (r *Recorder) get(route int, rev match.Revision, g match.Group) *series {
	p := &r.series[route][rev][g]
	if s := p.Load(); s != nil {
		return s
	}
	nb := len(r.bounds) + 1
	s := &series{route: r.routes[route], revision: rev, group: g, hist: make([]atomic.Uint64, nb), last: make([]uint64, 1+nb)}
	r.mu.Lock() // a new series allocates its ring under the ring's lock; once per series
	if cur := p.Load(); cur != nil {
		r.mu.Unlock()
		return cur
	}
	s.ring = make([]uint32, r.slots*(1+nb))
	p.Store(s)
	r.mu.Unlock()
	return s
}

// Observation is one finished request.
type Observation struct {
	Route    *match.Route
	Revision match.Revision // none unless the proxy splits traffic between stable and canary
	Group    match.Group
	// Run is the grouper of the experiment run that holds the request's
	// CUJ, if any: the request is also counted under that run alone.
	Run     *match.Grouper
	Method  string
	Code    int // HTTP status, 0 when nothing was answered
	Latency time.Duration
}

// Bad reports whether a status counts against availability: 5xx or no response.
func Bad(code int) bool { return code == 0 || code >= 500 }

// Observe records a finished request.
func (r *Recorder) Observe(o Observation) {
	s := r.get(o.Route.ID, o.Revision, o.Group)
	i := sort.Search(len(r.bounds), func(i int) bool { return r.bounds[i] >= o.Latency })
	// The histogram is incremented before bad, and read after it, so a reader
	// never sees more bad requests than requests in the cumulative counts.
	// Split into intervals, a request observed during a close can still have
	// its histogram count in one interval and its bad count in the next: see
	// closeSeries.
	s.hist[i].Add(1)
	if Bad(o.Code) {
		s.bad.Add(1)
	}
	if o.Latency > 0 {
		s.sumNs.Add(uint64(o.Latency))
	}
	if o.Run != nil {
		r.observeRun(o, i)
	}
	m := methodIndex(o.Method)
	codes := s.codes[m].Load()
	if codes == nil {
		s.codes[m].CompareAndSwap(nil, new([maxCode]atomic.Uint64))
		codes = s.codes[m].Load()
	}
	codes[min(max(o.Code, 0), maxCode-1)].Add(1)
}

func methodIndex(m string) int {
	switch m {
	case http.MethodGet:
		return 0
	case http.MethodHead:
		return 1
	case http.MethodPost:
		return 2
	case http.MethodPut:
		return 3
	case http.MethodPatch:
		return 4
	case http.MethodDelete:
		return 5
	case http.MethodOptions:
		return 6
	case http.MethodConnect:
		return 7
	case http.MethodTrace:
		return 8
	}
	return 9
}

// Run closes intervals at every interval boundary until ctx ends, then closes
// the intervals that ended before it returned.
func (r *Recorder) Run(ctx context.Context) {
	for {
		now := r.cfg.Now()
		next := time.Unix(0, (r.interval(now)+1)*int64(r.cfg.Interval))
		t := time.NewTimer(next.Sub(now))
		select {
		case <-ctx.Done():
			t.Stop()
			r.Close(r.cfg.Now())
			return
		case <-t.C:
			r.Close(r.cfg.Now())
		}
	}
}

// Close closes every interval that ended by now: each series' counts since
// the previous close go into the last closed interval's slot.
func (r *Recorder) Close(now time.Time) {
	k := r.interval(now)
	r.mu.Lock()
	defer r.mu.Unlock()
	if k <= r.end {
		return
	}
	nb := len(r.bounds) + 1
	w := 1 + nb
	for route := range r.series {
		for rev := range r.series[route] {
			for g := range r.series[route][rev] {
				if s := r.series[route][rev][g].Load(); s != nil {
					r.closeSeries(s, k, w)
				}
			}
		}
	}
	r.closeRuns(k, w)
	r.end = k
}

// closeSeries moves a series' counts since the previous close into the slot
// of interval k-1.
func (r *Recorder) closeSeries(s *series, k int64, w int) {
	// Slots of intervals skipped (a stalled machine) are cleared; the
	// counts go to the last interval that ended.
	for j := max(r.end, k-int64(r.slots)); j < k; j++ {
		slot := int(j % int64(r.slots))
		clear(s.ring[slot*w : (slot+1)*w])
	}
	slot := int((k - 1) % int64(r.slots))
	row := s.ring[slot*w : (slot+1)*w]
	bad := s.bad.Load() - s.last[0] // before the histogram: see Observe
	var n uint64
	for i := range s.hist {
		v := s.hist[i].Load()
		row[1+i] = uint32(v - s.last[1+i])
		n += v - s.last[1+i]
		s.last[1+i] = v
	}
	// A bad count whose request went into the interval before is held back
	// until an interval has a request to carry it, so no interval (and no
	// window) ever holds more bad requests than requests, and none is lost.
	bad = min(bad, n)
	row[0] = uint32(bad)
	s.last[0] += bad
}
