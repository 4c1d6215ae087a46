package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"slolab.dev/slolab/spec"
)

// runCLI runs slolab in-process and returns its exit code and output.
func runCLI(t *testing.T, vars map[string]string, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code := run(&env{ctx: context.Background(), stdin: strings.NewReader(""), stdout: &out, stderr: &errOut, getenv: func(k string) string { return vars[k] }}, args)
	return code, out.String(), errOut.String()
}

func TestValidateReportsEveryMistakeWithItsPosition(t *testing.T) {
	code, out, errOut := runCLI(t, nil, "validate", "testdata/three-mistakes.yaml")
	want := `testdata/three-mistakes.yaml:10:33: spec.cujs[0].availability.objective: must be in (0, 100), got 100%
testdata/three-mistakes.yaml:11:28: spec.cujs[0].latency.threshold: duration "1 sec" has an unknown unit "sec" (use ns, us, ms, s, m, h, d or w)
testdata/three-mistakes.yaml:14:16: spec.cujs[1].routes[0]: route "POST /update" is claimed by two CUJs, "update" (spec.cujs[0].routes[0]) and "send"; a route belongs to at most one CUJ
`
	if code != ExitInvalid || errOut != want || out != "testdata/three-mistakes.yaml: invalid: 3 errors\n" {
		t.Errorf("exit %d\nstderr:\n%s\nstdout:\n%s", code, errOut, out)
	}
}

func TestValidateSummarisesValidFiles(t *testing.T) {
	code, out, _ := runCLI(t, nil, "validate", "../../examples/chat.yaml")
	if code != ExitOK || out != "../../examples/chat.yaml: ok: service chat: 6 CUJs, 11 routes, 12 SLOs\n" {
		t.Errorf("exit %d: %s", code, out)
	}
	code, out, _ = runCLI(t, nil, "validate", "-o", "json", "../../examples/chat.yaml", "testdata/three-mistakes.yaml")
	var res []struct {
		File   string
		Valid  bool
		Errors []string
	}
	if err := json.Unmarshal([]byte(out), &res); err != nil || code != ExitInvalid || len(res) != 2 || !res[0].Valid || res[1].Valid || len(res[1].Errors) != 3 {
		t.Errorf("exit %d: %s", code, out)
	}
}

func TestUsageMistakesExit2(t *testing.T) {
	for _, args := range [][]string{
		{"nonsense"},
		{"validate"},
		{"proxy", "--spec", "x.yaml"},
		{"proxy", "--spec", "x.yaml", "--upstream", "ftp://x"},
		{"proxy", "--spec", "x.yaml", "--upstream", "http://x", "--admin", "0.0.0.0:9090"},
		{"fault", "add"},
		{"fault", "add", "x", "--rate", "lots"},
		{"fault", "add", "x", "--delay", "soon"},
		{"version", "-o", "yaml"},
	} {
		code, _, errOut := runCLI(t, nil, args...)
		if code != ExitUsage || !strings.HasPrefix(errOut, "slolab: ") {
			t.Errorf("%v: exit %d, stderr %q", args, code, errOut)
		}
	}
}

// fault add, ls, renew and rm against a proxy stack running in-process.
func TestFaultCommandsAgainstARunningProxy(t *testing.T) {
	adminURL := startStack(t)
	code, out, errOut := runCLI(t, nil, "fault", "add", "upd-500", "--admin", adminURL, "--cuj", "update", "--status", "500", "--rate", "0.1%", "--ttl", "20m")
	if code != 0 || !strings.HasPrefix(out, "fault upd-500 active: status 500 on update at 0.1%, lease until ") {
		t.Fatalf("add: exit %d %q %q", code, out, errOut)
	}
	code, _, errOut = runCLI(t, nil, "fault", "add", "x", "--admin", adminURL, "--cuj", "checkout", "--abort")
	if code != ExitUsage || errOut != "slolab: fault x: match.cuj: service chat has no CUJ \"checkout\" (it has login, send, update, read, upload, task)\n" {
		t.Errorf("add to a missing CUJ: exit %d %q", code, errOut)
	}
	code, _, errOut = runCLI(t, nil, "fault", "add", "x", "--admin", adminURL, "--rate", "0.0000001%", "--abort")
	if code != ExitUsage || errOut != "slolab: invalid rule: rate: must be at least 0.0001% (one in a million), got 0.0000001%\n" {
		t.Errorf("add with a tiny rate: exit %d %q", code, errOut)
	}
	code, out, _ = runCLI(t, map[string]string{"SLOLAB_ADMIN_URL": adminURL}, "fault", "ls")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if code != 0 || len(lines) != 2 || !strings.HasPrefix(lines[0], "NAME") || !strings.Contains(lines[1], "upd-500  active  update  status 500  0.1%  0        0         ") {
		t.Errorf("ls: exit %d\n%s", code, out)
	}
	code, out, _ = runCLI(t, nil, "fault", "renew", "upd-500", "--admin", adminURL, "--ttl", "30m", "-o", "json")
	if code != 0 || !strings.Contains(out, `"state": "active"`) {
		t.Errorf("renew: exit %d %s", code, out)
	}
	code, out, _ = runCLI(t, nil, "fault", "rm", "--all", "--admin", adminURL)
	if code != 0 || out != "fault upd-500 removed: injected 0 of 0 matched\n" {
		t.Errorf("rm: exit %d %q", code, out)
	}
	code, out, _ = runCLI(t, nil, "fault", "ls", "--admin", adminURL, "-o", "json")
	if code != 0 || strings.TrimSpace(out) != "[]" {
		t.Errorf("ls after rm: exit %d %q", code, out)
	}
	code, _, errOut = runCLI(t, nil, "fault", "ls", "--admin", "http://127.0.0.1:1")
	if code != ExitFailure || !strings.Contains(errOut, "connection refused") {
		t.Errorf("ls against nothing: exit %d %q", code, errOut)
	}
}

// startStack runs a proxy stack in-process for the CLI to talk to.
func startStack(t *testing.T) string {
	t.Helper()
	svc, err := spec.LoadService("../../examples/chat.yaml")
	if err != nil {
		t.Fatal(err)
	}
	up, _ := url.Parse("http://127.0.0.1:1")
	o := &proxyOptions{listen: "127.0.0.1:0", adminAddr: "127.0.0.1:0", maxTTL: time.Hour, drain: time.Second, auditLog: "-", faultHeader: "-"}
	stack, err := newProxyStack(svc, up, o, newTestLogger())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { stack.run(ctx) })
	t.Cleanup(func() { cancel(); wg.Wait() })
	return stack.adminURL()
}

func writeFile(t *testing.T, dir, name, text string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestAMistypedSubcommandFailsWithASuggestion: 'slolab fault ad' used to
// print fault's help and exit 0, so a script never noticed.
func TestAMistypedSubcommandFailsWithASuggestion(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"fault", "ad"}, "slolab: unknown command \"ad\" for \"slolab fault\"; did you mean add?\n"},
		{[]string{"slo", "statuss"}, "slolab: unknown command \"statuss\" for \"slolab slo\"; did you mean status?\n"},
		{[]string{"experiment", "nope"}, "slolab: unknown command \"nope\" for \"slolab experiment\"\n"},
		{[]string{"simulat", "update"}, "slolab: unknown command \"simulat\" for \"slolab\"; did you mean simulate?\n"},
	} {
		code, out, errOut := runCLI(t, nil, c.args...)
		if code != ExitUsage || !strings.HasPrefix(errOut, c.want) || out != "" {
			t.Errorf("%v: exit %d, stdout %q, stderr %q; want 2 and %q", c.args, code, out, errOut, c.want)
		}
	}
	for _, alone := range []string{"slo", ""} {
		if code, out, _ := runCLI(t, nil, strings.Fields(alone)...); code != ExitOK || !strings.Contains(out, "Available Commands") {
			t.Errorf("%q alone: exit %d, want its help and 0:\n%s", alone, code, out)
		}
	}
}

// TestHelpNeverShowsASecret: tokens default to environment variables, and
// --help names the variable, never its value.
func TestHelpNeverShowsASecret(t *testing.T) {
	env := map[string]string{"SLOLAB_ADMIN_TOKEN": "tok-4f9a2c-admin", "SLOLAB_GAMEDAY_TOKEN": "tok-4f9a2c-gameday"}
	for _, args := range [][]string{
		{"proxy", "--help"}, {"lab", "--help"}, {"fault", "add", "--help"}, {"simulate", "--help"},
		{"serve", "--help"}, {"gameday", "ack", "--help"}, {"gameday", "run", "--help"},
	} {
		code, out, errOut := runCLI(t, env, args...)
		if code != 0 || strings.Contains(out+errOut, "tok-4f9a2c") || !strings.Contains(out, "$SLOLAB_") {
			t.Errorf("%v: exit %d, and the help shows a secret or no variable:\n%s%s", args, code, out, errOut)
		}
	}
}

// TestHelpStatesADefaultFromTheEnvironmentOnce: a flag whose default is a
// variable, else a value, says so in its usage, and --help adds no
// "(default ...)" of its own after it, neither the fallback nor what the
// variable holds in this shell.
func TestHelpStatesADefaultFromTheEnvironmentOnce(t *testing.T) {
	env := map[string]string{"SLOLAB_ADMIN_URL": "http://127.0.0.1:4711", "SLOLAB_STORE": "/tmp/lab-4711.db"}
	for _, args := range [][]string{
		{"simulate", "--help"}, {"fault", "ls", "--help"}, {"slo", "status", "--help"}, {"experiment", "run", "--help"}, {"gameday", "ack", "--help"},
	} {
		code, out, _ := runCLI(t, env, args...)
		for _, line := range strings.Split(out, "\n") {
			if strings.Contains(line, "(default $") && strings.Count(line, "(default ") > 1 || strings.Contains(line, "4711") {
				t.Errorf("%v (exit %d): a default twice or from this shell:\n%s", args, code, line)
			}
		}
	}
}

// TestTheTokenStillComesFromTheEnvironment: with the default hidden from
// --help, $SLOLAB_ADMIN_TOKEN still reaches the admin API.
func TestTheTokenStillComesFromTheEnvironment(t *testing.T) {
	svc, err := spec.LoadService("../../examples/chat.yaml")
	if err != nil {
		t.Fatal(err)
	}
	up, _ := url.Parse("http://127.0.0.1:1")
	o := &proxyOptions{listen: "127.0.0.1:0", adminAddr: "127.0.0.1:0", maxTTL: time.Hour, drain: time.Second, auditLog: "-", faultHeader: "-", adminToken: "s3cret-s3cret-s3cret"}
	stack, err := newProxyStack(svc, up, o, newTestLogger())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { stack.run(ctx) })
	defer func() { cancel(); wg.Wait() }()
	code, _, errOut := runCLI(t, map[string]string{"SLOLAB_ADMIN_TOKEN": "s3cret-s3cret-s3cret"}, "fault", "add", "x", "--admin", stack.adminURL(), "--cuj", "read", "--status", "500", "--rate", "1%")
	if code != 0 {
		t.Errorf("fault add with the token from the environment: exit %d: %s", code, errOut)
	}
	code, _, errOut = runCLI(t, map[string]string{"SLOLAB_ADMIN_TOKEN": "nope-nope-nope-nope"}, "fault", "rm", "x", "--admin", stack.adminURL())
	if code == 0 || !strings.Contains(errOut, "refused the token given") {
		t.Errorf("fault rm with a wrong token: exit %d: %s", code, errOut)
	}
}
