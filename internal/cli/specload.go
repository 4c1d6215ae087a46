package cli

import (
	"path/filepath"
	"strings"

	"slolab.dev/slolab/spec"
	"slolab.dev/slolab/spec/cuespec"
)

// frontEnds maps a spec file's extension to the front end that reads it.
// This is the one table of spec front ends.
var frontEnds = map[string]func(path string) (*spec.File, error){
	".yaml": spec.LoadFile,
	".yml":  spec.LoadFile,
	".json": spec.LoadFile,
	"":      spec.LoadFile,
	".cue":  cuespec.LoadFile,
}

// loadSpecFile reads a spec in any supported syntax, chosen by extension.
func loadSpecFile(path string) (*spec.File, error) {
	load, ok := frontEnds[strings.ToLower(filepath.Ext(path))]
	if !ok {
		return nil, usageErrorf("%s: unknown spec format %q (want .yaml, .yml, .json or .cue)", path, filepath.Ext(path))
	}
	return load(path)
}

// loadService reads a spec file that holds exactly one Service.
func loadService(path string) (*spec.Service, error) {
	f, err := loadSpecFile(path)
	if err != nil {
		return nil, err
	}
	return f.Service()
}
