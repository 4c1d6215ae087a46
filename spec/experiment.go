package spec

import (
	"fmt"
	"math/big"
	"strings"
	"time"
	_ "time/tzdata" // allowed windows name time zones; the binary must know them on any host
)

// Experiment defaults and limits.
const (
	DefaultInterval     = 5 * time.Second
	DefaultLease        = 30 * time.Second
	DefaultRecovery     = 5 * time.Minute
	MaxExperimentLength = 6 * time.Hour // the proxy's live windows reach back six hours
)

// DefaultSignificance is the level below which a p-value counts as a difference.
var DefaultSignificance = NewRatio(5, 100)

// Experiment is a chaos experiment: a hypothesis about the steady state, the
// faults to inject in steps, whom they reach, when to stop, and what to
// expect afterwards.
type Experiment struct {
	Name   string
	Labels map[string]string
	Pos    Pos // the document

	// Service is the metadata.name of the Service whose CUJs the expressions
	// name; ServiceFile is where it is written, relative to this file (empty
	// when the Service is in the same file).
	Service     string
	ServiceFile string
	ServicePos  Pos
	Description string

	// Interval is how often hypotheses and guardrails are evaluated.
	Interval time.Duration
	// Lease is the TTL of every rule and of the grouping; the runner renews
	// them every Lease/3, so a runner that dies leaves nothing behind after it.
	Lease time.Duration
	// Recovery bounds the wait for the steady state after the method.
	Recovery time.Duration
	// Significance is the level of the experiment-vs-control tests.
	Significance Ratio

	SteadyState []Expr
	BlastRadius *Grouping // nil: every client is affected
	Method      []*Step
	Guardrails  Guardrails
	Expect      []Expr

	// Schedule is a cron expression (five fields, or a descriptor such as
	// @daily) for `slolab experiment schedule` and `slolab serve`.
	Schedule    string
	SchedulePos Pos
}

// Step is one stage of an experiment's method: faults held for a duration,
// optionally ramping their rates up in stages.
type Step struct {
	Name     string
	Duration time.Duration
	Ramp     *Ramp
	Faults   []*FaultRule
	Pos      Pos
}

// Ramp raises every rule of a step from From to the rule's own rate in
// Stages equal parts of the step's duration.
type Ramp struct {
	From   Ratio
	Stages int
	Pos    Pos
}

// Rates returns the rate of each stage for a rule whose rate is to: From,
// then evenly spaced, ending exactly at to.
func (r *Ramp) Rates(to Ratio) []Ratio {
	out := make([]Ratio, r.Stages)
	from, end := ratioRat(r.From), ratioRat(to)
	step := new(big.Rat).Sub(end, from)
	step.Quo(step, big.NewRat(int64(r.Stages-1), 1))
	for i := range out {
		v := new(big.Rat).Mul(step, big.NewRat(int64(i), 1))
		v.Add(v, from)
		out[i] = ratFromBig(v)
	}
	out[len(out)-1] = to
	return out
}

func ratioRat(r Ratio) *big.Rat {
	return new(big.Rat).SetFrac(new(big.Int).SetUint64(r.Num()), new(big.Int).SetUint64(r.Den()))
}

// ratFromBig converts a rational in [0, 1] whose parts fit in 64 bits.
func ratFromBig(v *big.Rat) Ratio {
	return NewRatio(v.Num().Uint64(), v.Denom().Uint64())
}

// StageDuration is how long each stage of the step lasts.
func (s *Step) StageDuration() time.Duration {
	if s.Ramp == nil {
		return s.Duration
	}
	return s.Duration / time.Duration(s.Ramp.Stages)
}

// MethodDuration is the length of the whole method.
func (e *Experiment) MethodDuration() time.Duration {
	var d time.Duration
	for _, s := range e.Method {
		d += s.Duration
	}
	return d
}

// Faults returns every rule of the method, in step order.
func (e *Experiment) Faults() []*FaultRule {
	var out []*FaultRule
	for _, s := range e.Method {
		out = append(out, s.Faults...)
	}
	return out
}

func (d *decoder) experiment(n *Node, path string, x *Experiment) {
	x.Interval, x.Lease, x.Recovery, x.Significance = DefaultInterval, DefaultLease, DefaultRecovery, DefaultSignificance
	var maxDuration *Node
	ok := d.object(n, path, fields{
		"service":     func(v *Node, p string) { x.Service, x.ServicePos = d.name(v, p), v.Pos },
		"serviceFile": func(v *Node, p string) { x.ServiceFile = d.str(v, p) },
		"description": func(v *Node, p string) { x.Description = d.str(v, p) },
		"interval":    func(v *Node, p string) { x.Interval = d.durationIn(v, p, time.Second, 10*time.Minute) },
		"lease":       func(v *Node, p string) { x.Lease = d.durationIn(v, p, time.Second, time.Hour) },
		"recovery":    func(v *Node, p string) { x.Recovery = d.duration(v, p) },
		"significance": func(v *Node, p string) {
			x.Significance = d.ratio(v, p)
			if v.Kind == ScalarNode && (x.Significance.IsZero() || x.Significance.Cmp(NewRatio(1, 2)) > 0) {
				d.errorf(v, p, "must be more than 0 and at most 50%%, got %s", v.Value)
			}
		},
		"steadyState": func(v *Node, p string) {
			x.SteadyState = d.exprList(v, p)
			if v.Kind == ListNode && len(v.Items) == 0 {
				d.errorf(v, p, "an experiment needs a steady-state hypothesis: at least one expression")
			}
		},
		"blastRadius": func(v *Node, p string) {
			x.BlastRadius = d.grouping(v, p)
			if t := v.Get("ttl"); t != nil {
				d.errorf(t, join(p, "ttl"), "the experiment's lease is the grouping's TTL; set spec.lease instead")
			}
		},
		"method": func(v *Node, p string) {
			d.list(v, p, func(i int, item *Node, p string) {
				if s := d.step(item, p, i); s != nil {
					x.Method = append(x.Method, s)
				}
			})
			if v.Kind == ListNode && len(v.Items) == 0 {
				d.errorf(v, p, "an experiment needs at least one step")
			}
		},
		"guardrails": func(v *Node, p string) {
			x.Guardrails = d.guardrails(v, p)
			maxDuration = v.Get("maxDuration")
		},
		"expect":   func(v *Node, p string) { x.Expect = d.exprList(v, p) },
		"schedule": func(v *Node, p string) { x.Schedule, x.SchedulePos = d.str(v, p), v.Pos },
	}, "steadyState", "method")
	if !ok {
		return
	}
	if x.BlastRadius != nil && x.BlastRadius.Salt == "" {
		x.BlastRadius.Salt = x.Name
	}
	if x.BlastRadius != nil {
		x.BlastRadius.TTL = x.Lease
	}
	total := x.MethodDuration()
	if total > MaxExperimentLength {
		d.errorf(n.Get("method"), join(path, "method"), "the method takes %s; an experiment may take at most %s (the proxy's live windows reach back that far)", FormatDuration(total), FormatDuration(MaxExperimentLength))
	}
	g := &x.Guardrails
	switch {
	case g.MaxDuration == 0:
		g.MaxDuration = total + x.Recovery + time.Minute
	case g.MaxDuration < total:
		d.errorf(maxDuration, join(path, "guardrails.maxDuration"), "the method alone takes %s, more than the maximum duration %s", FormatDuration(total), FormatDuration(g.MaxDuration))
	}
	names := map[string]string{}
	for _, s := range x.Method {
		if prev, dup := names[s.Name]; dup {
			d.errorf(&Node{Pos: s.Pos}, join(path, "method"), "two steps are named %q (also %s)", s.Name, prev)
		}
		names[s.Name] = s.Name
		for _, r := range s.Faults {
			if r.IsTCP() && x.BlastRadius != nil {
				d.errorf(&Node{Pos: r.Pos}, join(path, "method"), "fault %s is a TCP fault, which reaches every client (a connection carries no user identity); it cannot be held to the blast radius: remove blastRadius or this fault", r.Name)
			}
			if x.BlastRadius != nil && r.Match.Group == GroupControl {
				d.errorf(&Node{Pos: r.Pos}, join(path, "method"), "fault %s selects the control group; with a blast radius faults reach the experiment group only", r.Name)
			}
		}
	}
}

func (d *decoder) step(n *Node, path string, i int) *Step {
	s := &Step{Name: fmt.Sprintf("step-%d", i+1), Pos: n.Pos}
	rules := map[string]bool{}
	ok := d.object(n, path, fields{
		"name":     func(v *Node, p string) { s.Name = d.name(v, p) },
		"duration": func(v *Node, p string) { s.Duration = d.duration(v, p) },
		"ramp": func(v *Node, p string) {
			s.Ramp = &Ramp{Pos: v.Pos}
			d.object(v, p, fields{
				"from":   func(v *Node, p string) { s.Ramp.From = d.ratio(v, p) },
				"stages": func(v *Node, p string) { s.Ramp.Stages = int(d.integer(v, p, 2, 100)) },
			}, "from", "stages")
		},
		"faults": func(v *Node, p string) {
			d.list(v, p, func(_ int, item *Node, p string) {
				r := d.faultRule(item, p, "")
				if item.Kind != MapNode {
					return
				}
				if rules[r.Name] && r.Name != "" {
					d.errorf(item.Get("name"), join(p, "name"), "two faults of step %s are named %q", s.Name, r.Name)
				}
				rules[r.Name] = true
				for _, k := range []string{"ttl", "start", "stop"} {
					if v := item.Get(k); v != nil {
						d.errorf(v, join(p, k), "the experiment runner times its faults (the step's duration, the experiment's lease); remove %s", k)
					}
				}
				s.Faults = append(s.Faults, r)
			})
		},
	}, "duration")
	if !ok {
		return nil
	}
	if s.Ramp != nil {
		if len(s.Faults) == 0 {
			d.errorf(n.Get("ramp"), join(path, "ramp"), "a ramp raises the rates of the step's faults, and this step has none")
		}
		for _, r := range s.Faults {
			if s.Ramp.From.Cmp(r.Rate) >= 0 {
				d.errorf(n.Get("ramp"), join(path, "ramp.from"), "the ramp starts at %s, which is not below the rate of fault %s (%s)", s.Ramp.From, r.Name, r.Rate)
			} else if s.Ramp.From.Cmp(MinRate) < 0 && s.Ramp.From.Cmp(Ratio{}) != 0 {
				d.errorf(n.Get("ramp"), join(path, "ramp.from"), "must be 0 or at least 0.0001%%, got %s", s.Ramp.From)
			}
		}
		if s.Ramp.Stages > 0 && s.Duration > 0 && s.Duration/time.Duration(s.Ramp.Stages) < time.Second {
			d.errorf(n.Get("ramp"), join(path, "ramp.stages"), "%d stages of a %s step last less than a second each", s.Ramp.Stages, FormatDuration(s.Duration))
		}
	}
	return s
}

// Guardrails stop an experiment: expressions that abort it, when it may run,
// and how long it may take.
type Guardrails struct {
	AbortIf     []Expr
	MaxDuration time.Duration
	// Location is the time zone of AllowedWindows and Blackout (default UTC).
	Location       *time.Location
	AllowedWindows []AllowedWindow
	Blackout       []DateRange
}

// AllowedWindow is a weekly window in which experiments may run: on Days,
// from From to To after midnight. When To is not after From the window runs
// past midnight into the next day.
type AllowedWindow struct {
	Days     [7]bool // indexed by time.Weekday
	From, To time.Duration
	Text     string // "Mon-Thu 10:00-16:00"
	Pos      Pos
}

// DateRange is a range of calendar days, both ends included.
type DateRange struct {
	From, To civilDate
	Text     string
	Pos      Pos
}

type civilDate struct {
	Year  int
	Month time.Month
	Day   int
}

func (c civilDate) before(o civilDate) bool {
	if c.Year != o.Year {
		return c.Year < o.Year
	}
	if c.Month != o.Month {
		return c.Month < o.Month
	}
	return c.Day < o.Day
}

// Contains reports whether t (in the range's time zone) falls on one of its days.
func (r DateRange) Contains(t time.Time) bool {
	y, m, dd := t.Date()
	c := civilDate{y, m, dd}
	return !c.before(r.From) && !r.To.before(c)
}

// Allowed reports whether an experiment may run at t and, when not, why.
func (g *Guardrails) Allowed(t time.Time) (bool, string) {
	loc := g.Location
	if loc == nil {
		loc = time.UTC
	}
	lt := t.In(loc)
	for _, b := range g.Blackout {
		if b.Contains(lt) {
			return false, fmt.Sprintf("%s is a blackout date (%s)", lt.Format("Mon 2006-01-02"), b.Text)
		}
	}
	if len(g.AllowedWindows) == 0 {
		return true, ""
	}
	midnight := time.Date(lt.Year(), lt.Month(), lt.Day(), 0, 0, 0, 0, loc)
	tod := lt.Sub(midnight)
	day := lt.Weekday()
	yesterday := (day + 6) % 7
	var texts []string
	for _, w := range g.AllowedWindows {
		if w.From < w.To {
			if w.Days[day] && tod >= w.From && tod < w.To {
				return true, ""
			}
		} else if w.Days[day] && tod >= w.From || w.Days[yesterday] && tod < w.To {
			return true, ""
		}
		texts = append(texts, w.Text)
	}
	return false, fmt.Sprintf("%s is outside the allowed windows (%s, %s)", lt.Format("Mon 2006-01-02 15:04"), strings.Join(texts, "; "), loc)
}

// ClosesWithin returns the first instant in [t, t+d) at which the experiment
// may no longer run, to the minute, or false when it may run throughout.
func (g *Guardrails) ClosesWithin(t time.Time, d time.Duration) (time.Time, bool) {
	if ok, _ := g.Allowed(t); !ok {
		return t, true
	}
	for at := t.Truncate(time.Minute).Add(time.Minute); at.Before(t.Add(d)); at = at.Add(time.Minute) {
		if ok, _ := g.Allowed(at); !ok {
			return at, true
		}
	}
	return time.Time{}, false
}

var dayNames = []string{"sun", "mon", "tue", "wed", "thu", "fri", "sat"}

func parseDay(s string) (time.Weekday, bool) {
	l := strings.ToLower(strings.TrimSpace(s))
	for i, n := range dayNames {
		if l == n || strings.EqualFold(time.Weekday(i).String(), l) {
			return time.Weekday(i), true
		}
	}
	return 0, false
}

// parseDays reads "Mon-Fri", "Mon,Wed,Fri", "Fri-Mon" (wrapping) or "daily".
func parseDays(s string) ([7]bool, error) {
	var days [7]bool
	if t := strings.ToLower(strings.TrimSpace(s)); t == "daily" || t == "every day" {
		return [7]bool{true, true, true, true, true, true, true}, nil
	}
	for _, part := range strings.Split(s, ",") {
		a, b, isRange := strings.Cut(part, "-")
		from, ok1 := parseDay(a)
		to := from
		ok2 := true
		if isRange {
			to, ok2 = parseDay(b)
		}
		if !ok1 || !ok2 {
			return days, fmt.Errorf("want days such as Mon-Fri, Mon,Wed,Fri or daily, got %q", s)
		}
		for d := from; ; d = (d + 1) % 7 {
			days[d] = true
			if d == to {
				break
			}
		}
	}
	return days, nil
}

// parseHours reads "09:00-17:00"; "22:00-06:00" runs past midnight; 24:00 ends a day.
func parseHours(s string) (from, to time.Duration, err error) {
	bad := fmt.Errorf("want hours such as 09:00-17:00 (24-hour clock; 22:00-06:00 runs past midnight), got %q", s)
	a, b, ok := strings.Cut(s, "-")
	if !ok {
		return 0, 0, bad
	}
	clock := func(t string) (time.Duration, bool) {
		var h, m int
		if n, err := fmt.Sscanf(strings.TrimSpace(t), "%d:%d", &h, &m); err != nil || n != 2 || h < 0 || m < 0 || m > 59 || h > 24 || h == 24 && m != 0 {
			return 0, false
		}
		return time.Duration(h)*time.Hour + time.Duration(m)*time.Minute, true
	}
	from, ok1 := clock(a)
	to, ok2 := clock(b)
	if !ok1 || !ok2 || from == to || from == 24*time.Hour {
		return 0, 0, bad
	}
	return from, to, nil
}

func parseDate(s string) (civilDate, error) {
	t, err := time.Parse("2006-01-02", strings.TrimSpace(s))
	if err != nil {
		return civilDate{}, fmt.Errorf("want a date such as 2026-12-24 or a range 2026-12-24..2027-01-02, got %q", s)
	}
	return civilDate{t.Year(), t.Month(), t.Day()}, nil
}

func (d *decoder) guardrails(n *Node, path string) Guardrails {
	g := Guardrails{Location: time.UTC}
	d.object(n, path, fields{
		"abortIf":     func(v *Node, p string) { g.AbortIf = d.exprList(v, p) },
		"maxDuration": func(v *Node, p string) { g.MaxDuration = d.duration(v, p) },
		"timeZone": func(v *Node, p string) {
			s := d.str(v, p)
			loc, err := time.LoadLocation(s)
			if err != nil || s == "" || s == "Local" {
				d.errorf(v, p, "unknown time zone %q: use an IANA name such as Europe/Berlin or UTC", s)
				return
			}
			g.Location = loc
		},
		"allowedWindows": func(v *Node, p string) {
			d.list(v, p, func(_ int, item *Node, p string) {
				w := AllowedWindow{Pos: item.Pos, To: 24 * time.Hour, Days: [7]bool{true, true, true, true, true, true, true}}
				days, hours := "daily", "00:00-24:00"
				d.object(item, p, fields{
					"days": func(v *Node, p string) {
						days = strings.Join(d.stringList(v, p), ",")
						ds, err := parseDays(days)
						if err != nil {
							d.errorf(v, p, "%v", err)
						}
						w.Days = ds
					},
					"hours": func(v *Node, p string) {
						hours = d.str(v, p)
						from, to, err := parseHours(hours)
						if err != nil {
							d.errorf(v, p, "%v", err)
						}
						w.From, w.To = from, to
					},
				})
				w.Text = days + " " + hours
				g.AllowedWindows = append(g.AllowedWindows, w)
			})
		},
		"blackoutDates": func(v *Node, p string) {
			d.list(v, p, func(_ int, item *Node, p string) {
				s := d.str(item, p)
				if s == "" {
					return
				}
				r := DateRange{Text: s, Pos: item.Pos}
				a, b, isRange := strings.Cut(s, "..")
				var err error
				if r.From, err = parseDate(a); err == nil {
					r.To = r.From
					if isRange {
						r.To, err = parseDate(b)
					}
				}
				switch {
				case err != nil:
					d.errorf(item, p, "%v", err)
				case r.To.before(r.From):
					d.errorf(item, p, "the range %q ends before it starts", s)
				}
				g.Blackout = append(g.Blackout, r)
			})
		},
	})
	return g
}
