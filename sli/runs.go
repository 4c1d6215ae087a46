package sli

import (
	"slices"
	"sync/atomic"
	"time"

	"slolab.dev/slolab/match"
)

// maxRuns is how many runs' series the recorder keeps: a new run past it
// drops the oldest. A run reads its series while it lasts; a few finished
// runs stay for late readers.
const maxRuns = 16

// runSeries counts one experiment run's requests per CUJ and group, apart
// from every other run's: a run's windows hold its own requests only, even
// when they straddle an interval another run's requests also fell in.
type runSeries struct {
	run    string
	series [][match.NumGroups]*series // by CUJ index; nil until a request comes
}

// observeRun counts a request under its run, in histogram bucket i. The
// list of runs is read with one atomic load; a run's first request (of a
// CUJ and group) allocates under the ring's lock, as get does.
func (r *Recorder) observeRun(o Observation, i int) {
	s := r.runSeriesOf(o.Run.Run(), o.Route.CUJ, o.Group)
	s.hist[i].Add(1)
	if Bad(o.Code) {
		s.bad.Add(1)
	}
}

func (r *Recorder) findRun(run string) *runSeries {
	if list := r.runs.Load(); list != nil {
		for _, rs := range *list {
			if rs.run == run {
				return rs
			}
		}
	}
	return nil
}

func (r *Recorder) runSeriesOf(run string, cuj int, g match.Group) *series {
	if rs := r.findRun(run); rs != nil {
		if s := rs.series[cuj][g]; s != nil {
			return s
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	rs := r.findRun(run)
	if rs == nil {
		rs = &runSeries{run: run, series: make([][match.NumGroups]*series, len(r.cujRoutes))}
		var list []*runSeries
		if old := r.runs.Load(); old != nil {
			list = slices.Clone(*old)
		}
		if len(list) == maxRuns {
			list = list[1:]
		}
		list = append(list, rs)
		r.runs.Store(&list)
	}
	if s := rs.series[cuj][g]; s != nil {
		return s
	}
	nb := len(r.bounds) + 1
	s := &series{hist: make([]atomic.Uint64, nb), last: make([]uint64, 1+nb), ring: make([]uint32, r.slots*(1+nb))}
	// A new series goes in a copy of the CUJ's row, published whole: a
	// reader of the old row never sees a half-written one.
	row := rs.series[cuj]
	row[g] = s
	rows := slices.Clone(rs.series)
	rows[cuj] = row
	nrs := &runSeries{run: run, series: rows}
	list := slices.Clone(*r.runs.Load())
	for j := range list {
		if list[j] == rs {
			list[j] = nrs
		}
	}
	r.runs.Store(&list)
	return s
}

// closeRuns closes every run series' interval, as Close does for the rest.
// Callers hold r.mu.
func (r *Recorder) closeRuns(k int64, w int) {
	list := r.runs.Load()
	if list == nil {
		return
	}
	for _, rs := range *list {
		for _, row := range rs.series {
			for _, s := range row {
				if s != nil {
					r.closeSeries(s, k, w)
				}
			}
		}
	}
}

// RunWindow returns what a CUJ's group (a match.Group or AllGroups) saw
// over roughly the last d, as Window does, without a single request that
// another run counted: the requests of no run, and the run's own. Reads of
// an experiment run go through it, so a run never counts a request of
// another, whether they overlap in time on other CUJs or follow each other
// on one, even inside an interval both fell in. The two reads it subtracts
// are taken under one lock, so no interval closes between them.
func (r *Recorder) RunWindow(run string, cuj, group int, d time.Duration) Counts {
	r.mu.RLock()
	defer r.mu.RUnlock()
	now := r.cfg.Now()
	c := r.windowOf(cuj, group, AllRevisions, d, now)
	list := r.runs.Load()
	if list == nil {
		return c
	}
	n := r.closedIn(d)
	other := Counts{Hist: make([]uint64, len(c.Hist))}
	for _, rs := range *list {
		if rs.run == run || cuj < 0 || cuj >= len(rs.series) {
			continue
		}
		for g, s := range rs.series[cuj] {
			if s == nil || group != AllGroups && group != g {
				continue
			}
			r.addLive(s, &other)
			r.addClosed(s, r.end-n, r.end, &other)
		}
	}
	for i, v := range other.Hist {
		c.Hist[i] -= min(v, c.Hist[i])
	}
	c.Bad -= min(other.Bad, c.Bad)
	r.finish(cuj, &c)
	c.Bad = min(c.Bad, c.Total)
	return c
}
