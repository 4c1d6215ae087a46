package report

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"time"

	"slolab.dev/slolab/errclass"
	"slolab.dev/slolab/slo"
	"slolab.dev/slolab/spec"
)

// NewErrors is what 'slolab errors' reports: the error classes seen in a
// window and not in the baseline before it, the app's own apart from those
// faults injected, with each CUJ's SLO impact.
type NewErrors struct {
	Service string `json:"service"`
	Source  string `json:"source"`
	// Since and BaselineSpan are the spans asked for; Window and Baseline
	// the ranges read, in whole hours.
	Since        spec.Duration `json:"since"`
	BaselineSpan spec.Duration `json:"baselineSpan"`
	Window       slo.Range     `json:"window"`
	Baseline     slo.Range     `json:"baseline"`
	// Classes are the app's own new classes, most frequent first.
	Classes []NewClass `json:"classes"`
	// Injected are the new classes of requests a fault rule changed.
	Injected []NewClass `json:"injected"`
	Impact   []Impact   `json:"impact"`
}

// NewClass is a new error class with its count in the window.
type NewClass struct {
	errclass.Class
	// SharePercent is the class's share of its CUJ's bad requests in the
	// window; absent when the store holds none (a TCP dependency).
	SharePercent *float64 `json:"sharePercent,omitempty"`
}

// Impact is a CUJ's SLO impact: its requests in the window, how many were
// bad and how many of those fell in new classes, and its availability
// budget over the SLO window.
type Impact struct {
	CUJ    string `json:"cuj"`
	Total  uint64 `json:"total"`
	Bad    uint64 `json:"bad"`
	NewBad uint64 `json:"newBad"`
	// Budget is the availability SLO's, over its window; absent for a CUJ
	// without one.
	Budget *slo.Budget `json:"budget,omitempty"`
	Window string      `json:"sloWindow,omitempty"`
}

// BuildNewErrors keeps the classes of window absent from baseline and
// adds the SLO impact of their CUJs from events (over the window) and
// status (the SLOs now).
func BuildNewErrors(window, baseline []errclass.Class, events map[slo.Key]slo.Events, status *slo.Status) NewErrors {
	seen := make(map[string]bool, len(baseline))
	for _, c := range baseline {
		seen[c.ID] = true
	}
	ne := NewErrors{Classes: []NewClass{}, Injected: []NewClass{}, Impact: []Impact{}}
	newBad := map[string]uint64{}
	for _, c := range window {
		if seen[c.ID] {
			continue
		}
		nc := NewClass{Class: c}
		if ev, ok := events[slo.Key{CUJ: c.CUJ, Kind: slo.Availability}]; ok && ev.Bad > 0 {
			share := 100 * float64(c.Count) / float64(ev.Bad)
			nc.SharePercent = &share
		}
		if c.Injected {
			ne.Injected = append(ne.Injected, nc)
			continue
		}
		ne.Classes = append(ne.Classes, nc)
		newBad[c.CUJ] += c.Count
	}
	for _, l := range [][]NewClass{ne.Classes, ne.Injected} {
		sort.SliceStable(l, func(i, j int) bool {
			if l[i].Count != l[j].Count {
				return l[i].Count > l[j].Count
			}
			return l[i].FirstSeen.Before(l[j].FirstSeen)
		})
	}
	cujs := make([]string, 0, len(newBad))
	for cuj := range newBad {
		cujs = append(cujs, cuj)
	}
	sort.Strings(cujs)
	for _, cuj := range cujs {
		ev := events[slo.Key{CUJ: cuj, Kind: slo.Availability}]
		im := Impact{CUJ: cuj, Total: ev.Total, Bad: ev.Bad, NewBad: newBad[cuj]}
		if status != nil {
			for _, s := range status.SLOs {
				if s.CUJ == cuj && s.Kind == slo.Availability {
					b := s.Budget
					im.Budget, im.Window = &b, s.Window
				}
			}
		}
		ne.Impact = append(ne.Impact, im)
	}
	return ne
}

// seenTime writes a sighting to the second, in UTC.
func seenTime(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05 UTC") }

// statusText is a class's status: the code, or its failure kind.
func statusText(c errclass.Class) string {
	switch {
	case c.Kind == errclass.KindStatus:
		return strconv.Itoa(c.Status)
	case c.Status != 0:
		return strconv.Itoa(c.Status) + " " + c.Kind
	}
	return c.Kind
}

func signatureText(c errclass.Class) string {
	if c.Signature == "" {
		return "(empty body)"
	}
	return c.Signature
}

// Heading is the report's first line.
func (ne NewErrors) Heading() string {
	return fmt.Sprintf("%s: %s in the last %s (not seen in the %s before)", ne.Service,
		plural(len(ne.Classes), "new error class", "new error classes"), spec.FormatDuration(time.Duration(ne.Since)), spec.FormatDuration(time.Duration(ne.BaselineSpan)))
}

// NewErrorsTable writes the report for a terminal.
func NewErrorsTable(w io.Writer, ne NewErrors, colour bool) error {
	fmt.Fprintf(w, "%s · %s\n", ne.Heading(), ne.Source)
	if len(ne.Classes) > 0 {
		fmt.Fprintln(w)
		t := NewTable(colour, "CUJ", "ROUTE", "STATUS", "COUNT", "SHARE", "FIRST SEEN", "LAST SEEN", "SIGNATURE")
		for _, c := range ne.Classes {
			t.Row(Cell{Text: c.CUJ}, Cell{Text: c.Route}, Cell{Text: statusText(c.Class), Colour: Red}, Cell{Text: strconv.FormatUint(c.Count, 10)},
				Cell{Text: share(c.SharePercent)}, Cell{Text: seenTime(c.FirstSeen)}, Cell{Text: seenTime(c.LastSeen)}, Cell{Text: signatureText(c.Class)})
		}
		if err := t.Write(w); err != nil {
			return err
		}
		fmt.Fprintln(w, "\nExamples (the first of each class; no headers, no query):")
		for _, c := range ne.Classes {
			fmt.Fprintf(w, "  %s %s %s → %s\n", c.ID, c.Example.Method, c.Example.Path, exampleText(c.Class))
		}
		fmt.Fprintln(w, "\nSLO impact:")
		for _, im := range ne.Impact {
			fmt.Fprintf(w, "  %s\n", im.Text())
		}
	}
	if n := len(ne.Injected); n > 0 {
		var reqs uint64
		for _, c := range ne.Injected {
			reqs += c.Count
		}
		fmt.Fprintf(w, "\nInjected by fault rules, kept apart: %s, %d requests (-o json lists them).\n", plural(n, "new class", "new classes"), reqs)
	}
	return nil
}

// Text is a CUJ's impact in a sentence.
func (im Impact) Text() string {
	s := fmt.Sprintf("%s: %d of its %s in the window fell in new classes (%s in all)", im.CUJ, im.NewBad, plural(int(im.Bad), "bad request", "bad requests"), plural(int(im.Total), "request", "requests"))
	if im.Budget != nil {
		s += fmt.Sprintf("; availability budget %s consumed over %s", Percent(im.Budget.ConsumedPercent, 1), im.Window)
	}
	return s
}

func share(v *float64) string {
	if v == nil {
		return "—"
	}
	return Percent(*v, 1)
}

// exampleText is an example's body on one line, at most 200 bytes.
func exampleText(c errclass.Class) string {
	if c.Kind != errclass.KindStatus {
		return statusText(c) + ", no response body"
	}
	b := strings.Join(strings.Fields(c.Example.Body), " ")
	if len(b) > 200 {
		b = strings.ToValidUTF8(b[:200], "") + "…"
	}
	if b == "" {
		return "(empty body)"
	}
	return b
}

// NewErrorsText is the report as a chat message (Slack's mrkdwn): the
// heading, then a line per class, at most ten.
func NewErrorsText(ne NewErrors) string {
	var b strings.Builder
	b.WriteString(ne.Heading())
	for i, c := range ne.Classes {
		if i == 10 {
			fmt.Fprintf(&b, "\n… and %d more", len(ne.Classes)-10)
			break
		}
		fmt.Fprintf(&b, "\n• %s `%s` %s ×%d since %s: `%s`", c.CUJ, c.Route, statusText(c.Class), c.Count, seenTime(c.FirstSeen), signatureText(c.Class))
	}
	for _, im := range ne.Impact {
		b.WriteString("\n" + im.Text())
	}
	if n := len(ne.Injected); n > 0 {
		fmt.Fprintf(&b, "\n(%s kept apart)", plural(n, "new injected class", "new injected classes"))
	}
	return b.String()
}

// NewErrorsMarkdown writes the review report's paragraph on new errors.
func NewErrorsMarkdown(w io.Writer, ne NewErrors) error {
	fmt.Fprintf(w, "\n## New errors\n\n")
	if len(ne.Classes) == 0 {
		_, err := fmt.Fprintf(w, "No error class was seen for the first time in the last %s (against the %s before).\n", spec.FormatDuration(time.Duration(ne.Since)), spec.FormatDuration(time.Duration(ne.BaselineSpan)))
		return err
	}
	fmt.Fprintf(w, "%s appeared in the last %s that the %s before never saw:\n\n", plural(len(ne.Classes), "error class", "error classes"), spec.FormatDuration(time.Duration(ne.Since)), spec.FormatDuration(time.Duration(ne.BaselineSpan)))
	for _, c := range ne.Classes {
		fmt.Fprintf(w, "- **%s** `%s` %s, %s since %s: `%s`\n", c.CUJ, c.Route, statusText(c.Class), plural(int(c.Count), "request", "requests"), seenTime(c.FirstSeen), signatureText(c.Class))
	}
	fmt.Fprintln(w, "\nSLO impact:")
	fmt.Fprintln(w)
	for _, im := range ne.Impact {
		fmt.Fprintf(w, "- %s\n", im.Text())
	}
	return nil
}

// WithNewErrors returns the review format named by format with the new
// errors added: Markdown ends with its paragraph, the page with its
// section, and JSON carries them as newErrors.
func WithNewErrors(format string, ne NewErrors) (Format, bool) {
	switch format {
	case "md":
		return func(w io.Writer, r *slo.Review) error {
			return errors.Join(Markdown(w, r), NewErrorsMarkdown(w, ne))
		}, true
	case "html":
		return func(w io.Writer, r *slo.Review) error {
			return page.Execute(w, reviewPage{Review: r, NewErrors: &ne})
		}, true
	case "json":
		return func(w io.Writer, r *slo.Review) error {
			enc := json.NewEncoder(w)
			enc.SetIndent("", "  ")
			return enc.Encode(struct {
				*slo.Review
				NewErrors NewErrors `json:"newErrors"`
			}{r, ne})
		}, true
	}
	return nil, false
}
