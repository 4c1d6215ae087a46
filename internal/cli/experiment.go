package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"slolab.dev/slolab/experiment"
	"slolab.dev/slolab/proxy/admin"
	"slolab.dev/slolab/spec"
	"slolab.dev/slolab/store/promql"
	"slolab.dev/slolab/store/sqlite"
)

func experimentCmd(e *env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "experiment",
		Short: "Run chaos experiments with a hypothesis, guardrails and a control group",
		Long: `Run chaos experiments written as kind: Experiment documents.

An experiment states its steady state as expressions over the proxy's SLIs
(CEL with slolab's functions: availability, latency_ratio, burn_rate, p99,
requests, budget_consumed, recovers_within), injects its method's fault rules
in steps into a share of the users (the blast radius; everyone else is the
control group), aborts when a guardrail trips, verifies recovery, compares
the experiment group with the control group, and writes a report.

See docs/experiments.md for the spec and the exact meaning of every function.`,
	}
	cmd.AddCommand(experimentRunCmd(e), experimentScheduleCmd(e), experimentHistoryCmd(e))
	return cmd
}

// reportFlags choose where reports go.
type reportFlags struct {
	dir     string
	formats []string
}

func (r *reportFlags) add(cmd *cobra.Command) {
	cmd.Flags().StringVar(&r.dir, "report-dir", "slolab-reports", `directory for the reports, one file per format ("" for none)`)
	cmd.Flags().StringSliceVar(&r.formats, "format", []string{"md", "html", "json"}, "report formats: md, html, json")
}

func (r *reportFlags) check() error {
	for _, f := range r.formats {
		if f != "md" && f != "html" && f != "json" {
			return usageErrorf("--format %q: want md, html or json", f)
		}
	}
	return nil
}

// write writes one file per format named NAME-STAMP.EXT and logs each path.
func (r *reportFlags) write(log io.Writer, name string, at time.Time, render map[string]func(io.Writer) error) error {
	if r.dir == "" {
		return nil
	}
	if err := os.MkdirAll(r.dir, 0o755); err != nil {
		return fmt.Errorf("report directory: %w", err)
	}
	for _, f := range r.formats {
		if render[f] == nil {
			continue // a format this report does not have (a retrospective has no HTML)
		}
		p := filepath.Join(r.dir, fmt.Sprintf("%s-%s.%s", name, at.UTC().Format("20060102T150405Z"), f))
		out, err := os.Create(p)
		if err != nil {
			return err
		}
		err = render[f](out)
		if cerr := out.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return fmt.Errorf("writing %s: %w", p, err)
		}
		fmt.Fprintf(log, "report: %s\n", p)
	}
	return nil
}

func experimentRenderers(rep *experiment.Report) map[string]func(io.Writer) error {
	return map[string]func(io.Writer) error{"md": rep.WriteMarkdown, "html": rep.WriteHTML, "json": rep.WriteJSON}
}

// loadExperiments reads spec files and picks one experiment: the one named,
// or the only one.
func loadExperiments(paths []string, name string) (*experiment.Compiled, error) {
	set, err := experiment.Load(paths, loadSpecFile)
	if err != nil {
		return nil, err
	}
	switch {
	case name != "":
		c := set.Experiment(name)
		if c == nil {
			return nil, usageErrorf("--name %s: no such experiment in %s (there are: %s)", name, strings.Join(paths, ", "), orNone(set.Names()))
		}
		return c, nil
	case len(set.Experiments) == 1:
		return set.Experiments[0], nil
	case len(set.Experiments) == 0:
		return nil, usageErrorf("%s holds no Experiment document", strings.Join(paths, ", "))
	}
	return nil, usageErrorf("%s holds %d experiments; choose one with --name (%s)", strings.Join(paths, ", "), len(set.Experiments), strings.Join(set.Names(), ", "))
}

func orNone(names []string) string {
	if len(names) == 0 {
		return "none"
	}
	return strings.Join(names, ", ")
}

// progress prints events as they happen, with the time since start.
type progress struct {
	mu    sync.Mutex
	w     io.Writer
	start time.Time
	quiet bool // leave out evaluations
}

func (p *progress) event(ev experiment.Event) {
	if p.quiet && ev.Kind == experiment.EventEvaluation {
		return
	}
	p.line(ev.At, ev.Text)
}

// line prints text at its wall-clock time and the time since the first line.
func (p *progress) line(at time.Time, text string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.start.IsZero() {
		p.start = at
	}
	fmt.Fprintf(p.w, "%s %-7s %s\n", at.Local().Format("15:04:05"), "+"+spec.FormatDuration(at.Sub(p.start).Round(time.Second)), text)
}

func experimentRunCmd(e *env) *cobra.Command {
	var (
		a          adminFlags
		rf         reportFlags
		rec        recordFlags
		name       string
		output     string
		quiet      bool
		prometheus string
		matchers   string
	)
	cmd := &cobra.Command{
		Use:   "run FILE... [--name EXPERIMENT] [--admin URL]",
		Short: "Run an experiment against a proxy and report whether its hypothesis held",
		Long: `Run one experiment against a running 'slolab proxy' through its admin API.

The run refuses to start outside the experiment's allowed windows, while
another experiment holds the proxy, or when the steady state does not hold
(it says which expression failed and what it measured). It then installs the
blast radius (a grouping of clients) and the method's fault rules, each with
a short lease it renews, and every interval evaluates the guardrails (abort
at once when one holds) and the hypothesis. After the method it removes every
rule, waits for the CUJs the faults touched to meet their SLOs again, checks
the steady state, compares the experiment group with the control group, and
evaluates the expectations.

Progress goes to stderr; the verdict to stdout (-o json for the whole report);
Markdown, HTML and JSON reports to --report-dir; the record to the store
(--store, the file 'slolab proxy' writes; 'slolab experiment history' lists
it). With --prometheus the SLIs come from Prometheus (a fleet of proxies);
faults still go through --admin.

Ctrl-C removes every rule and the grouping before exiting; if the runner is
killed outright, the leases (spec.lease, default 30s) end them.

Exit status: 0 the hypothesis held; 1 it did not (failed, aborted, refused,
interrupted); 2 usage; 3 invalid spec.`,
		Example: `  slolab experiment run examples/chat-experiments.yaml --name update-errors
  slolab experiment run experiments.yaml service.yaml --admin http://127.0.0.1:9090 -o json
  slolab experiment run exp.yaml --report-dir reports --format md,json --quiet`,
		Args: minArgs("the spec file holding the experiment"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkOutput(output); err != nil {
				return err
			}
			if err := rf.check(); err != nil {
				return err
			}
			client, err := a.client()
			if err != nil {
				return err
			}
			c, err := loadExperiments(args, name)
			if err != nil {
				return err
			}
			client.SetActor("experiment " + c.Experiment.Name)
			var view experiment.View = experiment.AdminView{Client: client}
			if prometheus != "" {
				p, err := promql.New(promql.Config{URL: prometheus, Service: c.Service, Matchers: matchers})
				if err != nil {
					return usageErrorf("--prometheus: %v", err)
				}
				view = experiment.SourceView{Source: p}
			}
			st, err := rec.open(e.ctx)
			if err != nil {
				return err
			}
			if st != nil {
				defer closeStore(e, st)
			}
			pr := &progress{w: e.stderr, quiet: quiet}
			rep, err := experiment.Run(e.ctx, experiment.Config{Compiled: c, Proxy: client, View: view, OnEvent: pr.event})
			if err != nil {
				return err
			}
			if err := recordExperiment(e.ctx, st, c.Service.Name, experiment.Entry{Experiment: rep.Experiment, Verdict: rep.Verdict, Reason: rep.Reason, Report: rep}); err != nil {
				fmt.Fprintf(e.stderr, "slolab: keeping the record: %v\n", err)
			}
			werr := rf.write(e.stderr, rep.Experiment, rep.Started, experimentRenderers(rep))
			if output == "json" {
				err = rep.WriteJSON(e.stdout)
			} else {
				err = printExperimentSummary(e.stdout, rep)
			}
			if err = errors.Join(err, werr); err != nil {
				return err
			}
			if rep.ExitCode() != 0 {
				return errSilentFailure
			}
			return nil
		},
	}
	a.add(cmd, e)
	rf.add(cmd)
	rec.add(cmd, e)
	cmd.Flags().StringVar(&name, "name", "", "the experiment to run, when the files hold several")
	cmd.Flags().StringVar(&prometheus, "prometheus", "", "read SLIs from Prometheus at this URL (a fleet of proxies) instead of the proxy's admin API; no groups or percentiles then")
	cmd.Flags().StringVar(&matchers, "prometheus-matchers", "", `extra label matchers for slolab's metrics, e.g. 'job="chat-proxy"'`)
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "do not print every evaluation, only what changes")
	outputFlag(cmd.Flags(), &output)
	return cmd
}

// printExperimentSummary writes the verdict and the figures that decide it.
func printExperimentSummary(w io.Writer, rep *experiment.Report) error {
	fmt.Fprintf(w, "experiment %s: %s\n  %s\n", rep.Experiment, rep.Verdict, rep.Reason)
	if f := rep.Failed; f != nil {
		fmt.Fprintf(w, "  deciding expression (%s): %s\n", f.Section, f.Expr)
		for _, m := range f.Measures {
			fmt.Fprintf(w, "    %s = %s  (%s)\n", m.Call, m.Value, m.Detail)
		}
	}
	if len(rep.Faults) > 0 {
		fmt.Fprintln(w)
		t := newTable(w, "FAULT", "STEP", "STAGE", "ACTIONS", "INTENDED", "MATCHED", "INJECTED", "REALISED")
		for _, f := range rep.Faults {
			t.row(f.Fault, f.Step, f.Stage, f.Actions, f.Intended, f.Matched, f.Injected, f.Realised())
		}
		if err := t.flush(); err != nil {
			return err
		}
	}
	if len(rep.Comparison) > 0 {
		fmt.Fprintln(w)
		t := newTable(w, "CUJ", "GROUP", "REQUESTS", "FAILED", "AVAILABILITY", "P99", "WITHIN SLO")
		for _, c := range rep.Comparison {
			t.row(c.CUJ, "experiment", c.Experiment.Total, c.Experiment.Bad, fmt.Sprintf("%.4g%%", c.Experiment.Availability), c.Experiment.P99, yesNo(c.Experiment.WithinSLO))
			t.row(c.CUJ, "control", c.Control.Total, c.Control.Bad, fmt.Sprintf("%.4g%%", c.Control.Availability), c.Control.P99, yesNo(c.Control.WithinSLO))
		}
		if err := t.flush(); err != nil {
			return err
		}
		for _, c := range rep.Comparison {
			fmt.Fprintf(w, "  %s: %s\n", c.CUJ, c.Summary)
		}
	}
	for _, r := range rep.Recovery {
		if r.Recovered {
			fmt.Fprintf(w, "  recovery: %s met its SLOs again %s after the method\n", r.CUJ, r.After)
		} else {
			fmt.Fprintf(w, "  recovery: %s did not meet its SLOs within %s\n", r.CUJ, r.Waited)
		}
	}
	return nil
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

// checkExperiments compiles the experiments of one file (against services
// found in it, its serviceFile or the other files given) and checks its
// GameDays; it returns a line per document for validate.
func checkExperiments(path string, all []string, f *spec.File) ([]string, error) {
	if len(f.Experiments) == 0 && len(f.GameDays) == 0 {
		return nil, nil
	}
	others := slices.DeleteFunc(slices.Clone(all), func(p string) bool { return p == path })
	set, err := experiment.Load(append([]string{path}, others...), loadSpecFile)
	if err != nil {
		var se spec.Errors
		if !errors.As(err, &se) {
			return nil, err
		}
		// Errors in the other files given are theirs to report; errors in
		// this file or in files it refers to (a serviceFile) are this one's.
		var mine spec.Errors
		for _, x := range se {
			if !slices.Contains(others, x.Pos.File) {
				mine = append(mine, x)
			}
		}
		if len(mine) > 0 {
			return nil, mine
		}
		// Only other files are wrong; they report it themselves. Check this
		// file alone for its own lines.
		if set, err = experiment.Load([]string{path}, loadSpecFile); err != nil {
			return nil, nil
		}
	}
	var lines []string
	for _, x := range f.Experiments {
		c := set.Experiment(x.Name)
		if c == nil {
			continue
		}
		lines = append(lines, fmt.Sprintf("experiment %s on service %s: %d %s over %s, %d %s, %d %s, %d %s",
			x.Name, c.Service.Name, len(x.Method), plural(len(x.Method), "step", "steps"), spec.FormatDuration(x.MethodDuration()),
			len(c.SteadyState), plural(len(c.SteadyState), "hypothesis", "hypotheses"),
			len(c.AbortIf), plural(len(c.AbortIf), "guardrail", "guardrails"),
			len(c.Expect), plural(len(c.Expect), "expectation", "expectations")))
	}
	for _, g := range f.GameDays {
		kind := "unannounced"
		if g.Announced {
			kind = "announced"
		}
		lines = append(lines, fmt.Sprintf("GameDay %s: %d %s, %s", g.Name, len(g.Scenario), plural(len(g.Scenario), "experiment", "experiments"), kind))
	}
	return lines, nil
}

func experimentScheduleCmd(e *env) *cobra.Command {
	var (
		a       adminFlags
		rf      reportFlags
		rec     recordFlags
		history string
	)
	cmd := &cobra.Command{
		Use:   "schedule FILE... [--admin URL]",
		Short: "Run experiments on their cron schedules until stopped",
		Long: `Run every experiment of the files that has a spec.schedule (cron: minute
hour day-of-month month day-of-week, or @hourly, @daily; read in the
experiment's guardrails.timeZone, or CRON_TZ=Zone at its start), one at a
time, and only inside its allowed windows. A due time outside the windows, or
one that passes while another experiment runs, is skipped and recorded.

Every run writes its reports to --report-dir; every history entry is printed,
kept in the store (--store; see 'slolab experiment history') and, with
--history, appended to a file as a JSON line. Ctrl-C interrupts a
run under way (its faults are removed) and stops.

'slolab serve' runs the same scheduler next to its other duties.`,
		Example: `  slolab experiment schedule examples/chat-experiments.yaml --admin http://127.0.0.1:9090
  slolab experiment schedule experiments/*.yaml --history schedule.jsonl`,
		Args: minArgs("the spec files holding the experiments"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := rf.check(); err != nil {
				return err
			}
			client, err := a.client()
			if err != nil {
				return err
			}
			set, err := experiment.Load(args, loadSpecFile)
			if err != nil {
				return err
			}
			var st *sqlite.Store // opened once the schedule is known to be sound
			var hist *os.File
			if history != "" {
				if hist, err = os.OpenFile(history, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644); err != nil {
					return usageErrorf("--history: %v", err)
				}
				defer hist.Close()
			}
			s, err := newExperimentScheduler(e, client, set, &rf, &st, func(en experiment.Entry) {
				fmt.Fprintf(e.stdout, "%s  %-20s %-11s %s\n", en.Due.Local().Format("2006-01-02 15:04"), en.Experiment, en.Verdict, en.Reason)
				if hist != nil {
					if err := json.NewEncoder(hist).Encode(en); err != nil {
						fmt.Fprintf(e.stderr, "slolab: --history: %v\n", err)
					}
				}
			})
			if err != nil {
				return usageErrorf("%v", err)
			}
			if st, err = rec.open(e.ctx); err != nil {
				return err
			}
			if st != nil {
				defer closeStore(e, st)
			}
			if err := printUpcoming(e.stderr, set, s); err != nil {
				return err
			}
			return s.Run(e.ctx)
		},
	}
	a.add(cmd, e)
	rf.add(cmd)
	rec.add(cmd, e)
	cmd.Flags().StringVar(&history, "history", "", "append every history entry to this file as a JSON line")
	return cmd
}

// newExperimentScheduler is the scheduler of 'slolab experiment schedule' and
// 'slolab serve --experiments': each due experiment runs through the proxy's
// admin API as 'experiment run' runs it, its reports go to rf, and every
// history entry is kept in *st (read when the entry comes, so the store may
// be opened after the schedule is checked; nil keeps no record) and then
// handed to onEntry.
func newExperimentScheduler(e *env, client *admin.Client, set *experiment.Set, rf *reportFlags, st **sqlite.Store, onEntry func(experiment.Entry)) (*experiment.Scheduler, error) {
	pr := &progress{w: e.stderr, quiet: true}
	return experiment.NewScheduler(experiment.SchedulerConfig{
		Experiments: set.Experiments,
		Run: func(ctx context.Context, c *experiment.Compiled) (*experiment.Report, error) {
			client.SetActor("scheduled experiment " + c.Experiment.Name)
			rep, err := experiment.Run(ctx, experiment.Config{Compiled: c, Proxy: client, View: experiment.AdminView{Client: client}, OnEvent: pr.event})
			if err != nil {
				return nil, err
			}
			werr := rf.write(e.stderr, rep.Experiment, rep.Started, experimentRenderers(rep))
			if werr != nil {
				fmt.Fprintf(e.stderr, "slolab: %v\n", werr)
			}
			return rep, nil
		},
		OnEntry: func(en experiment.Entry) {
			if err := recordExperiment(e.ctx, *st, set.Experiment(en.Experiment).Service.Name, en); err != nil {
				fmt.Fprintf(e.stderr, "slolab: keeping the record: %v\n", err)
			}
			onEntry(en)
		},
	})
}

// printUpcoming prints each scheduled experiment's schedule and next due time.
func printUpcoming(w io.Writer, set *experiment.Set, s *experiment.Scheduler) error {
	t := newTable(w, "EXPERIMENT", "SCHEDULE", "NEXT")
	for _, u := range s.Upcoming() {
		t.row(u.Experiment, experiment.ScheduleSummary(set.Experiment(u.Experiment).Experiment), u.Due.Local().Format("Mon 2006-01-02 15:04 MST"))
	}
	return t.flush()
}
