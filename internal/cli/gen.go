package cli

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"slolab.dev/slolab/gen"
	"slolab.dev/slolab/gen/argo"
	"slolab.dev/slolab/gen/chaosmesh"
	"slolab.dev/slolab/gen/datadog"
	"slolab.dev/slolab/gen/grafana"
	"slolab.dev/slolab/gen/openslo"
	"slolab.dev/slolab/gen/promrules"
	"slolab.dev/slolab/spec"
)

// genFlags are the flags every target shares.
type genFlags struct {
	spec string
	out  string
}

func (f *genFlags) add(cmd *cobra.Command) {
	cmd.Flags().StringVarP(&f.spec, "spec", "f", "", "the service spec (.yaml, .json or .cue)")
	cmd.Flags().StringVarP(&f.out, "out", "o", "", "write the files into this directory (created if missing) instead of printing them")
}

// genTargets is the closed set of generators, one subcommand each.
func genTargets(e *env) []*cobra.Command {
	return []*cobra.Command{
		genPrometheusCmd(e),
		genArgoCmd(e),
		genChaosMeshCmd(e),
		genGrafanaCmd(e),
		genDatadogCmd(e),
		genOpenSLOCmd(e),
	}
}

func genCmd(e *env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "gen TARGET -f SPEC [-o DIR]",
		Short: "Generate rules, dashboards and manifests for other tools from a spec",
		Long: `Generate what other tools need from one spec, so no query is kept in two places.

Targets:
  prometheus      recording rules and multiwindow multi-burn-rate alerts
  grafana         a dashboard per service
  argo-rollouts   AnalysisTemplates per CUJ and a Rollout snippet
  chaos-mesh      HTTPChaos manifests from fault rules
  datadog         Terraform JSON: SLOs and burn-rate monitors
  openslo         OpenSLO v1 documents

Every target is a pure function of the spec: the same spec, in YAML or CUE,
always gives the same bytes. Without -o the files go to stdout (YAML documents
separated by ---); with -o DIR each file is written into DIR. What a target
cannot express exactly is said on stderr and, where the format allows, in a
comment in the output.`,
		Example: `  slolab gen prometheus -f examples/chat.yaml > chat.rules.yaml
  slolab gen prometheus -f examples/chat.cue --prometheus-rule -o deploy/
  slolab gen grafana -f examples/chat.yaml -o dashboards/`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				return usageErrorf("gen needs a target\nRun 'slolab gen --help' for the list.")
			}
			return usageErrorf("unknown gen target %q\nRun 'slolab gen --help' for the list.", args[0])
		},
		RunE: func(*cobra.Command, []string) error { return nil },
	}
	cmd.AddCommand(genTargets(e)...)
	return cmd
}

// runGen loads the spec, runs a generator and writes what it made.
func runGen(e *env, cmd *cobra.Command, f *genFlags, generate func(*spec.Service) (*gen.Output, error)) error {
	if f.spec == "" {
		return usageErrorf("%s needs a spec: -f FILE\nRun '%s --help' for usage.", cmd.CommandPath(), cmd.CommandPath())
	}
	svc, err := loadService(f.spec)
	if err != nil {
		return err
	}
	out, err := generate(svc)
	if err != nil {
		return err
	}
	for _, n := range out.Notes {
		fmt.Fprintf(e.stderr, "%s: note: %s\n", cmd.CommandPath(), n)
	}
	return writeGenerated(e, f.out, out.Files)
}

// writeGenerated writes files into dir, or to stdout when dir is empty.
func writeGenerated(e *env, dir string, files []gen.File) error {
	if dir == "" {
		if len(files) > 1 && !allYAML(files) {
			names := make([]string, len(files))
			for i, f := range files {
				names[i] = f.Name
			}
			return usageErrorf("this target makes %d files (%s); give -o DIR to write them", len(files), strings.Join(names, ", "))
		}
		for i, f := range files {
			if i > 0 {
				fmt.Fprintln(e.stdout, "---")
			}
			if _, err := e.stdout.Write(f.Data); err != nil {
				return err
			}
		}
		return nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for _, f := range files {
		path := filepath.Join(dir, f.Name)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return err
		}
		if old, err := os.ReadFile(path); err == nil && bytes.Equal(old, f.Data) {
			fmt.Fprintf(e.stderr, "%s: unchanged\n", path)
			continue
		}
		if err := os.WriteFile(path, f.Data, 0o644); err != nil {
			return err
		}
		fmt.Fprintf(e.stderr, "%s: written\n", path)
	}
	return nil
}

func allYAML(files []gen.File) bool {
	for _, f := range files {
		if ext := filepath.Ext(f.Name); ext != ".yaml" && ext != ".yml" {
			return false
		}
	}
	return true
}

func genPrometheusCmd(e *env) *cobra.Command {
	var f genFlags
	var opt promrules.Options
	var labels []string
	cmd := &cobra.Command{
		Use:   "prometheus -f SPEC [-o DIR]",
		Short: "Recording rules and multiwindow multi-burn-rate alerts",
		Long: `Generate Prometheus rules for every SLO of the spec: one rule group per CUJ and SLI
with the error ratio over every window of its alert table, the error budget
left, and one alert per row of the table (the SRE Workbook's unless the spec
sets its own), labelled severity, long_window and short_window.

Windows up to 6h are computed from the counters; longer ones (1d, 3d, the SLO
window) are the ratio of summed 5m increases, which is exact and cheap
(docs/generators.md). CUJs with queries in the spec use those instead of
slolab's own metrics. Check the output with 'promtool check rules'.`,
		Example: `  slolab gen prometheus -f examples/chat.yaml > chat.rules.yaml
  slolab gen prometheus -f chat.cue --matchers 'job="chat-proxy"' \
      --runbook-url 'https://wiki.example.com/runbooks/{{.cuj}}'
  slolab gen prometheus -f chat.yaml --prometheus-rule --namespace monitoring \
      --label release=kube-prometheus-stack -o deploy/`,
		Args: exactArgs(0, "no arguments (the spec is -f FILE)"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			opt.Labels = map[string]string{}
			for _, l := range labels {
				k, v, ok := strings.Cut(l, "=")
				if !ok || k == "" {
					return usageErrorf("--label wants KEY=VALUE, got %q", l)
				}
				opt.Labels[k] = v
			}
			return runGen(e, cmd, &f, func(svc *spec.Service) (*gen.Output, error) { return promrules.Generate(svc, opt) })
		},
	}
	f.add(cmd)
	fs := cmd.Flags()
	fs.StringVar(&opt.Matchers, "matchers", "", `extra label matchers for slolab's metrics, e.g. 'job="chat-proxy"'`)
	fs.StringVar(&opt.RunbookURL, "runbook-url", "", "runbook_url annotation; may use {{.service}}, {{.cuj}} and {{.slo}}")
	fs.StringVar(&opt.DashboardURL, "dashboard-url", "", "dashboard_url annotation (default: the 'slolab gen grafana' dashboard on --grafana-url)")
	fs.StringVar(&opt.GrafanaURL, "grafana-url", promrules.DefaultGrafanaURL, "Grafana's address, for the default dashboard link")
	fs.BoolVar(&opt.PrometheusRule, "prometheus-rule", false, "wrap the rules in a prometheus-operator PrometheusRule")
	fs.StringVar(&opt.Namespace, "namespace", "", "the PrometheusRule's namespace")
	fs.StringArrayVar(&labels, "label", nil, "KEY=VALUE label of the PrometheusRule (repeatable), e.g. for the operator's ruleSelector")
	// For tests only: divide every window by N so a real Prometheus fires a
	// 1h/5m alert within seconds (1h becomes 1m with 60). Hidden from help.
	fs.IntVar(&opt.TimeScale, "test-time-scale", 0, "for tests only: divide every window by N")
	_ = fs.MarkHidden("test-time-scale")
	return cmd
}

func genArgoCmd(e *env) *cobra.Command {
	var f genFlags
	var opt argo.Options
	var maxBurn, noData string
	cmd := &cobra.Command{
		Use:   "argo-rollouts -f SPEC [-o DIR]",
		Short: "AnalysisTemplates that judge a canary per CUJ, and a Rollout snippet",
		Long: `Generate Argo Rollouts AnalysisTemplates: per CUJ, one that reads the canary's
error ratio for each SLO from Prometheus, and one (NAME-verdict) that asks
'slolab canary serve' for the CUJ's verdict with the web provider. Metric names
carry the CUJ, so they stay unique when Argo merges the templates into one
AnalysisRun; rollout-snippet.yaml shows a Rollout running them all, which
passes only when every CUJ passes.

A canary passes a measurement when its error ratio over --window is at most
--max-burn-rate times the SLO's budget; with no traffic the measurement is
inconclusive, not a pass (so is the verdict endpoint's "inconclusive": too
few requests for its exact tests). An analysis whose every measurement was
inconclusive never ends Successful: --no-data inconclusive (the default) ends
it Inconclusive, so the Rollout pauses for a human; --no-data fail ends it
Failed, so the Rollout aborts.`,
		Example: `  slolab gen argo-rollouts -f examples/chat.yaml -o deploy/analysis/
  slolab gen argo-rollouts -f chat.cue --prometheus http://prometheus.obs:9090 \
      --canary-matchers 'pod_template_hash="{{args.canary-hash}}"' --window 10m`,
		Args: exactArgs(0, "no arguments (the spec is -f FILE)"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			r, err := spec.ParseRatio(maxBurn)
			if err != nil || r.IsZero() {
				return usageErrorf("--max-burn-rate wants a positive factor such as 1 or 2, got %q", maxBurn)
			}
			opt.MaxBurnRate = r
			if opt.Count < 1 {
				return usageErrorf("--count must be at least 1, got %d", opt.Count)
			}
			if opt.NoData, err = argo.ParseNoData(noData); err != nil {
				return usageErrorf("--no-data: %v", err)
			}
			return runGen(e, cmd, &f, func(svc *spec.Service) (*gen.Output, error) { return argo.Generate(svc, opt) })
		},
	}
	f.add(cmd)
	fs := cmd.Flags()
	fs.StringVar(&opt.PrometheusAddress, "prometheus", argo.DefaultPrometheusAddress, "Prometheus address for the prometheus provider")
	fs.StringVar(&opt.CanaryMatchers, "canary-matchers", argo.DefaultCanaryMatchers, "label matchers that select the canary's series")
	fs.DurationVar(&opt.Window, "window", 5*time.Minute, "the range each measurement's error ratio covers")
	fs.DurationVar(&opt.Interval, "interval", time.Minute, "time between measurements")
	fs.IntVar(&opt.Count, "count", 5, "number of measurements")
	fs.StringVar(&maxBurn, "max-burn-rate", "1", "the burn rate a canary may reach (1: it must meet the SLO)")
	fs.StringVar(&opt.VerdictURL, "verdict-url", argo.DefaultVerdictURL, "the verdict endpoint of 'slolab canary serve' for the web templates")
	fs.StringVar(&noData, "no-data", string(argo.NoDataInconclusive), "how an analysis ends when no measurement had data: inconclusive (pause) or fail (abort)")
	return cmd
}

func genChaosMeshCmd(e *env) *cobra.Command {
	var f genFlags
	var opt chaosmesh.Options
	var faults, selectors []string
	cmd := &cobra.Command{
		Use:   "chaos-mesh -f SPEC --fault RULE... [-o DIR]",
		Short: "HTTPChaos manifests from fault rules",
		Long: `Translate fault rules into Chaos Mesh HTTPChaos manifests, for teams who run
faults inside Kubernetes. A rule file is JSON or YAML, exactly as the admin API
takes it (PUT /api/v1/faults/{name}); the spec turns a rule's CUJ or route into
HTTPChaos paths and methods.

Chaos Mesh cannot express everything slolab does: it has no request rate (every
matching request is faulted), its delays are fixed, and a status answer still
calls the upstream. Each such difference is a comment in the manifest and a
note on stderr.`,
		Example: `  slolab gen chaos-mesh -f examples/chat.yaml --fault abort-update.yaml \
      --selector app=chat --namespace chat --port 8080
  slolab gen chaos-mesh -f chat.cue --fault a.json --fault b.yaml -o chaos/`,
		Args: exactArgs(0, "no arguments (the spec is -f FILE, the rules --fault FILE)"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if len(faults) == 0 {
				return usageErrorf("chaos-mesh needs at least one fault rule: --fault FILE\nRun '%s --help' for usage.", cmd.CommandPath())
			}
			opt.Selector = map[string]string{}
			for _, s := range selectors {
				k, v, ok := strings.Cut(s, "=")
				if !ok || k == "" {
					return usageErrorf("--selector wants LABEL=VALUE, got %q", s)
				}
				opt.Selector[k] = v
			}
			if opt.Port < 1 || opt.Port > 65535 {
				return usageErrorf("--port must be 1 to 65535, got %d", opt.Port)
			}
			var rules []*spec.FaultRule
			var errs spec.Errors
			for _, path := range faults {
				data, err := os.ReadFile(path)
				if err != nil {
					return err
				}
				r, err := spec.ParseFaultRule(path, data, "")
				var se spec.Errors
				if errors.As(err, &se) {
					errs = append(errs, se...)
					continue
				}
				if err != nil {
					return err
				}
				rules = append(rules, r)
			}
			if len(errs) > 0 {
				return errs
			}
			return runGen(e, cmd, &f, func(svc *spec.Service) (*gen.Output, error) { return chaosmesh.Generate(svc, rules, opt) })
		},
	}
	f.add(cmd)
	fs := cmd.Flags()
	fs.StringArrayVar(&faults, "fault", nil, "a fault rule file, JSON or YAML (repeatable)")
	fs.StringArrayVar(&selectors, "selector", nil, "LABEL=VALUE of the pods to fault (repeatable)")
	fs.StringVar(&opt.Namespace, "namespace", "", "namespace of the manifests and the pods")
	fs.IntVar(&opt.Port, "port", chaosmesh.DefaultPort, "the port the app listens on in the pod")
	return cmd
}

func genDatadogCmd(e *env) *cobra.Command {
	var f genFlags
	var opt datadog.Options
	var page, ticket string
	cmd := &cobra.Command{
		Use:   "datadog -f SPEC [-o DIR]",
		Short: "Terraform JSON with Datadog SLOs and burn-rate monitors",
		Long: `Generate SERVICE.tf.json for Terraform's Datadog provider: a metric SLO per CUJ
and SLI (good events over all events of slolab's metrics, as the Agent's
OpenMetrics check reports them) and an "slo alert" burn-rate monitor per row of
the alert table.

Datadog caps a burn-rate alert's long window at 48h, so rows with longer
windows are scaled to 24h: the Workbook's 3d/6h ticket at 1x becomes 24h/2h at
3x, which fires when the same share of the budget has burnt. The file's "//"
key and stderr say so.`,
		Example: `  slolab gen datadog -f examples/chat.yaml -o terraform/
  slolab gen datadog -f chat.cue --tag env:prod --page @pagerduty-chat --ticket @slack-chat-alerts`,
		Args: exactArgs(0, "no arguments (the spec is -f FILE)"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			opt.Notify = map[string]string{"page": page, "ticket": ticket}
			return runGen(e, cmd, &f, func(svc *spec.Service) (*gen.Output, error) { return datadog.Generate(svc, opt) })
		},
	}
	f.add(cmd)
	fs := cmd.Flags()
	fs.StringArrayVar(&opt.Tags, "tag", nil, "a tag filtering the metrics and tagging every resource, e.g. env:prod (repeatable)")
	fs.StringVar(&page, "page", "", "who page alerts notify, e.g. @pagerduty-chat")
	fs.StringVar(&ticket, "ticket", "", "who ticket alerts notify, e.g. @slack-chat-alerts")
	return cmd
}

func genGrafanaCmd(e *env) *cobra.Command {
	var f genFlags
	cmd := &cobra.Command{
		Use:   "grafana -f SPEC [-o DIR]",
		Short: "A Grafana dashboard for the service",
		Long: `Generate SERVICE-dashboard.json, a Grafana dashboard to import as is
(Dashboards > New > Import): a row per CUJ with each SLI against its objective
and the error budget left, then burn rates, requests, the latency distribution
as a heatmap of slolab's duration histogram, and the faults injected.

Its panels read the series that 'slolab gen prometheus' records, so load those
rules into the Prometheus the dashboard's data source points at. The uid is
slolab-SERVICE, which the alerts' dashboard links use.`,
		Example: `  slolab gen grafana -f examples/chat.yaml > chat-dashboard.json
  slolab gen grafana -f chat.cue -o dashboards/`,
		Args: exactArgs(0, "no arguments (the spec is -f FILE)"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runGen(e, cmd, &f, grafana.Generate)
		},
	}
	f.add(cmd)
	return cmd
}

func genOpenSLOCmd(e *env) *cobra.Command {
	var f genFlags
	var opt openslo.Options
	cmd := &cobra.Command{
		Use:   "openslo -f SPEC [-o DIR]",
		Short: "OpenSLO v1 documents",
		Long: `Generate SERVICE.openslo.yaml: the OpenSLO v1 Service, a Prometheus DataSource,
an SLO per CUJ and SLI (a ratio metric over slolab's metrics) and an
AlertPolicy with a burn-rate AlertCondition per row of the alert table.

What OpenSLO has no field for (the CUJ, its owner and routes, a latency
threshold) is kept in slolab.dev/ annotations, so 'slolab import openslo'
reads the file back into the same CUJs and SLOs.`,
		Example: `  slolab gen openslo -f examples/chat.yaml > chat.openslo.yaml
  slolab gen openslo -f chat.cue --prometheus-url http://prometheus.obs:9090 -o openslo/`,
		Args: exactArgs(0, "no arguments (the spec is -f FILE)"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runGen(e, cmd, &f, func(svc *spec.Service) (*gen.Output, error) { return openslo.Generate(svc, opt) })
		},
	}
	f.add(cmd)
	cmd.Flags().StringVar(&opt.PrometheusURL, "prometheus-url", openslo.DefaultPrometheusURL, "the address in the DataSource document")
	return cmd
}
