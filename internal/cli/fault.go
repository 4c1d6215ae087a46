package cli

import (
	"fmt"
	"os"
	"regexp"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"slolab.dev/slolab/fault"
	"slolab.dev/slolab/spec"
)

func faultCmd(e *env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "fault",
		Short: "Add, list, renew and remove fault rules on a running proxy",
		Long: `Manage the fault rules of a running 'slolab proxy' through its admin API.

A rule selects requests (CUJ, route, method, headers, client group), injects
its actions (abort, status, delay, replace, patch) into exactly --rate of
them, and holds a lease (--ttl): it stops by itself unless renewed.`,
	}
	cmd.AddCommand(faultAddCmd(e), faultLsCmd(e), faultRmCmd(e), faultRenewCmd(e))
	return cmd
}

func faultAddCmd(e *env) *cobra.Command {
	var (
		a                         adminFlags
		file                      string
		cuj, route, method, group string
		headers                   []string
		status                    int
		body                      string
		abort                     bool
		delay, rate               string
		ttl                       time.Duration
		priority                  int
		seed                      uint64
		description, output       string
	)
	cmd := &cobra.Command{
		Use:   "add NAME [flags]",
		Short: "Add (or replace) a fault rule",
		Long: `Add a fault rule, or replace the rule with the same name.

Actions: --abort closes the connection without a response; --status CODE
answers without calling the app; --delay waits before forwarding (or before
answering). A delay combines with the others. Replace and patch actions need
a rule file (-f), the same JSON or YAML the admin API takes.

Delays: 1s · uniform(100ms, 300ms) · normal(200ms, 50ms) ·
lognormal(120ms, 900ms) (median, p99) · "p50=120ms p90=300ms p99=900ms".
Rates: 0.1% or 0.001, down to 0.0001% (one in a million).`,
		Example: `  slolab fault add upd-500 --cuj update --status 500 --rate 0.1%
  slolab fault add slow-read --cuj read --delay "p50=120ms p99=900ms" --ttl 30m
  slolab fault add debug-abort --cuj send --header X-Debug=1 --abort
  slolab fault add rewrite -f rule.yaml`,
		Args: exactArgs(1, "the rule's NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkOutput(output); err != nil {
				return err
			}
			name := args[0]
			var rule *spec.FaultRule
			if file != "" {
				data, err := os.ReadFile(file)
				if err != nil {
					return usageErrorf("-f: %v", err)
				}
				if rule, err = spec.ParseFaultRule(file, data, name); err != nil {
					return err
				}
			} else {
				rule = &spec.FaultRule{Name: name, Rate: spec.One, TTL: spec.DefaultTTL}
			}
			fs := cmd.Flags()
			if fs.Changed("description") {
				rule.Description = description
			}
			if fs.Changed("priority") {
				rule.Priority = priority
			}
			if fs.Changed("seed") {
				rule.Seed = seed
			}
			if fs.Changed("cuj") {
				rule.Match.CUJ = cuj
			}
			if fs.Changed("route") {
				rule.Match.Route = route
			}
			if fs.Changed("method") {
				rule.Match.Method = strings.ToUpper(method)
			}
			if fs.Changed("group") {
				rule.Match.Group = group
			}
			for _, h := range headers {
				k, v, ok := strings.Cut(h, "=")
				if !ok || k == "" {
					return usageErrorf("--header %q: want NAME=VALUE (VALUE * means present)", h)
				}
				if rule.Match.Headers == nil {
					rule.Match.Headers = map[string]string{}
				}
				rule.Match.Headers[k] = v
			}
			if fs.Changed("rate") {
				r, err := spec.ParseRatio(rate)
				if err != nil {
					return usageErrorf("--rate: %v", err)
				}
				rule.Rate = r
			}
			if fs.Changed("ttl") {
				rule.TTL = ttl
			}
			if abort {
				rule.Abort = true
			}
			if fs.Changed("status") {
				rule.Status = &spec.StatusAction{Code: status, Body: body}
			} else if fs.Changed("body") {
				return usageErrorf("--body needs --status")
			}
			if fs.Changed("delay") {
				d, err := spec.ParseDelay(delay)
				if err != nil {
					return usageErrorf("--delay: %v", err)
				}
				rule.Delay = d
			}
			// One validation path: the rule goes through the same decoder the
			// admin API uses, so the CLI and the API accept exactly the same rules.
			data, err := rule.MarshalJSON()
			if err != nil {
				return err
			}
			if rule, err = spec.ParseFaultRule("flags", data, name); err != nil {
				return usageErrorf("invalid rule: %v", flagPos.ReplaceAllString(err.Error(), ""))
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			st, err := c.PutFault(e.ctx, rule)
			if err != nil {
				return err
			}
			if output == "json" {
				return writeJSON(e.stdout, st)
			}
			fmt.Fprintf(e.stdout, "fault %s %s: %s on %s at %s, lease until %s\n", name, st.State, rule.Actions(), rule.Match, rule.Rate.Percent(), st.ExpiresAt.Local().Format(time.TimeOnly))
			return nil
		},
	}
	a.add(cmd, e)
	fs := cmd.Flags()
	fs.StringVarP(&file, "file", "f", "", "read the rule from a JSON or YAML file (flags override its fields)")
	fs.StringVar(&cuj, "cuj", "", "only requests of this CUJ")
	fs.StringVar(&route, "route", "", `only this route of the CUJ, as written in the spec ("POST /update")`)
	fs.StringVar(&method, "method", "", "only this HTTP method")
	fs.StringArrayVar(&headers, "header", nil, "only requests with this header, NAME=VALUE or NAME=* (repeatable; all must hold)")
	fs.StringVar(&group, "group", "", "only this client group: experiment or control (needs an active grouping)")
	fs.IntVar(&status, "status", 0, "answer with this final HTTP status (200 to 599) instead of calling the app")
	fs.StringVar(&body, "body", "", "the body of the --status answer")
	fs.BoolVar(&abort, "abort", false, "close the connection without any response")
	fs.StringVar(&delay, "delay", "", "delay before forwarding: a duration or a distribution (see above)")
	fs.StringVar(&rate, "rate", "100%", "share of matched requests to inject: 0.1% or 0.001")
	fs.DurationVar(&ttl, "ttl", spec.DefaultTTL, "lease: the rule stops applying unless renewed within this time")
	fs.IntVar(&priority, "priority", 0, "rules run in ascending priority, then by name")
	fs.Uint64Var(&seed, "seed", 0, "shift the injection pattern by a seeded offset (0: none)")
	fs.StringVar(&description, "description", "", "a note for whoever lists the rules")
	outputFlag(fs, &output)
	return cmd
}

// flagPos is the position prefix of errors in a rule built from flags, which
// points into JSON the user never wrote.
var flagPos = regexp.MustCompile(`(?m)^flags:\d+:\d+: `)

func faultLsCmd(e *env) *cobra.Command {
	var a adminFlags
	var output string
	cmd := &cobra.Command{
		Use:     "ls",
		Aliases: []string{"list"},
		Short:   "List fault rules with their state, counts and lease",
		Long: `List the proxy's fault rules with their state, counts and lease.

On a member of a fleet (slolab proxy --cluster-listen), MATCHED and INJECTED
are the fleet's totals: each member counts its own requests exactly and
reports them to the others every second, so the totals lag by about a
second. MEMBERS says how many members hold the rule; -o wide adds one row per
member, and -o json lists them under "members".`,
		Example: `  slolab fault ls
  slolab fault ls -o wide
  slolab fault ls -o json | jq '.[] | select(.state == "active")'`,
		Args: exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			wide := output == "wide"
			if wide {
				output = "table"
			}
			if err := checkOutput(output); err != nil {
				return usageErrorf("unknown output format %q (want table, wide or json)", output)
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			list, err := c.ListFaults(e.ctx)
			if err != nil {
				return err
			}
			if output == "json" {
				if list == nil {
					list = []fault.Status{}
				}
				return writeJSON(e.stdout, list)
			}
			if len(list) == 0 {
				fmt.Fprintln(e.stdout, "no fault rules")
				return nil
			}
			now := time.Now()
			if len(list[0].Members) == 0 { // a proxy on its own
				t := newTable(e.stdout, "NAME", "STATE", "MATCH", "ACTIONS", "RATE", "MATCHED", "INJECTED", "LEASE")
				for _, st := range list {
					t.row(st.Rule.Name, st.State, st.Rule.Match, st.Rule.Actions(), st.Rule.Rate.Percent(), st.Matched, st.Injected, lease(st, now))
				}
				return t.flush()
			}
			t := newTable(e.stdout, "NAME", "MEMBERS", "STATE", "MATCH", "ACTIONS", "RATE", "MATCHED", "INJECTED", "LEASE")
			for _, st := range list {
				t.row(st.Rule.Name, holding(st), st.State, st.Rule.Match, st.Rule.Actions(), st.Rule.Rate.Percent(), st.Matched, st.Injected, lease(st, now))
				if wide {
					faultMemberRows(t, st, now)
				}
			}
			return t.flush()
		},
	}
	a.add(cmd, e)
	cmd.Flags().StringVarP(&output, "output", "o", "table", "output format: table, wide (one row per fleet member) or json")
	return cmd
}

func lease(st fault.Status, now time.Time) string { return leaseLeft(st.ExpiresAt, now) }

func leaseLeft(expires, now time.Time) string {
	left := expires.Sub(now)
	if left <= 0 {
		return "ended " + expires.Local().Format(time.TimeOnly)
	}
	return spec.FormatDuration(left.Round(time.Second)) + " left"
}

func faultRmCmd(e *env) *cobra.Command {
	var a adminFlags
	var all bool
	var output string
	cmd := &cobra.Command{
		Use:     "rm NAME... | --all",
		Aliases: []string{"remove", "delete"},
		Short:   "Remove fault rules",
		Example: `  slolab fault rm upd-500
  slolab fault rm --all`,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkOutput(output); err != nil {
				return err
			}
			if all == (len(args) > 0) {
				return usageErrorf("give rule names or --all\nRun 'slolab fault rm --help' for usage.")
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			if all {
				list, err := c.ListFaults(e.ctx)
				if err != nil {
					return err
				}
				for _, st := range list {
					args = append(args, st.Rule.Name)
				}
			}
			var removed []fault.Status
			for _, name := range args {
				st, err := c.DeleteFault(e.ctx, name)
				if err != nil {
					return err
				}
				removed = append(removed, st)
				if output != "json" {
					fmt.Fprintf(e.stdout, "fault %s removed: injected %d of %d matched\n", name, st.Injected, st.Matched)
				}
			}
			if output == "json" {
				if removed == nil {
					removed = []fault.Status{}
				}
				return writeJSON(e.stdout, removed)
			}
			return nil
		},
	}
	a.add(cmd, e)
	cmd.Flags().BoolVar(&all, "all", false, "remove every rule")
	outputFlag(cmd.Flags(), &output)
	return cmd
}

func faultRenewCmd(e *env) *cobra.Command {
	var a adminFlags
	var ttl time.Duration
	var output string
	cmd := &cobra.Command{
		Use:   "renew NAME... [--ttl DURATION]",
		Short: "Extend fault rules' leases",
		Long: `Extend leases from now by --ttl (each rule's own TTL when not given).
A lease that already lapsed cannot be renewed: add the rule again.`,
		Example: `  slolab fault renew upd-500 --ttl 30m`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				return usageErrorf("renew needs at least one rule NAME")
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkOutput(output); err != nil {
				return err
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			var out []fault.Status
			for _, name := range args {
				st, err := c.RenewFault(e.ctx, name, ttl)
				if err != nil {
					return err
				}
				out = append(out, st)
				if output != "json" {
					fmt.Fprintf(e.stdout, "fault %s renewed until %s\n", name, st.ExpiresAt.Local().Format(time.TimeOnly))
				}
			}
			if output == "json" {
				return writeJSON(e.stdout, out)
			}
			return nil
		},
	}
	a.add(cmd, e)
	cmd.Flags().DurationVar(&ttl, "ttl", 0, "new lease from now (default: the rule's own TTL)")
	outputFlag(cmd.Flags(), &output)
	return cmd
}
