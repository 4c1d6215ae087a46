package main_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// A runner killed with SIGKILL cannot clean up; the leases it stopped
// renewing end its faults and its grouping by themselves. Checked through
// the admin API of the real binary.
func TestKillingTheRunnerLeavesNothingBeyondTheLease(t *testing.T) {
	bin := build(t)
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "app") }))
	defer app.Close()
	dir := t.TempDir()
	proxy := exec.Command(bin, "proxy", "--spec", "../../examples/chat.yaml", "--upstream", app.URL,
		"--listen", "127.0.0.1:0", "--admin", "127.0.0.1:0", "--audit-log", "-", "--store", filepath.Join(dir, "proxy.db"))
	stderr, _ := proxy.StderrPipe()
	if err := proxy.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { proxy.Process.Signal(syscall.SIGINT); proxy.Wait() }()
	rd, proxyURL, adminURL := readBanner(t, stderr)
	go io.Copy(io.Discard, rd)

	chat, _ := filepath.Abs("../../examples/chat.yaml")
	spec := filepath.Join(dir, "exp.yaml")
	os.WriteFile(spec, []byte(`apiVersion: slolab.dev/v1
kind: Experiment
metadata: {name: long}
spec:
  serviceFile: `+chat+`
  lease: 2s
  interval: 1s
  steadyState: ["true"]
  blastRadius: {by: "header:X-User-ID", experiment: 50%}
  method: [{duration: 10m, faults: [{name: long-500, match: {cuj: update}, status: 500}]}]
`), 0o644)
	runner := exec.Command(bin, "experiment", "run", spec, "--admin", adminURL, "--report-dir", "", "--store", filepath.Join(dir, "slolab.db"))
	if err := runner.Start(); err != nil {
		t.Fatal(err)
	}
	defer runner.Process.Kill()

	type status struct {
		Faults []struct {
			Rule  struct{ Name string }
			State string
		}
	}
	state := func() (fault string, grouped bool) {
		resp, err := http.Get(adminURL + "/api/v1/faults")
		if err != nil {
			t.Fatal(err)
		}
		var st status
		json.NewDecoder(resp.Body).Decode(&st)
		resp.Body.Close()
		for _, f := range st.Faults {
			if f.Rule.Name == "long-500" {
				fault = f.State
			}
		}
		resp, err = http.Get(adminURL + "/api/v1/grouping")
		if err != nil {
			t.Fatal(err)
		}
		var g struct{ Active bool }
		json.NewDecoder(resp.Body).Decode(&g)
		resp.Body.Close()
		return fault, g.Active
	}
	// Wait (bounded) for the runner to inject, then kill it outright.
	deadline := time.Now().Add(20 * time.Second)
	for {
		if f, g := state(); f == "active" && g {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the runner never installed its fault and grouping")
		}
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(3 * time.Second) // a few renewals: the lease is held, not just set
	if f, g := state(); f != "active" || !g {
		t.Fatalf("before the kill: fault %s, grouped %v; the runner did not renew", f, g)
	}
	if err := runner.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	runner.Wait()
	if f, g := state(); f != "active" || !g {
		t.Fatalf("right after the kill: fault %s, grouped %v; want both still held by their lease", f, g)
	}
	// The lease (2s from the last renewal) ends both; poll, bounded.
	deadline = time.Now().Add(10 * time.Second)
	var f string
	var g bool
	for {
		if f, g = state(); f == "expired" && !g {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("10s after the kill: fault %s, grouped %v; want expired and no grouping", f, g)
		}
		time.Sleep(100 * time.Millisecond)
	}
	// And the app is whole again for everyone.
	for i := range 20 {
		req, _ := http.NewRequest("POST", proxyURL+"/update", nil)
		req.Header.Set("X-User-ID", fmt.Sprintf("user-%d", i))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Errorf("user-%d got %d after the lease ended", i, resp.StatusCode)
		}
	}
}
