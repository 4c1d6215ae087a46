package cluster

import (
	"encoding/json"
	"fmt"
	"time"

	"slolab.dev/slolab/spec"
)

// Version orders the changes to one replicated record. Time is a hybrid
// logical clock: the change's wall time in milliseconds, raised above every
// version the member making it has seen, so a later change wins and a member
// whose clock lags still moves forward. Member breaks ties, so every member
// picks the same winner between two concurrent changes.
type Version struct {
	Time   uint64 `json:"t"`
	Member string `json:"m"`
}

// After reports whether v wins over w.
func (v Version) After(w Version) bool {
	if v.Time != w.Time {
		return v.Time > w.Time
	}
	return v.Member > w.Member
}

// IsZero reports whether v is the zero version (nothing was ever changed).
func (v Version) IsZero() bool { return v.Time == 0 && v.Member == "" }

// String formats v as TIME@MEMBER, TIME in milliseconds since 1970.
func (v Version) String() string {
	if v.IsZero() {
		return ""
	}
	return fmt.Sprintf("%d@%s", v.Time, v.Member)
}

// ruleRecord is the replicated state of one fault rule: the last change to
// it, wherever it was made. A record without a rule is a deletion, kept
// (a tombstone) so that an older put arriving late cannot bring it back.
type ruleRecord struct {
	Name    string          `json:"name"`
	Version Version         `json:"version"`
	Rule    *spec.FaultRule `json:"rule,omitempty"`
	// Created identifies the rule's incarnation: members that hold the same
	// one count into the same totals.
	Created time.Time `json:"created"`
	// Expires is the lease's absolute end (for a deletion, the end of the
	// lease of what it deleted: the tombstone is kept past it).
	Expires time.Time `json:"expires"`
	// Action is what the change did, as the audit log names it.
	Action string    `json:"action"`
	At     time.Time `json:"at"`
}

// groupingRecord is the replicated state of one experiment run's grouping:
// the last change to it, wherever it was made. A record without a grouping
// is a deletion, kept so that an older put arriving late cannot bring it
// back.
type groupingRecord struct {
	Run     string  `json:"run"`
	Version Version `json:"version"`
	// Claim orders runs whose groupings want the same CUJ: the version of
	// the put that started the run's grouping, kept by its renewals and by
	// puts while it holds a lease. Of two live runs on one CUJ, the earlier
	// claim holds it on every member (see reconcileGroupings).
	Claim    Version        `json:"claim,omitzero"`
	Grouping *spec.Grouping `json:"grouping,omitempty"`
	// Expires is the lease's absolute end.
	Expires time.Time `json:"expires"`
	Action  string    `json:"action"`
	At      time.Time `json:"at"`
}

// canaryRecord is the replicated canary weight.
type canaryRecord struct {
	Version Version    `json:"version"`
	Weight  spec.Ratio `json:"weight"`
	Action  string     `json:"action"`
	At      time.Time  `json:"at"`
}

// report is what one member holds and counted, sent every second while it
// changes: the fleet's totals are the sums of the members' reports.
type report struct {
	Member string `json:"member"`
	// Seq orders one member's reports (at least its wall time in
	// nanoseconds, so a restarted member's reports still come later).
	Seq  uint64    `json:"seq"`
	At   time.Time `json:"at"`
	Spec string    `json:"spec,omitempty"`
	// Rules are the rules the member holds, with its own counts.
	Rules []ruleReport `json:"rules,omitempty"`
	// Groupings are the versions of the runs' groupings the member holds.
	Groupings map[string]Version `json:"groupings,omitempty"`
	Canary    Version            `json:"canary,omitzero"`
	// Leaving is the last report of a member that leaves: the others
	// then tell it left rather than failed.
	Leaving bool `json:"leaving,omitempty"`
}

type ruleReport struct {
	Name     string    `json:"name"`
	Version  Version   `json:"version"`
	Created  time.Time `json:"created"`
	State    string    `json:"state"`
	Matched  uint64    `json:"matched"`
	Injected uint64    `json:"injected"`
}

// envelope is every message between members: one record in a broadcast,
// everything in a full-state sync.
type envelope struct {
	Rules     []json.RawMessage `json:"rules,omitempty"`
	Groupings []*groupingRecord `json:"groupings,omitempty"`
	Canary    *canaryRecord     `json:"canary,omitempty"`
	Reports   []*report         `json:"reports,omitempty"`
}

// protocol is the first byte of every message, so that a later format can
// tell itself apart.
const protocol byte = 1

func encode(e *envelope) ([]byte, error) {
	data, err := json.Marshal(e)
	if err != nil {
		return nil, err
	}
	return append([]byte{protocol}, data...), nil
}

func decode(msg []byte) (*envelope, error) {
	if len(msg) == 0 || msg[0] != protocol {
		return nil, fmt.Errorf("unknown message format (a member of another slolab version?)")
	}
	var e envelope
	if err := json.Unmarshal(msg[1:], &e); err != nil {
		return nil, err
	}
	return &e, nil
}
