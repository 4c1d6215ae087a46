package spec_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"slolab.dev/slolab"
	"slolab.dev/slolab/spec"
)

func TestTheChatExampleLoads(t *testing.T) {
	svc, err := spec.LoadService("../examples/chat.yaml")
	if err != nil {
		t.Fatal(err)
	}
	got := svc.Summary()
	want := spec.Summary{Service: "chat", CUJs: 6, Routes: 11, SLOs: 12}
	if got != want {
		t.Fatalf("summary = %+v, want %+v", got, want)
	}
	upd := svc.CUJ("update")
	if upd.Availability.Objective != spec.NewRatio(999, 1000) {
		t.Errorf("update availability objective = %v, want 99.9%%", upd.Availability.Objective)
	}
	if upd.Latency.Threshold != time.Second || upd.Latency.Objective != spec.NewRatio(99, 100) {
		t.Errorf("update latency = %v@%v, want 1s@99%%", upd.Latency.Threshold, upd.Latency.Objective)
	}
	if upd.Availability.Window != (spec.Window{Rolling: 30 * spec.Day}) {
		t.Errorf("window = %v, want 30d", upd.Availability.Window)
	}
	if len(svc.Policy) != 2 || svc.Policy[0].When.String() != "remaining < 25%" {
		t.Errorf("policy = %+v", svc.Policy)
	}
}

// Each bad document is rejected with exactly these messages, in file order.
func TestBadSpecsAreRejectedWithPositions(t *testing.T) {
	const head = "apiVersion: slolab.dev/v1\nkind: Service\nmetadata: {name: chat}\nspec:\n  cujs:\n"
	tests := []struct {
		name string
		body string // appended to head
		want []string
	}{
		{
			name: "three mistakes are reported together",
			body: `    - name: update
      owner: team
      routes: ["POST /update"]
      availability: {objective: 100%}
      latency: {threshold: 1 sec, objective: 99%}
      colour: blue
`,
			want: []string{
				`t.yaml:9:33: spec.cujs[0].availability.objective: must be in (0, 100), got 100%`,
				`t.yaml:10:28: spec.cujs[0].latency.threshold: duration "1 sec" has an unknown unit "sec" (use ns, us, ms, s, m, h, d or w)`,
				`t.yaml:11:7: spec.cujs[0].colour: unknown field (known: alerting, availability, description, latency, load, name, owner, policy, queries, routes, upstreamTimeout)`,
			},
		},
		{
			name: "an upstream timeout out of its range",
			body: `    - {name: a, owner: t, routes: ["GET /a"], availability: {objective: 99%}, upstreamTimeout: 0s}
    - {name: b, owner: t, routes: ["GET /b"], availability: {objective: 99%}, upstreamTimeout: 48h}
`,
			want: []string{
				`t.yaml:6:96: spec.cujs[0].upstreamTimeout: must be positive, got 0s`,
				`t.yaml:7:96: spec.cujs[1].upstreamTimeout: must be between 1ms and 1d, got 48h`,
			},
		},
		{
			name: "a duplicate CUJ name points at the second one",
			body: `    - {name: a, owner: t, routes: ["GET /a"], availability: {objective: 99%}}
    - {name: a, owner: t, routes: ["GET /b"], availability: {objective: 99%}}
`,
			want: []string{`t.yaml:7:14: spec.cujs[1].name: duplicate CUJ name "a" (also spec.cujs[0])`},
		},
		{
			name: "a route claimed by two CUJs",
			body: `    - {name: a, owner: t, routes: ["POST /update"], availability: {objective: 99%}}
    - {name: b, owner: t, routes: ["POST /update"], availability: {objective: 99%}}
`,
			want: []string{`t.yaml:7:36: spec.cujs[1].routes[0]: route "POST /update" is claimed by two CUJs, "a" (spec.cujs[0].routes[0]) and "b"; a route belongs to at most one CUJ`},
		},
		{
			name: "routes net/http cannot order",
			body: `    - {name: a, owner: t, routes: ["GET /a/{x}/c"], availability: {objective: 99%}}
    - {name: b, owner: t, routes: ["GET /a/b/{y}"], availability: {objective: 99%}}
`,
			want: []string{`t.yaml:7:36: spec.cujs[1].routes[0]: route "GET /a/b/{y}" of CUJ "b" conflicts with route "GET /a/{x}/c" of CUJ "a" (spec.cujs[0].routes[0]): GET /a/b/{y} and GET /a/{x}/c both match some paths, like "/a/b/c". But neither is more specific than the other. GET /a/b/{y} matches "/a/b/y", but GET /a/{x}/c doesn't. GET /a/{x}/c matches "/a/x/c", but GET /a/b/{y} doesn't.`},
		},
		{
			name: "a bad pattern and an unknown method",
			body: `    - name: a
      owner: t
      routes: ["GET /a/{", "GOT /b"]
      availability: {objective: 99%}
`,
			want: []string{
				`t.yaml:8:16: spec.cujs[0].routes[0]: route "GET /a/{" is not a valid net/http pattern: at offset 7: bad wildcard segment (must end with '}')`,
				`t.yaml:8:28: spec.cujs[0].routes[1]: route "GOT /b": unknown method "GOT" (use GET, POST, PUT, PATCH, DELETE, HEAD, OPTIONS, CONNECT or TRACE)`,
			},
		},
		{
			name: "an objective written as a fraction gets a hint",
			body: `    - {name: a, owner: t, routes: ["GET /a"], availability: {objective: 0.999}}
`,
			want: []string{`t.yaml:6:73: spec.cujs[0].availability.objective: 0.999 is read as a percentage (0.999%); objectives are percentages: did you mean 99.9%?`},
		},
		{
			name: "missing fields and a CUJ without SLOs",
			body: `    - {name: a, routes: ["GET /a"]}
`,
			want: []string{
				`t.yaml:6:7: spec.cujs[0].owner: required`,
				`t.yaml:6:7: spec.cujs[0]: CUJ "a" needs an availability or a latency SLO (or both)`,
			},
		},
		{
			name: "reserved names and bad windows",
			body: `    - {name: _other, owner: t, routes: ["GET /a"], availability: {objective: 99%, window: 2y}}
`,
			want: []string{
				`t.yaml:6:14: spec.cujs[0].name: "_other" is not a valid name: use lower-case letters, digits, '-' and '_' (at most 63, starting and ending with a letter or digit)`,
				`t.yaml:6:14: spec.cujs[0].name: names starting with '_' are reserved (_other counts unmatched requests)`,
				`t.yaml:6:91: spec.cujs[0].availability.window: want a rolling window such as 28d or 30d, or "month" for calendar months: duration "2y" has an unknown unit "y" (use ns, us, ms, s, m, h, d or w)`,
			},
		},
		{
			name: "alert labels slolab sets itself, and names Prometheus rejects",
			body: `    - {name: a, owner: t, routes: ["GET /a"], availability: {objective: 99%}, alerting: {name: " ", labels: {cuj: b, 2x: y, __x: z}, page: {labels: {burn_rate: "1"}, disable: maybe}}}
`,
			want: []string{
				`t.yaml:6:96: spec.cujs[0].alerting.name: want the alerts' name, such as SLOBurnRateHigh, got " "`,
				`t.yaml:6:110: spec.cujs[0].alerting.labels.cuj: slolab sets cuj on every alert to tell them apart; choose another label`,
				`t.yaml:6:118: spec.cujs[0].alerting.labels.2x: want a Prometheus label name (letters, digits and '_', not starting with a digit), got "2x"`,
				`t.yaml:6:125: spec.cujs[0].alerting.labels.__x: label names starting with __ are reserved for Prometheus`,
				`t.yaml:6:150: spec.cujs[0].alerting.page.labels.burn_rate: slolab sets burn_rate on every alert to tell them apart; choose another label`,
				`t.yaml:6:176: spec.cujs[0].alerting.page.disable: want true or false, got "maybe"`,
			},
		},
		{
			name: "a misspelt key gets a suggestion",
			body: `    - {name: a, owner: t, routes: ["GET /a"], availabilty: {objective: 99%}}
`,
			want: []string{
				`t.yaml:6:7: spec.cujs[0]: CUJ "a" needs an availability or a latency SLO (or both)`,
				`t.yaml:6:47: spec.cujs[0].availabilty: unknown field; did you mean "availability"?`,
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := spec.Parse("t.yaml", []byte(head+tt.body))
			if err == nil {
				t.Fatal("no error")
			}
			got := strings.Split(err.Error(), "\n")
			if strings.Join(got, "\n") != strings.Join(tt.want, "\n") {
				t.Errorf("errors:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
			if slolab.KindOf(err) != slolab.Invalid {
				t.Errorf("kind = %v, want invalid", slolab.KindOf(err))
			}
			var se *spec.Error
			if !errors.As(err, &se) {
				t.Error("errors.As finds no *spec.Error")
			}
		})
	}
}

func TestYAMLSyntaxErrorsCarryTheLine(t *testing.T) {
	_, err := spec.Parse("t.yaml", []byte("apiVersion: slolab.dev/v1\nkind: Service\nmetadata:\n  name: a\n bad: x\n"))
	if err == nil || !strings.HasPrefix(err.Error(), "t.yaml:4: YAML syntax: ") {
		t.Fatalf("err = %v", err)
	}
}

func TestAnchorsAndMergeKeysShareSLOBlocks(t *testing.T) {
	src := `apiVersion: slolab.dev/v1
kind: Service
metadata: {name: s}
spec:
  cujs:
    - name: a
      owner: t
      routes: ["GET /a"]
      availability: &std {objective: 99.9%, window: 28d}
    - name: b
      owner: t
      routes: ["GET /b"]
      availability:
        <<: *std
        objective: 99%
`
	f, err := spec.Parse("t.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	b := f.Services[0].CUJ("b").Availability
	if b.Objective != spec.NewRatio(99, 100) || b.Window.Rolling != 28*spec.Day {
		t.Errorf("b = %v over %v, want 99%% over 28d", b.Objective, b.Window)
	}
}

func TestExamplesInTheRepositoryAreValid(t *testing.T) {
	files, _ := filepath.Glob("../examples/*.yaml")
	if len(files) == 0 {
		t.Fatal("no examples")
	}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(data), "kind: Service") {
			continue
		}
		if _, err := spec.LoadFile(f); err != nil {
			t.Errorf("%s: %v", f, err)
		}
	}
}
