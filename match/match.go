// Package match maps a request to its CUJ and route, with exactly net/http's
// pattern semantics (methods, hosts, wildcards, {id}, {rest...}, precedence),
// a client to its experiment or control group by a stable hash, and names the
// revisions (stable, canary) a split sends requests to.
package match

import (
	"fmt"
	"net/http"

	"slolab.dev/slolab/spec"
)

// Route is a compiled route. Route 0 is the catch-all of CUJ 0, "_other".
type Route struct {
	ID      int    // dense, 0 for _other
	CUJ     int    // dense CUJ index, 0 for _other
	CUJName string // the CUJ's name
	Pattern string // the pattern as written in the spec; "" for _other
}

// Table is an immutable, compiled route table. It is safe for concurrent use.
type Table struct {
	mux    *http.ServeMux
	routes []*Route
	cujs   []string
}

// routeHandler marks a registered route; the mux never serves it.
type routeHandler struct{ route *Route }

func (routeHandler) ServeHTTP(http.ResponseWriter, *http.Request) {}

// Compile builds the route table of a service. The spec decoder has already
// rejected conflicting patterns; Compile reports them again for models built in code.
func Compile(svc *spec.Service) (*Table, error) {
	t := &Table{
		mux:    http.NewServeMux(),
		routes: []*Route{{ID: 0, CUJ: 0, CUJName: spec.OtherCUJ}},
		cujs:   []string{spec.OtherCUJ},
	}
	for _, c := range svc.CUJs {
		t.cujs = append(t.cujs, c.Name)
		for _, r := range c.Routes {
			route := &Route{ID: len(t.routes), CUJ: len(t.cujs) - 1, CUJName: c.Name, Pattern: r.Pattern}
			if err := spec.RegisterPattern(t.mux, r.Pattern, routeHandler{route}); err != nil {
				return nil, fmt.Errorf("CUJ %s: %w", c.Name, err)
			}
			t.routes = append(t.routes, route)
		}
	}
	return t, nil
}

// Match returns the route a request belongs to; requests that match no route
// (including those net/http would redirect or answer with 405) belong to _other.
func (t *Table) Match(r *http.Request) *Route {
	h, _ := t.mux.Handler(r)
	if rh, ok := h.(routeHandler); ok {
		return rh.route
	}
	return t.routes[0]
}

// Routes lists every route, _other first.
func (t *Table) Routes() []*Route { return t.routes }

// CUJs lists CUJ names by dense index, _other first.
func (t *Table) CUJs() []string { return t.cujs }

// CUJIndex returns the dense index of a CUJ, or -1.
func (t *Table) CUJIndex(name string) int {
	for i, n := range t.cujs {
		if n == name {
			return i
		}
	}
	return -1
}

// Route returns the route of a CUJ with the given pattern, or nil.
func (t *Table) Route(cuj, pattern string) *Route {
	for _, r := range t.routes {
		if r.CUJName == cuj && r.Pattern == pattern {
			return r
		}
	}
	return nil
}
