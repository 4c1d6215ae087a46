package cli

import (
	"encoding/json"
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
	}
	for _, tt := range tests {
		code, _, errs := runCLI(t, nil, tt.args...)
		if code != ExitUsage || !strings.Contains(errs, tt.msg) {
			t.Errorf("%v: exit %d, stderr %q; want 2 and %q", tt.args[3:], code, errs, tt.msg)
		}
	}
}
