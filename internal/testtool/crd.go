package testtool

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"gopkg.in/yaml.v3"
)

// CRDSchema compiles the openAPIV3Schema of one version of a
// CustomResourceDefinition file into a JSON-schema validator, strict the way
// `kubectl apply --validate=strict` is: an object schema that lists its
// properties rejects fields it does not list, unless it says
// x-kubernetes-preserve-unknown-fields.
func CRDSchema(t testing.TB, crdPath, version string) *jsonschema.Schema {
	t.Helper()
	data, err := os.ReadFile(crdPath)
	if err != nil {
		t.Fatal(err)
	}
	var crd struct {
		Spec struct {
			Versions []struct {
				Name   string
				Schema struct {
					OpenAPIV3Schema map[string]any `yaml:"openAPIV3Schema"`
				}
			}
		}
	}
	if err := yaml.Unmarshal(data, &crd); err != nil {
		t.Fatalf("%s: %v", crdPath, err)
	}
	for _, v := range crd.Spec.Versions {
		if v.Name != version {
			continue
		}
		schema := strict(v.Schema.OpenAPIV3Schema)
		doc, err := jsonValue(schema)
		if err != nil {
			t.Fatal(err)
		}
		c := jsonschema.NewCompiler()
		if err := c.AddResource("crd.json", doc); err != nil {
			t.Fatal(err)
		}
		s, err := c.Compile("crd.json")
		if err != nil {
			t.Fatalf("%s: compiling the %s schema: %v", crdPath, version, err)
		}
		return s
	}
	t.Fatalf("%s has no version %s", crdPath, version)
	return nil
}

// ValidateYAML validates every YAML document in data against schema.
func ValidateYAML(schema *jsonschema.Schema, data []byte) error {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	for i := 0; ; i++ {
		var doc any
		if err := dec.Decode(&doc); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
		if doc == nil {
			continue
		}
		v, err := jsonValue(doc)
		if err != nil {
			return err
		}
		if err := schema.Validate(v); err != nil {
			return fmt.Errorf("document %d: %w", i+1, err)
		}
	}
}

// jsonValue round-trips v through JSON into the types the validator reads.
func jsonValue(v any) (any, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	return jsonschema.UnmarshalJSON(bytes.NewReader(b))
}

func strict(v any) any {
	switch x := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(x)+1)
		for k, e := range x {
			out[k] = strict(e)
		}
		_, props := x["properties"]
		_, extra := x["additionalProperties"]
		if props && !extra && x["x-kubernetes-preserve-unknown-fields"] != true {
			out["additionalProperties"] = false
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = strict(e)
		}
		return out
	}
	return v
}
