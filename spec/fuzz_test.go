package spec_test

import (
	"os"
	"testing"

	"slolab.dev/slolab/spec"
)

// FuzzParse: the loader never panics, and whatever it accepts it can summarise.
func FuzzParse(f *testing.F) {
	if data, err := os.ReadFile("../examples/chat.yaml"); err == nil {
		f.Add(data)
	}
	f.Add([]byte("apiVersion: slolab.dev/v1\nkind: Service\nmetadata: {name: a}\nspec: {cujs: [{name: a, owner: b, routes: ['GET /{x...}'], latency: {threshold: 1s, objective: 99%}}]}"))
	f.Add([]byte("a: &a [*a]"))
	f.Add([]byte("<<: {a: 1}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		file, err := spec.Parse("fuzz.yaml", data)
		if err != nil {
			return
		}
		for _, s := range file.Services {
			_ = s.Summary()
		}
	})
}

// FuzzParseFaultRule: the admin API's body decoder never panics.
func FuzzParseFaultRule(f *testing.F) {
	f.Add([]byte(`{"name": "a", "rate": "0.1%", "status": 500, "delay": "p50=1ms p99=2s", "match": {"cuj": "x", "route": "GET /a/{b}"}}`))
	f.Add([]byte(`{"replace": {"request": {"path": "/x", "body": ""}, "response": {"status": 201}}, "patch": {"request": {"query": {"a": "b"}}}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := spec.ParseFaultRule("body", data, "n")
		if err != nil {
			return
		}
		if _, err := r.MarshalJSON(); err != nil {
			t.Fatal(err)
		}
	})
}
