package cli

import (
	"slolab.dev/slolab/spec"
)

// loadSpecFile reads a spec in any supported syntax, chosen by extension.
// This is the one table of spec front ends.
func loadSpecFile(path string) (*spec.File, error) {
	return spec.LoadFile(path)
}

// loadService reads a spec file that holds exactly one Service.
func loadService(path string) (*spec.Service, error) {
	f, err := loadSpecFile(path)
	if err != nil {
		return nil, err
	}
	return f.Service()
}
