package spec

import (
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strings"
)

var standardMethods = map[string]bool{
	http.MethodGet: true, http.MethodHead: true, http.MethodPost: true, http.MethodPut: true,
	http.MethodPatch: true, http.MethodDelete: true, http.MethodOptions: true,
	http.MethodConnect: true, http.MethodTrace: true,
}

// checkPattern reports whether pat is a valid net/http pattern with a standard method.
func checkPattern(pat string) error {
	if method, _, ok := strings.Cut(pat, " "); ok && !strings.HasPrefix(method, "/") && !standardMethods[method] {
		return fmt.Errorf("route %q: unknown method %q (use GET, POST, PUT, PATCH, DELETE, HEAD, OPTIONS, CONNECT or TRACE)", pat, method)
	}
	return RegisterPattern(http.NewServeMux(), pat, http.NotFoundHandler())
}

// RegisterPattern registers pat on mux, turning net/http's panic on a bad or
// conflicting pattern into an error that reads well in a spec message.
func RegisterPattern(mux *http.ServeMux, pat string, h http.Handler) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = patternError(pat, fmt.Sprint(r))
		}
	}()
	mux.Handle(pat, h)
	return nil
}

// ConflictError says that two routes match the same requests and neither is more specific.
type ConflictError struct {
	Pattern, Other string
	Why            string
}

func (e *ConflictError) Error() string {
	return fmt.Sprintf("route %q conflicts with %q: %s", e.Pattern, e.Other, e.Why)
}

var (
	registeredAt = regexp.MustCompile(` \(registered at [^)]*\)`)
	conflictRe   = regexp.MustCompile(`^pattern "(.*)" conflicts with pattern "(.*)":\n((?s).*)$`)
	parseRe      = regexp.MustCompile(`^parsing ".*": (.*)$`)
)

func patternError(pat, msg string) error {
	msg = registeredAt.ReplaceAllString(msg, "")
	if m := conflictRe.FindStringSubmatch(msg); m != nil {
		return &ConflictError{Pattern: m[1], Other: m[2], Why: strings.Join(strings.Fields(m[3]), " ")}
	}
	if m := parseRe.FindStringSubmatch(msg); m != nil {
		return fmt.Errorf("route %q is not a valid net/http pattern: %s", pat, m[1])
	}
	return fmt.Errorf("route %q: %s", pat, msg)
}

// routeConflicts registers every route of every CUJ in one mux, the way the
// proxy will, and reports routes that two CUJs claim or that net/http cannot
// order by precedence.
func (d *decoder) routeConflicts(svc *Service) {
	mux := http.NewServeMux()
	type owner struct{ cuj, path string }
	owners := map[string]owner{}
	for _, c := range svc.CUJs {
		for _, r := range c.Routes {
			err := RegisterPattern(mux, r.Pattern, http.NotFoundHandler())
			if err == nil {
				owners[r.Pattern] = owner{c.Name, r.path}
				continue
			}
			at := &Node{Pos: r.Pos}
			var ce *ConflictError
			switch {
			case !errors.As(err, &ce):
				d.errorf(at, r.path, "%v", err)
			case ce.Other == r.Pattern:
				o := owners[ce.Other]
				d.errorf(at, r.path, "route %q is claimed by two CUJs, %q (%s) and %q; a route belongs to at most one CUJ", r.Pattern, o.cuj, o.path, c.Name)
			default:
				o := owners[ce.Other]
				d.errorf(at, r.path, "route %q of CUJ %q conflicts with route %q of CUJ %q (%s): %s", r.Pattern, c.Name, ce.Other, o.cuj, o.path, ce.Why)
			}
		}
	}
}
