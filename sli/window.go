package sli

import (
	"time"

	"slolab.dev/slolab/match"
)

// Counts are what a CUJ saw over a window.
type Counts struct {
	Total uint64 // requests
	Bad   uint64 // availability-bad: 5xx or no response
	Slow  uint64 // latency-bad: slower than the CUJ's threshold (0 without a latency SLO)
	// Hist holds non-cumulative counts per bucket of Recorder.Bounds, the last being +Inf.
	Hist []uint64
	// Span is the time the counts cover: whole intervals plus the live part of the current one.
	Span time.Duration
}

// AllGroups selects every group in Window and Buckets.
const AllGroups = -1

// AllRevisions selects every revision in WindowOf.
const AllRevisions = -1

// Window returns a CUJ's counts over roughly the last d: the closed intervals
// that fit in d after the current, still-open interval, plus that open
// interval up to now. group is a match.Group or AllGroups; every revision counts.
func (r *Recorder) Window(cuj int, group int, d time.Duration) Counts {
	return r.WindowOf(cuj, group, AllRevisions, d)
}

// RevisionWindow returns what one revision (a match.Revision) of a CUJ saw
// over roughly the last d, every group included: the canary judge compares
// these.
func (r *Recorder) RevisionWindow(cuj int, revision match.Revision, d time.Duration) Counts {
	return r.WindowOf(cuj, AllGroups, int(revision), d)
}

// WindowOf is Window narrowed to a group (or AllGroups) and a revision (or
// AllRevisions).
func (r *Recorder) WindowOf(cuj, group, revision int, d time.Duration) Counts {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.windowOf(cuj, group, revision, d, r.cfg.Now())
}

// closedIn is how many closed intervals a window of d includes besides the
// open one. Callers hold r.mu.
func (r *Recorder) closedIn(d time.Duration) int64 {
	n := int64((d+r.cfg.Interval-1)/r.cfg.Interval) - 1
	return max(min(n, int64(r.slots), r.end-r.start), 0)
}

// windowOf is WindowOf for callers that hold r.mu.
func (r *Recorder) windowOf(cuj, group, revision int, d time.Duration, now time.Time) Counts {
	nb := len(r.bounds) + 1
	c := Counts{Hist: make([]uint64, nb)}
	n := r.closedIn(d)
	for _, route := range r.cujRoutes[cuj] {
		for rev := range match.NumRevisions {
			if revision != AllRevisions && revision != rev {
				continue
			}
			for g := range match.NumGroups {
				if group != AllGroups && group != g {
					continue
				}
				s := r.series[route][rev][g].Load()
				if s == nil {
					continue
				}
				r.addLive(s, &c)
				r.addClosed(s, r.end-n, r.end, &c)
			}
		}
	}
	openStart := time.Unix(0, r.end*int64(r.cfg.Interval))
	c.Span = time.Duration(n)*r.cfg.Interval + now.Sub(openStart)
	r.finish(cuj, &c)
	return c
}

// Covering returns the window whose intervals cover everything since t:
// Window answers with whole closed intervals plus the live one, so the
// window is rounded up to reach back to the interval holding t. Its span
// is then at least the time since t (up to one interval more), where
// Window(d) alone may cover less than d: with d no longer than an interval,
// only the live part of the current one.
func (r *Recorder) Covering(t time.Time) time.Duration {
	r.mu.RLock()
	open := time.Unix(0, r.end*int64(r.cfg.Interval)) // start of the live interval
	r.mu.RUnlock()
	iv := r.cfg.Interval
	if !t.Before(open) {
		return iv
	}
	n := (open.Sub(t) + iv - 1) / iv // closed intervals needed
	return (n + 1) * iv
}

// addLive adds what a series counted since the last close.
func (r *Recorder) addLive(s *series, c *Counts) {
	bad := s.bad.Load() - s.last[0] // before the histogram: see Observe
	var n uint64
	for i := range s.hist {
		d := s.hist[i].Load() - s.last[1+i]
		c.Hist[i] += d
		n += d
	}
	c.Bad += min(bad, n) // as closeSeries does
}

// addClosed adds the ring's intervals [from, to).
func (r *Recorder) addClosed(s *series, from, to int64, c *Counts) {
	w := len(s.last)
	for j := from; j < to; j++ {
		slot := int(j % int64(r.slots))
		row := s.ring[slot*w : (slot+1)*w]
		c.Bad += uint64(row[0])
		for i := range c.Hist {
			c.Hist[i] += uint64(row[1+i])
		}
	}
}

// finish derives Total and Slow from the histogram.
func (r *Recorder) finish(cuj int, c *Counts) {
	c.Total = 0
	for _, v := range c.Hist {
		c.Total += v
	}
	c.Slow = 0
	if thr := r.thresholds[cuj]; thr >= 0 {
		for _, v := range c.Hist[thr+1:] {
			c.Slow += v
		}
	}
}

// Quantile estimates the q-quantile of latency from a histogram by linear
// interpolation inside the bucket, as Prometheus' histogram_quantile does.
func Quantile(bounds []time.Duration, hist []uint64, q float64) time.Duration {
	var total uint64
	for _, v := range hist {
		total += v
	}
	if total == 0 {
		return 0
	}
	rank := q * float64(total)
	var cum float64
	for i, v := range hist {
		if cum+float64(v) >= rank && v > 0 {
			if i == len(bounds) { // +Inf: the highest finite bound is all we know
				return bounds[len(bounds)-1]
			}
			lo := time.Duration(0)
			if i > 0 {
				lo = bounds[i-1]
			}
			f := (rank - cum) / float64(v)
			return lo + time.Duration(f*float64(bounds[i]-lo))
		}
		cum += float64(v)
	}
	return bounds[len(bounds)-1]
}

// Bucket is what one CUJ, revision and group saw over one closed interval,
// for the store.
type Bucket struct {
	Start    time.Time
	CUJ      string
	Revision string // "" unless the proxy split traffic: "stable" or "canary"
	Group    string
	Counts
}

// Buckets returns the closed intervals that start at or after since, per CUJ,
// revision and group, skipping empty ones. It lets the store flush what it has not yet
// written; intervals older than the ring are gone.
func (r *Recorder) Buckets(since time.Time) []Bucket {
	r.mu.RLock()
	defer r.mu.RUnlock()
	from := max(r.interval(since.Add(r.cfg.Interval-1)), r.end-int64(r.slots), r.start)
	var out []Bucket
	nb := len(r.bounds) + 1
	for j := from; j < r.end; j++ {
		for cuj, routes := range r.cujRoutes {
			for rev := range match.NumRevisions {
				for g := range match.NumGroups {
					c := Counts{Hist: make([]uint64, nb), Span: r.cfg.Interval}
					for _, route := range routes {
						if s := r.series[route][rev][g].Load(); s != nil {
							r.addClosed(s, j, j+1, &c)
						}
					}
					r.finish(cuj, &c)
					if c.Total == 0 {
						continue
					}
					out = append(out, Bucket{
						Start: time.Unix(0, j*int64(r.cfg.Interval)).UTC(),
						CUJ:   r.cfg.Routes.CUJs()[cuj], Revision: match.Revision(rev).String(),
						Group: match.Group(g).String(), Counts: c,
					})
				}
			}
		}
	}
	return out
}

// Closed returns the end of the last closed interval: Buckets(t) for t before
// it returns only finished data.
func (r *Recorder) Closed() time.Time {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return time.Unix(0, r.end*int64(r.cfg.Interval)).UTC()
}

// Held returns the span of closed intervals the recorder still holds: from
// the first interval it saw (or the oldest left in its ring) to the end of
// the last closed one. Between answers exactly inside it.
func (r *Recorder) Held() (from, to time.Time) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	first := max(r.start, r.end-int64(r.slots))
	return time.Unix(0, first*int64(r.cfg.Interval)).UTC(), time.Unix(0, r.end*int64(r.cfg.Interval)).UTC()
}

// Between returns every CUJ's counts, all client groups together, over the
// closed intervals that start in [from, to), keyed by CUJ name. Intervals
// outside Held count as nothing; CUJs without requests are left out.
func (r *Recorder) Between(from, to time.Time) map[string]Counts {
	r.mu.RLock()
	defer r.mu.RUnlock()
	lo := max(r.interval(from.Add(r.cfg.Interval-1)), r.end-int64(r.slots), r.start)
	hi := min(r.interval(to.Add(r.cfg.Interval-1)), r.end)
	out := map[string]Counts{}
	if lo >= hi {
		return out
	}
	nb := len(r.bounds) + 1
	for cuj, routes := range r.cujRoutes {
		c := Counts{Hist: make([]uint64, nb), Span: time.Duration(hi-lo) * r.cfg.Interval}
		for _, route := range routes {
			for rev := range match.NumRevisions {
				for g := range match.NumGroups {
					if s := r.series[route][rev][g].Load(); s != nil {
						r.addClosed(s, lo, hi, &c)
					}
				}
			}
		}
		r.finish(cuj, &c)
		if c.Total > 0 {
			out[r.cfg.Routes.CUJs()[cuj]] = c
		}
	}
	return out
}
