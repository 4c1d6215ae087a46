package web

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestVendoredMatchesLockfile checks that the chart library embedded in the
// binary is the one package-lock.json pins, byte for byte as vendor.sh
// copied it: run web/vendor.sh after changing package.json.
func TestVendoredMatchesLockfile(t *testing.T) {
	var lock struct {
		Packages map[string]struct {
			Version string `json:"version"`
			License string `json:"license"`
		} `json:"packages"`
	}
	readJSON(t, "package-lock.json", &lock)
	var vendored map[string]struct {
		Version string            `json:"version"`
		License string            `json:"license"`
		Files   map[string]string `json:"files"`
	}
	readJSON(t, filepath.Join("static", "vendor", "vendor.json"), &vendored)

	for name, v := range vendored {
		locked, ok := lock.Packages["node_modules/"+name]
		if !ok {
			t.Errorf("%s is vendored but not in package-lock.json", name)
			continue
		}
		if v.Version != locked.Version || v.License != locked.License {
			t.Errorf("%s: vendored %s (%s), package-lock.json pins %s (%s): run web/vendor.sh", name, v.Version, v.License, locked.Version, locked.License)
		}
		for file, want := range v.Files {
			data, err := os.ReadFile(filepath.Join("static", "vendor", file))
			if err != nil {
				t.Error(err)
				continue
			}
			sum := sha256.Sum256(data)
			if got := hex.EncodeToString(sum[:]); got != want {
				t.Errorf("%s: sha256 %s, vendor.json records %s: the file was changed by hand; run web/vendor.sh", file, got, want)
			}
			if strings.HasSuffix(file, ".js") && !strings.Contains(string(data[:min(len(data), 200)]), "(v"+v.Version+")") {
				t.Errorf("%s does not announce version %s in its header", file, v.Version)
			}
		}
		if _, ok := v.Files["uPlot.LICENSE"]; name == "uplot" && !ok {
			t.Errorf("%s: its licence is not vendored", name)
		}
	}
	if len(vendored) != len(lock.Packages)-1 {
		t.Errorf("vendor.json lists %d packages, package-lock.json %d: run web/vendor.sh", len(vendored), len(lock.Packages)-1)
	}
}

func readJSON(t *testing.T, path string, v any) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}
