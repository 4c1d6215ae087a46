package spec

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// File is every document of one spec file.
type File struct {
	Path        string
	Services    []*Service
	Experiments []*Experiment
	GameDays    []*GameDay
}

// Limits on a spec, so that one cannot make a proxy spend minutes and
// gigabytes starting (104,000 CUJs took 36 s and 684 MB), nor every
// Prometheus that scrapes it hold millions of series.
const (
	MaxFileBytes = 4 << 20 // a YAML or JSON spec file
	MaxCUJs      = 1000    // CUJs of one service
	MaxRoutes    = 5000    // routes of one service, all CUJs together
)

// LoadFile reads a YAML or JSON spec file. CUE files are read by package cuespec.
func LoadFile(path string) (*File, error) {
	switch strings.ToLower(filepath.Ext(path)) {
	case ".yaml", ".yml", ".json", "":
	default:
		return nil, fmt.Errorf("%s: unknown spec format %q (want .yaml, .yml or .json)", path, filepath.Ext(path))
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxFileBytes+1))
	if err != nil {
		return nil, err
	}
	return Parse(path, data)
}

// Parse reads YAML or JSON text; name is used in positions.
func Parse(name string, data []byte) (*File, error) {
	if len(data) > MaxFileBytes {
		return nil, Errors{{Pos: Pos{File: name}, Msg: fmt.Sprintf("the spec is larger than %d MiB: split it into one file per service", MaxFileBytes>>20)}}
	}
	docs, err := ParseYAML(name, data)
	if err != nil {
		return nil, err
	}
	f, err := Decode(docs)
	if f != nil {
		f.Path = name
	}
	return f, err
}

// Decode turns parsed documents (from any front end) into a File, reporting
// every error at once.
func Decode(docs []*Node) (*File, error) {
	f := &File{}
	d := &decoder{}
	if len(docs) == 0 {
		return nil, Errors{{Msg: "the file holds no document"}}
	}
	for _, doc := range docs {
		d.document(doc, f)
	}
	d.crossCheck(f)
	if err := d.errs.err(); err != nil {
		return nil, err
	}
	return f, nil
}

// Kinds lists the document kinds this version reads.
var Kinds = []string{"Service", "Experiment", "GameDay"}

func (d *decoder) document(n *Node, f *File) {
	var (
		kind    string
		name    string
		labels  map[string]string
		specVal *Node
	)
	ok := d.object(n, "", fields{
		"apiVersion": func(v *Node, p string) {
			if s := d.str(v, p); s != APIVersion && s != "" {
				d.errorf(v, p, "want %s, got %q", APIVersion, s)
			}
		},
		"kind": func(v *Node, p string) {
			kind = d.str(v, p)
			if kind != "" && !strings.Contains(" "+strings.Join(Kinds, " ")+" ", " "+kind+" ") {
				d.errorf(v, p, "unknown kind %q (want one of %s)", kind, strings.Join(Kinds, ", "))
			}
		},
		"metadata": func(v *Node, p string) {
			d.object(v, p, fields{
				"name":   func(v *Node, p string) { name = d.name(v, p) },
				"labels": func(v *Node, p string) { labels = d.stringMap(v, p) },
			}, "name")
		},
		"spec": func(v *Node, _ string) { specVal = v },
	}, "apiVersion", "kind", "metadata", "spec")
	if !ok || specVal == nil {
		return
	}
	switch kind {
	case "Service":
		svc := &Service{Name: name, Labels: labels, Pos: n.Pos}
		d.service(specVal, "spec", svc)
		f.Services = append(f.Services, svc)
	case "Experiment":
		x := &Experiment{Name: name, Labels: labels, Pos: n.Pos}
		d.experiment(specVal, "spec", x)
		f.Experiments = append(f.Experiments, x)
	case "GameDay":
		g := &GameDay{Name: name, Labels: labels, Pos: n.Pos}
		d.gameDay(specVal, "spec", g)
		f.GameDays = append(f.GameDays, g)
	}
}

// crossCheck reports what documents of one file say about each other:
// duplicate names, and experiments that name a Service the file does not hold
// when they give no serviceFile.
func (d *decoder) crossCheck(f *File) {
	seen := map[string]Pos{}
	dup := func(kind, name string, pos Pos) {
		key := kind + "/" + name
		if prev, ok := seen[key]; ok && name != "" {
			d.errs = append(d.errs, &Error{Pos: pos, Path: "metadata.name", Msg: fmt.Sprintf("another %s is named %q (%s)", kind, name, prev)})
		}
		seen[key] = pos
	}
	for _, s := range f.Services {
		dup("Service", s.Name, s.Pos)
	}
	for _, x := range f.Experiments {
		dup("Experiment", x.Name, x.Pos)
		if x.ServiceFile != "" || x.Service == "" || len(f.Services) == 0 {
			continue
		}
		found := false
		for _, s := range f.Services {
			found = found || s.Name == x.Service
		}
		if !found {
			d.errs = append(d.errs, &Error{Pos: x.ServicePos, Path: "spec.service", Msg: fmt.Sprintf("no Service %q in this file (it has %s); name one of them or set serviceFile", x.Service, serviceNames(f.Services))})
		}
	}
	for _, g := range f.GameDays {
		dup("GameDay", g.Name, g.Pos)
	}
}

func serviceNames(ss []*Service) string {
	names := make([]string, len(ss))
	for i, s := range ss {
		names[i] = s.Name
	}
	return strings.Join(names, ", ")
}

// Service returns the file's only Service, or an error saying why there is not exactly one.
func (f *File) Service() (*Service, error) {
	switch len(f.Services) {
	case 1:
		return f.Services[0], nil
	case 0:
		return nil, Errors{{Pos: Pos{File: f.Path}, Msg: "no Service document in the file"}}
	}
	return nil, Errors{{Pos: f.Services[1].Pos, Msg: fmt.Sprintf("%d Service documents in one file; slolab reads one service per spec", len(f.Services))}}
}

// LoadService reads a YAML or JSON file holding exactly one Service.
func LoadService(path string) (*Service, error) {
	f, err := LoadFile(path)
	if err != nil {
		return nil, err
	}
	return f.Service()
}
