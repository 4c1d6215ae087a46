// Command importcheck fails when a package imports one at its own layer or
// above, so imports flow one way as docs/architecture.md lays out: spec at the bottom,
// cmd at the top. Every package must appear in the layer table.
package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"sort"
	"strings"
)

const module = "slolab.dev/slolab"

// layers: a package may import only packages of a strictly lower layer.
// A pattern ending in "/..." covers a subtree.
var layers = map[string]int{
	"":                      0, // error kinds
	"spec":                  1,
	"httpapi":               1, // what every HTTP API shares: the guard, statuses, strict bodies
	"spec/...":              2, // front ends producing the spec model (CUE, OpenSLO)
	"match":                 2,
	"demoapp":               2, // the demo chat service; needs only spec
	"examples":              0, // the embedded example specs
	"slo":                   2,
	"fault":                 3,
	"sli":                   3,
	"errclass":              3, // error classes: the proxy sorts, the store keeps
	"store/...":             4,
	"load":                  4,
	"backfill":              4, // the lab's synthetic history
	"gen":                   4, // what the generators share
	"gen/...":               5, // generators: above gen, which reads sli and slo
	"report":                4,
	"notify":                4,
	"proxy":                 5,
	"cluster":               5, // a fleet of proxies: gossip beside the proxy, never inside it
	"proxy/admin":           6,
	"tcpproxy":              5, // TCP faults for dependencies that are not HTTP
	"experiment":            7,
	"canary":                7,
	"split":                 4, // the stable/canary traffic split: proxy and admin share it
	"web":                   8,
	"internal/cli":          9,
	"cmd/slolab":            10,
	"scripts/...":           10,
	"bench":                 10, // the benchmark driver
	"bench/...":             10,
	"deploy/...":            10, // the Helm chart's tests
	"internal/testtool":     0,  // test helpers: finding external tools
	"internal/httpserve":    0,  // serving with graceful drain
	"internal/promtest":     1,  // test helper: a real Prometheus on loopback
	"internal/argoanalysis": 0,  // test helper: Argo Rollouts' rules for an AnalysisRun
}

func layerOf(rel string) (int, bool) {
	if l, ok := layers[rel]; ok {
		return l, true
	}
	best, bestLen := 0, -1
	for pat, l := range layers {
		prefix, ok := strings.CutSuffix(pat, "/...")
		if ok && strings.HasPrefix(rel, prefix+"/") && len(prefix) > bestLen {
			best, bestLen = l, len(prefix)
		}
	}
	return best, bestLen >= 0
}

func main() {
	out, err := exec.Command("go", "list", "-json", "./...").Output()
	if err != nil {
		fmt.Fprintln(os.Stderr, "importcheck: go list:", err)
		os.Exit(2)
	}
	dec := json.NewDecoder(strings.NewReader(string(out)))
	var problems []string
	for dec.More() {
		var p struct {
			ImportPath string
			Imports    []string
		}
		if err := dec.Decode(&p); err != nil {
			fmt.Fprintln(os.Stderr, "importcheck:", err)
			os.Exit(2)
		}
		rel := strings.TrimPrefix(strings.TrimPrefix(p.ImportPath, module), "/")
		from, ok := layerOf(rel)
		if !ok {
			problems = append(problems, fmt.Sprintf("%s: not in the layer table of scripts/importcheck; add it", p.ImportPath))
			continue
		}
		for _, imp := range p.Imports {
			if imp != module && !strings.HasPrefix(imp, module+"/") {
				continue
			}
			irel := strings.TrimPrefix(strings.TrimPrefix(imp, module), "/")
			to, ok := layerOf(irel)
			if ok && to >= from {
				problems = append(problems, fmt.Sprintf("%s (layer %d) imports %s (layer %d): imports must flow down", p.ImportPath, from, imp, to))
			}
		}
	}
	sort.Strings(problems)
	for _, p := range problems {
		fmt.Println(p)
	}
	if len(problems) > 0 {
		os.Exit(1)
	}
	fmt.Println("imports flow one way")
}
