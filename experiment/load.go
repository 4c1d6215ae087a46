package experiment

import (
	"cmp"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"

	"slolab.dev/slolab/spec"
)

// Loader reads a spec file in any syntax slolab knows (the CLI's table of
// front ends).
type Loader func(path string) (*spec.File, error)

// Set is every experiment and GameDay of some spec files, each experiment
// compiled against its service.
type Set struct {
	Experiments []*Compiled
	GameDays    []*spec.GameDay
}

// Experiment returns the experiment with the given name, or nil.
func (s *Set) Experiment(name string) *Compiled {
	for _, c := range s.Experiments {
		if c.Experiment.Name == name {
			return c
		}
	}
	return nil
}

// Names lists the experiments' names.
func (s *Set) Names() []string {
	out := make([]string, len(s.Experiments))
	for i, c := range s.Experiments {
		out[i] = c.Experiment.Name
	}
	return out
}

// Load reads spec files, finds each experiment's service (in its own file,
// in another file given, or in its serviceFile), compiles every expression
// and checks that GameDays name existing experiments. Every mistake of every
// file comes back at once as spec.Errors.
func Load(paths []string, load Loader) (*Set, error) {
	var files []*spec.File
	var errs spec.Errors
	addErr := func(err error, pos spec.Pos, path string) {
		var se spec.Errors
		if !errors.As(err, &se) {
			se = spec.Errors{{Pos: pos, Path: path, Msg: err.Error()}}
		}
		errs = append(errs, se...)
	}
	for _, p := range paths {
		f, err := load(p)
		if err != nil {
			addErr(err, spec.Pos{File: p}, "")
			continue
		}
		if f.Path == "" {
			f.Path = p
		}
		files = append(files, f)
	}
	set := &Set{}
	var services []*spec.Service
	for _, f := range files {
		services = append(services, f.Services...)
	}
	seen := map[string]spec.Pos{}
	var declared []string
	for _, f := range files {
		for _, x := range f.Experiments {
			if prev, dup := seen[x.Name]; dup {
				errs = append(errs, &spec.Error{Pos: x.Pos, Path: "metadata.name", Msg: fmt.Sprintf("another experiment is named %q (%s)", x.Name, prev)})
				continue
			}
			seen[x.Name] = x.Pos
			declared = append(declared, x.Name)
			svc, err := serviceOf(f, x, services, load)
			if err != nil {
				pos := x.ServicePos
				if pos.Line == 0 {
					pos = x.Pos
				}
				addErr(err, pos, "spec.serviceFile")
				continue
			}
			c, err := Compile(x, svc)
			if err != nil {
				addErr(err, x.Pos, "")
				continue
			}
			set.Experiments = append(set.Experiments, c)
		}
		set.GameDays = append(set.GameDays, f.GameDays...)
	}
	for _, g := range set.GameDays {
		for i, s := range g.Scenario {
			if _, ok := seen[s.Experiment]; !ok {
				errs = append(errs, &spec.Error{Pos: s.Pos, Path: fmt.Sprintf("spec.scenario[%d].experiment", i),
					Msg: fmt.Sprintf("no experiment %q in the files given (they hold %s)", s.Experiment, orNone(declared))})
			}
		}
	}
	if len(errs) > 0 {
		slices.SortStableFunc(errs, func(a, b *spec.Error) int {
			return cmp.Or(strings.Compare(a.Pos.File, b.Pos.File), a.Pos.Line-b.Pos.Line, a.Pos.Col-b.Pos.Col)
		})
		return nil, errs
	}
	return set, nil
}

func orNone(names []string) string {
	if len(names) == 0 {
		return "none"
	}
	return strings.Join(names, ", ")
}

// serviceOf finds the Service an experiment names.
func serviceOf(f *spec.File, x *spec.Experiment, all []*spec.Service, load Loader) (*spec.Service, error) {
	pick := func(ss []*spec.Service, where string) (*spec.Service, error) {
		if x.Service == "" {
			if len(ss) == 1 {
				return ss[0], nil
			}
			if len(ss) == 0 {
				return nil, fmt.Errorf("no Service in %s; set spec.service and spec.serviceFile, or give the service's spec file too", where)
			}
			return nil, fmt.Errorf("%d Services in %s; name one with spec.service", len(ss), where)
		}
		var names []string
		for _, s := range ss {
			if s.Name == x.Service {
				return s, nil
			}
			names = append(names, s.Name)
		}
		return nil, fmt.Errorf("no Service %q in %s (it has %s)", x.Service, where, orNone(names))
	}
	if x.ServiceFile != "" {
		path := x.ServiceFile
		if !filepath.IsAbs(path) {
			path = filepath.Join(filepath.Dir(f.Path), path)
		}
		sf, err := load(path)
		if err != nil {
			return nil, fmt.Errorf("reading the service spec %s: %w", path, err)
		}
		return pick(sf.Services, path)
	}
	if len(f.Services) > 0 {
		return pick(f.Services, f.Path)
	}
	return pick(all, "the files given")
}
