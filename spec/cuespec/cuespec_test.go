package cuespec_test

import (
	"reflect"
	"strings"
	"testing"

	"slolab.dev/slolab/internal/testtool"
	"slolab.dev/slolab/spec"
	"slolab.dev/slolab/spec/cuespec"
)

func TestTheChatExampleInCUEIsTheSameModelAsInYAML(t *testing.T) {
	fromCUE, err := cuespec.LoadFile("../../examples/chat.cue")
	if err != nil {
		t.Fatal(err)
	}
	fromYAML, err := spec.LoadFile("../../examples/chat.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if got := fromCUE.Services[0].CUJ("update").Pos; got != (spec.Pos{File: "../../examples/chat.cue", Line: 64, Col: 3}) {
		t.Errorf("the update CUJ is at %v, want the position of its struct in chat.cue", got)
	}
	testtool.ZeroFields(fromCUE, "Pos")
	testtool.ZeroFields(fromYAML, "Pos")
	fromCUE.Path, fromYAML.Path = "", ""
	if !reflect.DeepEqual(fromCUE, fromYAML) {
		t.Errorf("chat.cue and chat.yaml decode to different models:\n%+v\n%+v", fromCUE.Services[0], fromYAML.Services[0])
	}
}

const head = `apiVersion: "slolab.dev/v1"
kind: "Service"
metadata: name: "chat"
`

func TestCUEMistakesAreReportedWithCUEPositions(t *testing.T) {
	tests := []struct {
		name string
		src  string
		want []string
	}{
		{
			name: "the decoder's errors point at the field values in the .cue source",
			src: head + `spec: cujs: [{
	name:  "login"
	owner: "t"
	routes: ["POST /login"]
	availability: objective: "100%"
	latency: {threshold: "1 sec", objective: 99}
	colour: "blue"
}]
`,
			want: []string{
				`t.cue:8:27: spec.cujs[0].availability.objective: must be in (0, 100), got 100%`,
				`t.cue:9:23: spec.cujs[0].latency.threshold: duration "1 sec" has an unknown unit "sec" (use ns, us, ms, s, m, h, d or w)`,
				`t.cue:10:2: spec.cujs[0].colour: unknown field (known: alerting, availability, description, latency, load, name, owner, policy, queries, routes, upstreamTimeout)`,
			},
		},
		{
			name: "conflicting values are CUE's own error",
			src:  head + "spec: cujs: [{name: \"a\", name: \"b\"}]\n",
			want: []string{`t.cue:4:21: spec.cujs[0].name: conflicting values "b" and "a"`},
		},
		{
			name: "an incomplete value names the field",
			src:  head + "spec: cujs: [{name: string, owner: \"t\", routes: [\"GET /a\"], availability: objective: \"99%\"}]\n",
			want: []string{`t.cue:4:21: spec.cujs[0].name: incomplete value string`},
		},
		{
			name: "a syntax error has a position",
			src:  "a: {\n",
			want: []string{`t.cue:1:6: expected '}', found 'EOF'`},
		},
		{
			name: "a documents list admits nothing else at the top level",
			src:  "documents: []\nextra: 1\n",
			want: []string{`t.cue:1:1: documents: a file with "documents" holds nothing else at the top level (found extra); move it into a document or make it hidden (_extra) or a definition (#extra)`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := cuespec.Parse("t.cue", []byte(tt.src))
			if err == nil {
				t.Fatal("no error")
			}
			if got, want := err.Error(), strings.Join(tt.want, "\n"); got != want {
				t.Errorf("errors:\n%s\nwant:\n%s", got, want)
			}
		})
	}
}

func TestADocumentsListHoldsSeveralDocuments(t *testing.T) {
	src := `_svc: {
	apiVersion: "slolab.dev/v1"
	kind: "Service"
	spec: cujs: [{name: "a", owner: "t", routes: ["GET /a"], availability: objective: 99.95}]
}
documents: [_svc & {metadata: name: "one"}, _svc & {metadata: name: "two"}]
`
	f, err := cuespec.Parse("t.cue", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	if len(f.Services) != 2 || f.Services[0].Name != "one" || f.Services[1].Name != "two" {
		t.Fatalf("services = %+v", f.Services)
	}
	// A CUE number keeps its exact decimal text: 99.95 is exactly 9995/10000.
	if got := f.Services[1].CUJs[0].Availability.Objective; got != spec.NewRatio(9995, 10000) {
		t.Errorf("objective = %v, want 99.95%%", got)
	}
}
