package cli

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"slolab.dev/slolab/internal/testtool"
	"slolab.dev/slolab/slo"
	"slolab.dev/slolab/spec"
)

// productMarker precedes a quote of what slolab prints, in the README and
// docs/: the blockquote or fenced block after it must be what the product
// prints (the generators below make it), so the docs never quote a sentence
// or a figure the product does not print.
var productMarker = regexp.MustCompile(`^\s*<!-- product: (.+?) -->\s*$`)

// TestDocsQuoteWhatTheProductPrints checks every marked quote against the
// lab a newcomer starts, with its month of synthetic history: its banner as
// printed, and every explanation computed as 'slolab simulate' and the
// dashboard's panel compute theirs (slo.PlanFrom), from the SLO engine's
// status of the lab's own store at the first whole minute simulate judges
// in it. The lab's load is left off, so what the store holds is the month
// it wrote and nothing that varies from run to run; with the load on, the
// lab continues that month at the same steady rate (TestTheLabsLoadContinuesItsHistory).
func TestDocsQuoteWhatTheProductPrints(t *testing.T) {
	o := freeOptions("20/s")
	o.history = defaultLabHistory
	l, err := newLab(context.Background(), o, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	defer l.closeAll()
	at := slo.Align(l.history.synthetic.Until, time.Minute)
	st, err := slo.Evaluate(context.Background(), l.svc, l.stack.store, at)
	if err != nil {
		t.Fatal(err)
	}
	plan := func(cuj string, w slo.Want) string {
		p, err := slo.PlanFrom(l.svc, cuj, w, st)
		if err != nil {
			t.Fatal(err)
		}
		if p.Intended.Measured == nil || p.Intended.Measured.Covered != spec.Duration(defaultLabHistory) {
			t.Errorf("the plan on %s was not measured from the lab's month: %+v", cuj, p.Intended.Measured)
		}
		out := p.Explanation
		for _, n := range p.Notes {
			out += "\nNote: " + n + "." // as the panel shows them
		}
		return out
	}
	burn := spec.NewRatio(72, 5)
	quotes := map[string]func() string{
		"simulate update --burn-rate 14.4": func() string { return plan("update", slo.Want{BurnRate: &burn}) },
		"panel update page":                func() string { return plan("update", slo.Want{Alert: "page"}) },
		"panel read latency": func() string {
			c := l.svc.CUJ("read").Latency
			return plan("read", slo.Want{Latency: &slo.LatencyTarget{Threshold: c.Threshold, Objective: c.Objective}})
		},
		"lab banner": func() string {
			var out bytes.Buffer
			l.printURLs(&out)
			return strings.TrimSuffix(out.String(), "\n")
		},
	}
	root := testtool.RepoRoot(t)
	files, _ := filepath.Glob(filepath.Join(root, "docs", "*.md"))
	files = append(files, filepath.Join(root, "README.md"))
	seen := map[string]bool{}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		lines := strings.Split(string(data), "\n")
		for i, line := range lines {
			m := productMarker.FindStringSubmatch(line)
			if m == nil {
				continue
			}
			name := m[1]
			gen, ok := quotes[name]
			if !ok {
				t.Errorf("%s:%d: no generator for the quote %q", filepath.Base(f), i+1, name)
				continue
			}
			seen[name] = true
			quoted := quoteAfter(lines[i+1:])
			if got, want := normalise(quoted), normalise(gen()); got != want {
				t.Errorf("%s:%d quotes %q as:\n%s\nbut the product prints:\n%s", filepath.Base(f), i+1, name, quoted, gen())
			}
		}
	}
	for name := range quotes {
		if !seen[name] {
			t.Errorf("no doc quotes %q any more: drop its generator", name)
		}
	}
}

// quoteAfter returns the blockquote or fenced block that starts lines.
func quoteAfter(lines []string) string {
	var out []string
	if len(lines) > 0 && strings.HasPrefix(strings.TrimSpace(lines[0]), "```") {
		for _, l := range lines[1:] {
			if strings.HasPrefix(strings.TrimSpace(l), "```") {
				break
			}
			out = append(out, l)
		}
		return strings.Join(out, "\n")
	}
	for _, l := range lines {
		t := strings.TrimSpace(l)
		if !strings.HasPrefix(t, ">") {
			break
		}
		out = append(out, strings.TrimSpace(strings.TrimPrefix(t, ">")))
	}
	return strings.Join(out, "\n")
}

// What differs from run to run: addresses, the token, the temporary
// directory, the clock, how long writing took, and how many buckets the
// partial first minute adds.
var runToRun = []struct {
	re   *regexp.Regexp
	with string
}{
	{regexp.MustCompile(`127\.0\.0\.1:\d+`), "127.0.0.1:PORT"},
	{regexp.MustCompile(`(token=|SLOLAB_ADMIN_TOKEN=)\S+`), "${1}TOKEN"},
	{regexp.MustCompile(`/slolab-lab-\d+/`), "/slolab-lab-N/"},
	{regexp.MustCompile(`before \d\d:\d\d:\d\d`), "before HH:MM:SS"},
	{regexp.MustCompile(`[\d,]+ buckets written in \S+`), "N buckets written in T"},
}

func normalise(s string) string {
	for _, r := range runToRun {
		s = r.re.ReplaceAllString(s, r.with)
	}
	return strings.TrimSpace(s)
}

// TestTheRepositoryCitesItsOwnArchitecture: code and docs cite
// docs/architecture.md, which every clone has, never a design file that
// lives outside the repository.
func TestTheRepositoryCitesItsOwnArchitecture(t *testing.T) {
	root := testtool.RepoRoot(t)
	if _, err := os.Stat(filepath.Join(root, "docs", "architecture.md")); err != nil {
		t.Fatalf("docs/architecture.md: %v", err)
	}
	outside := "DESIGN" + ".md" // split, so this file does not cite it
	err := filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == ".git" || d.Name() == "node_modules") {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") && !strings.HasSuffix(path, ".md") && !strings.HasSuffix(path, ".sh") {
			return nil
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if strings.Contains(string(data), outside) {
			rel, _ := filepath.Rel(root, path)
			t.Errorf("%s cites %s, which a clone does not have: cite docs/architecture.md", rel, outside)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
