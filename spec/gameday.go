package spec

import "time"

// GameDay is a rehearsal of an incident: a scenario of experiments, announced
// to the responders or not, whose timeline records what happened and what
// people did, for a retrospective.
type GameDay struct {
	Name   string
	Labels map[string]string
	Pos    Pos

	Description string
	// Announced GameDays tell responders in advance; unannounced ones test
	// whether alerts and people notice on their own.
	Announced   bool
	Facilitator string
	Responders  []string
	// EndOnMitigate ends the running experiment's faults when a responder
	// reports a mitigation, as if the mitigation worked (default true).
	EndOnMitigate bool
	// Interval is how often alerts are evaluated (default 5s).
	Interval time.Duration
	// WrapUp keeps the timeline open after the last experiment, until every
	// alert resolved or this long has passed (default 10m).
	WrapUp   time.Duration
	Scenario []*Scene
}

// Scene is one experiment of a GameDay, started After the previous one ended
// (or after the GameDay began, for the first).
type Scene struct {
	Experiment string
	After      time.Duration
	Pos        Pos
}

func (d *decoder) gameDay(n *Node, path string, g *GameDay) {
	g.EndOnMitigate, g.Interval, g.WrapUp = true, DefaultInterval, 10*time.Minute
	d.object(n, path, fields{
		"description": func(v *Node, p string) { g.Description = d.str(v, p) },
		"announced":   func(v *Node, p string) { g.Announced = d.boolean(v, p) },
		"facilitator": func(v *Node, p string) { g.Facilitator = d.str(v, p) },
		"responders":  func(v *Node, p string) { g.Responders = d.stringList(v, p) },
		"endOnMitigate": func(v *Node, p string) {
			g.EndOnMitigate = d.boolean(v, p)
		},
		"interval": func(v *Node, p string) { g.Interval = d.durationIn(v, p, time.Second, 10*time.Minute) },
		"wrapUp": func(v *Node, p string) {
			g.WrapUp = d.duration(v, p)
			if g.WrapUp > MaxExperimentLength {
				d.errorf(v, p, "must be at most %s, got %s", FormatDuration(MaxExperimentLength), v.Value)
			}
		},
		"scenario": func(v *Node, p string) {
			d.list(v, p, func(_ int, item *Node, p string) {
				s := &Scene{Pos: item.Pos}
				d.object(item, p, fields{
					"experiment": func(v *Node, p string) { s.Experiment = d.name(v, p) },
					"after":      func(v *Node, p string) { s.After = d.duration(v, p) },
				}, "experiment")
				g.Scenario = append(g.Scenario, s)
			})
			if v.Kind == ListNode && len(v.Items) == 0 {
				d.errorf(v, p, "a GameDay needs at least one experiment in its scenario")
			}
		},
	}, "scenario")
}
