// Package testtool finds what integration tests need outside the module: real
// tools (promtool, prometheus, alertmanager, chromium, wrk) and files that
// other projects publish in their Go modules, at a pinned version. A missing
// tool skips the test on a developer's machine and fails it when
// SLOLAB_REQUIRE_TOOLS=1, as in CI.
package testtool

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
)

// Required reports whether missing tools must fail tests (SLOLAB_REQUIRE_TOOLS=1).
func Required() bool { return os.Getenv("SLOLAB_REQUIRE_TOOLS") == "1" }

// Path returns the path of the first of names found on PATH (or in
// /usr/sbin and /usr/bin). Without one, it skips t, or fails it when tools are
// required.
func Path(t testing.TB, names ...string) string {
	t.Helper()
	for _, name := range names {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
		for _, dir := range []string{"/usr/bin", "/usr/sbin", "/usr/local/bin"} {
			p := filepath.Join(dir, name)
			if st, err := os.Stat(p); err == nil && !st.IsDir() && st.Mode()&0o111 != 0 {
				return p
			}
		}
	}
	if Required() {
		t.Fatalf("%v not found and SLOLAB_REQUIRE_TOOLS=1: run 'make test' as root to install it", names)
	}
	t.Skipf("%v not found; 'make test' installs it", names)
	return ""
}

// RepoRoot returns the directory holding go.mod.
func RepoRoot(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("no go.mod above the test's directory")
		}
		dir = parent
	}
}

// Pinned versions of the projects whose published files the tests read.
// They are Go modules, so `go mod download` fetches them into the module
// cache at exactly this version; nothing of theirs is copied into this
// repository.
const (
	// ArgoRollouts holds manifests/crds/ (the AnalysisTemplate CRD schema).
	ArgoRollouts = "github.com/argoproj/argo-rollouts@v1.8.3"
	// ChaosMesh holds config/crd/bases/ (the HTTPChaos CRD schema). Chaos
	// Mesh publishes no semantic version of its root module, so this is the
	// pseudo-version of a commit on its master branch.
	ChaosMesh = "github.com/chaos-mesh/chaos-mesh@v0.9.1-0.20260902003049-47411975a8cb"
	// Sloth holds examples/ and the rules Sloth generated from them,
	// examples/_gen/; cmd/sloth is its CLI, run as a peer (GoTool).
	Sloth = "github.com/slok/sloth@v0.16.0"
	// OSLO is the OpenSLO project's validator, cmd/oslo (`oslo validate`).
	OSLO = "github.com/OpenSLO/oslo@v0.12.0"
)

var moduleDirs sync.Map // module@version → directory, or error

// ModuleFile returns the path of a file inside a published Go module at a
// pinned version (module@version), downloading the module into the module
// cache with `go mod download -json` the first time. Without the module proxy
// it skips t, or fails it when tools are required (SLOLAB_REQUIRE_TOOLS=1).
func ModuleFile(t testing.TB, moduleAtVersion string, elem ...string) string {
	t.Helper()
	v, ok := moduleDirs.Load(moduleAtVersion)
	if !ok {
		v, _ = moduleDirs.LoadOrStore(moduleAtVersion, downloadModule(moduleAtVersion))
	}
	dir, isDir := v.(string)
	if !isDir {
		if Required() {
			t.Fatalf("%v", v)
		}
		t.Skipf("%v", v)
	}
	p := filepath.Join(append([]string{dir}, elem...)...)
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("%s: %v", moduleAtVersion, err)
	}
	return p
}

// downloadModule returns the module's directory in the module cache, or an
// error saying why it could not be had.
func downloadModule(moduleAtVersion string) any {
	cmd := exec.Command("go", "mod", "download", "-json", moduleAtVersion)
	// Outside this module, so its go.mod and go.sum stay untouched.
	cmd.Dir = os.TempDir()
	cmd.Env = append(os.Environ(), "GOFLAGS=")
	out, err := cmd.Output()
	var m struct{ Dir, Error string }
	if jerr := json.Unmarshal(out, &m); jerr == nil && m.Error != "" {
		return fmt.Errorf("go mod download %s: %s", moduleAtVersion, m.Error)
	}
	if err != nil {
		var stderr []byte
		if ee := (*exec.ExitError)(nil); errors.As(err, &ee) {
			stderr = ee.Stderr
		}
		return fmt.Errorf("go mod download %s: %w %s", moduleAtVersion, err, bytes.TrimSpace(stderr))
	}
	if m.Dir == "" {
		return fmt.Errorf("go mod download %s gave no directory: %s", moduleAtVersion, out)
	}
	return m.Dir
}

// ZeroFields sets every settable struct field called name to its zero value,
// throughout the values v points to, so tests can compare models read from
// different sources while ignoring, say, their source positions ("Pos").
func ZeroFields(v any, name string) {
	zeroFields(reflect.ValueOf(v), name, map[uintptr]bool{})
}

func zeroFields(v reflect.Value, name string, seen map[uintptr]bool) {
	switch v.Kind() {
	case reflect.Pointer:
		if v.IsNil() || seen[v.Pointer()] {
			return
		}
		seen[v.Pointer()] = true
		zeroFields(v.Elem(), name, seen)
	case reflect.Interface:
		if !v.IsNil() {
			zeroFields(v.Elem(), name, seen)
		}
	case reflect.Struct:
		for i := range v.NumField() {
			f := v.Field(i)
			if v.Type().Field(i).Name == name && f.CanSet() {
				f.SetZero()
				continue
			}
			zeroFields(f, name, seen)
		}
	case reflect.Slice, reflect.Array:
		for i := range v.Len() {
			zeroFields(v.Index(i), name, seen)
		}
	case reflect.Map:
		for _, k := range v.MapKeys() {
			e := v.MapIndex(k)
			if e.Kind() == reflect.Pointer || e.Kind() == reflect.Interface {
				zeroFields(e, name, seen)
			}
		}
	}
}

var update = flag.Bool("update", false, "rewrite golden files with the output the code produces now")

// Golden compares got with the file at path, or rewrites the file when the
// test runs with -update. Review the diff of a rewritten golden file like code.
func Golden(t testing.TB, path string, got []byte) {
	t.Helper()
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run the test with -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the generated output (run with -update to accept it):\n%s", path, lineDiff(string(want), string(got)))
	}
}

// lineDiff shows the first lines where want and got part.
func lineDiff(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	for i := 0; i < len(w) || i < len(g); i++ {
		var wl, gl string
		if i < len(w) {
			wl = w[i]
		}
		if i < len(g) {
			gl = g[i]
		}
		if wl != gl {
			return fmt.Sprintf("line %d:\n  golden: %q\n  got:    %q", i+1, wl, gl)
		}
	}
	return "(same lines, different bytes)"
}

var goTools sync.Map // package@version → binary path, or error

// GoTool returns the path of a Go program, package pkg of a published
// module at a pinned version (module@version). It is built once, into the
// user's cache directory (slolab-gotools/), and reused by every later test
// process: the version is pinned, so the binary cannot go stale. It builds
// in a scratch module that requires exactly that version, so it needs no
// listing of the module's versions (which `go install pkg@version` asks
// for, and the proxy may refuse). Without the module proxy it skips t, or
// fails it when tools are required.
func GoTool(t testing.TB, moduleAtVersion, pkg string) string {
	t.Helper()
	key := moduleAtVersion + " " + pkg
	v, ok := goTools.Load(key)
	if !ok {
		v, _ = goTools.LoadOrStore(key, buildGoTool(moduleAtVersion, pkg))
	}
	path, ok := v.(string)
	if !ok {
		if Required() {
			t.Fatalf("%v", v)
		}
		t.Skipf("%v", v)
	}
	return path
}

func buildGoTool(moduleAtVersion, pkg string) any {
	module, version, _ := strings.Cut(moduleAtVersion, "@")
	cache, err := os.UserCacheDir()
	if err != nil {
		cache = os.TempDir()
	}
	bin := filepath.Join(cache, "slolab-gotools", strings.NewReplacer("/", "_", "@", "_").Replace(moduleAtVersion), filepath.Base(pkg))
	if st, err := os.Stat(bin); err == nil && st.Mode()&0o111 != 0 {
		return bin
	}
	if err := os.MkdirAll(filepath.Dir(bin), 0o755); err != nil {
		return err
	}
	dir, err := os.MkdirTemp(filepath.Dir(bin), "build-") // beside bin, so the rename stays on one file system
	if err != nil {
		return err
	}
	defer func() { _ = os.RemoveAll(dir) }()
	mod := fmt.Sprintf("module gotool\n\ngo 1.22\n\nrequire %s %s\n", module, version)
	if err := os.WriteFile(filepath.Join(dir, "go.mod"), []byte(mod), 0o644); err != nil {
		return err
	}
	tmp := filepath.Join(dir, filepath.Base(pkg))
	cmd := exec.Command("go", "build", "-o", tmp, pkg)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOFLAGS=-mod=mod")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("building %s from %s: %w\n%s", pkg, moduleAtVersion, err, bytes.TrimSpace(out))
	}
	// A rename is atomic: a test process running beside this one sees the
	// whole binary or none.
	if err := os.Rename(tmp, bin); err != nil {
		return err
	}
	return bin
}
