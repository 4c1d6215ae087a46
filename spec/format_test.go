package spec_test

import (
	"os"
	"reflect"
	"strings"
	"testing"

	"slolab.dev/slolab/internal/testtool"
	"slolab.dev/slolab/spec"
)

const everyField = `apiVersion: slolab.dev/v1
kind: Service
metadata: {name: shop, labels: {team: payments, tier: "1"}}
spec:
  alerting:
    minBadEvents: 20
    burnRates:
      - {severity: page, long: 1h, short: 5m, burnRate: 14.4}
      - {severity: ticket, long: 3d, short: 6h, burnRate: 1/3}
  policy:
    - {when: "remaining < 25%", action: "freeze"}
  cujs:
    - name: pay
      owner: payments
      description: "A user pays: true"
      routes: ["POST /pay", "GET /pay/{id}"]
      availability: {objective: "200/3%", window: month}
      latency: {threshold: 1.5s, objective: 99.95%, window: 28d}
      alerting: {minBadEvents: 3}
      queries:
        availability: {bad: 'sum(increase(x{code=~"5.."}[{{.window}}]))', total: 'sum(increase(x[{{.window}}]))'}
        latency: {good: 'sum(increase(y_bucket{le="1.5"}[{{.window}}]))', total: 'sum(increase(y_count[{{.window}}]))'}
      load:
        rate: 5/2s
        requests:
          - method: POST
            path: /pay/{id}
            vars: {id: 1..9, kind: [a, b], token: uuid, nonce: "hex:8", fixed: "true"}
            headers: {X-A: "1"}
            body: '{"id": {id}}'
            weight: 3
          - {path: /pay, bodyFile: body.json}
      policy:
        - {when: "consumed >= 100%", action: "stop"}
      upstreamTimeout: 2.5s
    - name: browse
      owner: web
      routes: ["GET /"]
      latency: {threshold: 300ms, objective: 99%}
      load: {share: 1/3}
`

func TestFormatThenParseGivesTheSameModel(t *testing.T) {
	for _, tt := range []struct{ name, path, src string }{
		{name: "the chat example", path: "../examples/chat.yaml"},
		{name: "a spec using every field", src: everyField},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var want *spec.Service
			var err error
			if tt.path != "" {
				want, err = spec.LoadService(tt.path)
			} else {
				var f *spec.File
				if f, err = spec.Parse("in.yaml", []byte(tt.src)); err == nil {
					want, err = f.Service()
				}
			}
			if err != nil {
				t.Fatal(err)
			}
			text := spec.FormatYAML(want)
			f, err := spec.Parse("out.yaml", text)
			if err != nil {
				t.Fatalf("%v\n%s", err, text)
			}
			got, _ := f.Service()
			testtool.ZeroFields(want, "Pos")
			testtool.ZeroFields(got, "Pos")
			if !reflect.DeepEqual(got, want) {
				t.Errorf("the model changed on its way through FormatYAML:\n%s", text)
			}
		})
	}
}

func TestFormatWritesCommentsAtFieldPaths(t *testing.T) {
	svc, err := spec.LoadService("../examples/chat.yaml")
	if err != nil {
		t.Fatal(err)
	}
	svc.CUJs = svc.CUJs[:1]
	svc.CUJs[0].Load = nil
	svc.Policy = nil
	got := string(spec.FormatYAMLComments(svc, map[string][]string{
		"":                          {"Imported from x.yaml."},
		"spec.cujs[0]":              {"From SLO login-slo."},
		"spec.cujs[0].availability": {"timeslices: not mapped"},
	}))
	want := `# Imported from x.yaml.
apiVersion: slolab.dev/v1
kind: Service
metadata:
  name: chat
  labels:
    team: messaging
spec:
  cujs:
    # From SLO login-slo.
    - name: login
      owner: identity-team
      description: A user signs in and gets a session.
      routes:
        - POST /login
        - POST /logout
      # timeslices: not mapped
      availability: {objective: 99.95%, window: 30d}
      latency: {threshold: 500ms, objective: 99%, window: 30d}
`
	if got != want {
		t.Errorf("got:\n%s\nwant:\n%s", got, want)
	}
	if strings.Contains(got, "\t") {
		t.Error("tabs in YAML")
	}
}

// FuzzFormatRoundTrip: whatever spec Parse accepts, FormatYAML writes so
// that Parse reads the same model back.
func FuzzFormatRoundTrip(f *testing.F) {
	f.Add([]byte(everyField))
	if data, err := os.ReadFile("../examples/chat.yaml"); err == nil {
		f.Add(data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		in, err := spec.Parse("in.yaml", data)
		if err != nil || len(in.Services) != 1 {
			return
		}
		want := in.Services[0]
		text := spec.FormatYAML(want)
		out, err := spec.Parse("out.yaml", text)
		if err != nil {
			t.Fatalf("FormatYAML wrote a spec Parse rejects: %v\n%s", err, text)
		}
		got := out.Services[0]
		testtool.ZeroFields(want, "Pos")
		testtool.ZeroFields(got, "Pos")
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("the model changed on its way through FormatYAML:\n%s", text)
		}
	})
}
