package cli

import (
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"slolab.dev/slolab/internal/testtool"
)

func TestLoadReportsPerCUJAndFailsOnABrokenThreshold(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/update" {
			w.WriteHeader(503)
		}
	}))
	defer srv.Close()
	chat := testtool.RepoRoot(t) + "/examples/chat.yaml"
	code, out, errs := runCLI(t, nil, "load", "--spec", chat, "--target", srv.URL, "--rate", "200/s", "--duration", "1s",
		"--seed", "42", "-o", "json", "--progress", "0", "--threshold", "update:errors<0.1%", "--threshold", "read:p99<5s")
	if code != ExitFailure {
		t.Fatalf("exit %d, want 1 (update fails); stderr: %s", code, errs)
	}
	var rep struct {
		Seed uint64
		CUJs []struct {
			Name   string
			Sent   uint64
			Status map[string]uint64
		}
		Total      struct{ Sent uint64 }
		Thresholds []struct {
			Threshold, CUJ string
			OK             bool
		}
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	sent := map[string]uint64{}
	for _, c := range rep.CUJs {
		sent[c.Name] = c.Sent
	}
	want := map[string]uint64{"login": 20, "send": 60, "update": 30, "read": 70, "upload": 10, "task": 10}
	for k, v := range want {
		if sent[k] != v {
			t.Errorf("sent %v, want %v", sent, want)
			break
		}
	}
	if rep.Seed != 42 || rep.Total.Sent != 200 || len(rep.Thresholds) != 2 || rep.Thresholds[0].OK || !rep.Thresholds[1].OK {
		t.Errorf("seed %d total %d thresholds %+v", rep.Seed, rep.Total.Sent, rep.Thresholds)
	}
}

func TestLoadRefusesBadFlagsWithUsage(t *testing.T) {
	chat := testtool.RepoRoot(t) + "/examples/chat.yaml"
	tests := []struct {
		args []string
		msg  string
	}{
		{[]string{"load", "--spec", chat, "--target", "http://127.0.0.1:1"}, "load needs --rate RATE (and --duration) or --stage STAGE"},
		{[]string{"load", "--spec", chat, "--target", "http://127.0.0.1:1", "--rate", "fast"}, `want a rate such as 200/s, 30/m or 5/2s, got "fast"`},
		{[]string{"load", "--spec", chat, "--target", "http://127.0.0.1:1", "--rate", "1/s", "--stage", "1/s:1s"}, "give --rate (with --duration) or --stage, not both"},
		{[]string{"load", "--spec", chat, "--target", "http://127.0.0.1:1", "--rate", "1/s", "--threshold", "nope:p99<1s"}, `no CUJ "nope" in this run`},
		{[]string{"load", "--spec", chat, "--target", "ftp://x", "--rate", "1/s"}, "target: want an http:// or https:// URL"},
		{[]string{"load", "--spec", chat, "--target", "http://127.0.0.1:1", "--rate", "1/s", "--shard", "3/3"}, "want a shard i/N with 0 ≤ i < N"},
		{[]string{"load", "--spec", chat, "--target", "http://127.0.0.1:1", "--rate", "150%"}, `got "150%": a rate counts requests per unit of time, not a percentage`},
		{[]string{"load", "--spec", chat, "--target", "http://127.0.0.1:1", "--rate", "1/m", "--duration", "30s"}, "the plan sends no request: 1/m:30s holds less than one"},
		{[]string{"load", "--spec", chat, "--target", "http://127.0.0.1:1", "--rate", "1/s", "--duration", "2s", "--shard", "2/3"}, "shard 2/3 sends no request: the plan holds 2"},
		{[]string{"lab", "--rate", "150%"}, `--rate "150%": want a rate such as 200/s`},
	}
	for _, tt := range tests {
		code, _, errs := runCLI(t, nil, tt.args...)
		if code != ExitUsage || !strings.Contains(errs, tt.msg) {
			t.Errorf("%v: exit %d, stderr %q; want 2 and %q", tt.args[3:], code, errs, tt.msg)
		}
	}
}

// TestLoadAgainstNothingFails: a target that refuses every connection is
// not a load test that passed: exit 1, and the first line says why.
func TestLoadAgainstNothingFails(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	target := "http://" + ln.Addr().String()
	ln.Close() // nothing listens there now
	code, out, errOut := runCLI(t, nil, "load", "--spec", testtool.RepoRoot(t)+"/examples/chat.yaml", "--target", target, "--rate", "20/s", "--duration", "500ms")
	if code != ExitFailure || !strings.HasPrefix(errOut, "slolab load: none of the 10 requests sent reached "+target+": ") || !strings.Contains(errOut, "connection refused") {
		t.Errorf("exit %d, stderr %q; want 1 and a first line saying nothing was reached", code, errOut)
	}
	if !strings.Contains(out, "(total)") {
		t.Errorf("the report is still printed:\n%s", out)
	}
}
