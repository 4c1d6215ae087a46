package experiment

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"slolab.dev/slolab/slo"
	"slolab.dev/slolab/spec"
)

// Responder actions recorded on a GameDay's timeline.
const (
	ResponseAck      = "ack"      // someone took the incident
	ResponseMitigate = "mitigate" // someone mitigated it
	ResponseNote     = "note"     // anything worth remembering
)

// Response is what a responder reports with `slolab gameday ack|mitigate|note`.
type Response struct {
	Kind string    `json:"kind"`
	Who  string    `json:"who,omitempty"`
	Text string    `json:"text"`
	At   time.Time `json:"at"`
}

// Timeline kinds of a GameDay besides the experiments' own event kinds.
const (
	TimelineGameDay       = "gameday"
	TimelineAlertFired    = "alert-fired"
	TimelineAlertResolved = "alert-resolved"
	// TimelineAlertPreExisting: firing when the GameDay began, so no
	// fault of its scenario caused it.
	TimelineAlertPreExisting = "alert-pre-existing"
)

// TimelineEntry is one line of a GameDay's timeline.
type TimelineEntry struct {
	At         time.Time `json:"at"`
	Kind       string    `json:"kind"`
	Text       string    `json:"text"`
	Who        string    `json:"who,omitempty"`
	Experiment string    `json:"experiment,omitempty"`
}

// GameDayConfig configures RunGameDay.
type GameDayConfig struct {
	GameDay *spec.GameDay
	Set     *Set
	Proxy   Injector
	View    View
	Now     func() time.Time
	// Responses carries what responders report while the GameDay runs.
	Responses <-chan Response
	// OnEntry sees every timeline entry as it is recorded, one at a time
	// and in the timeline's order, whichever goroutine recorded it.
	OnEntry func(TimelineEntry)
}

// Alert is a burn-rate alert episode seen during a GameDay.
type Alert struct {
	CUJ      string        `json:"cuj"`
	SLO      string        `json:"slo"`
	Severity string        `json:"severity"`
	Long     spec.Duration `json:"long"`
	Short    spec.Duration `json:"short"`
	Factor   spec.Ratio    `json:"burnRate"`
	Fired    time.Time     `json:"fired"`
	Resolved time.Time     `json:"resolved,omitzero"`
	// PreExisting: the alert was firing when the GameDay began (Fired is
	// then the GameDay's start); it detects nothing.
	PreExisting bool `json:"preExisting,omitempty"`
	// Detects names the experiment whose fault the alert detected: one
	// that touches the alert's CUJ and whose first fault began before the
	// alert fired. Empty for pre-existing alerts and alerts on other CUJs.
	Detects string `json:"detects,omitempty"`

	firedText string // the alert and its burn rates when it fired
}

func (a Alert) String() string {
	return fmt.Sprintf("%s %s %s: burn rate ≥ %s over %s and %s", a.CUJ, a.SLO, a.Severity, a.Factor.Decimal(), a.Long, a.Short)
}

// Figures are the GameDay's headline times, each from the first fault's start.
type Figures struct {
	FaultStart time.Time `json:"faultStart,omitzero"`
	// Detected is the first alert that detects a fault (see Alert.Detects)
	// or the first acknowledgement after the first fault began, whichever
	// came first.
	Detected   time.Time `json:"detected,omitzero"`
	DetectedBy string    `json:"detectedBy,omitempty"`
	Acked      time.Time `json:"acknowledged,omitzero"`
	Mitigated  time.Time `json:"mitigated,omitzero"`
	// Recovered is when the last CUJ the faults touched met its SLOs again.
	Recovered time.Time `json:"recovered,omitzero"`

	TimeToDetect      spec.Duration `json:"timeToDetect,omitempty"`
	TimeToAcknowledge spec.Duration `json:"timeToAcknowledge,omitempty"`
	TimeToMitigate    spec.Duration `json:"timeToMitigate,omitempty"`
	TimeToRecover     spec.Duration `json:"timeToRecover,omitempty"`
}

// GameDayReport is the retrospective's material.
type GameDayReport struct {
	GameDay     string          `json:"gameday"`
	Description string          `json:"description,omitempty"`
	Announced   bool            `json:"announced"`
	Facilitator string          `json:"facilitator,omitempty"`
	Responders  []string        `json:"responders,omitempty"`
	Started     time.Time       `json:"started"`
	Ended       time.Time       `json:"ended"`
	Figures     Figures         `json:"figures"`
	Alerts      []*Alert        `json:"alerts"`
	Skipped     []string        `json:"alertsNotEvaluated,omitempty"`
	Experiments []*Report       `json:"experiments"`
	Timeline    []TimelineEntry `json:"timeline"`
}

type gameDay struct {
	cfg GameDayConfig
	mu  sync.Mutex
	rep *GameDayReport
	// recording serialises add: the runner, the alert watcher and the
	// responders' listener all record, and OnEntry must see one entry at a
	// time in the timeline's order.
	recording sync.Mutex
	// endMethod reaches the experiment running now, for mitigations.
	endMethod chan string
	current   string
	firing    map[string]*Alert
	rounds    chan int // the watcher sends the number firing after every round
	// touches holds, per experiment of the scenario, the CUJs it touches:
	// those its faults select and those its expectations name.
	touches map[string][]string
}

// RunGameDay runs the scenario's experiments in order, watches burn-rate
// alerts on every CUJ of their services, records what responders report,
// and computes detection, acknowledgement, mitigation and recovery times.
func RunGameDay(ctx context.Context, cfg GameDayConfig) (*GameDayReport, error) {
	if cfg.GameDay == nil || cfg.Set == nil || cfg.Proxy == nil || cfg.View == nil {
		return nil, errors.New("experiment.RunGameDay: the GameDay, its experiments, the proxy and the view are required")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	g := cfg.GameDay
	gd := &gameDay{cfg: cfg, endMethod: make(chan string, 1), firing: map[string]*Alert{}, rounds: make(chan int, 1), touches: map[string][]string{}, rep: &GameDayReport{
		GameDay: g.Name, Description: g.Description, Announced: g.Announced, Facilitator: g.Facilitator, Responders: g.Responders,
		Started: cfg.Now(), Alerts: []*Alert{}, Experiments: []*Report{}, Timeline: []TimelineEntry{},
	}}
	var scenes []*Compiled
	for _, s := range g.Scenario {
		c := cfg.Set.Experiment(s.Experiment)
		if c == nil {
			return nil, fmt.Errorf("GameDay %s: no experiment %q", g.Name, s.Experiment)
		}
		scenes = append(scenes, c)
		gd.touches[c.Experiment.Name] = c.recoveryCUJs()
	}
	what := "unannounced"
	if g.Announced {
		what = "announced"
	}
	gd.add(TimelineEntry{Kind: TimelineGameDay, Text: fmt.Sprintf("GameDay %s begins (%s, %d %s)", g.Name, what, len(scenes), plural(len(scenes), "experiment", "experiments"))})

	// Alerts already firing are found before the first experiment starts.
	slos := gd.watched(scenes)
	gd.round(ctx, slos, true)
	watchCtx, stopWatch := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() { gd.watch(watchCtx, slos) })
	wg.Go(func() { gd.listen(watchCtx) })

	for i, s := range g.Scenario {
		if s.After > 0 && !sleepCtx(ctx, s.After) {
			break
		}
		c := scenes[i]
		gd.mu.Lock()
		gd.current = c.Experiment.Name
		gd.mu.Unlock()
		rep, err := Run(ctx, Config{Compiled: c, Proxy: cfg.Proxy, View: cfg.View, Now: cfg.Now, EndMethod: gd.endMethod,
			OnEvent: func(e Event) { gd.experimentEvent(c.Experiment.Name, e) }})
		gd.mu.Lock()
		gd.current = ""
		gd.mu.Unlock()
		if err != nil {
			stopWatch()
			wg.Wait()
			return nil, err
		}
		gd.mu.Lock()
		gd.rep.Experiments = append(gd.rep.Experiments, rep)
		gd.mu.Unlock()
		select { // a mitigation that came after the method ended belongs to no run
		case <-gd.endMethod:
		default:
		}
		if ctx.Err() != nil {
			break
		}
	}
	// Keep the timeline open until every alert resolved, or for the wrap-up.
	if ctx.Err() == nil {
		deadline := time.NewTimer(g.WrapUp)
		gd.mu.Lock()
		n := len(gd.firing)
		gd.mu.Unlock()
	wait:
		for n > 0 {
			select {
			case <-ctx.Done():
				break wait
			case <-deadline.C:
				break wait
			case n = <-gd.rounds: // after the watcher's round, never racing it
			}
		}
		deadline.Stop()
	}
	stopWatch()
	wg.Wait()
	gd.rep.Ended = cfg.Now()
	gd.add(TimelineEntry{Kind: TimelineGameDay, Text: "GameDay " + g.Name + " ends"})
	gd.figures()
	return gd.rep, nil
}

func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

func (gd *gameDay) add(e TimelineEntry) {
	gd.recording.Lock()
	defer gd.recording.Unlock()
	if e.At.IsZero() {
		e.At = gd.cfg.Now()
	}
	gd.mu.Lock()
	gd.rep.Timeline = append(gd.rep.Timeline, e)
	gd.mu.Unlock()
	if gd.cfg.OnEntry != nil {
		gd.cfg.OnEntry(e)
	}
}

// experimentEvent copies the events that matter to a retrospective.
func (gd *gameDay) experimentEvent(name string, e Event) {
	switch e.Kind {
	case EventStart, EventRefused, EventFaultStart, EventFaultRate, EventFaultStop, EventHypothesis, EventGuardrail, EventMethodEnd, EventRecovered, EventVerdict:
		gd.add(TimelineEntry{At: e.At, Kind: e.Kind, Text: e.Text, Experiment: name})
	}
}

// listen records responders' reports; a mitigation ends the running method
// when the GameDay says so.
func (gd *gameDay) listen(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case r, ok := <-gd.cfg.Responses:
			if !ok {
				return
			}
			gd.mu.Lock()
			current := gd.current
			gd.mu.Unlock()
			text := r.Text
			if r.Kind == ResponseMitigate && gd.cfg.GameDay.EndOnMitigate && current != "" {
				select {
				case gd.endMethod <- fmt.Sprintf("%s mitigated: %s", orSomeone(r.Who), r.Text):
					text += " (the experiment's faults end here)"
				default:
				}
			}
			gd.add(TimelineEntry{At: r.At, Kind: r.Kind, Who: r.Who, Text: text, Experiment: current})
		}
	}
}

func orSomeone(who string) string {
	if who == "" {
		return "a responder"
	}
	return who
}

// watchedSLO is an SLO the GameDay watches.
type watchedSLO struct {
	svc *spec.Service
	slo slo.SLO
}

// watched lists every SLO of the scenario's services, and records which
// alerts cannot be evaluated: windows longer than the proxy keeps read as
// empty, so alerts over them cannot fire.
func (gd *gameDay) watched(scenes []*Compiled) []watchedSLO {
	var slos []watchedSLO
	skipped := map[string]bool{}
	seen := map[*spec.Service]bool{}
	for _, c := range scenes {
		if seen[c.Service] {
			continue
		}
		seen[c.Service] = true
		for _, s := range slo.SLOs(c.Service) {
			slos = append(slos, watchedSLO{c.Service, s})
			for _, rule := range s.Alerts {
				if rule.Long > MaxWindow {
					skipped[fmt.Sprintf("%s alerts over %s and %s (the proxy keeps %s)", rule.Severity, spec.FormatDuration(rule.Long), spec.FormatDuration(rule.Short), spec.FormatDuration(MaxWindow))] = true
				}
			}
		}
	}
	gd.mu.Lock()
	for s := range skipped {
		gd.rep.Skipped = append(gd.rep.Skipped, s)
	}
	slices.Sort(gd.rep.Skipped)
	gd.mu.Unlock()
	return slos
}

// watch evaluates every SLO of the scenario's services each interval with
// the SLO engine (slo.Judge: the shared alert tables, the low-traffic
// guard), over the proxy's windows, and records when each multiwindow
// burn-rate alert fires and resolves.
func (gd *gameDay) watch(ctx context.Context, slos []watchedSLO) {
	tick := time.NewTicker(gd.cfg.GameDay.Interval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		gd.round(ctx, slos, false)
		gd.mu.Lock()
		n := len(gd.firing)
		gd.mu.Unlock()
		select {
		case <-gd.rounds: // drop an unread count: only the latest matters
		default:
		}
		gd.rounds <- n
	}
}

// round judges every watched SLO once; in the first round, before any
// experiment, the alerts found firing are pre-existing.
func (gd *gameDay) round(ctx context.Context, slos []watchedSLO, first bool) {
	now := gd.cfg.Now()
	cache := map[Query]SLI{}
	for i := range slos {
		w := &slos[i]
		failed := false
		events := func(r slo.Range) slo.Events {
			d := r.Duration()
			if d > MaxWindow || d < time.Second {
				return slo.Events{}
			}
			q := Query{CUJ: w.slo.CUJ, Group: GroupAll, Window: d}
			s, ok := cache[q]
			if !ok {
				var err error
				if s, err = gd.cfg.View.SLI(ctx, q); err != nil {
					failed = true
					return slo.Events{}
				}
				cache[q] = s
			}
			return slo.Counts{Total: s.Total, Bad: s.Bad, Slow: s.Slow}.Events(w.slo.Kind)
		}
		st := slo.Judge(&w.slo, now, events)
		if failed {
			continue // the proxy did not answer: judge nothing this round
		}
		for _, a := range st.Alerts {
			gd.transition(w.svc.Name, w.slo.Key, a, now, first)
		}
	}
}

// transition records an alert that started or stopped firing.
func (gd *gameDay) transition(service string, k slo.Key, st slo.AlertState, now time.Time, preExisting bool) {
	key := fmt.Sprintf("%s/%s/%s", service, k, st.Pair())
	gd.mu.Lock()
	a, firing := gd.firing[key]
	gd.mu.Unlock()
	burn := func(v *float64) string {
		if v == nil {
			return "-"
		}
		return formatFloat(*v)
	}
	switch {
	case st.Firing && !firing:
		rule := st.Rule()
		a = &Alert{CUJ: k.CUJ, SLO: string(k.Kind), Severity: st.Severity, Long: st.Long, Short: st.Short, Factor: rule.Factor, Fired: now, PreExisting: preExisting}
		a.firedText = fmt.Sprintf("%s (burn rate %s over %s, %s over %s)", a, burn(st.LongBurn), a.Long, burn(st.ShortBurn), a.Short)
		gd.mu.Lock()
		gd.firing[key] = a
		gd.rep.Alerts = append(gd.rep.Alerts, a)
		gd.mu.Unlock()
		kind, what := TimelineAlertFired, "alert fired"
		if preExisting {
			kind, what = TimelineAlertPreExisting, "alert already firing when the GameDay began (not a detection)"
		}
		gd.add(TimelineEntry{At: now, Kind: kind, Text: what + ": " + a.firedText})
	case !st.Firing && firing:
		gd.mu.Lock()
		a.Resolved = now
		delete(gd.firing, key)
		gd.mu.Unlock()
		gd.add(TimelineEntry{At: now, Kind: TimelineAlertResolved, Text: fmt.Sprintf("alert resolved: %s, after %s", a, spec.FormatDuration(now.Sub(a.Fired).Round(time.Second)))})
	}
}

// figures derives the headline times from the timeline and the experiments.
func (gd *gameDay) figures() {
	f := &gd.rep.Figures
	faultStart := map[string]time.Time{} // per experiment: its first fault
	for _, e := range gd.rep.Timeline {
		switch {
		case e.Kind == EventFaultStart:
			if f.FaultStart.IsZero() {
				f.FaultStart = e.At
			}
			if _, ok := faultStart[e.Experiment]; !ok {
				faultStart[e.Experiment] = e.At
			}
		case e.Kind == ResponseAck && f.Acked.IsZero():
			f.Acked = e.At
			if f.Detected.IsZero() && !f.FaultStart.IsZero() {
				f.Detected, f.DetectedBy = e.At, "responder "+orSomeone(e.Who)+": "+e.Text
			}
		case e.Kind == ResponseMitigate && f.Mitigated.IsZero():
			f.Mitigated = e.At
		}
	}
	// An alert detects a fault only if it began firing after that fault
	// began, on a CUJ the fault's experiment touches.
	for _, a := range gd.rep.Alerts {
		if a.PreExisting {
			continue
		}
		for _, s := range gd.cfg.GameDay.Scenario {
			start, ok := faultStart[s.Experiment]
			if !ok || !a.Fired.After(start) || !slices.Contains(gd.touches[s.Experiment], a.CUJ) {
				continue
			}
			a.Detects = s.Experiment
			if f.Detected.IsZero() || a.Fired.Before(f.Detected) {
				f.Detected, f.DetectedBy = a.Fired, "alert: "+a.firedText
			}
			break
		}
	}
	allRecovered := len(gd.rep.Experiments) > 0
	for _, r := range gd.rep.Experiments {
		for _, rc := range r.Recovery {
			if !rc.Recovered {
				allRecovered = false
				continue
			}
			if at := r.MethodEnded.Add(time.Duration(rc.After)); at.After(f.Recovered) {
				f.Recovered = at
			}
		}
	}
	if !allRecovered {
		f.Recovered = time.Time{}
	}
	since := func(t time.Time) spec.Duration {
		if t.IsZero() || f.FaultStart.IsZero() {
			return 0
		}
		return spec.Duration(t.Sub(f.FaultStart).Round(time.Second))
	}
	f.TimeToDetect, f.TimeToAcknowledge, f.TimeToMitigate, f.TimeToRecover = since(f.Detected), since(f.Acked), since(f.Mitigated), since(f.Recovered)
}
