// Package cluster makes slolab proxies a fleet, as Alertmanager's HA peers
// are: every member gossips with the others through hashicorp/memberlist,
// encrypted and authenticated with a shared key. Fault rules, each
// experiment run's grouping and the canary weight changed on any member
// apply on all of them; a member that joins later receives every live rule
// by a full-state sync; a rule's lease is an absolute time, so it lapses on
// every member at once, and a member cut off from the others keeps its rules
// until their leases end and no longer. Concurrent changes resolve the same
// way everywhere: each record carries a version (a hybrid logical clock and
// the member that made the change) and the later version wins.
//
// A Node wraps the proxy's fault.Registry (and its split, when it has one)
// behind the methods the admin API calls, so the admin API hands every change
// to the fleet without knowing about gossip, and the proxy applies changes
// from other members through the same registry methods. Each member counts
// its own matched stream exactly; the Node reports its counts to the others
// every second and answers with the fleet's totals.
package cluster

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log"
	"log/slog"
	"net"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/memberlist"

	"slolab.dev/slolab"
	"slolab.dev/slolab/fault"
	"slolab.dev/slolab/split"
)

// DefaultPort is the cluster port when an address gives none (memberlist's).
const DefaultPort = 7946

// Config configures a Node.
type Config struct {
	// Name is the member's name, unique in the cluster (default HOST:PORT).
	Name string
	// Listen is the address gossip binds, UDP and TCP ("0.0.0.0:7946").
	Listen string
	// Advertise is the address the other members reach this one at
	// (default: the bound address, or a private address when bound to all).
	Advertise string
	// Peers are the members to join, as HOST:PORT; a name that resolves to
	// several addresses (a headless Service) joins every one of them.
	Peers []string
	// Key encrypts and authenticates gossip (AES-GCM; 16, 24 or 32 bytes).
	// A non-loopback Listen address requires one (see CheckListen).
	Key []byte
	// Label keeps clusters apart: members with another label are ignored
	// (the service's name, so two services' proxies never merge).
	Label string
	// SpecDigest identifies the service spec the member runs; the cluster
	// status shows it per member, so a member on another spec stands out.
	SpecDigest string

	// Faults is the proxy's fault registry: every change, local or from a
	// peer, goes through it.
	Faults *fault.Registry
	// Split is the proxy's stable/canary split, nil when it has none.
	Split *split.Split
	// OnChange is called for every change another member made once it
	// applies here, for the audit log. It must not block.
	OnChange func(Change)

	// ReportInterval is how often the member reports its counts while they
	// change (default 1s); it reports at least every 10 intervals anyway.
	ReportInterval time.Duration
	// RejoinInterval is how often Run resolves the peers again and joins the
	// addresses that are not members (default 10s).
	RejoinInterval time.Duration
	// Retention is how long a deletion, a lapsed rule and a silent member's
	// last report are kept (default 1h, the registry's).
	Retention time.Duration
	// Gossip tunes memberlist (default: its LAN profile, gossiping every
	// 100ms and a full-state sync with a random member every 10s).
	GossipInterval, PushPullInterval time.Duration

	// LookupHost resolves a peer's DNS name to its addresses (default
	// net.DefaultResolver.LookupHost).
	LookupHost func(ctx context.Context, host string) ([]string, error)

	// Now is the clock (default time.Now).
	Now    func() time.Time
	Logger *slog.Logger
}

func (c *Config) defaults() error {
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.LookupHost == nil {
		c.LookupHost = net.DefaultResolver.LookupHost
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.ReportInterval == 0 {
		c.ReportInterval = time.Second
	}
	if c.RejoinInterval == 0 {
		c.RejoinInterval = 10 * time.Second
	}
	if c.Retention == 0 {
		c.Retention = time.Hour
	}
	if c.GossipInterval == 0 {
		c.GossipInterval = 100 * time.Millisecond
	}
	if c.PushPullInterval == 0 {
		c.PushPullInterval = 10 * time.Second
	}
	if c.Faults == nil {
		return fmt.Errorf("cluster: the proxy's fault registry is required")
	}
	if err := CheckListen(c.Listen, c.Key); err != nil {
		return err
	}
	if len(c.Key) > 0 {
		if err := memberlist.ValidateKey(c.Key); err != nil {
			return slolab.Errorf(slolab.Invalid, "cluster key: %v", err)
		}
	}
	if c.Name == "" {
		host, err := hostname()
		if err != nil {
			return err
		}
		_, port, _ := net.SplitHostPort(c.Listen)
		if port == "0" { // the port is not known yet: a random suffix keeps the name unique
			var b [3]byte
			_, _ = rand.Read(b[:])
			port = "0-" + hex.EncodeToString(b[:])
		}
		c.Name = host + ":" + port
	}
	return nil
}

// Change is a change another member made, as applied here.
type Change struct {
	// Member is where the change was made.
	Member  string
	Version Version
	// Action names the change as the admin API's audit log does: put,
	// replace, renew, delete, grouping.put, grouping.renew,
	// grouping.delete, canary.weight.
	Action string
	// Fault names the rule, or the run of a grouping.
	Fault string
	// Detail is the rule or grouping as applied, or the canary weight.
	Detail any
	// At is when the change was made on Member.
	At time.Time
	// Sync is true when the change arrived in a full-state sync (a join or
	// a periodic exchange) rather than as it was made.
	Sync bool
}

// Node is one member of the fleet.
type Node struct {
	cfg   Config
	ml    *memberlist.Memberlist
	queue *memberlist.TransmitLimitedQueue

	// txMu is held from Snapshot to Commit or Restore, so that merges,
	// reports and full-state syncs wait for a change that may be undone;
	// tx is what Restore puts back.
	txMu sync.Mutex
	tx   *txState

	mu        sync.Mutex
	clock     uint64 // the highest version time seen
	rules     map[string]*ruleRecord
	applied   map[string]Version         // versions of the rules the registry holds as replicated
	groupings map[string]*groupingRecord // by run
	invalid   map[string]Version         // runs' grouping versions that do not apply here
	canary    *canaryRecord
	reports   map[string]*report                    // the latest report of every other member
	members   map[string]*member                    // every member seen, by name
	sent      *report                               // the last report sent
	seq       uint64                                // the last report's sequence number
	closed    bool                                  // Close was called: no more changes
	changes   []Change                              // remote changes to hand to OnChange, outside the lock
	outbox    []outgoing                            // messages to send outside the lock
	joined    bool                                  // a join succeeded once
	inflight  sync.WaitGroup                        // reliable sends under way
	created   atomic.Pointer[memberlist.Memberlist] // n.ml, for numMembers
	poke      chan struct{}                         // report now: what the member holds changed
	held      bool                                  // a record changed since the last poke
}

// member is what the node knows of another member's membership.
type member struct {
	addr  string
	state string // alive, suspect, dead, left
	since time.Time
}

// Member states, as the cluster status reports them.
const (
	MemberAlive   = "alive"
	MemberSuspect = "suspect"
	MemberDead    = "dead"
	MemberLeft    = "left"
)

// New binds the cluster address and starts gossiping, alone until Join.
func New(cfg Config) (*Node, error) {
	if err := cfg.defaults(); err != nil {
		return nil, err
	}
	host, port, err := splitHostPort(cfg.Listen)
	if err != nil {
		return nil, slolab.Errorf(slolab.Invalid, "cluster address %q: %v", cfg.Listen, err)
	}
	n := &Node{
		cfg: cfg, rules: map[string]*ruleRecord{}, applied: map[string]Version{}, groupings: map[string]*groupingRecord{}, invalid: map[string]Version{},
		reports: map[string]*report{}, members: map[string]*member{}, poke: make(chan struct{}, 1),
	}
	mc := memberlist.DefaultLANConfig()
	mc.Name = cfg.Name
	mc.BindAddr, mc.BindPort = host, port
	if cfg.Advertise != "" {
		ah, ap, err := splitHostPort(cfg.Advertise)
		if err != nil {
			return nil, slolab.Errorf(slolab.Invalid, "cluster advertise address %q: %v", cfg.Advertise, err)
		}
		mc.AdvertiseAddr, mc.AdvertisePort = ah, ap
	} else {
		mc.AdvertisePort = port
	}
	mc.Label = cfg.Label
	mc.SecretKey = cfg.Key
	mc.GossipInterval = cfg.GossipInterval
	mc.PushPullInterval = cfg.PushPullInterval
	mc.TCPTimeout = 5 * time.Second
	mc.DeadNodeReclaimTime = 30 * time.Second // a restarted member may come back at another address
	mc.Delegate = (*delegate)(n)
	mc.Events = (*events)(n)
	mc.Logger = log.New(&logWriter{log: cfg.Logger}, "", 0)
	n.queue = &memberlist.TransmitLimitedQueue{NumNodes: n.numMembers, RetransmitMult: mc.RetransmitMult}
	ml, err := memberlist.Create(mc)
	if err != nil {
		return nil, fmt.Errorf("starting the cluster on %s: %w", cfg.Listen, err)
	}
	n.mu.Lock()
	n.ml = ml
	n.mu.Unlock()
	n.created.Store(ml)
	return n, nil
}

// numMembers is the queue's NumNodes. The queue calls it holding its own
// lock, so it must not take n.mu: changes queue broadcasts holding n.mu.
func (n *Node) numMembers() int {
	if ml := n.created.Load(); ml != nil {
		return ml.NumMembers()
	}
	return 1
}

// Name returns the member's name.
func (n *Node) Name() string { return n.cfg.Name }

// Addr returns the address the other members reach this one at.
func (n *Node) Addr() string { return n.ml.LocalNode().Address() }

// Join resolves the peers and joins every address that answers, in
// parallel. It returns how many it joined; an error only when there were
// peers and none answered. The full-state sync of each join has been merged
// when it returns, so a new member holds every live rule from then on.
func (n *Node) Join(ctx context.Context) (int, error) {
	addrs, err := n.resolve(ctx)
	if len(addrs) == 0 {
		return 0, err
	}
	joined, joinErr := n.join(addrs)
	if joined > 0 {
		n.mu.Lock()
		n.joined = true
		n.mu.Unlock()
		return joined, nil
	}
	if err == nil {
		err = joinErr
	}
	return 0, slolab.Errorf(slolab.Unavailable, "joining the cluster: no peer answered: %v", err)
}

// join joins the addresses in parallel and counts the successes.
func (n *Node) join(addrs []string) (int, error) {
	var (
		mu      sync.Mutex
		wg      sync.WaitGroup
		joined  int
		lastErr error
	)
	for _, a := range addrs {
		wg.Go(func() {
			_, err := n.ml.Join([]string{a})
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				lastErr = err
				return
			}
			joined++
		})
	}
	wg.Wait()
	return joined, lastErr
}

// resolve turns the peers into addresses, leaving this member's own out.
func (n *Node) resolve(ctx context.Context) ([]string, error) {
	self := n.Addr()
	var out []string
	var errs []error
	for _, p := range n.cfg.Peers {
		host, port, err := splitHostPort(p)
		if err != nil {
			errs = append(errs, fmt.Errorf("peer %q: %w", p, err))
			continue
		}
		if port == 0 {
			port = DefaultPort
		}
		ips := []string{host}
		if net.ParseIP(host) == nil {
			rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			ips, err = n.cfg.LookupHost(rctx, host)
			cancel()
			if err != nil {
				errs = append(errs, fmt.Errorf("peer %q: %w", p, err))
				continue
			}
		}
		for _, ip := range ips {
			a := net.JoinHostPort(ip, strconv.Itoa(port))
			if a != self && !slices.Contains(out, a) {
				out = append(out, a)
			}
		}
	}
	if len(out) == 0 && len(errs) > 0 {
		return nil, errs[0]
	}
	return out, nil
}

// Run reports counts, forgets what outlived the retention, and joins peers
// that are not members yet (a headless Service's new pods, a healed
// partition), until ctx ends.
func (n *Node) Run(ctx context.Context) {
	report := time.NewTicker(n.cfg.ReportInterval)
	defer report.Stop()
	rejoin := time.NewTicker(n.cfg.RejoinInterval)
	defer rejoin.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-report.C:
			n.report(false)
			n.sweep()
		case <-n.poke:
			n.report(false)
		case <-rejoin.C:
			n.rejoin(ctx)
		}
	}
}

// rejoin joins the resolved peer addresses that are not alive members.
func (n *Node) rejoin(ctx context.Context) {
	addrs, err := n.resolve(ctx)
	if err != nil {
		n.cfg.Logger.Debug("cluster: resolving peers", "err", err)
	}
	// The members as the event delegate recorded them: memberlist's own
	// Members() hands out nodes it goes on updating, and reading their
	// addresses here raced with its gossip.
	alive := map[string]bool{}
	n.mu.Lock()
	for _, m := range n.members {
		if m.state == MemberAlive {
			alive[m.addr] = true
		}
	}
	n.mu.Unlock()
	var missing []string
	for _, a := range addrs {
		if !alive[a] {
			missing = append(missing, a)
		}
	}
	if len(missing) == 0 {
		return
	}
	if joined, err := n.join(missing); joined > 0 {
		n.cfg.Logger.Info("cluster: joined peers", "joined", joined, "of", len(missing))
	} else if err != nil {
		n.cfg.Logger.Debug("cluster: peers not reachable", "peers", missing, "err", err)
	}
}

// Close sends a last report, leaves the cluster (the others see it leave
// rather than fail) and stops gossiping. The fleet's rules stay with the
// other members: leaving is not deleting. Changes made through the node
// afterwards are refused.
func (n *Node) Close() error {
	n.report(true)
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		return nil
	}
	n.closed = true
	n.mu.Unlock()
	n.flush()
	n.inflight.Wait()
	leaveErr := n.ml.Leave(2 * time.Second)
	if err := n.ml.Shutdown(); err != nil {
		return err
	}
	if leaveErr != nil {
		n.cfg.Logger.Warn("cluster: leaving", "err", leaveErr)
	}
	return nil
}

// CheckListen refuses to gossip beyond this machine without a key: whoever
// can send to the cluster port could change every member's rules.
func CheckListen(addr string, key []byte) error {
	host, _, err := splitHostPort(addr)
	if err != nil {
		return slolab.Errorf(slolab.Invalid, "cluster address %q: %v", addr, err)
	}
	if len(key) > 0 || host == "localhost" {
		return nil
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
		return nil
	}
	return slolab.Errorf(slolab.Invalid, "the cluster would gossip on %s, beyond loopback, without a key: give the shared key with --cluster-key-file or SLOLAB_CLUSTER_KEY (make one with 'slolab cluster keygen'), or listen on 127.0.0.1", addr)
}

func splitHostPort(addr string) (string, int, error) {
	host, p, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, err
	}
	port, err := strconv.Atoi(p)
	if err != nil || port < 0 || port > 65535 {
		return "", 0, fmt.Errorf("port %q: want a number in [0, 65535]", p)
	}
	if host == "" {
		host = "0.0.0.0"
	}
	return host, port, nil
}
