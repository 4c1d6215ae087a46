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

// realtimePattern selects load's real-time accuracy tests: every test of
// ./load named TestRealClock… runs on the real clock, and no other does.
const realtimePattern = "^TestRealClock"

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
		"These %d tests are the ones in ./load that touch the real clock (their names start with TestRealClock); the gate checks the same properties exactly in a synctest bubble, and skips these. "+
		"A skipped test counts as skipped here, not passed.\n\n", realtimePattern, len(tests))
	b.WriteString(renderTestResults(tests, loadBefore))
	return b.String(), nil
}

// renderTestResults tables go test's results and reads them: the goal is
// met only when every test ran and passed.
func renderTestResults(tests []testResult, loadBefore string) string {
	var b strings.Builder
	b.WriteString("| test | result | time | logged |\n|---|---|---:|---|\n")
	count := map[string]int{}
	var notPassed []string
	for _, t := range tests {
		result := t.result
		if result == "" {
			result = "no result"
		}
		count[result]++
		if result != "PASS" {
			notPassed = append(notPassed, t.name+" ("+result+")")
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s |\n", t.name, result, t.elapsed, strings.ReplaceAll(strings.Join(t.logs, "; "), "|", `\|`))
	}
	fmt.Fprintf(&b, "\n%d passed, %d failed, %d skipped of %d.\n\nReading:\n\n", count["PASS"], count["FAIL"], count["SKIP"], len(tests))
	if len(notPassed) == 0 {
		b.WriteString(reading("meets goal", fmt.Sprintf("All %d of load's real-clock tests pass on this machine, as their exact versions do in the gate's synctest bubble.", len(tests))))
	} else {
		b.WriteString(reading("misses goal", fmt.Sprintf("%d of load's %d real-clock tests did not pass on this run (load average %s before it): %s; their messages are in the table.",
			len(notPassed), len(tests), loadBefore, strings.Join(notPassed, ", "))))
	}
	return b.String()
}
