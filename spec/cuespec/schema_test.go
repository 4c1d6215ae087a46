package cuespec_test

import (
	"os"
	"strings"
	"testing"

	"cuelang.org/go/cue"
	"cuelang.org/go/cue/cuecontext"
	cueyaml "cuelang.org/go/encoding/yaml"

	"slolab.dev/slolab/spec"
)

// schema compiles cue/slolab.cue and returns the definition named def.
func schema(t *testing.T, def string) (*cue.Context, cue.Value) {
	t.Helper()
	src, err := os.ReadFile("../../cue/slolab.cue")
	if err != nil {
		t.Fatal(err)
	}
	ctx := cuecontext.New()
	v := ctx.CompileBytes(src, cue.Filename("slolab.cue"))
	if err := v.Err(); err != nil {
		t.Fatal(err)
	}
	d := v.LookupPath(cue.ParsePath(def))
	if !d.Exists() {
		t.Fatalf("cue/slolab.cue has no %s", def)
	}
	return ctx, d
}

// cueVet is what `cue vet -c -d DEF cue/slolab.cue FILE.yaml` does.
func cueVet(ctx *cue.Context, def cue.Value, name, yamlText string) error {
	f, err := cueyaml.Extract(name, yamlText)
	if err != nil {
		return err
	}
	v := ctx.BuildFile(f)
	if err := v.Err(); err != nil {
		return err
	}
	return def.Unify(v).Validate(cue.Concrete(true))
}

const svcHead = "apiVersion: slolab.dev/v1\nkind: Service\nmetadata: {name: chat, labels: {team: a}}\nspec:\n"

var serviceExamples = []struct {
	name  string
	valid bool
	body  string // appended to svcHead
}{
	{"a CUJ with both SLOs", true, `  cujs:
    - {name: update, owner: t, routes: ["POST /update", "PUT /messages/{id}"], availability: {objective: 99.9%, window: 30d}, latency: {threshold: 1s, objective: 99%}}
`},
	{"a bare objective above 1 and a calendar window", true, `  cujs:
    - {name: a, owner: t, routes: ["GET /a"], availability: {objective: 99.5, window: month}}
`},
	{"queries, alerting, load and policy", true, `  alerting: {minBadEvents: 10, burnRates: [{severity: page, long: 1h, short: 5m, burnRate: 14.4}]}
  policy: [{when: "remaining < 25%", action: freeze}]
  cujs:
    - name: pay
      owner: t
      routes: ["POST /pay"]
      latency: {threshold: 250ms, objective: 99.95%}
      queries: {latency: {good: 'sum(increase(b{le="0.25"}[{{.window}}]))', total: 'sum(increase(c[{{.window}}]))'}}
      load: {share: 10%, requests: [{method: POST, path: "/pay", vars: {id: 1..9, k: [a, b]}, weight: 2, body: "{}"}]}
`},
	{"an alert identity with per-severity labels", true, `  alerting: {name: MyServiceHighErrorRate, labels: {category: availability}, annotations: {summary: High error rate}, page: {labels: {severity: pageteam, routing_key: myteam}}, ticket: {labels: {slack_channel: "#alerts"}}}
  cujs:
    - {name: a, owner: t, routes: ["GET /a"], availability: {objective: 99%}}
`},
	{"an alert label slolab sets itself", false, `  alerting: {labels: {cuj: other}}
  cujs:
    - {name: a, owner: t, routes: ["GET /a"], availability: {objective: 99%}}
`},
	{"no CUJs", false, "  cujs: []\n"},
	{"a CUJ without an SLO", false, "  cujs:\n    - {name: a, owner: t, routes: [\"GET /a\"]}\n"},
	{"a missing owner", false, "  cujs:\n    - {name: a, routes: [\"GET /a\"], availability: {objective: 99%}}\n"},
	{"an unknown field", false, "  cujs:\n    - {name: a, owner: t, routes: [\"GET /a\"], availabilty: {objective: 99%}}\n"}, //nolint:misspell // the mistake under test
	{"an unknown field beside an SLO", false, "  cujs:\n    - {name: a, owner: t, routes: [\"GET /a\"], availability: {objective: 99%}, colour: blue}\n"},
	{"an objective of 100%", false, "  cujs:\n    - {name: a, owner: t, routes: [\"GET /a\"], availability: {objective: 100%}}\n"},
	{"an objective written as a fraction", false, "  cujs:\n    - {name: a, owner: t, routes: [\"GET /a\"], availability: {objective: 0.999}}\n"},
	{"a duration without a unit", false, "  cujs:\n    - {name: a, owner: t, routes: [\"GET /a\"], latency: {threshold: 500, objective: 99%}}\n"},
	{"a duration in an unknown unit", false, "  cujs:\n    - {name: a, owner: t, routes: [\"GET /a\"], latency: {threshold: 1 sec, objective: 99%}}\n"},
	{"an unknown method", false, "  cujs:\n    - {name: a, owner: t, routes: [\"GOT /a\"], availability: {objective: 99%}}\n"},
	{"an upper-case name", false, "  cujs:\n    - {name: Update, owner: t, routes: [\"GET /a\"], availability: {objective: 99%}}\n"},
	{"a reserved name", false, "  cujs:\n    - {name: _other, owner: t, routes: [\"GET /a\"], availability: {objective: 99%}}\n"},
	{"duplicate CUJ names", false, "  cujs:\n    - {name: a, owner: t, routes: [\"GET /a\"], availability: {objective: 99%}}\n    - {name: a, owner: t, routes: [\"GET /b\"], availability: {objective: 99%}}\n"},
	{"both good and bad queries", false, "  cujs:\n    - {name: a, owner: t, routes: [\"GET /a\"], availability: {objective: 99%}, queries: {availability: {good: g, bad: b, total: t}}}\n"},
	{"a share and a rate", false, "  cujs:\n    - {name: a, owner: t, routes: [\"GET /a\"], availability: {objective: 99%}, load: {share: 10%, rate: 5/s}}\n"},
	{"a bad severity", false, "  alerting: {burnRates: [{severity: urgent, long: 1h, short: 5m, burnRate: 14.4}]}\n  cujs:\n    - {name: a, owner: t, routes: [\"GET /a\"], availability: {objective: 99%}}\n"},
	{"a policy without a percentage", false, "  policy: [{when: remaining < 0.25, action: x}]\n  cujs:\n    - {name: a, owner: t, routes: [\"GET /a\"], availability: {objective: 99%}}\n"},
	{"a wrong apiVersion", false, "  cujs:\n    - {name: a, owner: t, routes: [\"GET /a\"], availability: {objective: 99%}}\napiVersion: slolab.dev/v2\n"},
}

// The CUE schema and the Go validator accept and reject the same examples.
func TestTheCUESchemaAndTheGoValidatorAgree(t *testing.T) {
	ctx, def := schema(t, "#Service")
	for _, tt := range serviceExamples {
		t.Run(tt.name, func(t *testing.T) {
			text := svcHead + tt.body
			if tt.name == "a wrong apiVersion" {
				text = strings.Replace(text, "apiVersion: slolab.dev/v1\n", "", 1)
			}
			_, goErr := spec.Parse("t.yaml", []byte(text))
			cueErr := cueVet(ctx, def, "t.yaml", text)
			if (goErr == nil) != tt.valid {
				t.Errorf("the Go validator says %v, want valid=%v", goErr, tt.valid)
			}
			if (cueErr == nil) != tt.valid {
				t.Errorf("the CUE schema says %v, want valid=%v", cueErr, tt.valid)
			}
		})
	}
}

func TestTheChatExampleAndItsCUEFormPassTheSchema(t *testing.T) {
	ctx, def := schema(t, "#Service")
	data, err := os.ReadFile("../../examples/chat.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if err := cueVet(ctx, def, "chat.yaml", string(data)); err != nil {
		t.Errorf("chat.yaml: %v", err)
	}
	src, err := os.ReadFile("../../examples/chat.cue")
	if err != nil {
		t.Fatal(err)
	}
	v := ctx.CompileBytes(src, cue.Filename("chat.cue"))
	if err := def.Unify(v).Validate(cue.Concrete(true)); err != nil {
		t.Errorf("chat.cue: %v", err)
	}
}

var faultExamples = []struct {
	name  string
	valid bool
	text  string
}{
	{"an abort at 0.1% on a CUJ", true, "name: a\nmatch: {cuj: update}\nrate: 0.1%\nabort: true\n"},
	{"a status with a body and a delay on a route", true, "name: b\nmatch: {cuj: read, route: \"GET /messages/{id}\", group: experiment}\nstatus: {code: 503, body: later}\ndelay: 1s\nttl: 30m\n"},
	{"a replace and a patch", true, "name: c\nreplace: {request: {path: /v2}}\npatch: {response: {headers: {X-A: b}}}\n"},
	{"abort: false beside a status", true, "name: l\nabort: false\nstatus: 500\n"},
	{"no action", false, "name: d\nmatch: {cuj: update}\n"},
	{"abort and status", false, "name: e\nabort: true\nstatus: 500\n"},
	{"a route without its CUJ", false, "name: f\nmatch: {route: \"GET /a\"}\nabort: true\n"},
	{"a status out of range", false, "name: g\nstatus: 700\n"},
	{"an unknown group", false, "name: h\nmatch: {group: canary}\nabort: true\n"},
	{"a response replace after a terminal action", false, "name: i\nstatus: 500\nreplace: {response: {status: 502}}\n"},
	{"an unknown field", false, "name: j\nabort: true\ncolour: red\n"},
	{"an empty replace", false, "name: k\nreplace: {}\n"},
}

func TestTheCUEFaultRuleSchemaAndTheGoValidatorAgree(t *testing.T) {
	ctx, def := schema(t, "#FaultRule")
	for _, tt := range faultExamples {
		t.Run(tt.name, func(t *testing.T) {
			_, goErr := spec.ParseFaultRule("f.yaml", []byte(tt.text), "")
			cueErr := cueVet(ctx, def, "f.yaml", tt.text)
			if (goErr == nil) != tt.valid {
				t.Errorf("the Go validator says %v, want valid=%v", goErr, tt.valid)
			}
			if (cueErr == nil) != tt.valid {
				t.Errorf("the CUE schema says %v, want valid=%v", cueErr, tt.valid)
			}
		})
	}
}

// What only the Go validator checks, listed so that a change on either side
// shows up here and in docs/cue.md.
func TestTheSchemaGapsAreTheDocumentedOnes(t *testing.T) {
	ctx, def := schema(t, "#Service")
	for _, tt := range []struct{ name, body string }{
		{"routes net/http cannot order", "  cujs:\n    - {name: a, owner: t, routes: [\"GET /a/{x}/c\"], availability: {objective: 99%}}\n    - {name: b, owner: t, routes: [\"GET /a/b/{y}\"], availability: {objective: 99%}}\n"},
		{"a route claimed by two CUJs", "  cujs:\n    - {name: a, owner: t, routes: [\"GET /a\"], availability: {objective: 99%}}\n    - {name: b, owner: t, routes: [\"GET /a\"], availability: {objective: 99%}}\n"},
		{"a window beyond 400 days", "  cujs:\n    - {name: a, owner: t, routes: [\"GET /a\"], availability: {objective: 99%, window: 500d}}\n"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			text := svcHead + tt.body
			if _, err := spec.Parse("t.yaml", []byte(text)); err == nil {
				t.Error("the Go validator accepts it")
			}
			if err := cueVet(ctx, def, "t.yaml", text); err != nil {
				t.Errorf("the CUE schema now rejects it (%v): move the example to the agreement table and update docs/cue.md", err)
			}
		})
	}
}
