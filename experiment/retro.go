package experiment

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"

	"slolab.dev/slolab/spec"
)

// WriteJSON writes the GameDay report as indented JSON.
func (r *GameDayReport) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// WriteMarkdown writes the retrospective: the figures first, then the
// alerts, the experiments' verdicts and the whole timeline, with room for
// what the team learned.
func (r *GameDayReport) WriteMarkdown(w io.Writer) error {
	var b strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	kind := "unannounced"
	if r.Announced {
		kind = "announced"
	}
	p("# GameDay %s: retrospective\n\n", r.GameDay)
	if r.Description != "" {
		p("%s\n\n", mdEscape(r.Description))
	}
	p("- %s, %s to %s (%s)\n", strings.ToUpper(kind[:1])+kind[1:], stamp(r.Started), stamp(r.Ended), spec.FormatDuration(r.Ended.Sub(r.Started).Round(time.Second)))
	if r.Facilitator != "" {
		p("- Facilitator: %s\n", mdEscape(r.Facilitator))
	}
	if len(r.Responders) > 0 {
		p("- Responders: %s\n", mdEscape(strings.Join(r.Responders, ", ")))
	}
	f := r.Figures
	p("\n## Figures\n\nEvery time counts from the first fault's start (%s).\n\n| | when | after the fault began |\n|---|---|---|\n", clock(f.FaultStart))
	row := func(name string, at time.Time, d spec.Duration, note string) {
		if at.IsZero() {
			p("| %s | - | not reached |\n", name)
			return
		}
		if note != "" {
			note = " — " + mdEscape(note)
		}
		p("| %s | %s | %s%s |\n", name, clock(at), d, note)
	}
	row("Detected", f.Detected, f.TimeToDetect, f.DetectedBy)
	row("Acknowledged", f.Acked, f.TimeToAcknowledge, "")
	row("Mitigated", f.Mitigated, f.TimeToMitigate, "")
	row("Recovered", f.Recovered, f.TimeToRecover, "every CUJ the faults touched met its SLOs again")
	p("\n## Alerts\n\n")
	if len(r.Alerts) == 0 {
		p("No burn-rate alert fired.\n")
	} else {
		p("| alert | fired | resolved | firing for | detects |\n|---|---|---|---|---|\n")
		for _, a := range r.Alerts {
			resolved, lasted := "still firing", "-"
			if !a.Resolved.IsZero() {
				resolved, lasted = clock(a.Resolved), spec.FormatDuration(a.Resolved.Sub(a.Fired).Round(time.Second))
			}
			detects := a.Detects
			switch {
			case a.PreExisting:
				detects, lasted = "nothing: firing before the GameDay began", lasted+" (at least)"
			case detects == "":
				detects = "nothing: no fault of the scenario touched " + a.CUJ + " before it fired"
			}
			p("| %s | %s | %s | %s | %s |\n", mdEscape(a.String()), clock(a.Fired), resolved, lasted, mdEscape(detects))
		}
	}
	if len(r.Skipped) > 0 {
		p("\nNot evaluated: %s.\n", mdEscape(strings.Join(r.Skipped, "; ")))
	}
	p("\n## Experiments\n\n| experiment | verdict | reason |\n|---|---|---|\n")
	for _, x := range r.Experiments {
		p("| %s | %s | %s |\n", x.Experiment, x.Verdict, mdEscape(x.Reason))
	}
	p("\n## Timeline\n\n| time | since start | who | what |\n|---|---|---|---|\n")
	for _, e := range r.Timeline {
		who := e.Who
		if who == "" {
			who = "slolab"
			if e.Kind == ResponseAck || e.Kind == ResponseMitigate || e.Kind == ResponseNote {
				who = "a responder"
			}
		}
		text := e.Text
		if e.Kind == ResponseAck || e.Kind == ResponseMitigate || e.Kind == ResponseNote {
			text = e.Kind + ": " + text
		}
		p("| %s | %s | %s | %s |\n", clock(e.At), offset(r.Started, e.At), mdEscape(who), mdEscape(text))
	}
	p("\n## What went well, what did not, what we change\n\n- \n")
	_, err := io.WriteString(w, b.String())
	return err
}

func clock(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format("15:04:05")
}
