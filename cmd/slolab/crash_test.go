package main_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"slolab.dev/slolab/slo"
	"slolab.dev/slolab/store/sqlite"
)

// A proxy killed with SIGKILL loses only the interval still open: the store
// holds every request the client saw answered before the last boundary,
// and the boundary is less than one interval before the kill. The proxy
// starts a second before a boundary and is killed 9 s into the next
// interval, just before a flush timer counted from its start would have
// fired (which lost 16 to 17.4 s of requests).
func TestAKilledProxyLosesOnlyTheOpenInterval(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a proxy across two of its 10-second intervals")
	}
	const interval = 10 * time.Second // the recorder's
	bin := build(t)
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "app") }))
	defer app.Close()

	for attempt := 1; attempt <= 3; attempt++ {
		db := filepath.Join(t.TempDir(), "slolab.db")
		time.Sleep(time.Until(time.Now().Truncate(interval).Add(interval - time.Second)))
		boundary := time.Now().Truncate(interval).Add(interval)
		cmd := exec.Command(bin, "proxy", "--spec", "../../examples/chat.yaml", "--upstream", app.URL,
			"--listen", "127.0.0.1:0", "--admin", "127.0.0.1:0", "--audit-log", "-", "--store", db)
		stderr, _ := cmd.StderrPipe()
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		rd, proxyURL, _ := readBanner(t, stderr)
		go io.Copy(io.Discard, rd)
		if time.Now().After(boundary.Add(-100 * time.Millisecond)) {
			t.Logf("attempt %d: the proxy was ready only %v before the boundary; again at the next one", attempt, time.Until(boundary))
			cmd.Process.Kill()
			cmd.Wait()
			continue
		}

		// One request at a time, each with when it left and when its answer came.
		type exchange struct{ sent, answered time.Time }
		var seen []exchange
		client := &http.Client{Timeout: 5 * time.Second}
		kill := boundary.Add(9 * time.Second)
		for time.Now().Before(kill) {
			sent := time.Now()
			resp, err := client.Post(proxyURL+"/update", "text/plain", nil)
			if err != nil {
				t.Fatal(err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			seen = append(seen, exchange{sent, time.Now()})
			time.Sleep(5 * time.Millisecond)
		}
		killed := time.Now()
		if err := cmd.Process.Kill(); err != nil {
			t.Fatal(err)
		}
		cmd.Wait()

		st, err := sqlite.Open(context.Background(), sqlite.Config{Path: db})
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()
		ext, err := st.Extent(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		ev, err := st.Events(context.Background(), slo.Range{From: killed.Add(-time.Hour), To: killed.Add(time.Hour)})
		if err != nil {
			t.Fatal(err)
		}
		stored := ev[slo.Key{CUJ: "update", Kind: slo.Availability}].Total
		answered, sentBefore := 0, 0
		for _, x := range seen {
			if x.answered.Before(ext.FlushedUntil) {
				answered++
			}
			if x.sent.Before(ext.FlushedUntil) {
				sentBefore++
			}
		}
		if ext.FlushedUntil.IsZero() {
			t.Fatalf("nothing was flushed in the %v before the kill: the client saw %d answers, the store holds %d", killed.Sub(boundary.Add(-interval)).Round(time.Second), len(seen), stored)
		}
		lost := killed.Sub(ext.FlushedUntil)
		t.Logf("killed %v after the last flushed boundary: the client saw %d answers, the store holds %d (%d lost, all after the boundary)",
			lost.Round(time.Millisecond), len(seen), stored, uint64(len(seen))-stored)
		if lost < 0 || lost >= interval {
			t.Errorf("the store was flushed until %v before the kill, want less than one interval (%v)", lost, interval)
		}
		if stored < uint64(answered) || stored > uint64(sentBefore) {
			t.Errorf("the store holds %d requests; the client had %d answers before the boundary and had sent %d", stored, answered, sentBefore)
		}
		return
	}
	t.Fatal("the proxy never started in time before a boundary")
}
