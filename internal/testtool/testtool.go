// Package testtool finds what integration tests need outside the module: real
// tools (promtool, prometheus, alertmanager, chromium, wrk) and the shared test
// data beside the repository. A missing tool skips the test on a developer's
// machine and fails it when SLOLAB_REQUIRE_TOOLS=1, as in CI.
package testtool

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
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

// SharedTestdata returns the path of a file under ../shared/testdata beside the
// repository (data files from other projects, never copied into this one).
func SharedTestdata(t testing.TB, elem ...string) string {
	t.Helper()
	p := filepath.Join(append([]string{RepoRoot(t), "..", "shared", "testdata"}, elem...)...)
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("shared test data %s: %v (the repository must sit beside ../shared)", p, err)
	}
	return p
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
