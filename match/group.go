package match

import (
	"hash/fnv"
	"net"
	"net/http"
	"strings"

	"slolab.dev/slolab/spec"
)

// Group is a client group: none (no grouping active), experiment or control.
type Group uint8

// The groups. Their names are the values of the metrics' group label.
const (
	GroupNone Group = iota
	GroupExperiment
	GroupControl
	NumGroups = 3
)

var groupNames = [NumGroups]string{spec.GroupNone, spec.GroupExperiment, spec.GroupControl}

func (g Group) String() string { return groupNames[g] }

// ParseGroup returns the group with the given name.
func ParseGroup(name string) (Group, bool) {
	for i, n := range groupNames {
		if n == name {
			return Group(i), true
		}
	}
	return GroupNone, false
}

// Grouper assigns clients to the experiment or the control group: a client
// whose key hashes below the experiment share is in the experiment group. The
// same key always lands in the same group for the same salt. Clients without
// a key (no such header or cookie) are in the control group, so an experiment
// never reaches clients it cannot identify.
//
// A Grouper belongs to a run (spec.Grouping.Run): the proxy hands it to the
// recorder with every request it grouped, so each run's requests are
// counted apart from every other run's. A run's grouper that splits nobody
// leaves its clients in group none but still counts them under the run.
type Grouper struct {
	run       string
	split     bool
	key       spec.GroupKey
	salt      string
	threshold uint64 // hash values below this are in the experiment group
}

// hashSpace is the range hashes are reduced to: parts per billion.
const hashSpace = 1_000_000_000

// NewGrouper compiles a grouping.
func NewGrouper(g *spec.Grouping) *Grouper {
	return &Grouper{run: g.Run, split: g.Splits(), key: g.Key(), salt: g.Salt, threshold: g.Experiment.FloorMul(hashSpace)}
}

// Run names the run that holds the grouping ("" for a grouping of no run).
func (g *Grouper) Run() string { return g.run }

// Group returns the group of the client making r. clientIP is the address the
// proxy attributes the request to.
func (g *Grouper) Group(r *http.Request, clientIP string) Group {
	if !g.split {
		return GroupNone
	}
	var key string
	switch g.key.Source {
	case "header":
		key = r.Header.Get(g.key.Name)
	case "cookie":
		if c, err := r.Cookie(g.key.Name); err == nil {
			key = c.Value
		}
	case "client-ip":
		key = clientIP
	}
	if key == "" {
		return GroupControl
	}
	if g.InExperiment(key) {
		return GroupExperiment
	}
	return GroupControl
}

// InExperiment reports whether a client key falls in the experiment group.
func (g *Grouper) InExperiment(key string) bool {
	h := fnv.New64a()
	h.Write([]byte(g.salt))
	h.Write([]byte{0})
	h.Write([]byte(key))
	return h.Sum64()%hashSpace < g.threshold
}

// ClientIP returns the address a request is attributed to: the left-most
// X-Forwarded-For entry when trustForwarded is set (the proxy sits behind a
// load balancer, or the load generator spreads identities), else the peer.
func ClientIP(r *http.Request, trustForwarded bool) string {
	if trustForwarded {
		if xff := r.Header.Get("X-Forwarded-For"); xff != "" {
			first, _, _ := strings.Cut(xff, ",")
			if ip := strings.TrimSpace(first); ip != "" {
				return ip
			}
		}
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}
