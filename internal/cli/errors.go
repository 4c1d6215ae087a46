package cli

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/spf13/cobra"

	slolab "slolab.dev/slolab"

	"slolab.dev/slolab/errclass"
	"slolab.dev/slolab/notify"
	rpt "slolab.dev/slolab/report"
	"slolab.dev/slolab/slo"
	"slolab.dev/slolab/spec"
)

func errorsCmd(e *env) *cobra.Command {
	var (
		src           sourceFlags
		output, color string
		since         = durationFlag(24 * time.Hour)
		baseline      = durationFlag(7 * spec.Day)
		webhook       string
	)
	cmd := &cobra.Command{
		Use:   "errors [--since 24h] [--baseline 7d] [--store PATH]",
		Short: "Show the error classes new in a window: what fails today that never failed before",
		Long: `Show the error classes the proxy saw in the last --since and not in the
--baseline before it, most frequent first, with the first example of each and
the SLO impact on its CUJ.

'slolab proxy' sorts every failed request (5xx, an aborted response, an
upstream it could not reach, one that timed out or broke off, a TCP fault)
into a class: CUJ, route, status or failure kind, and a signature of the
response body's first 4 KiB. For JSON the signature is its error fields
(error, message, code, type, title, detail, ...); for other bodies the text.
Numbers, UUIDs, hex ids, timestamps and quoted values are masked, so "user
123 not found" and "user 456 not found" are one class. The proxy keeps at
most --error-classes classes per CUJ (least recently seen dropped first,
counted in slolab_error_classes_dropped_total) and writes them to its store.

Requests a fault rule changed are classes of their own, listed apart, so a
simulation or an experiment does not flood the report.

Counts are per hour: the window begins at the start of the hour --since
reaches back into, and the baseline ends there. --webhook posts the summary
as Slack-compatible JSON ({"text": ...}), for a daily cron job.`,
		Example: `  slolab errors
  slolab errors --since 1h --baseline 30d --store /var/lib/slolab/chat.db
  slolab errors -o json | jq '.classes[] | {cuj, signature, count}'
  slolab errors --webhook https://hooks.slack.com/services/T000/B000/XXXX   # daily, from cron`,
		Args: exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkOutput(output); err != nil {
				return err
			}
			colour, err := colourFor(e, e.stdout, color)
			if err != nil {
				return err
			}
			if since <= 0 {
				return usageErrorf("--since must be positive, got %s", since.String())
			}
			if _, err := os.Stat(src.store); err != nil {
				return slolab.Errorf(slolab.NotFound, "no store at %s: error classes are kept by 'slolab proxy --store %s ...'", src.store, src.store)
			}
			svc, s, err := src.open(e.ctx, cmd)
			if err != nil {
				return err
			}
			defer s.Close()
			now, err := s.instant(e.ctx, time.Now())
			if err != nil {
				return err
			}
			ne, err := newErrors(e.ctx, svc, s, now, time.Duration(since), time.Duration(baseline))
			if err != nil {
				return err
			}
			if webhook != "" {
				if err := notify.PostText(e.ctx, nil, webhook, rpt.NewErrorsText(ne)); err != nil {
					return err
				}
				fmt.Fprintf(e.stderr, "slolab errors: posted the summary to the webhook (%d new classes)\n", len(ne.Classes))
			}
			if output == "json" {
				return writeJSON(e.stdout, ne)
			}
			return rpt.NewErrorsTable(e.stdout, ne, colour)
		},
	}
	src.addStore(cmd, e)
	outputFlag(cmd.Flags(), &output)
	fs := cmd.Flags()
	fs.StringVar(&color, "color", "auto", "colour the table: auto (on a terminal, unless NO_COLOR is set), always or never")
	fs.Var(&since, "since", "the window to look for new error classes in, back from now (e.g. 24h, 1d)")
	fs.Var(&baseline, "baseline", "the span before the window a class must be absent from to count as new, e.g. 7d or 30d (0: every class of the window)")
	fs.StringVar(&webhook, "webhook", "", "post the summary as Slack-compatible JSON ({\"text\": ...}) to this URL")
	return cmd
}

// addStore adds --spec and --store: error classes live in the store alone.
func (f *sourceFlags) addStore(cmd *cobra.Command, e *env) {
	fs := cmd.Flags()
	fs.StringVar(&f.specPath, "spec", "", "the service spec with the CUJs and their SLOs (default: the spec the store was written under)")
	envFlag(fs, &f.store, "store", "SLOLAB_STORE", DefaultStore, e.getenv, "the embedded store 'slolab proxy --store' writes")
}

// newErrors reads the store's error classes of the hours back to since
// before now and of the baseline before them, and the SLO impact on their
// CUJs.
func newErrors(ctx context.Context, svc *spec.Service, s *source, now time.Time, since, baseline time.Duration) (rpt.NewErrors, error) {
	from := now.Add(-since).Truncate(time.Hour)
	window := slo.Range{From: from, To: now}
	base := slo.Range{From: from.Add(-baseline), To: from}
	seen, err := s.store.ErrorClasses(ctx, window.From, window.To)
	if err != nil {
		return rpt.NewErrors{}, err
	}
	var before []errclass.Class
	if baseline > 0 {
		if before, err = s.store.ErrorClasses(ctx, base.From, base.To); err != nil {
			return rpt.NewErrors{}, err
		}
	}
	events, err := s.Events(ctx, window)
	if err != nil {
		return rpt.NewErrors{}, err
	}
	status, err := slo.Evaluate(ctx, svc, s, now)
	if err != nil {
		return rpt.NewErrors{}, err
	}
	ne := rpt.BuildNewErrors(seen, before, events, status)
	ne.Service, ne.Source, ne.Window, ne.Baseline = svc.Name, s.describe, window, base
	ne.Since, ne.BaselineSpan = spec.Duration(since), spec.Duration(baseline)
	return ne, nil
}
