package cli

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"slolab.dev/slolab/cluster"
	"slolab.dev/slolab/fault"
	"slolab.dev/slolab/proxy/admin"
	"slolab.dev/slolab/split"
)

// clusterOptions are the fleet flags of `slolab proxy`.
type clusterOptions struct {
	listen    string
	advertise string
	peers     []string
	keyFile   string
	name      string
	key       []byte // read by check, from --cluster-key-file or $SLOLAB_CLUSTER_KEY
	getenv    func(string) string
}

func (c *clusterOptions) flags(fs *pflag.FlagSet, e *env) {
	c.getenv = e.getenv
	fs.StringVar(&c.listen, "cluster-listen", "", "join a fleet of proxies: gossip rules with the other members on this address (UDP and TCP), e.g. 0.0.0.0:7946")
	fs.StringVar(&c.advertise, "cluster-advertise", "", "the address the other members reach this one at (default: the listen address, or a private address when listening on all)")
	fs.StringArrayVar(&c.peers, "cluster-peer", nil, "a member to join, HOST:PORT; a name that resolves to several addresses (a headless Service) joins them all (repeatable)")
	fs.StringVar(&c.keyFile, "cluster-key-file", "", "file holding the shared gossip key, base64 of 32 bytes (default $SLOLAB_CLUSTER_KEY); required beyond loopback")
	fs.StringVar(&c.name, "cluster-name", "", "this member's name, unique in the fleet (default HOST:PORT)")
}

// check reads the key and refuses gossip beyond loopback without one.
func (c *clusterOptions) check() error {
	if c.listen == "" {
		if c.advertise != "" || len(c.peers) > 0 || c.keyFile != "" || c.name != "" {
			return usageErrorf("--cluster-advertise, --cluster-peer, --cluster-key-file and --cluster-name need --cluster-listen ADDR")
		}
		return nil
	}
	var text, from string
	if c.getenv != nil {
		text, from = c.getenv("SLOLAB_CLUSTER_KEY"), "SLOLAB_CLUSTER_KEY"
	}
	if c.keyFile != "" {
		data, err := os.ReadFile(c.keyFile)
		if err != nil {
			return usageErrorf("--cluster-key-file: %v", err)
		}
		text, from = string(data), "--cluster-key-file "+c.keyFile
	}
	if strings.TrimSpace(text) != "" {
		key, err := cluster.ParseKey(text)
		if err != nil {
			return usageErrorf("%s: %v", from, err)
		}
		c.key = key
	}
	if err := cluster.CheckListen(c.listen, c.key); err != nil {
		return usageErrorf("--cluster-listen: %v", err)
	}
	return nil
}

// newNode starts the stack's cluster member, which then stands between the
// admin API and the registry. Remote changes go to the audit log with the
// member they were made on; what happens here (changes through this
// member's admin API, lapses, removals on shutdown) names this member.
func (s *proxyStack) newNode(sp *split.Split) error {
	c := &s.opts.cluster
	digest := ""
	if data, err := os.ReadFile(s.opts.specPath); err == nil {
		sum := sha256.Sum256(data)
		digest = hex.EncodeToString(sum[:6])
	}
	node, err := cluster.New(cluster.Config{
		Name: c.name, Listen: c.listen, Advertise: c.advertise, Peers: c.peers, Key: c.key,
		Label: s.svc.Name, SpecDigest: digest, Faults: s.faults, Split: sp, Logger: s.log,
		OnChange: func(ch cluster.Change) {
			via := "gossip"
			if ch.Sync {
				via = "full-state sync"
			}
			err := s.audit.Append(admin.AuditEntry{Time: time.Now().UTC(), Identity: "cluster", Actor: via, Remote: ch.Member,
				Action: ch.Action, Fault: ch.Fault, Detail: ch.Detail, Member: ch.Member})
			if err != nil {
				// The fleet made the change: this member cannot refuse it
				// alone without holding other rules than the rest.
				s.log.Error("recording a change from another member in the audit log", "member", ch.Member, "action", ch.Action, "fault", ch.Fault, "err", err)
			}
		},
	})
	if err != nil {
		return err
	}
	s.node = node
	return nil
}

// join joins the peers before the proxy serves, so a new member holds
// every live rule from its first request. Without an answer it starts
// alone and keeps trying in the background.
func (s *proxyStack) join(ctx context.Context) {
	if s.node == nil || len(s.opts.cluster.peers) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	n, err := s.node.Join(ctx)
	if err != nil {
		s.log.Warn("cluster: no peer answered; serving alone and trying again every 10s", "peers", strings.Join(s.opts.cluster.peers, ","), "err", err)
		return
	}
	s.log.Info("cluster: joined", "member", s.node.Name(), "peers", n)
}

// clusterNote describes the proxy's fleet for its banner.
func (s *proxyStack) clusterNote() string {
	if s.node == nil {
		return ""
	}
	enc := "encrypted"
	if len(s.opts.cluster.key) == 0 {
		enc = "not encrypted: loopback only"
	}
	return fmt.Sprintf("slolab proxy: cluster member %s gossiping on %s (%s) · %s/api/v1/cluster", s.node.Name(), s.node.Addr(), enc, s.adminURL())
}

func clusterCmd(e *env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "cluster",
		Short: "Inspect a fleet of proxies and make its gossip key",
		Long: `Proxies started with --cluster-listen form a fleet: a fault rule, a
simulation, a grouping or a canary weight set through any member's admin API
applies on every member; a member that starts later receives every live rule;
leases are absolute times and lapse on every member at once. Each member
counts its own requests exactly, and every member's 'fault ls' shows the
fleet's totals. See docs/kubernetes.md.`,
	}
	cmd.AddCommand(clusterStatusCmd(e), clusterKeygenCmd(e))
	return cmd
}

func clusterStatusCmd(e *env) *cobra.Command {
	var a adminFlags
	var output string
	cmd := &cobra.Command{
		Use:     "status",
		Aliases: []string{"members"},
		Short:   "List the fleet's members, their state and the rule versions they hold",
		Example: `  slolab cluster status --admin http://127.0.0.1:9090
  slolab cluster status -o json | jq '.rules[] | select(.converged | not)'`,
		Args: exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkOutput(output); err != nil {
				return err
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			st, err := c.Cluster(e.ctx)
			if err != nil {
				return err
			}
			if output == "json" {
				return writeJSON(e.stdout, st)
			}
			return printClusterStatus(e, st, time.Now())
		},
	}
	a.add(cmd, e)
	outputFlag(cmd.Flags(), &output)
	return cmd
}

func printClusterStatus(e *env, st cluster.Status, now time.Time) error {
	t := newTable(e.stdout, "MEMBER", "ADDRESS", "STATE", "REPORTED", "SPEC", "RULES")
	for _, m := range st.Members {
		name, reported := m.Name, "-"
		if m.Self {
			name += " (this)"
			reported = "live"
		} else if !m.Reported.IsZero() {
			reported = ago(now, m.Reported)
		}
		t.row(name, orDash(m.Address), m.State, reported, orDash(m.Spec), len(m.Rules))
	}
	if err := t.flush(); err != nil {
		return err
	}
	alive := 0
	for _, m := range st.Members {
		if m.State == cluster.MemberAlive || m.State == cluster.MemberSuspect {
			alive++
		}
	}
	if len(st.Rules) > 0 {
		fmt.Fprintln(e.stdout)
		t = newTable(e.stdout, "RULE", "VERSION", "ORIGIN", "ACTION", "LEASE", "HELD BY", "CONVERGED")
		for _, r := range st.Rules {
			lease := leaseLeft(r.ExpiresAt, now)
			if r.Deleted {
				lease = "deleted"
			}
			t.row(r.Name, r.Version, r.Origin, r.Action, lease, fmt.Sprintf("%d/%d", len(r.HeldBy), alive), yesNo(r.Converged))
		}
		if err := t.flush(); err != nil {
			return err
		}
	}
	for _, g := range st.Groupings {
		what := "grouping of run " + g.Run
		if g.Run == "" {
			what = "grouping of no run"
		}
		state := fmt.Sprintf("held by %d/%d", len(g.HeldBy), alive)
		switch {
		case g.Deleted:
			state = "deleted"
		case g.YieldsTo != "":
			state = "yields its CUJs to run " + g.YieldsTo
		}
		fmt.Fprintf(e.stdout, "%s: version %s from %s (%s), %s, converged %s\n", what, g.Version, g.Origin, g.Action, state, yesNo(g.Converged))
	}
	if c := st.Canary; c != nil {
		fmt.Fprintf(e.stdout, "canary weight %s: version %s from %s (%s), held by %d/%d, converged %s\n", c.Weight, c.Version, c.Origin, c.Action, len(c.HeldBy), alive, yesNo(c.Converged))
	}
	if !st.Encrypted {
		fmt.Fprintln(e.stdout, "gossip is not encrypted: members listen on loopback only")
	}
	return nil
}

func ago(now, t time.Time) string {
	return (now.Sub(t).Round(100 * time.Millisecond)).String() + " ago"
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func clusterKeygenCmd(e *env) *cobra.Command {
	return &cobra.Command{
		Use:   "keygen",
		Short: "Print a new random gossip key (base64 of 32 bytes)",
		Long: `Print a new random key for --cluster-key-file or SLOLAB_CLUSTER_KEY. Every
member of a fleet needs the same key: gossip is encrypted and authenticated
with it (AES-256-GCM), and a member without it cannot join or change rules.`,
		Example: `  slolab cluster keygen > cluster.key
  kubectl create secret generic slolab-cluster --from-file=key=cluster.key`,
		Args: exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			k, err := cluster.GenerateKey()
			if err != nil {
				return err
			}
			_, err = fmt.Fprintln(e.stdout, k)
			return err
		},
	}
}

// faultRows prints a fleet rule's members under it, for fault ls -o wide.
func faultMemberRows(t *table, st fault.Status, now time.Time) {
	for _, m := range st.Members {
		name := m.Member
		if m.Gone {
			name += " (gone)"
		}
		t.row("", "  "+name, m.State, "", "", "", m.Matched, m.Injected, reportedNote(m, now))
	}
}

func reportedNote(m fault.MemberCounts, now time.Time) string {
	switch {
	case m.State == fault.StateMissing:
		return "does not hold it"
	case m.Reported.IsZero():
		return "live"
	}
	return "reported " + ago(now, m.Reported)
}

// holding says how many of the fleet's present members hold a rule: "3/3".
func holding(st fault.Status) string {
	held, present := 0, 0
	for _, m := range st.Members {
		if m.Gone {
			continue
		}
		present++
		if m.State != fault.StateMissing {
			held++
		}
	}
	return fmt.Sprintf("%d/%d", held, present)
}
