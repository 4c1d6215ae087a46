package experiment

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"slolab.dev/slolab/spec"
)

// SchedulerConfig configures a Scheduler.
type SchedulerConfig struct {
	// Experiments are the experiments to run; those without a schedule are ignored.
	Experiments []*Compiled
	// Run runs one experiment (typically experiment.Run against a proxy).
	Run func(ctx context.Context, c *Compiled) (*Report, error)
	// Now is the clock (default time.Now); waits use package time.
	Now func() time.Time
	// OnEntry sees every history entry as it is recorded.
	OnEntry func(Entry)
	// Keep bounds the history (default 1000 entries).
	Keep int
}

// Entry is one line of a scheduler's history: a run, or a due time that was skipped.
type Entry struct {
	Experiment string    `json:"experiment"`
	Due        time.Time `json:"due"`
	Started    time.Time `json:"started,omitzero"`
	Ended      time.Time `json:"ended,omitzero"`
	// Verdict is the run's verdict, or "skipped".
	Verdict Verdict `json:"verdict"`
	Reason  string  `json:"reason"`
	Report  *Report `json:"-"`
}

// Skipped is the verdict of a due time the scheduler did not run.
const Skipped Verdict = "skipped"

// Upcoming is an experiment's next due time.
type Upcoming struct {
	Experiment string    `json:"experiment"`
	Due        time.Time `json:"due"`
}

// Scheduler runs experiments on their cron schedules, one at a time (they
// share the proxy's grouping), only inside their allowed windows, and keeps a
// history of what ran and what was skipped and why.
type Scheduler struct {
	cfg     SchedulerConfig
	mu      sync.Mutex
	history []Entry
	next    map[string]time.Time
}

// NewScheduler checks that some experiment has a schedule.
func NewScheduler(cfg SchedulerConfig) (*Scheduler, error) {
	if cfg.Run == nil {
		return nil, errors.New("experiment.NewScheduler: Run is required")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Keep == 0 {
		cfg.Keep = 1000
	}
	cfg.Experiments = slices.DeleteFunc(slices.Clone(cfg.Experiments), func(c *Compiled) bool { return c.Schedule == nil })
	if len(cfg.Experiments) == 0 {
		return nil, errors.New("no experiment has a schedule (spec.schedule, e.g. \"0 11 * * 2\")")
	}
	s := &Scheduler{cfg: cfg, next: map[string]time.Time{}}
	now := cfg.Now()
	for _, c := range cfg.Experiments {
		s.next[c.Experiment.Name] = nextDue(c, now)
	}
	return s, nil
}

// nextDue is the schedule's next time after t, read in the experiment's time
// zone (the guardrails', unless the schedule names its own with CRON_TZ=).
func nextDue(c *Compiled, t time.Time) time.Time {
	loc := c.Experiment.Guardrails.Location
	if loc == nil {
		loc = time.UTC
	}
	return c.Schedule.Next(t.In(loc))
}

// Upcoming lists every experiment's next due time, soonest first.
func (s *Scheduler) Upcoming() []Upcoming {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Upcoming
	for _, c := range s.cfg.Experiments {
		out = append(out, Upcoming{Experiment: c.Experiment.Name, Due: s.next[c.Experiment.Name]})
	}
	slices.SortStableFunc(out, func(a, b Upcoming) int { return a.Due.Compare(b.Due) })
	return out
}

// History returns the entries so far, oldest first.
func (s *Scheduler) History() []Entry {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.history)
}

func (s *Scheduler) record(e Entry) {
	s.mu.Lock()
	s.history = append(s.history, e)
	if len(s.history) > s.cfg.Keep {
		s.history = s.history[len(s.history)-s.cfg.Keep:]
	}
	s.mu.Unlock()
	if s.cfg.OnEntry != nil {
		s.cfg.OnEntry(e)
	}
}

// Run waits for due times and runs what is due until ctx ends. A run that
// is under way when ctx ends is interrupted (and cleans up) before Run returns.
func (s *Scheduler) Run(ctx context.Context) error {
	for {
		up := s.Upcoming()
		wait := time.NewTimer(up[0].Due.Sub(s.cfg.Now()))
		select {
		case <-ctx.Done():
			wait.Stop()
			return nil
		case <-wait.C:
		}
		now := s.cfg.Now()
		for _, c := range s.cfg.Experiments {
			name := c.Experiment.Name
			s.mu.Lock()
			due := s.next[name]
			s.mu.Unlock()
			if due.After(now) {
				continue
			}
			ran := s.fire(ctx, c, due)
			if ctx.Err() != nil {
				return nil
			}
			if ran {
				s.catchUp(c)
			}
		}
	}
}

// fire runs an experiment at its due time, or records why it did not, and
// reports whether it ran.
func (s *Scheduler) fire(ctx context.Context, c *Compiled, due time.Time) bool {
	name := c.Experiment.Name
	s.mu.Lock()
	s.next[name] = nextDue(c, due)
	s.mu.Unlock()
	if ok, why := c.Experiment.Guardrails.Allowed(s.cfg.Now()); !ok {
		s.record(Entry{Experiment: name, Due: due, Verdict: Skipped, Reason: "outside the allowed windows: " + why})
		return false
	}
	start := s.cfg.Now()
	rep, err := s.cfg.Run(ctx, c)
	e := Entry{Experiment: name, Due: due, Started: start, Ended: s.cfg.Now(), Report: rep}
	switch {
	case err != nil:
		e.Verdict, e.Reason = Refused, err.Error()
	default:
		e.Verdict, e.Reason = rep.Verdict, rep.Reason
	}
	s.record(e)
	return true
}

// catchUp records the due times of every experiment that passed while one
// ran, as one skipped entry each, and moves them to their next time after now.
func (s *Scheduler) catchUp(running *Compiled) {
	now := s.cfg.Now()
	for _, c := range s.cfg.Experiments {
		name := c.Experiment.Name
		s.mu.Lock()
		due := s.next[name]
		s.mu.Unlock()
		if due.After(now) {
			continue
		}
		first, missed := due, 0
		for ; !due.After(now) && missed < 10_000; missed++ {
			due = nextDue(c, due)
		}
		s.mu.Lock()
		s.next[name] = due
		s.mu.Unlock()
		what := fmt.Sprintf("%d due %s", missed, plural(missed, "time", "times"))
		if missed == 1 {
			what = "due"
		}
		s.record(Entry{Experiment: name, Due: first, Verdict: Skipped,
			Reason: fmt.Sprintf("%s while %s ran (until %s); experiments run one at a time", what, running.Experiment.Name, now.UTC().Format(time.RFC3339))})
	}
}

// ScheduleSummary describes a schedule for tables: "0 11 * * 2 (Europe/Berlin)".
func ScheduleSummary(x *spec.Experiment) string {
	loc := "UTC"
	if x.Guardrails.Location != nil {
		loc = x.Guardrails.Location.String()
	}
	return fmt.Sprintf("%s (%s)", x.Schedule, loc)
}
