package admin_test

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"slolab.dev/slolab/fault"
	"slolab.dev/slolab/match"
	"slolab.dev/slolab/proxy/admin"
	"slolab.dev/slolab/sli"
	"slolab.dev/slolab/spec"
)

// The audit log named a token by 32 bits of its unsalted SHA-256, which
// anyone can recompute for a guessed token; it names it by an HMAC under a
// secret of the log's own.
func TestTheAuditLogNamesTheTokenByAKeyedID(t *testing.T) {
	const tok = "s3cret-s3cret-s3cret"
	e := setup(t, tok)
	if code, body := call(t, "PUT", e.srv.URL+"/api/v1/faults/a", tok, rule); code != http.StatusCreated {
		t.Fatalf("put: %d %s", code, body)
	}
	var entry admin.AuditEntry
	if err := json.Unmarshal(e.audit.Bytes(), &entry); err != nil {
		t.Fatalf("audit line %q: %v", e.audit.String(), err)
	}
	sum := sha256.Sum256([]byte(tok))
	id, ok := strings.CutPrefix(entry.Identity, "token:")
	if !ok || len(id) != 16 || id == hex.EncodeToString(sum[:4]) || strings.HasPrefix(hex.EncodeToString(sum[:]), id) {
		t.Errorf("identity %q: want token: and 16 hex digits of a keyed hash, not of SHA-256", entry.Identity)
	}
}

// The secret lives beside the log: one token keeps its id across restarts
// of the same log, and has another in another log.
func TestKeyIDsAreStablePerLog(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "audit.jsonl")
	a, err := admin.OpenAudit(path, 10)
	if err != nil {
		t.Fatal(err)
	}
	first := a.KeyID("token-one-token-one")
	a.Close()
	b, err := admin.OpenAudit(path, 10)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if again := b.KeyID("token-one-token-one"); again != first {
		t.Errorf("the same log names the token %s, then %s", first, again)
	}
	if other := b.KeyID("token-two-token-two"); other == first {
		t.Error("two tokens have one id")
	}
	c, err := admin.OpenAudit(filepath.Join(t.TempDir(), "audit.jsonl"), 10)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if elsewhere := c.KeyID("token-one-token-one"); elsewhere == first {
		t.Error("two logs name one token alike: the id is not keyed")
	}
	for _, p := range []string{path, path + ".key"} {
		if fi, err := os.Stat(p); err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: %v %v, want mode 0600", p, fi.Mode(), err)
		}
	}
}

// failing is an audit log's writer that fails while broken is set.
type failing struct{ broken atomic.Bool }

func (f *failing) Write(p []byte) (int, error) {
	if f.broken.Load() {
		return 0, errors.New("no space left on device")
	}
	return len(p), nil
}

// A change whose audit record cannot be written is refused and undone:
// the rules are as before, counters included.
func TestAChangeThatCannotBeAuditedIsRefused(t *testing.T) {
	svc, err := spec.LoadService("../../examples/chat.yaml")
	if err != nil {
		t.Fatal(err)
	}
	routes, _ := match.Compile(svc)
	faults, _ := fault.NewRegistry(fault.Config{Service: svc, Routes: routes, MaxTTL: time.Hour})
	w := &failing{}
	h, err := admin.NewHandler(admin.Config{Service: svc, Routes: routes, Faults: faults, Recorder: sli.New(sli.Config{Service: svc, Routes: routes}), Audit: admin.NewAudit(w, 10)})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	defer srv.Close()
	if code, body := call(t, "PUT", srv.URL+"/api/v1/faults/kept", "", rule); code != http.StatusCreated {
		t.Fatalf("put: %d %s", code, body)
	}
	before, _ := faults.Get("kept")

	w.broken.Store(true)
	for _, c := range []struct{ method, path, body string }{
		{"PUT", "/api/v1/faults/new", rule},
		{"PUT", "/api/v1/faults/kept", `{"match": {"cuj": "read"}, "abort": true}`},
		{"POST", "/api/v1/faults/kept/renew", `{"ttl": "50m"}`},
		{"DELETE", "/api/v1/faults/kept", ""},
		{"PUT", "/api/v1/grouping", `{"by": "header:X-User", "experiment": "10%"}`},
	} {
		code, body := call(t, c.method, srv.URL+c.path, "", c.body)
		if code != http.StatusServiceUnavailable || !strings.Contains(body, "the change was not made: the audit log cannot be written: no space left on device") {
			t.Errorf("%s %s while the log fails: %d %s, want 503", c.method, c.path, code, body)
		}
	}
	after, err := faults.Get("kept")
	if err != nil || after.Rule.Match.CUJ != "update" || !after.ExpiresAt.Equal(before.ExpiresAt) || after.Created != before.Created {
		t.Errorf("the rule after refused changes: %+v %v, want %+v", after, err, before)
	}
	if _, err := faults.Get("new"); err == nil {
		t.Error("a refused put left its rule")
	}
	if gs := faults.Groupings(); len(gs) != 0 {
		t.Errorf("a refused grouping was installed: %+v", gs)
	}
	w.broken.Store(false)
	if code, body := call(t, "DELETE", srv.URL+"/api/v1/faults/kept", "", ""); code != http.StatusOK {
		t.Errorf("once the log works again: %d %s", code, body)
	}
}

// Leases that lapse and rules removed on shutdown are in the log too, as
// the proxy's own changes.
func TestLapsesAndShutdownRemovalsAreAudited(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		svc, err := spec.LoadService("../../examples/chat.yaml")
		if err != nil {
			t.Fatal(err)
		}
		routes, _ := match.Compile(svc)
		audit := admin.NewAudit(nil, 10)
		faults, _ := fault.NewRegistry(fault.Config{Service: svc, Routes: routes, Lapsed: func(l fault.Lapse) { audit.Lapsed(l) }})
		short, _ := spec.ParseFaultRule("r", []byte(`{"abort": true, "ttl": "30s"}`), "short")
		long, _ := spec.ParseFaultRule("r", []byte(`{"abort": true, "ttl": "1h"}`), "long")
		faults.Put(short)
		faults.Put(long)
		faults.SetGrouping(&spec.Grouping{By: "header:X-User", Experiment: spec.NewRatio(1, 10), TTL: 10 * time.Second})
		time.Sleep(time.Minute)
		faults.Sweep()
		faults.Sweep() // each lapse once
		if _, err := admin.RemoveAll(faults, audit, time.Now()); err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, e := range audit.Recent(0) {
			got = append(got, e.Identity+" "+e.Actor+" "+e.Action+" "+e.Fault)
		}
		want := []string{"slolab lease grouping.expire ", "slolab lease expire short", "slolab shutdown delete long", "slolab shutdown delete short", "slolab shutdown grouping.delete "}
		if strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Errorf("audit:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
	})
}

// A fleet member's log names the member in what happens there (its own
// changes, lapses, removals on shutdown) and keeps the member a change
// learnt from another member was made on.
func TestAFleetMembersLogNamesWhereEachChangeWasMade(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		svc, err := spec.LoadService("../../examples/chat.yaml")
		if err != nil {
			t.Fatal(err)
		}
		routes, _ := match.Compile(svc)
		audit := admin.NewAudit(nil, 10)
		audit.SetMember("m2")
		faults, _ := fault.NewRegistry(fault.Config{Service: svc, Routes: routes, Lapsed: func(l fault.Lapse) { audit.Lapsed(l) }})
		r, _ := spec.ParseFaultRule("r", []byte(`{"abort": true, "ttl": "30s"}`), "short")
		faults.Put(r)
		audit.Append(admin.AuditEntry{Time: time.Now(), Identity: "cluster", Actor: "gossip", Remote: "m1", Action: "put", Fault: "short", Member: "m1"})
		time.Sleep(time.Minute)
		faults.Sweep()
		faults.Put(r)
		if _, err := admin.RemoveAll(faults, audit, time.Now()); err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, e := range audit.Recent(0) {
			got = append(got, e.Action+" on "+e.Member)
		}
		if want := []string{"put on m1", "expire on m2", "delete on m2"}; !slices.Equal(got, want) {
			t.Errorf("audit: %q, want %q", got, want)
		}
	})
}
