package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The done-means of issue 5: the same CUJ spec written in YAML and in CUE
// generates byte-identical output, for every target.
func TestEveryTargetGivesTheSameBytesFromYAMLAndCUE(t *testing.T) {
	fault := filepath.Join("..", "..", "gen", "chaosmesh", "testdata", "slow-read.json")
	for _, tt := range []struct {
		target string
		extra  []string
	}{
		{"prometheus", nil},
		{"prometheus", []string{"--prometheus-rule", "--namespace", "monitoring"}},
		{"grafana", nil},
		{"argo-rollouts", nil},
		{"chaos-mesh", []string{"--fault", fault, "--selector", "app=chat"}},
		{"datadog", nil},
		{"openslo", nil},
	} {
		t.Run(tt.target+strings.Join(tt.extra, " "), func(t *testing.T) {
			outs := map[string]string{}
			for _, specFile := range []string{"chat.yaml", "chat.cue"} {
				args := append([]string{"gen", tt.target, "-f", filepath.Join("..", "..", "examples", specFile)}, tt.extra...)
				code, stdout, stderr := runCLI(t, nil, args...)
				if code != ExitOK {
					t.Fatalf("%s: exit %d\n%s", specFile, code, stderr)
				}
				if len(stdout) < 100 {
					t.Fatalf("%s: stdout is %q", specFile, stdout)
				}
				outs[specFile] = stdout
			}
			if outs["chat.yaml"] != outs["chat.cue"] {
				t.Error("chat.yaml and chat.cue generate different output")
			}
		})
	}
}

func TestGenWritesFilesIntoADirectory(t *testing.T) {
	dir := t.TempDir()
	code, stdout, stderr := runCLI(t, nil, "gen", "argo-rollouts", "-f", "../../examples/chat.yaml", "-o", dir)
	if code != ExitOK || stdout != "" {
		t.Fatalf("exit %d, stdout %q, stderr %s", code, stdout, stderr)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 13 {
		t.Errorf("%d files, want 13", len(entries))
	}
	if !strings.Contains(stderr, "rollout-snippet.yaml: written") {
		t.Errorf("stderr = %s", stderr)
	}
	_, _, stderr = runCLI(t, nil, "gen", "argo-rollouts", "-f", "../../examples/chat.yaml", "-o", dir)
	if !strings.Contains(stderr, "rollout-snippet.yaml: unchanged") {
		t.Errorf("a second run says %s", stderr)
	}
}

func TestGenMistakes(t *testing.T) {
	bad := filepath.Join(t.TempDir(), "bad.cue")
	if err := os.WriteFile(bad, []byte("apiVersion: \"slolab.dev/v1\"\nkind: \"Service\"\nmetadata: name: \"x\"\nspec: cujs: []\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name   string
		args   []string
		code   int
		stderr string
	}{
		{"no target", []string{"gen"}, ExitUsage, "slolab: gen needs a target\n"},
		{"an unknown target", []string{"gen", "nagios"}, ExitUsage, "slolab: unknown gen target \"nagios\"\n"},
		{"no spec", []string{"gen", "grafana"}, ExitUsage, "slolab: slolab gen grafana needs a spec: -f FILE\n"},
		{"chaos-mesh without rules", []string{"gen", "chaos-mesh", "-f", "../../examples/chat.yaml"}, ExitUsage, "slolab: chaos-mesh needs at least one fault rule: --fault FILE\n"},
		{"an invalid CUE spec", []string{"gen", "grafana", "-f", bad}, ExitInvalid, bad + ":4:13: spec.cujs: a service needs at least one CUJ\n"},
		{"an unknown spec format", []string{"gen", "grafana", "-f", "chat.toml"}, ExitUsage, "slolab: chat.toml: unknown spec format \".toml\" (want .yaml, .yml, .json or .cue)\n"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			code, _, stderr := runCLI(t, nil, tt.args...)
			if code != tt.code || !strings.HasPrefix(stderr, tt.stderr) {
				t.Errorf("exit %d, stderr:\n%s\nwant exit %d, stderr starting:\n%s", code, stderr, tt.code, tt.stderr)
			}
		})
	}
}

func TestImportPrintsASpecThatValidates(t *testing.T) {
	for _, tt := range []struct{ format, file string }{
		{"openslo", filepath.Join("..", "..", "spec", "oslospec", "testdata", "fleet-v1.openslo.yaml")},
		{"sloth", filepath.Join("..", "..", "spec", "slothspec", "testdata", "checkout.sloth.yaml")},
	} {
		t.Run(tt.format, func(t *testing.T) {
			if _, err := os.Stat(tt.file); err != nil {
				t.Fatal(err)
			}
			code, stdout, stderr := runCLI(t, nil, "import", tt.format, tt.file)
			if code != ExitOK {
				t.Fatalf("exit %d: %s", code, stderr)
			}
			if !strings.Contains(stderr, "note: ") {
				t.Errorf("no notes on stderr: %s", stderr)
			}
			path := filepath.Join(t.TempDir(), "imported.yaml")
			if err := os.WriteFile(path, []byte(stdout), 0o644); err != nil {
				t.Fatal(err)
			}
			if code, out, stderr := runCLI(t, nil, "validate", path); code != ExitOK {
				t.Errorf("validate: exit %d\n%s%s", code, out, stderr)
			}
		})
	}
}
