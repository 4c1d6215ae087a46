package cli

import (
	"bytes"
	"context"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"slolab.dev/slolab/experiment"
	"slolab.dev/slolab/spec"
	"slolab.dev/slolab/store/sqlite"
)

// recordFlags say where experiments keep their record.
type recordFlags struct {
	store string
}

func (r *recordFlags) add(cmd *cobra.Command, e *env) {
	envFlag(cmd.Flags(), &r.store, "store", "SLOLAB_STORE", DefaultStore, e.getenv, `embedded store to keep the record of runs in, the one 'slolab proxy' writes ("-" for none)`)
}

// open opens the store, or returns nil when recording is off.
func (r *recordFlags) open(ctx context.Context) (*sqlite.Store, error) {
	if r.store == "" || r.store == "-" {
		return nil, nil
	}
	return sqlite.Open(ctx, sqlite.Config{Path: r.store})
}

// recordExperiment keeps an experiment's report (or a skipped due time) in the store.
func recordExperiment(ctx context.Context, st *sqlite.Store, service string, en experiment.Entry) error {
	if st == nil {
		return nil
	}
	run := sqlite.ExperimentRun{Kind: "experiment", Name: en.Experiment, Service: service, Verdict: string(en.Verdict), Reason: en.Reason,
		Due: en.Due, Started: en.Started, Ended: en.Ended}
	if en.Report != nil {
		var b bytes.Buffer
		if err := en.Report.WriteJSON(&b); err != nil {
			return err
		}
		run.Report = b.Bytes()
		run.Started, run.Ended = en.Report.Started, en.Report.Ended
	}
	if run.Started.IsZero() { // a skip: it happened at its due time
		run.Started, run.Ended = en.Due, en.Due
	}
	_, err := st.AddExperimentRun(context.WithoutCancel(ctx), run)
	return err
}

func recordGameDay(ctx context.Context, st *sqlite.Store, rep *experiment.GameDayReport, service string) error {
	if st == nil {
		return nil
	}
	var b bytes.Buffer
	if err := rep.WriteJSON(&b); err != nil {
		return err
	}
	verdict := experiment.Held
	for _, x := range rep.Experiments {
		if x.Verdict != experiment.Held {
			verdict = x.Verdict
		}
	}
	reason := fmt.Sprintf("detected after %s, recovered after %s", orNotReached(rep.Figures.TimeToDetect), orNotReached(rep.Figures.TimeToRecover))
	_, err := st.AddExperimentRun(context.WithoutCancel(ctx), sqlite.ExperimentRun{Kind: "gameday", Name: rep.GameDay, Service: service,
		Verdict: string(verdict), Reason: reason, Started: rep.Started, Ended: rep.Ended, Report: b.Bytes()})
	return err
}

// orNotReached writes a GameDay figure; zero means the moment never came.
func orNotReached(d spec.Duration) string {
	if d == 0 {
		return "never"
	}
	return d.String()
}

func experimentHistoryCmd(e *env) *cobra.Command {
	var (
		rf     recordFlags
		name   string
		limit  int
		output string
	)
	cmd := &cobra.Command{
		Use:   "history [--name NAME] [--store PATH]",
		Short: "List the recorded runs of experiments and GameDays",
		Long: `List what 'slolab experiment run', 'experiment schedule' and 'gameday run'
recorded in the store: each run's verdict and reason, and the due times a
schedule skipped. -o json includes each run's whole report.`,
		Example: "  slolab experiment history\n  slolab experiment history --name update-errors -o json",
		Args:    exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkOutput(output); err != nil {
				return err
			}
			st, err := rf.open(e.ctx)
			if err != nil {
				return err
			}
			if st == nil {
				return usageErrorf("--store: give the store to read")
			}
			defer closeStore(e, st)
			runs, err := st.ExperimentRuns(e.ctx, name, limit, output == "json")
			if err != nil {
				return err
			}
			if output == "json" {
				type withReport struct {
					sqlite.ExperimentRun
					Report jsonRaw `json:"report,omitempty"`
				}
				out := make([]withReport, len(runs))
				for i, r := range runs {
					out[i] = withReport{r, jsonRaw(r.Report)}
				}
				return writeJSON(e.stdout, out)
			}
			t := newTable(e.stdout, "STARTED", "KIND", "NAME", "VERDICT", "TOOK", "REASON")
			for _, r := range runs {
				t.row(r.Started.Local().Format("2006-01-02 15:04"), r.Kind, r.Name, r.Verdict, r.Ended.Sub(r.Started).Round(time.Second), r.Reason)
			}
			return t.flush()
		},
	}
	rf.add(cmd, e)
	cmd.Flags().StringVar(&name, "name", "", "only this experiment or GameDay")
	cmd.Flags().IntVar(&limit, "limit", 50, "at most this many runs, newest first")
	outputFlag(cmd.Flags(), &output)
	return cmd
}

// jsonRaw embeds stored JSON as is (null when absent).
type jsonRaw []byte

// MarshalJSON implements json.Marshaler.
func (j jsonRaw) MarshalJSON() ([]byte, error) {
	if len(j) == 0 {
		return []byte("null"), nil
	}
	return bytes.TrimSpace(j), nil
}

// closeStore closes the store, saying so when that fails.
func closeStore(e *env, st *sqlite.Store) {
	if err := st.Close(); err != nil {
		fmt.Fprintf(e.stderr, "slolab: closing the store: %v\n", err)
	}
}
