package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// The SLO-engine benchmark (status of 10,000 SLOs over 30 days of minute
// buckets) belongs to issue 3. This hook runs whichever form it takes:
//
//  1. a program at bench/slo that prints its Markdown section on stdout
//     (figures, then "- **leads**: ..." reading lines like the others here);
//  2. otherwise Go benchmarks in ./slo whose names start with
//     BenchmarkStatus, rendered as a table;
//  3. otherwise a section saying it has not landed yet.

var benchLine = regexp.MustCompile(`^(Benchmark\S+?)(?:-\d+)?\s+(\d+)\s+([0-9.]+) ns/op(?:\s+([0-9.]+) B/op)?(?:\s+([0-9.]+) allocs/op)?`)

func runSLO(s *session) (string, error) {
	started, loadBefore := time.Now(), loadAvg()
	var b bytes.Buffer
	runLine(&b, started, loadBefore, "-only slo")
	if st, err := os.Stat("bench/slo"); err == nil && st.IsDir() {
		cmd := exec.CommandContext(s.ctx, "go", "run", "./bench/slo")
		cmd.Stderr = os.Stderr
		out, err := cmd.Output()
		if err != nil {
			return "", fmt.Errorf("go run ./bench/slo: %w", err)
		}
		b.Write(out)
		return b.String(), nil
	}
	out, err := exec.CommandContext(s.ctx, "go", "test", "-run", "^$", "-bench", "^BenchmarkStatus", "-benchmem", "./slo").CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("go test -bench ./slo: %w\n%s", err, out)
	}
	var rows []string
	for _, line := range strings.Split(string(out), "\n") {
		if m := benchLine.FindStringSubmatch(line); m != nil {
			ns, _ := strconv.ParseFloat(m[3], 64) // the pattern admits only numbers
			rows = append(rows, fmt.Sprintf("| %s | %s | %s | %s B | %s |", m[1], m[2], fmtDur(time.Duration(ns)), m[4], m[5]))
		}
	}
	if len(rows) == 0 {
		b.WriteString("**Not measured yet.** Issue 3's benchmark (status of 10,000 SLOs over 30 days of minute buckets) has not landed on main. " +
			"When it does, as a program at `bench/slo` printing its Markdown section or as `BenchmarkStatus...` in ./slo, `make bench` runs it here (hook: bench/slo.go).\n")
		return b.String(), nil
	}
	b.WriteString("`go test -run '^$' -bench '^BenchmarkStatus' -benchmem ./slo`:\n\n| benchmark | iterations | time per op | memory per op | allocations per op |\n|---|---:|---:|---:|---:|\n")
	b.WriteString(strings.Join(rows, "\n") + "\n")
	return b.String(), nil
}
