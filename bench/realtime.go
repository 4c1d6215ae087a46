package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"time"
)

// realtimePattern selects load's real-time accuracy tests (and the exact
// synctest versions of the same properties, whose names match too).
const realtimePattern = "Freeze|Rate"

type testResult struct {
	name, result, elapsed string
	logs                  []string
}

var (
	testRun  = regexp.MustCompile(`^=== RUN\s+(\S+)`)
	testDone = regexp.MustCompile(`^\s*--- (PASS|FAIL|SKIP): (\S+) \(([0-9.]+s)\)`)
	testLog  = regexp.MustCompile(`^\s+\S+_test\.go:\d+: (.*)$`)
)

// parseGoTestV reads `go test -v` output: each top-level test's result,
// duration and the lines it logged.
func parseGoTestV(out string) []testResult {
	var tests []testResult
	idx := map[string]int{}
	current := ""
	for _, line := range strings.Split(out, "\n") {
		if m := testRun.FindStringSubmatch(line); m != nil {
			current = m[1]
			if _, ok := idx[current]; !ok {
				idx[current] = len(tests)
				tests = append(tests, testResult{name: current})
			}
			continue
		}
		if m := testDone.FindStringSubmatch(line); m != nil {
			if i, ok := idx[m[2]]; ok {
				tests[i].result, tests[i].elapsed = m[1], m[3]
			}
			continue
		}
		if m := testLog.FindStringSubmatch(line); m != nil && current != "" {
			i := idx[current]
			tests[i].logs = append(tests[i].logs, m[1])
		}
	}
	return tests
}

// runRealtime runs load's real-time accuracy tests, which need a real clock
// and a quiet machine and so stay out of the gate, and records what they log.
func runRealtime(s *session) (string, error) {
	started, loadBefore := time.Now(), loadAvg()
	cmd := exec.CommandContext(s.ctx, "go", "test", "-count=1", "-v", "-run", realtimePattern, "./load")
	cmd.Env = append(os.Environ(), "SLOLAB_REALTIME=1")
	out, err := cmd.CombinedOutput()
	tests := parseGoTestV(string(out))
	if len(tests) == 0 {
		return "", fmt.Errorf("go test ./load ran no test matching %q: %w\n%s", realtimePattern, err, out)
	}
	var b bytes.Buffer
	runLine(&b, started, loadBefore, "-only realtime")
	fmt.Fprintf(&b, "`SLOLAB_REALTIME=1 go test -count=1 -v -run '%s' ./load`: the load generator against a loopback server on the real clock. "+
		"The gate checks the same properties exactly in a synctest bubble; these runs show what a real clock on this machine gives. "+
		"Tests whose names match but have no real-time part run too (they take milliseconds).\n\n", realtimePattern)
	b.WriteString("| test | result | time | logged |\n|---|---|---:|---|\n")
	failed := 0
	for _, t := range tests {
		if t.result == "FAIL" {
			failed++
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s |\n", t.name, t.result, t.elapsed, strings.ReplaceAll(strings.Join(t.logs, "; "), "|", `\|`))
	}
	b.WriteString("\nReading:\n\n")
	if failed == 0 {
		b.WriteString(reading("meets goal", fmt.Sprintf("All %d of load's tests matching %q pass on the real clock of this machine, as they do in the gate's synctest bubble.", len(tests), realtimePattern)))
	} else {
		b.WriteString(reading("misses goal", fmt.Sprintf("%d real-time accuracy test(s) failed on this run (load average %s before it); their messages are in the table.", failed, loadBefore)))
	}
	return b.String(), nil
}
