package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"slolab.dev/slolab/experiment"
	"slolab.dev/slolab/internal/httpserve"
	"slolab.dev/slolab/proxy/admin"
	"slolab.dev/slolab/spec"
)

const defaultGameDayAddr = "127.0.0.1:9192"

func gamedayCmd(e *env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "gameday",
		Short: "Run GameDays and record what responders do",
		Long: `Run a GameDay (kind: GameDay): a scenario of experiments, announced to the
responders or not. The timeline records when each fault began and ended, when
burn-rate alerts fired and resolved, and what responders report with
'slolab gameday ack|mitigate|note'. The retrospective gives the time to
detect, acknowledge, mitigate and recover.`,
	}
	cmd.AddCommand(gamedayRunCmd(e),
		gamedayReportCmd(e, experiment.ResponseAck, "Acknowledge: you are on it", `slolab gameday ack "looking at update errors"`),
		gamedayReportCmd(e, experiment.ResponseMitigate, "Report a mitigation (by default it ends the running experiment's faults)", `slolab gameday mitigate "rolled back to v41"`),
		gamedayReportCmd(e, experiment.ResponseNote, "Put a note on the timeline", `slolab gameday note "the dashboard link in the runbook is dead"`),
		gamedayTimelineCmd(e))
	return cmd
}

// gamedayFlags find a running GameDay's responder API.
type gamedayFlags struct {
	url   string
	token string
}

func (g *gamedayFlags) add(cmd *cobra.Command, e *env) {
	envFlag(cmd.Flags(), &g.url, "gameday", "SLOLAB_GAMEDAY_URL", "http://"+defaultGameDayAddr, e.getenv, "the running GameDay")
	secretFlag(cmd.Flags(), &g.token, "token", "SLOLAB_GAMEDAY_TOKEN", e.getenv, "the GameDay's token, if it has one (default $SLOLAB_GAMEDAY_TOKEN)")
}

func (g *gamedayFlags) client() (*experiment.ResponderClient, error) {
	if !strings.Contains(g.url, "://") {
		g.url = "http://" + g.url
	}
	c, err := experiment.NewResponderClient(g.url, g.token)
	if err != nil {
		return nil, usageErrorf("--gameday: %v", err)
	}
	return c, nil
}

func gamedayReportCmd(e *env, kind, short, example string) *cobra.Command {
	var (
		g   gamedayFlags
		who string
	)
	cmd := &cobra.Command{
		Use:   kind + " TEXT",
		Short: short,
		Long: short + `.

The entry goes on the running GameDay's timeline with the time it arrived
and who sent it; the retrospective counts the first ack as acknowledgement
and the first mitigation as the mitigation.`,
		Example: "  " + example + "\n  SLOLAB_GAMEDAY_URL=http://gameday.internal:9192 " + example + " --who alex",
		Args:    exactArgs(1, "the TEXT to record (quote it)"),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			r, err := c.Report(e.ctx, experiment.Response{Kind: kind, Who: who, Text: args[0]})
			if err != nil {
				return err
			}
			fmt.Fprintf(e.stdout, "recorded %s at %s by %s\n", r.Kind, r.At.Local().Format("15:04:05"), orSomeone(r.Who))
			return nil
		},
	}
	g.add(cmd, e)
	cmd.Flags().StringVar(&who, "who", e.getenv("USER"), "who is reporting (default $USER)")
	return cmd
}

func orSomeone(who string) string {
	if who == "" {
		return "someone"
	}
	return who
}

func gamedayTimelineCmd(e *env) *cobra.Command {
	var (
		g      gamedayFlags
		output string
	)
	cmd := &cobra.Command{
		Use:     "timeline",
		Short:   "Show a running GameDay's timeline so far",
		Example: "  slolab gameday timeline\n  slolab gameday timeline -o json --gameday http://127.0.0.1:9192",
		Args:    exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkOutput(output); err != nil {
				return err
			}
			c, err := g.client()
			if err != nil {
				return err
			}
			tl, err := c.Timeline(e.ctx)
			if err != nil {
				return err
			}
			if output == "json" {
				return writeJSON(e.stdout, tl)
			}
			t := newTable(e.stdout, "TIME", "WHO", "WHAT")
			for _, en := range tl.Timeline {
				who := en.Who
				if who == "" {
					who = "-"
				}
				t.row(en.At.Local().Format("15:04:05"), who, en.Text)
			}
			return t.flush()
		},
	}
	g.add(cmd, e)
	outputFlag(cmd.Flags(), &output)
	return cmd
}

func gamedayRunCmd(e *env) *cobra.Command {
	var (
		a      adminFlags
		rf     reportFlags
		rec    recordFlags
		name   string
		listen string
		allow  []string
		token  string
		output string
	)
	cmd := &cobra.Command{
		Use:   "run FILE... [--name GAMEDAY] [--admin URL] [--listen ADDR]",
		Short: "Run a GameDay's scenario and write its retrospective",
		Long: `Run a GameDay against a running 'slolab proxy'.

The scenario's experiments run in order (each waits its 'after'), with their
hypotheses, guardrails and leases as in 'slolab experiment run'. Meanwhile
every burn-rate alert of the service's CUJs (its alerting table, or the SRE
Workbook's) is evaluated every interval over the proxy's windows, and
responders report on --listen with 'slolab gameday ack|mitigate|note'. A
mitigation ends the running experiment's faults unless the GameDay sets
endOnMitigate: false. After the last experiment the timeline stays open until
every alert resolved (at most spec.wrapUp).

The retrospective (Markdown and JSON) and each experiment's report go to
--report-dir; the figures are printed.

Exit status: 0 when every experiment's hypothesis held, 1 otherwise.`,
		Example: `  slolab gameday run examples/chat-experiments.yaml
  SLOLAB_GAMEDAY_TOKEN=$(openssl rand -hex 16) slolab gameday run drill.yaml --listen 0.0.0.0:9192 --allow-host gameday-host
  # responders, elsewhere:
  slolab gameday ack "on it" --gameday http://gameday-host:9192`,
		Args: minArgs("the spec file holding the GameDay"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkOutput(output); err != nil {
				return err
			}
			if err := rf.check(); err != nil {
				return err
			}
			if err := admin.CheckListen(listen, token); err != nil {
				msg := strings.NewReplacer("the admin API", "the responder API", "SLOLAB_ADMIN_TOKEN (or --admin-token)", "SLOLAB_GAMEDAY_TOKEN (or --token)").Replace(err.Error())
				return usageErrorf("--listen: %s", msg)
			}
			client, err := a.client()
			if err != nil {
				return err
			}
			set, err := experiment.Load(args, loadSpecFile)
			if err != nil {
				return err
			}
			g, err := pickGameDay(set, name, args)
			if err != nil {
				return err
			}
			ln, err := net.Listen("tcp", listen)
			if err != nil {
				return fmt.Errorf("--listen: %w", err)
			}
			var mu sync.Mutex
			var timeline []experiment.TimelineEntry
			responses := make(chan experiment.Response)
			api := &experiment.ResponderAPI{Name: g.Name, Token: token, Listen: ln.Addr().String(), AllowHosts: allow, Out: responses, Timeline: func() []experiment.TimelineEntry {
				mu.Lock()
				defer mu.Unlock()
				return append([]experiment.TimelineEntry{}, timeline...)
			}}
			handler, err := api.Handler()
			if err != nil {
				ln.Close()
				return usageErrorf("%v", err)
			}
			srvDone := make(chan error, 1)
			// The responder API outlives Ctrl-C long enough for the GameDay to wind down.
			srvCtx, stopSrv := context.WithCancel(context.WithoutCancel(e.ctx))
			go func() {
				srvDone <- httpserve.Serve(srvCtx, ln, handler, httpserve.Options{Drain: 2 * time.Second})
			}()
			url := "http://" + ln.Addr().String()
			fmt.Fprintf(e.stderr, "slolab gameday %s: responders report with: slolab gameday ack|mitigate|note \"text\" --gameday %s\n", g.Name, url)
			if g.Announced {
				fmt.Fprintf(e.stderr, "slolab gameday %s: announced to %s\n", g.Name, orSomeone(strings.Join(g.Responders, ", ")))
			}
			st, err := rec.open(e.ctx)
			if err != nil {
				stopSrv()
				<-srvDone
				return err
			}
			if st != nil {
				defer closeStore(e, st)
			}
			client.SetActor("gameday " + g.Name)
			pr := &progress{w: e.stderr}
			rep, err := experiment.RunGameDay(e.ctx, experiment.GameDayConfig{
				GameDay: g, Set: set, Proxy: client, View: experiment.AdminView{Client: client}, Responses: responses,
				OnEntry: func(en experiment.TimelineEntry) {
					mu.Lock()
					timeline = append(timeline, en)
					mu.Unlock()
					who := ""
					if en.Who != "" {
						who = en.Who + ": "
					}
					pr.line(en.At, who+en.Text)
				},
			})
			stopSrv()
			if serr := <-srvDone; serr != nil {
				fmt.Fprintf(e.stderr, "slolab: responder API: %v\n", serr)
			}
			if err != nil {
				return err
			}
			service := ""
			if c := set.Experiment(g.Scenario[0].Experiment); c != nil {
				service = c.Service.Name
			}
			werr := recordGameDay(e.ctx, st, rep, service)
			for _, x := range rep.Experiments {
				werr = errors.Join(werr, recordExperiment(e.ctx, st, x.Service, experiment.Entry{Experiment: x.Experiment, Verdict: x.Verdict, Reason: x.Reason, Report: x}))
			}
			werr = errors.Join(werr, rf.write(e.stderr, rep.GameDay, rep.Started, map[string]func(io.Writer) error{"md": rep.WriteMarkdown, "json": rep.WriteJSON}))
			for _, x := range rep.Experiments {
				werr = errors.Join(werr, rf.write(e.stderr, x.Experiment, x.Started, experimentRenderers(x)))
			}
			if output == "json" {
				err = rep.WriteJSON(e.stdout)
			} else {
				err = printFigures(e.stdout, rep)
			}
			if err = errors.Join(err, werr); err != nil {
				return err
			}
			for _, x := range rep.Experiments {
				if x.ExitCode() != 0 {
					return errSilentFailure
				}
			}
			return nil
		},
	}
	a.add(cmd, e)
	rf.add(cmd)
	rec.add(cmd, e)
	cmd.Flags().StringVar(&name, "name", "", "the GameDay to run, when the files hold several")
	cmd.Flags().StringVar(&listen, "listen", defaultGameDayAddr, "address of the responder API that 'slolab gameday ack|mitigate|note' report to")
	secretFlag(cmd.Flags(), &token, "token", "SLOLAB_GAMEDAY_TOKEN", e.getenv, "token responders must send (default $SLOLAB_GAMEDAY_TOKEN), at least 16 characters; required beyond loopback")
	cmd.Flags().StringArrayVar(&allow, "allow-host", nil, "a DNS name responders reach the responder API by (its Host header), besides its address and localhost; repeatable")
	outputFlag(cmd.Flags(), &output)
	return cmd
}

func pickGameDay(set *experiment.Set, name string, paths []string) (*spec.GameDay, error) {
	var names []string
	for _, g := range set.GameDays {
		if g.Name == name {
			return g, nil
		}
		names = append(names, g.Name)
	}
	switch {
	case name != "":
		return nil, usageErrorf("--name %s: no such GameDay in %s (there are: %s)", name, strings.Join(paths, ", "), orNone(names))
	case len(set.GameDays) == 1:
		return set.GameDays[0], nil
	case len(set.GameDays) == 0:
		return nil, usageErrorf("%s holds no GameDay document", strings.Join(paths, ", "))
	}
	return nil, usageErrorf("%s holds %d GameDays; choose one with --name (%s)", strings.Join(paths, ", "), len(set.GameDays), strings.Join(names, ", "))
}

func printFigures(w io.Writer, rep *experiment.GameDayReport) error {
	f := rep.Figures
	fmt.Fprintf(w, "GameDay %s\n", rep.GameDay)
	t := newTable(w, "", "AFTER THE FAULT BEGAN", "AT")
	row := func(name string, at time.Time, d spec.Duration) {
		if at.IsZero() {
			t.row(name, "not reached", "-")
			return
		}
		t.row(name, d, at.Local().Format("15:04:05"))
	}
	row("detected", f.Detected, f.TimeToDetect)
	row("acknowledged", f.Acked, f.TimeToAcknowledge)
	row("mitigated", f.Mitigated, f.TimeToMitigate)
	row("recovered", f.Recovered, f.TimeToRecover)
	if err := t.flush(); err != nil {
		return err
	}
	if f.DetectedBy != "" {
		fmt.Fprintf(w, "  detected by %s\n", f.DetectedBy)
	}
	for _, a := range rep.Alerts {
		fmt.Fprintf(w, "  alert %s fired at %s\n", a, a.Fired.Local().Format("15:04:05"))
	}
	for _, x := range rep.Experiments {
		fmt.Fprintf(w, "  experiment %s: %s: %s\n", x.Experiment, x.Verdict, x.Reason)
	}
	return nil
}
