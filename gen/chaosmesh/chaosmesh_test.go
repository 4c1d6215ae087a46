package chaosmesh_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"slolab.dev/slolab/gen/chaosmesh"
	"slolab.dev/slolab/internal/testtool"
	"slolab.dev/slolab/spec"
)

var ruleFiles = []string{"abort-update.yaml", "slow-read.json", "rewrite-login.yaml", "delay-all.yaml"}

func rules(t *testing.T) []*spec.FaultRule {
	t.Helper()
	var out []*spec.FaultRule
	for _, name := range ruleFiles {
		path := filepath.Join("testdata", name)
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		r, err := spec.ParseFaultRule(path, data, "")
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, r)
	}
	return out
}

func generate(t *testing.T) []string {
	t.Helper()
	svc, err := spec.LoadService("../../examples/chat.yaml")
	if err != nil {
		t.Fatal(err)
	}
	out, err := chaosmesh.Generate(svc, rules(t), chaosmesh.Options{
		Namespace: "chat", Selector: map[string]string{"app": "chat"}, Port: 8080,
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range out.Files {
		testtool.Golden(t, filepath.Join("testdata", "out", f.Name), f.Data)
	}
	if len(out.Files) != len(ruleFiles) {
		t.Errorf("%d files, want one per rule", len(out.Files))
	}
	return out.Notes
}

func TestManifestsMatchTheGoldenFilesAndSayWhatChaosMeshCannotDo(t *testing.T) {
	want := []string{
		`abort-update: route "PUT /messages/{id}" becomes the path "/messages/*": Chaos Mesh's * matches any characters, also across /`,
		`abort-update: Chaos Mesh has no request rate: every matching request is faulted, not 0.1% of them`,
		`slow-read: route "GET /messages/{id}" becomes the path "/messages/*": Chaos Mesh's * matches any characters, also across /`,
		`slow-read: Chaos Mesh has no request rate: every matching request is faulted, not 1% of them`,
		`slow-read: Chaos Mesh has no client groups: the fault reaches every client, not only the experiment group`,
		`slow-read: Chaos Mesh delays are fixed: the distribution uniform(100ms, 300ms) becomes its median, 200ms`,
		`slow-read: Chaos Mesh cannot answer without the upstream: status 503 replaces the upstream's response code, so the upstream still sees the request`,
		`rewrite-login: Chaos Mesh applies rules without priorities (this one has 5)`,
		`rewrite-login: Chaos Mesh matches header values exactly: the match on X-Debug being present is left out`,
		`rewrite-login: Chaos Mesh patches bodies only as JSON merge patches: appending " (patched)" to the response body is left out`,
	}
	if got := generate(t); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("notes:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestManifestsValidateAgainstTheHTTPChaosCRD(t *testing.T) {
	schema := testtool.CRDSchema(t, testtool.ModuleFile(t, testtool.ChaosMesh, "config", "crd", "bases", "chaos-mesh.org_httpchaos.yaml"), "v1alpha1")
	svc, err := spec.LoadService("../../examples/chat.yaml")
	if err != nil {
		t.Fatal(err)
	}
	out, err := chaosmesh.Generate(svc, rules(t), chaosmesh.Options{Selector: map[string]string{"app": "chat"}})
	if err != nil {
		t.Fatal(err)
	}
	docs := 0
	for _, f := range out.Files {
		docs += strings.Count(string(f.Data), "kind: HTTPChaos")
		if err := testtool.ValidateYAML(schema, f.Data); err != nil {
			t.Errorf("%s: %v", f.Name, err)
		}
	}
	// abort-update: 2 routes; slow-read: 1 route × request and response;
	// rewrite-login: 2 routes × request and response; delay-all: 1.
	if docs != 9 {
		t.Errorf("%d HTTPChaos objects, want 9", docs)
	}
	if err := testtool.ValidateYAML(schema, []byte("apiVersion: chaos-mesh.org/v1alpha1\nkind: HTTPChaos\nmetadata: {name: x}\nspec: {mode: all, selector: {}, target: Both}\n")); err == nil {
		t.Error("an unknown target passed the CRD schema")
	}
}

func TestARuleForAnUnknownCUJIsAnError(t *testing.T) {
	svc, err := spec.LoadService("../../examples/chat.yaml")
	if err != nil {
		t.Fatal(err)
	}
	r, err := spec.ParseFaultRule("f.yaml", []byte("name: x\nmatch: {cuj: checkout}\nabort: true\n"), "")
	if err != nil {
		t.Fatal(err)
	}
	_, err = chaosmesh.Generate(svc, []*spec.FaultRule{r}, chaosmesh.Options{})
	want := `f.yaml:1:1: fault rule x: the spec has no CUJ "checkout" (it has login, send, update, read, upload, task)`
	if err == nil || err.Error() != want {
		t.Errorf("err = %v, want %s", err, want)
	}
}

// A rule whose only action Chaos Mesh cannot express has no object to
// write: an error naming what is left out, not a file of comments.
func TestARuleNothingOfWhichTranslatesIsAnError(t *testing.T) {
	svc, err := spec.LoadService("../../examples/chat.yaml")
	if err != nil {
		t.Fatal(err)
	}
	r, err := spec.ParseFaultRule("f.yaml", []byte("name: tail\nmatch: {cuj: login}\npatch: {response: {body: \" (stale)\"}}\n"), "")
	if err != nil {
		t.Fatal(err)
	}
	out, err := chaosmesh.Generate(svc, []*spec.FaultRule{r}, chaosmesh.Options{})
	want := `f.yaml:1:1: fault rule tail: Chaos Mesh can express none of its actions, so there is no HTTPChaos to write: Chaos Mesh patches bodies only as JSON merge patches: appending " (stale)" to the response body is left out`
	if err == nil || err.Error() != want {
		t.Errorf("err = %v, want %s (output %+v)", err, want, out)
	}
}
