package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// sloConfig sizes the SLO-engine benchmark.
type sloConfig struct {
	Iterations int // statuses timed (go test -benchtime Nx)
}

// sloPkg holds issue 3's benchmark: full status of 10,000 SLOs over 30 days
// of minute buckets (BenchmarkStatus10kSLOs30Days).
const sloPkg = "./bench/slo"

var (
	benchName   = regexp.MustCompile(`^(Benchmark\S+?)(?:-\d+)?\s+(\d+)\s+(.*)$`)
	benchMetric = regexp.MustCompile(`([0-9.e+]+) (\S+)`)
)

// benchResult is one line of `go test -bench` output: its metrics by unit.
type benchResult struct {
	name    string
	n       int
	metrics map[string]float64
}

func parseBench(out string) []benchResult {
	var rs []benchResult
	for _, line := range strings.Split(out, "\n") {
		m := benchName.FindStringSubmatch(strings.TrimSpace(line))
		if m == nil {
			continue
		}
		r := benchResult{name: m[1], metrics: map[string]float64{}}
		r.n, _ = strconv.Atoi(m[2])
		for _, x := range benchMetric.FindAllStringSubmatch(m[3], -1) {
			v, err := strconv.ParseFloat(x[1], 64)
			if err == nil {
				r.metrics[x[2]] = v
			}
		}
		rs = append(rs, r)
	}
	return rs
}

// runSLO builds the SLO benchmark's test binary and runs it, reading its
// peak RSS from /proc as it runs.
func runSLO(s *session, cfg sloConfig) (string, error) {
	started, loadBefore := time.Now(), loadAvg()
	var b bytes.Buffer
	runLine(&b, started, loadBefore, fmt.Sprintf("-only slo -slo-iterations %d", cfg.Iterations))
	if _, err := os.Stat(sloPkg); err != nil {
		b.WriteString("**Not measured:** " + sloPkg + " (issue 3's benchmark) is not in this tree.\n")
		return b.String(), nil
	}
	bin := filepath.Join(s.dir, "slo.test")
	if out, err := exec.CommandContext(s.ctx, "go", "test", "-c", "-o", bin, sloPkg).CombinedOutput(); err != nil {
		return "", fmt.Errorf("go test -c %s: %w\n%s", sloPkg, err, out)
	}
	cmd := exec.CommandContext(s.ctx, bin, "-test.run", "^$", "-test.bench", ".", "-test.benchtime", fmt.Sprintf("%dx", cfg.Iterations), "-test.benchmem")
	cmd.Dir = sloPkg
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	rss, err := runPeakRSS(cmd)
	if err != nil {
		return "", fmt.Errorf("%s benchmarks: %w\n%s", sloPkg, err, out.Bytes())
	}
	results := parseBench(out.String())
	if len(results) == 0 {
		return "", fmt.Errorf("%s printed no benchmark results:\n%s", sloPkg, out.Bytes())
	}
	fmt.Fprintf(&b, "`go test -run '^$' -bench . -benchtime %dx -benchmem %s`, built and run as a test binary whose peak RSS (VmHWM) is read from /proc. "+
		"Wall time depends on the neighbours on a shared machine; CPU time per status (user + system, from getrusage in the benchmark) depends on them less.\n\n", cfg.Iterations, sloPkg)
	b.WriteString("| benchmark | SLOs | statuses timed | wall time / status | CPU time / status | allocated / status | allocations / status |\n|---|---:|---:|---:|---:|---:|---:|\n")
	for _, r := range results {
		fmt.Fprintf(&b, "| %s | %.0f | %d | %s | %s | %.1f MB | %.0f |\n", r.name, r.metrics["SLOs"], r.n,
			fmtDur(time.Duration(r.metrics["ns/op"])), fmtDur(time.Duration(r.metrics["cpu-ns/op"])),
			r.metrics["B/op"]/1e6, r.metrics["allocs/op"])
	}
	fmt.Fprintf(&b, "\nPeak RSS of the benchmark process (30 days of minutes for every CUJ, then the statuses): %s.\n\nReading:\n\n", fmtKB(rss))
	for _, r := range results {
		wall := time.Duration(r.metrics["ns/op"])
		v, verb := "meets goal", "under"
		if wall >= time.Second {
			v, verb = "misses goal", "not under"
		}
		b.WriteString(reading(v, fmt.Sprintf("A full status of %.0f SLOs over 30 days of minute buckets takes %s (%s of CPU), %s the one-second goal.",
			r.metrics["SLOs"], fmtDur(wall), fmtDur(time.Duration(r.metrics["cpu-ns/op"])), verb)))
	}
	return b.String(), nil
}
