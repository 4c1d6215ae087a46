package admin

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"slolab.dev/slolab"
	"slolab.dev/slolab/fault"
)

// AuditEntry is one change made through the admin API, or by the proxy
// itself (a lease that lapsed, the rules removed on shutdown).
type AuditEntry struct {
	Time time.Time `json:"time"`
	// Identity is who made the change: "token:" and the token's key id
	// (see Audit.KeyID; never the token), "anonymous" without a token, or
	// "slolab" for the proxy itself.
	Identity string `json:"identity"`
	Actor    string `json:"actor,omitempty"` // what the client says it is (X-Slolab-Actor), unverified; "lease" or "shutdown" for the proxy
	Remote   string `json:"remote,omitempty"`
	Action   string `json:"action"` // put, replace, delete, renew, expire, finish, grouping.put, ...
	Fault    string `json:"fault,omitempty"`
	Detail   any    `json:"detail,omitempty"` // the rule or grouping as applied
	// Member is the fleet member the change was made on, when the proxy is
	// one of a cluster: changes made elsewhere reach every member's log.
	Member string `json:"member,omitempty"`
}

// SelfIdentity is the identity of changes the proxy makes by itself.
const SelfIdentity = "slolab"

// Audit appends entries as JSON lines to a writer and keeps the latest in
// memory for the API and the dashboard. It holds the secret that key ids
// are made with: kept beside the log file (OpenAudit), so that one token
// has one id across restarts, or made anew for a log in memory only.
type Audit struct {
	mu     sync.Mutex
	w      io.Writer
	secret []byte
	recent []AuditEntry
	keep   int
	close  func() error
	member string // the fleet member this log belongs to, if any
}

// NewAudit returns an audit log writing to w (nil: memory only), keeping the
// last keep entries in memory, with a secret of its own for key ids.
func NewAudit(w io.Writer, keep int) *Audit {
	if keep <= 0 {
		keep = 1000
	}
	return &Audit{w: w, keep: keep, secret: []byte(rand.Text() + rand.Text())}
}

// OpenAudit opens (or creates) the audit log at path for appending, with
// its secret in path+".key" (created, readable by its owner only, when
// missing).
func OpenAudit(path string, keep int) (*Audit, error) {
	secret, err := auditSecret(path + ".key")
	if err != nil {
		return nil, err
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		return nil, fmt.Errorf("opening the audit log: %w", err)
	}
	a := NewAudit(f, keep)
	a.secret, a.close = secret, f.Close
	return a, nil
}

func auditSecret(path string) ([]byte, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		key := rand.Text() + rand.Text()
		f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
		if errors.Is(err, fs.ErrExist) { // another process made it first
			return auditSecret(path)
		}
		if err != nil {
			return nil, fmt.Errorf("creating the audit log's key: %w", err)
		}
		_, err = f.WriteString(key + "\n")
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return nil, fmt.Errorf("writing the audit log's key: %w", err)
		}
		return []byte(key), nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading the audit log's key: %w", err)
	}
	key := strings.TrimSpace(string(data))
	if len(key) < 32 {
		return nil, fmt.Errorf("the audit log's key %s is too short (%d characters): remove it to make a new one (key ids then change)", path, len(key))
	}
	return []byte(key), nil
}

// KeyID identifies a token in the log without revealing it: the first 8
// bytes of HMAC-SHA256 under the log's secret, in hex. The same token has
// the same id in one log; without the secret, an id neither reveals the
// token nor can be made for another.
func (a *Audit) KeyID(token string) string {
	m := hmac.New(sha256.New, a.secret)
	m.Write([]byte(token))
	return hex.EncodeToString(m.Sum(nil)[:8])
}

// Append records an entry. When the entry cannot be written, it is not
// kept either, and the error (Unavailable) says why: the admin API then
// undoes the change.
func (a *Audit) Append(e AuditEntry) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if e.Member == "" {
		e.Member = a.member
	}
	if a.w != nil {
		line, err := json.Marshal(e)
		if err == nil {
			_, err = a.w.Write(append(line, '\n'))
		}
		if err != nil {
			return slolab.Errorf(slolab.Unavailable, "the audit log cannot be written: %w", err)
		}
	}
	a.recent = append(a.recent, e)
	if len(a.recent) > a.keep {
		a.recent = a.recent[len(a.recent)-a.keep:]
	}
	return nil
}

// SetMember names the fleet member this log belongs to: every entry
// recorded without a member (a change made through this member's admin
// API, a lapse, a removal on shutdown) names it. Changes learnt from other
// members name the member they were made on.
func (a *Audit) SetMember(name string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.member = name
}

// Lapsed records a rule or grouping that stopped applying by itself, as
// fault.Config.Lapsed reports it.
func (a *Audit) Lapsed(l fault.Lapse) error {
	e := AuditEntry{Time: l.At.UTC(), Identity: SelfIdentity, Actor: "lease", Action: "expire"}
	switch {
	case l.Rule != nil:
		e.Fault = l.Rule.Rule.Name
		if l.State == fault.StateFinished {
			e.Action = "finish"
		}
		e.Detail = map[string]any{"expiresAt": l.Rule.ExpiresAt.UTC(), "matched": l.Rule.Matched, "injected": l.Rule.Injected}
	case l.Grouping != nil:
		e.Action = "grouping.expire"
		e.Fault = l.Grouping.Grouping.Run
		e.Detail = map[string]any{"expiresAt": l.Grouping.ExpiresAt.UTC()}
	}
	return a.Append(e)
}

// RemoveAll removes every rule and every run's grouping from reg, as the proxy does
// on shutdown so that nothing stays injected, records each removal, and
// returns the rules removed. A removal that cannot be recorded still
// happens: the error says which.
func RemoveAll(reg *fault.Registry, a *Audit, now time.Time) ([]fault.Status, error) {
	groupings := reg.Groupings()
	removed := reg.DeleteAll()
	slices.SortFunc(removed, func(x, y fault.Status) int { return strings.Compare(x.Rule.Name, y.Rule.Name) })
	var errs []error
	for _, st := range removed {
		errs = append(errs, a.Append(AuditEntry{Time: now.UTC(), Identity: SelfIdentity, Actor: "shutdown", Action: "delete", Fault: st.Rule.Name,
			Detail: map[string]any{"state": st.State, "matched": st.Matched, "injected": st.Injected}}))
	}
	for _, g := range groupings {
		errs = append(errs, a.Append(AuditEntry{Time: now.UTC(), Identity: SelfIdentity, Actor: "shutdown", Action: "grouping.delete",
			Fault: g.Grouping.Run, Detail: map[string]any{"active": g.Active}}))
	}
	return removed, errors.Join(errs...)
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

// Close closes the log file OpenAudit opened.
func (a *Audit) Close() error {
	if a.close == nil {
		return nil
	}
	return a.close()
}
