package report

import (
	"fmt"
	"io"
	"strings"
	"time"
	"unicode/utf8"

	"slolab.dev/slolab/slo"
	"slolab.dev/slolab/spec"
)

// Colour is an ANSI colour for a table cell; the zero value is none.
type Colour string

// The colours status tables use.
const (
	Plain  Colour = ""
	Red    Colour = "\x1b[31m"
	Yellow Colour = "\x1b[33m"
	Green  Colour = "\x1b[32m"
	Bold   Colour = "\x1b[1m"
	Dim    Colour = "\x1b[2m"
)

// Cell is a table cell: text and how to colour it on a terminal.
type Cell struct {
	Text   string
	Colour Colour
}

// Table writes aligned columns, two spaces apart. Colours are applied
// around the padded text, so alignment holds on a terminal; without
// colour they are left out.
type Table struct {
	rows   [][]Cell
	colour bool
}

// NewTable starts a table with a header row.
func NewTable(colour bool, header ...string) *Table {
	t := &Table{colour: colour}
	row := make([]Cell, len(header))
	for i, h := range header {
		row[i] = Cell{h, Bold}
	}
	t.rows = append(t.rows, row)
	return t
}

// Row adds a row.
func (t *Table) Row(cells ...Cell) { t.rows = append(t.rows, cells) }

// Write renders the table.
func (t *Table) Write(w io.Writer) error {
	var widths []int
	for _, r := range t.rows {
		for i, c := range r {
			if i >= len(widths) {
				widths = append(widths, 0)
			}
			widths[i] = max(widths[i], utf8.RuneCountInString(c.Text))
		}
	}
	var b strings.Builder
	for _, r := range t.rows {
		for i, c := range r {
			text := c.Text
			if i < len(r)-1 {
				text += strings.Repeat(" ", widths[i]-utf8.RuneCountInString(c.Text)+2)
			}
			if t.colour && c.Colour != Plain {
				pad := len(text) - len(strings.TrimRight(text, " "))
				text = string(c.Colour) + strings.TrimRight(text, " ") + "\x1b[0m" + strings.Repeat(" ", pad)
			}
			b.WriteString(text)
		}
		b.WriteString("\n")
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// StatusOptions tune StatusTable.
type StatusOptions struct {
	Colour bool
	Source string // where the events came from, for the heading
}

// StatusTable writes one row per SLO: its SLI over the SLO window, budget
// left, time to exhaustion, burn rates over every status window and the
// window, and the alerts firing.
func StatusTable(w io.Writer, st *slo.Status, opt StatusOptions) error {
	fmt.Fprintf(w, "%s · %s", st.Service, Time(st.At))
	if opt.Source != "" {
		fmt.Fprintf(w, " · %s", opt.Source)
	}
	fmt.Fprintln(w)
	header := []string{"CUJ", "OWNER", "SLO", "SLI", "BUDGET LEFT", "EXHAUSTED IN"}
	var windows []time.Duration
	var longest time.Duration
	if len(st.SLOs) > 0 {
		for _, ws := range st.SLOs[0].Windows {
			windows = append(windows, time.Duration(ws.Window))
		}
	}
	for _, s := range st.SLOs {
		longest = max(longest, s.Period.Duration())
	}
	for _, n := range HistoryNotes(st.Span, st.At, longest) {
		fmt.Fprintln(w, n)
	}
	for _, d := range windows {
		header = append(header, spec.FormatDuration(d))
	}
	header = append(header, "WINDOW", "ALERTS")
	t := NewTable(opt.Colour, header...)
	few := false
	prev := ""
	for _, s := range st.SLOs {
		name := s.CUJ
		if name == prev {
			name = ""
		}
		prev = s.CUJ
		row := []Cell{
			{name, Plain}, {s.Owner, Dim},
			{SLOName(s.Kind, s.Objective, s.Threshold) + " / " + s.Window, Plain},
			{SLIPercent(s.SLIPercent), metColour(s)},
			budgetCell(s.Budget), exhaustionCell(s.Budget),
		}
		byWindow := map[time.Duration]slo.WindowState{}
		for _, ws := range s.Windows {
			byWindow[time.Duration(ws.Window)] = ws
		}
		for _, d := range windows {
			ws := byWindow[d]
			c := burnCell(ws.BurnRate, s.Alerts, d)
			if ws.TooFewToJudge && ws.BurnRate != nil {
				c.Text += "?"
				c.Colour = Dim
				few = true
			}
			row = append(row, c)
		}
		var period *float64
		if s.Events.Total > 0 {
			v, _ := s.Budget.Consumed().Float64()
			period = &v
		}
		row = append(row, burnCell(period, nil, 0), alertsCell(s))
		t.Row(row...)
	}
	if err := t.Write(w); err != nil {
		return err
	}
	if few {
		fmt.Fprintln(w, "? too few to judge: fewer bad requests than an alert needs, and too few requests to expect that many at the objective; no alert fires on such a window")
	}
	return nil
}

func metColour(s slo.SLOStatus) Colour {
	if s.SLIPercent == nil {
		return Dim
	}
	if s.Met {
		return Green
	}
	return Red
}

func budgetCell(b slo.Budget) Cell {
	text := Percent(b.RemainingPercent, 1)
	switch {
	case b.Exhausted:
		return Cell{"exhausted (" + text + ")", Red}
	case b.RemainingPercent < 25:
		return Cell{text, Red}
	case b.RemainingPercent < 50:
		return Cell{text, Yellow}
	}
	return Cell{text, Green}
}

func exhaustionCell(b slo.Budget) Cell {
	switch {
	case b.TimeToExhaustion == nil:
		return Cell{"—", Dim}
	case *b.TimeToExhaustion == 0:
		return Cell{"now", Red}
	}
	d := time.Duration(*b.TimeToExhaustion)
	c := Cell{Span(d), Plain}
	if d < 3*spec.Day {
		c.Colour = Red
	} else if d < 7*spec.Day {
		c.Colour = Yellow
	}
	return c
}

// burnCell writes a burn rate, coloured by the lowest alert threshold it
// crosses among the alerts using window d.
func burnCell(v *float64, alerts []slo.AlertState, d time.Duration) Cell {
	if v == nil {
		return Cell{"-", Dim}
	}
	c := Cell{fmt.Sprintf("%.1f", *v), Plain}
	if *v == 0 {
		c.Colour = Dim
	}
	for _, a := range alerts {
		if time.Duration(a.Long) != d && time.Duration(a.Short) != d {
			continue
		}
		if a.Rule().Factor.Float() <= *v {
			if a.Severity == "page" {
				c.Colour = Red
			} else if c.Colour != Red {
				c.Colour = Yellow
			}
		}
	}
	return c
}

func alertsCell(s slo.SLOStatus) Cell {
	var parts []string
	colour := Plain
	for _, a := range s.Alerts {
		switch {
		case a.Firing:
			parts = append(parts, fmt.Sprintf("%s %s", a.Severity, a.Pair()))
			if a.Severity == "page" {
				colour = Red
			} else if colour != Red {
				colour = Yellow
			}
		case a.Guarded:
			parts = append(parts, fmt.Sprintf("(%s %s held: %d bad < %d)", a.Severity, a.Pair(), a.LongBad, s.MinBadEvents))
		}
	}
	if len(parts) == 0 {
		return Cell{"—", Dim}
	}
	return Cell{strings.Join(parts, ", "), colour}
}

// BacktestTable writes the episodes of a backtest and a summary per SLO.
func BacktestTable(w io.Writer, bt *slo.Backtest, opt StatusOptions) error {
	fmt.Fprintf(w, "%s · replay %s → %s, every %s", bt.Service, Time(bt.From), Time(bt.To), spec.FormatDuration(time.Duration(bt.Step)))
	if opt.Source != "" {
		fmt.Fprintf(w, " · %s", opt.Source)
	}
	fmt.Fprintln(w)
	if s := bt.Span.Synthetic; s != nil && s.Until.After(bt.From) {
		fmt.Fprintln(w, HistoryNotes(&slo.Span{Synthetic: s}, bt.To, 0)[0])
	}
	if len(bt.Episodes) == 0 {
		fmt.Fprintln(w, "No alert would have fired.")
		return nil
	}
	t := NewTable(opt.Colour, "CUJ", "SLO", "ALERT", "WINDOWS", "FIRED", "RESOLVED", "LASTED", "PEAK BURN")
	for _, e := range bt.Episodes {
		c := Yellow
		if e.Severity == "page" {
			c = Red
		}
		t.Row(Cell{e.CUJ, Plain}, Cell{string(e.Kind), Plain}, Cell{e.Severity, c}, Cell{e.Pair() + " ≥ " + e.Factor, Plain},
			Cell{Time(e.Fired), Plain}, Cell{resolvedAt(e), Plain}, Cell{lasted(e, bt.To), Plain}, Cell{fmt.Sprintf("%.1f", e.PeakBurn), Plain})
	}
	if err := t.Write(w); err != nil {
		return err
	}
	fmt.Fprintln(w)
	s := NewTable(opt.Colour, "CUJ", "SLO", "PAGES", "PAGING FOR", "TICKETS", "TICKET OPEN FOR")
	type key struct {
		cuj  string
		kind slo.Kind
	}
	sums := map[key][2]slo.BacktestSummary{}
	var order []key
	for _, x := range bt.Summary {
		k := key{x.CUJ, x.Kind}
		v, seen := sums[k]
		if !seen {
			order = append(order, k)
		}
		if x.Severity == "page" {
			v[0] = x
		} else {
			v[1] = x
		}
		sums[k] = v
	}
	for _, k := range order {
		v := sums[k]
		if v[0].Episodes+v[1].Episodes == 0 {
			continue
		}
		firing := func(x slo.BacktestSummary) Cell {
			if x.Episodes == 0 {
				return Cell{"—", Dim}
			}
			return Cell{Span(time.Duration(x.Firing)), Plain}
		}
		s.Row(Cell{k.cuj, Plain}, Cell{string(k.kind), Plain}, Cell{fmt.Sprint(v[0].Episodes), Plain}, firing(v[0]),
			Cell{fmt.Sprint(v[1].Episodes), Plain}, firing(v[1]))
	}
	return s.Write(w)
}
