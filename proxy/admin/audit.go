package admin

import (
	"encoding/json"
	"io"
	"sync"
	"time"
)

// AuditEntry is one change made through the admin API.
type AuditEntry struct {
	Time     time.Time `json:"time"`
	Identity string    `json:"identity"`        // "token:1a2b3c4d" (a fingerprint, never the token) or "anonymous"
	Actor    string    `json:"actor,omitempty"` // what the client says it is (X-Slolab-Actor), unverified
	Remote   string    `json:"remote"`
	Action   string    `json:"action"` // put, replace, delete, renew, grouping.put, ...
	Fault    string    `json:"fault,omitempty"`
	Detail   any       `json:"detail,omitempty"` // the rule or grouping as applied
	// Member is the fleet member the change was made on, when the proxy is
	// one of a cluster: changes made elsewhere reach every member's log.
	Member string `json:"member,omitempty"`
}

// Audit appends entries as JSON lines to a writer and keeps the latest in
// memory for the API and the dashboard.
type Audit struct {
	mu     sync.Mutex
	w      io.Writer
	recent []AuditEntry
	keep   int
	err    error
}

// NewAudit returns an audit log writing to w (nil: memory only), keeping the
// last keep entries in memory.
func NewAudit(w io.Writer, keep int) *Audit {
	if keep <= 0 {
		keep = 1000
	}
	return &Audit{w: w, keep: keep}
}

// Append records an entry. A failing writer is reported by Err and does not
// stop the API.
func (a *Audit) Append(e AuditEntry) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.recent = append(a.recent, e)
	if len(a.recent) > a.keep {
		a.recent = a.recent[len(a.recent)-a.keep:]
	}
	if a.w == nil {
		return
	}
	line, err := json.Marshal(e)
	if err == nil {
		_, err = a.w.Write(append(line, '\n'))
	}
	if err != nil && a.err == nil {
		a.err = err
	}
}

// Recent returns up to n of the latest entries, newest last.
func (a *Audit) Recent(n int) []AuditEntry {
	a.mu.Lock()
	defer a.mu.Unlock()
	if n <= 0 || n > len(a.recent) {
		n = len(a.recent)
	}
	return append([]AuditEntry(nil), a.recent[len(a.recent)-n:]...)
}

// Err returns the first error writing the log, if any.
func (a *Audit) Err() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.err
}
