package web

import (
	"context"
	"encoding/json"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"slolab.dev/slolab/errclass"
	"slolab.dev/slolab/store/sqlite"
)

// GET /api/errors lists the classes of the last day the week before never
// saw, the injected apart, and says why the list is empty without a store.
func TestTheDashboardListsNewErrors(t *testing.T) {
	path := filepath.Join(t.TempDir(), "slolab.db")
	st, err := sqlite.Open(context.Background(), sqlite.Config{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	now := time.Now()
	class := func(cuj, sig string, injected bool, at time.Time, n uint64) errclass.Class {
		return errclass.Class{ID: errclass.ID(cuj, "R", 500, errclass.KindStatus, sig, injected), CUJ: cuj, Route: "R", Status: 500,
			Kind: errclass.KindStatus, Signature: sig, Injected: injected, FirstSeen: at, LastSeen: at, Count: n}
	}
	old := class("login", "error=old", false, now.Add(-72*time.Hour), 4)
	if err := st.AddErrorClasses(context.Background(), []errclass.Class{
		old, class("update", "error=new", false, now.Add(-time.Minute), 3), class("read", "error=injected", true, now.Add(-time.Minute), 9),
	}); err != nil {
		t.Fatal(err)
	}
	again := old
	again.FirstSeen, again.LastSeen, again.Count = now, now, 1
	if err := st.AddErrorClasses(context.Background(), []errclass.Class{again}); err != nil {
		t.Fatal(err)
	}
	get := func(rec *Records) ErrorsView {
		resp, err := http.Get(runsDashboard(t, rec).URL + "/api/errors")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var v ErrorsView
		if err := json.NewDecoder(resp.Body).Decode(&v); err != nil || resp.StatusCode != 200 {
			t.Fatalf("GET /api/errors: %s %v", resp.Status, err)
		}
		return v
	}
	v := get(&Records{Store: st, Path: path})
	if len(v.Classes) != 1 || v.Classes[0].CUJ != "update" || v.Classes[0].Count != 3 || len(v.Injected) != 1 || v.Injected[0].Count != 9 || v.Empty != "" {
		t.Errorf("new errors = %+v", v)
	}
	if v := get(nil); v.Empty == "" || len(v.Classes) != 0 {
		t.Errorf("without a store: %+v", v)
	}
}
