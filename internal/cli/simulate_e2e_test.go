package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"slolab.dev/slolab/fault"
	"slolab.dev/slolab/internal/testtool"
	"slolab.dev/slolab/match"
	"slolab.dev/slolab/proxy"
	"slolab.dev/slolab/proxy/admin"
	"slolab.dev/slolab/sli"
	"slolab.dev/slolab/slo"
	"slolab.dev/slolab/spec"
	"slolab.dev/slolab/store/sqlite"
)

// inProcess is an http.RoundTripper that serves requests with handlers by
// host, without a network, so a whole proxy stack runs in a synctest bubble.
type inProcess map[string]http.Handler

func (t inProcess) RoundTrip(r *http.Request) (*http.Response, error) {
	h, ok := t[r.URL.Host]
	if !ok {
		return nil, &url.Error{Op: r.Method, URL: r.URL.String(), Err: io.ErrUnexpectedEOF}
	}
	return testtool.ServeInMemory(h, r), nil
}

// TestSimulatedBurnRatePagesWhenTheMathsSays is the end-to-end check of
// `slolab simulate update --burn-rate 14.4` against a chat app under
// steady load: the page alert must fire in `slolab slo status` when the
// maths predicts, and nothing else may alert.
//
// What is real: the proxy, its fault registry, recorder and admin API, the
// simulate and slo status commands, the SQLite store and its flusher. What
// is scaled: time. The test runs in a testing/synctest bubble whose clock
// only moves when every goroutine waits, so the hour the alert needs passes
// in seconds; requests go through in-process transports instead of sockets
// (a socket would stop the bubble's clock).
//
// The maths: at 99.9%, burn rate 14.4 fails 1.44% = 9/625 of requests; the
// 1h/5m page fires once both windows hold at least that share, which a
// window entirely inside the simulation does after exactly an hour
// (slo.DetectionTime). Status judges whole minutes, so the first such
// window is the hour ending at the first minute boundary an hour or more
// after the rules went in. Update runs at exactly 25 requests a second, so
// an hour holds 90,000 of them and five minutes 7,500: 9/625 of each is a
// whole number (1,296 and 108), so the exact-rate rule puts exactly that
// many failures in each and the burn rate is exactly 14.4. The hour ending
// a minute earlier still holds 30 clean seconds (750 requests), so it stays
// below. A day of clean history before the test keeps the 6h, 1d and 3d
// windows from seeing only the simulation.
func TestSimulatedBurnRatePagesWhenTheMathsSays(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		t0 := time.Now() // the bubble starts at midnight, on a minute boundary
		svc, err := spec.LoadService(chatSpec)
		if err != nil {
			t.Fatal(err)
		}
		routes, err := match.Compile(svc)
		if err != nil {
			t.Fatal(err)
		}
		faults, err := fault.NewRegistry(fault.Config{Service: svc, Routes: routes})
		if err != nil {
			t.Fatal(err)
		}
		rec := sli.New(sli.Config{Service: svc, Routes: routes})
		app := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			io.Copy(io.Discard, r.Body)
			io.WriteString(w, "ok")
		})
		upstream, _ := url.Parse("http://app.internal")
		p, err := proxy.New(proxy.Config{Upstream: upstream, Routes: routes, Faults: faults, Recorder: rec, Transport: inProcess{"app.internal": app}})
		if err != nil {
			t.Fatal(err)
		}
		adm, err := admin.NewHandler(admin.Config{Service: svc, Routes: routes, Faults: faults, Recorder: rec, AllowHosts: []string{"admin.internal"}})
		if err != nil {
			t.Fatal(err)
		}
		// The admin client uses the default transport; point it at the admin handler.
		saved := http.DefaultTransport
		http.DefaultTransport = inProcess{"admin.internal": adm}
		defer func() { http.DefaultTransport = saved }()

		db := filepath.Join(t.TempDir(), "slolab.db")
		store, err := sqlite.Open(context.Background(), sqlite.Config{Path: db})
		if err != nil {
			t.Fatal(err)
		}
		defer store.Close()
		var history []sli.Bucket
		for m := t0.Add(-25 * time.Hour); m.Before(t0); m = m.Add(time.Minute) {
			history = append(history, sli.Bucket{Start: m, CUJ: "update", Group: "none", Counts: sli.Counts{Total: 1500, Hist: append([]uint64{1500}, make([]uint64, len(rec.Bounds()))...)}})
		}
		if err := store.Add(context.Background(), rec.Bounds(), history, t0); err != nil {
			t.Fatal(err)
		}

		ctx, stop := context.WithCancel(context.Background())
		var wg sync.WaitGroup
		wg.Go(func() { rec.Run(ctx) })
		wg.Go(func() { faults.Run(ctx) })
		wg.Go(func() {
			time.Sleep(5 * time.Second) // flush between the recorder's 10-second closes, not at them
			sqlite.NewFlusher(store, rec, sqlite.FlusherConfig{}).Run(ctx)
		})
		others := []struct{ method, path string }{{"POST", "/login"}, {"POST", "/messages"}, {"GET", "/messages"}, {"POST", "/files"}, {"POST", "/tasks"}}
		wg.Go(func() { // steady load: update every 40 ms, each other CUJ every 2 s
			// Off the recorder's 10-second boundaries: a request observed at
			// the very instant an interval closes may land on either side.
			time.Sleep(20 * time.Millisecond)
			for i := 0; ctx.Err() == nil && i < 200_000; i++ {
				p.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("POST", "/update", strings.NewReader(`{"id": 1}`)))
				if i%50 == 0 {
					for _, o := range others {
						p.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(o.method, o.path, nil))
					}
				}
				time.Sleep(40 * time.Millisecond)
			}
		})

		time.Sleep(2*time.Minute + 30*time.Second + 30*time.Millisecond) // mid-minute, between two requests
		started := time.Now()
		simCtx, interrupt := context.WithCancel(ctx)
		var simOut, simErr bytes.Buffer
		simDone := make(chan int)
		go func() {
			simDone <- runCLICtx(simCtx, &simOut, &simErr, "simulate", "update", "--admin", "http://admin.internal",
				"--burn-rate", "14.4", "--every", "10m", "--lease", "30s")
		}()

		predicted, _ := slo.DetectionTime(slo.Workbook[0], svc.CUJ("update").Availability.Objective, spec.NewRatio(9, 625))
		firstWindow := slo.Align(started.Add(predicted), time.Minute).Add(time.Minute) // the first whole minute after the hour
		var fired *slo.Status
		for fired == nil && time.Since(started) < predicted+5*time.Minute {
			if time.Since(started) < predicted-5*time.Minute {
				time.Sleep(5 * time.Minute)
			} else {
				time.Sleep(10 * time.Second)
			}
			var out, errOut bytes.Buffer
			if code := runCLICtx(ctx, &out, &errOut, "slo", "status", "--spec", chatSpec, "--store", db, "-o", "json"); code != 0 {
				t.Fatalf("slo status: exit %d: %s", code, errOut.String())
			}
			var st slo.Status
			if err := json.Unmarshal(out.Bytes(), &st); err != nil {
				t.Fatal(err)
			}
			var firing []string
			for _, s := range st.SLOs {
				for _, a := range s.Alerts {
					if a.Firing {
						firing = append(firing, s.CUJ+" "+string(s.Kind)+" "+a.Severity+" "+a.Pair())
					}
				}
			}
			switch {
			case len(firing) == 0:
			case strings.Join(firing, ", ") == "update availability page 1h/5m":
				fired = &st
			default:
				t.Fatalf("at %v after the start, status judged at %v shows %v firing; only the update page should, and not before %v",
					time.Since(started), st.At.Sub(started), firing, predicted)
			}
		}
		if fired == nil {
			t.Fatalf("no page within %v of the start (predicted: %v)\nsimulate said:\n%s%s", predicted+5*time.Minute, predicted, simOut.String(), simErr.String())
		}
		if !fired.At.Equal(firstWindow) {
			t.Errorf("the page fired in the status judged at %v after the start, want %v: the predicted %v rounded up to the next whole minute",
				fired.At.Sub(started), firstWindow.Sub(started), predicted)
		}
		if lag := time.Since(fired.At); lag > 20*time.Second {
			t.Errorf("status showed it %v after the window closed; the flusher and the polling should add at most 20s", lag)
		}
		var long slo.WindowState
		for _, w := range fired.SLOs[4].Windows { // update availability
			if time.Duration(w.Window) == time.Hour {
				long = w
			}
		}
		if long.Events != (slo.Events{Total: 90_000, Bad: 1_296}) {
			t.Errorf("the hour that paged holds %+v, want exactly 90,000 requests and 1,296 failures (burn rate 14.4)", long.Events)
		}

		interrupt()
		if code := <-simDone; code != 0 {
			t.Errorf("simulate: exit %d: %s", code, simErr.String())
		}
		if !strings.HasPrefix(simOut.String(), "1.44% of update requests fail; at this rate (burn rate 14.4) the 30-day budget lasts exactly 2d2h, and the page alert (1h/5m ≥ 14.4) fires after 1h.") {
			t.Errorf("simulate's explanation:\n%s", simOut.String())
		}
		if left := faults.List(); len(left) != 0 {
			t.Errorf("%d rules left after simulate ended: %+v", len(left), left)
		}
		stop()
		wg.Wait()
	})
}
