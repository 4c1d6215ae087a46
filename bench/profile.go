package main

import (
	"bytes"
	"fmt"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// profileConfig sizes the request-path profile.
type profileConfig struct {
	Requests int // requests per sub-benchmark
}

const (
	profilePkg   = "./proxy"
	profileBench = "BenchmarkProxyLoopback"
	// profileIgnore leaves the benchmark's client and upstream out of the
	// profile: what is left is the proxy's own work, runtime included.
	profileIgnore = "BenchmarkProxyLoopback|serveRaw|rawUpstream|readRawResponse"
)

// runProfile runs the request path's loopback benchmark (package proxy)
// with -benchmem and a CPU profile, and renders the allocations per request
// and the profile's top entries.
func runProfile(s *session, cfg profileConfig) (string, error) {
	started, loadBefore := time.Now(), loadAvg()
	bin, prof := filepath.Join(s.dir, "proxy.test"), filepath.Join(s.dir, "proxy.cpu")
	out, err := exec.CommandContext(s.ctx, "go", "test", "-run", "^$", "-bench", "^"+profileBench+"$", "-benchmem",
		"-benchtime", fmt.Sprintf("%dx", cfg.Requests), "-cpuprofile", prof, "-o", bin, profilePkg).CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("go test -bench %s: %w\n%s", profileBench, err, out)
	}
	benches := parseBench(string(out))
	if len(benches) == 0 {
		return "", fmt.Errorf("go test -bench %s printed no result:\n%s", profileBench, out)
	}
	top, err := exec.CommandContext(s.ctx, "go", "tool", "pprof", "-top", "-nodecount=0", "-ignore="+profileIgnore, bin, prof).Output()
	if err != nil {
		return "", fmt.Errorf("go tool pprof: %w", err)
	}
	entries, total := parsePprofTop(string(top))
	share := func(name string) float64 {
		for _, e := range entries {
			if e.name == name {
				return 100 * e.cum.Seconds() / total.Seconds()
			}
		}
		return 0
	}
	syscalls, malloc := share("internal/runtime/syscall/linux.Syscall6"), share("runtime.mallocgc")
	entries = entries[:min(len(entries), 12)]
	var requests int
	for _, r := range benches {
		requests += r.n
	}
	var b bytes.Buffer
	runLine(&b, started, loadBefore, fmt.Sprintf("-only profile -profile-requests %d", cfg.Requests))
	fmt.Fprintf(&b, "`go test -run '^$' -bench '^%s$' -benchmem -benchtime %dx -cpuprofile proxy.cpu %s`: keep-alive connections over loopback to a proxy running in the test process, forwarding `GET /messages` to a raw upstream that allocates nothing, then `go tool pprof -top -nodecount=0 -ignore='%s'`, which leaves the client and the upstream out.\n\n",
		profileBench, cfg.Requests, profilePkg, profileIgnore)
	b.WriteString("| benchmark | allocations per request | bytes per request |\n|---|---:|---:|\n")
	for _, r := range benches {
		name := strings.ReplaceAll(strings.TrimPrefix(r.name, profileBench+"/"), "_", " ")
		fmt.Fprintf(&b, "| %s | %.0f | %.0f B |\n", name, r.metrics["allocs/op"], r.metrics["B/op"])
	}
	fmt.Fprintf(&b, "\nThe proxy's CPU samples: %s for %d requests, %.1f µs per request in this process; %.0f%% of them in system calls, %.0f%% allocating (`runtime.mallocgc` with its callees). Top entries by own time, as a share of the proxy's samples:\n\n",
		total, requests, micros(total)/float64(max(requests, 1)), syscalls, malloc)
	b.WriteString("| function | own time | with callees |\n|---|---:|---:|\n")
	for _, e := range entries {
		fmt.Fprintf(&b, "| `%s` | %.1f%% | %.1f%% |\n", e.name, 100*e.flat.Seconds()/total.Seconds(), 100*e.cum.Seconds()/total.Seconds())
	}
	return b.String(), nil
}

// pprofEntry is one line of pprof -top.
type pprofEntry struct {
	name      string
	flat, cum time.Duration
}

var (
	pprofTotal = regexp.MustCompile(`Showing nodes accounting for ([0-9.]+)(ms|s), `)
	pprofLine  = regexp.MustCompile(`^\s*([0-9.]+)(ms|s)?\s+[0-9.]+%\s+[0-9.]+%\s+([0-9.]+)(ms|s)?\s+[0-9.]+%\s+(.+)$`)
)

// parsePprofTop reads pprof -top's entries and what they account for: with
// -nodecount=0 every node is shown, so that is the total of the samples
// its filters kept (each sample's own time goes to one node).
func parsePprofTop(text string) ([]pprofEntry, time.Duration) {
	dur := func(v, unit string) time.Duration {
		f, _ := strconv.ParseFloat(v, 64)
		if unit == "ms" {
			return time.Duration(f * float64(time.Millisecond))
		}
		return time.Duration(f * float64(time.Second))
	}
	var total time.Duration
	if m := pprofTotal.FindStringSubmatch(text); m != nil {
		total = dur(m[1], m[2])
	}
	var out []pprofEntry
	for _, line := range strings.Split(text, "\n") {
		if m := pprofLine.FindStringSubmatch(line); m != nil {
			out = append(out, pprofEntry{name: strings.TrimSuffix(m[5], " (inline)"), flat: dur(m[1], m[2]), cum: dur(m[3], m[4])})
		}
	}
	return out, total
}
