package load

import (
	"fmt"
	"math/bits"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"slolab.dev/slolab/spec"
)

// Template is one compiled kind of request of a CUJ. Path, header values and
// body are texts with placeholders; every variable is drawn once per request,
// so {id} in the path and in the body is the same value.
type Template struct {
	Method  string
	Host    string // from a route pattern with a host; empty for the target's
	Path    string // as written, for reports
	Weight  int64
	Derived bool // made from a route pattern, not written in the spec

	path    text
	headers []headerText
	body    text
	vars    []varGen // by placeholder slot − firstVar
}

type headerText struct {
	name  string
	value text
}

// text is a string with placeholders, split once at compile time.
type text struct {
	segs   []textSeg
	static bool
	lit    string // the whole text when static
}

type textSeg struct {
	lit  string
	slot int // −1 for a literal; else slotUser, slotSeq or firstVar+i
}

const (
	slotUser = iota
	slotSeq
	firstVar
)

var placeholderRe = regexp.MustCompile(`\{([A-Za-z_][A-Za-z0-9_]*)(\.\.\.)?\}`)

// compileText splits s at its placeholders; slots maps variable names to slots.
func compileText(s string, slots map[string]int) (text, []string) {
	var t text
	var unknown []string
	last := 0
	for _, m := range placeholderRe.FindAllStringSubmatchIndex(s, -1) {
		name := s[m[2]:m[3]]
		slot, ok := slots[name]
		if !ok {
			unknown = append(unknown, name)
			continue
		}
		if m[0] > last {
			t.segs = append(t.segs, textSeg{lit: s[last:m[0]], slot: -1})
		}
		t.segs = append(t.segs, textSeg{slot: slot})
		last = m[1]
	}
	if last < len(s) {
		t.segs = append(t.segs, textSeg{lit: s[last:], slot: -1})
	}
	t.static = true
	for _, sg := range t.segs {
		if sg.slot >= 0 {
			t.static = false
		}
	}
	if t.static {
		t.lit = s
		if len(unknown) == 0 {
			t.segs = nil
		}
	}
	return t, unknown
}

// varGen draws one variable's value.
type varGen struct {
	name string
	v    spec.Var
}

func (g varGen) appendValue(b []byte, r *rand.PCG) []byte {
	switch g.v.Kind {
	case spec.VarRange:
		span := uint64(g.v.Hi - g.v.Lo)
		var x uint64
		if span == ^uint64(0) {
			x = r.Uint64()
		} else {
			x = uniform(r, span+1)
		}
		return strconv.AppendInt(b, g.v.Lo+int64(x), 10)
	case spec.VarList:
		return append(b, g.v.List[uniform(r, uint64(len(g.v.List)))]...)
	case spec.VarUUID:
		hi, lo := r.Uint64(), r.Uint64()
		hi = hi&^0xf000 | 0x4000     // version 4
		lo = lo&^(0xc<<60) | 0x8<<60 // RFC 4122 variant
		b = appendHex(b, hi>>32, 8)
		b = append(b, '-')
		b = appendHex(b, hi>>16&0xffff, 4)
		b = append(b, '-')
		b = appendHex(b, hi&0xffff, 4)
		b = append(b, '-')
		b = appendHex(b, lo>>48, 4)
		b = append(b, '-')
		return appendHex(b, lo&0xffff_ffff_ffff, 12)
	case spec.VarHex:
		for n := g.v.Len; n > 0; n -= 16 {
			b = appendHex(b, r.Uint64(), min(n, 16))
		}
		return b
	}
	return append(b, g.v.Value...)
}

// uniform returns a uniform integer in [0, n) with Lemire's method, without
// allocating a rand.Rand per request.
func uniform(r *rand.PCG, n uint64) uint64 {
	hi, lo := bits.Mul64(r.Uint64(), n)
	if lo < n {
		for thresh := -n % n; lo < thresh; {
			hi, lo = bits.Mul64(r.Uint64(), n)
		}
	}
	return hi
}

func appendHex(b []byte, v uint64, digits int) []byte {
	const hex = "0123456789abcdef"
	for i := digits - 1; i >= 0; i-- {
		b = append(b, hex[v>>(4*uint(i))&0xf])
	}
	return b
}

// compileTemplates compiles a CUJ's request templates, or derives them from
// its routes when it has none.
func compileTemplates(c *spec.CUJ) ([]*Template, error) {
	var raw []*spec.RequestTemplate
	derived := c.Load == nil || len(c.Load.Requests) == 0
	if derived {
		raw = deriveTemplates(c)
	} else {
		raw = c.Load.Requests
	}
	var errs spec.Errors
	var out []*Template
	for i, rt := range raw {
		t, err := compileTemplate(rt)
		if err != nil {
			path := fmt.Sprintf("cujs[%s].load.requests[%d]", c.Name, i)
			if derived {
				path = fmt.Sprintf("cujs[%s].routes[%d]", c.Name, i)
			}
			errs = append(errs, &spec.Error{Pos: rt.Pos, Path: path, Msg: err.Error()})
			continue
		}
		t.Derived = derived
		out = append(out, t)
	}
	if len(errs) > 0 {
		return nil, errs
	}
	return out, nil
}

func compileTemplate(rt *spec.RequestTemplate) (*Template, error) {
	t := &Template{Method: rt.Method, Path: rt.Path, Weight: rt.Weight}
	if t.Method == "" {
		t.Method = http.MethodGet
	}
	if t.Weight <= 0 {
		t.Weight = 1
	}
	slots := map[string]int{"user": slotUser, "seq": slotSeq}
	names := make([]string, 0, len(rt.Vars))
	for name := range rt.Vars {
		names = append(names, name)
	}
	sort.Strings(names) // a fixed order, so a seed draws the same values every run
	for _, name := range names {
		if name == "user" || name == "seq" {
			return nil, fmt.Errorf("vars.%s: %q is a built-in placeholder; pick another name", name, name)
		}
		slots[name] = firstVar + len(t.vars)
		t.vars = append(t.vars, varGen{name: name, v: rt.Vars[name]})
	}
	var unknown []string
	host, p := splitHost(rt.Path)
	t.Host = host
	var u []string
	t.path, u = compileText(p, slots)
	unknown = append(unknown, u...)
	hnames := make([]string, 0, len(rt.Headers))
	for name := range rt.Headers {
		hnames = append(hnames, name)
	}
	sort.Strings(hnames)
	for _, name := range hnames {
		v, u := compileText(rt.Headers[name], slots)
		unknown = append(unknown, u...)
		t.headers = append(t.headers, headerText{name: http.CanonicalHeaderKey(name), value: v})
	}
	body := rt.Body
	if rt.BodyFile != "" {
		path := rt.BodyFile
		if !filepath.IsAbs(path) && rt.Pos.File != "" {
			path = filepath.Join(filepath.Dir(rt.Pos.File), path)
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("bodyFile: %w", err)
		}
		body = string(b)
	}
	t.body, u = compileText(body, slots)
	unknown = append(unknown, u...)
	if len(unknown) > 0 {
		known := []string{"user", "seq"}
		known = append(known, names...)
		return nil, fmt.Errorf("unknown placeholder {%s}: define it under vars (known: %s)", unknown[0], strings.Join(known, ", "))
	}
	return t, nil
}

// splitHost separates a host written before the path ("example.com/x").
func splitHost(p string) (string, string) {
	if strings.HasPrefix(p, "/") {
		return "", p
	}
	if i := strings.IndexByte(p, '/'); i > 0 {
		return p[:i], p[i:]
	}
	return "", p
}

// deriveTemplates makes plausible requests from a CUJ's route patterns:
// "GET /messages/{id}" becomes GET /messages/<1..1000>, {rest...} a random
// path tail, a pattern without a method a GET, and POST, PUT and PATCH get a
// small JSON body.
func deriveTemplates(c *spec.CUJ) []*spec.RequestTemplate {
	var out []*spec.RequestTemplate
	for _, r := range c.Routes {
		method, rest, ok := strings.Cut(r.Pattern, " ")
		if !ok || strings.HasPrefix(method, "/") {
			method, rest = http.MethodGet, r.Pattern
		}
		rest = strings.TrimSpace(rest)
		rt := &spec.RequestTemplate{Method: method, Weight: 1, Pos: r.Pos, Vars: map[string]spec.Var{}}
		rest = strings.ReplaceAll(rest, "{$}", "")
		rest = placeholderRe.ReplaceAllStringFunc(rest, func(m string) string {
			sub := placeholderRe.FindStringSubmatch(m)
			if sub[2] != "" {
				rt.Vars[sub[1]] = spec.Var{Kind: spec.VarHex, Len: 8}
			} else {
				rt.Vars[sub[1]] = spec.Var{Kind: spec.VarRange, Lo: 1, Hi: 1000}
			}
			return "{" + sub[1] + "}"
		})
		if strings.HasSuffix(rest, "/") && len(rest) > 1 {
			// A subtree pattern: any path below it.
			rt.Vars["tail"] = spec.Var{Kind: spec.VarHex, Len: 8}
			rest += "{tail}"
		}
		rt.Path = rest
		switch method {
		case http.MethodPost, http.MethodPut, http.MethodPatch:
			rt.Headers = map[string]string{"Content-Type": "application/json"}
			rt.Body = `{"user": "{user}", "seq": {seq}}`
		}
		out = append(out, rt)
	}
	return out
}

// values holds one request's placeholder values, drawn once.
type values struct {
	buf   []byte
	start []int // by slot
	end   []int
}

func (v *values) fill(t *Template, user []byte, seq uint64, r *rand.PCG) {
	n := firstVar + len(t.vars)
	v.buf = v.buf[:0]
	v.start, v.end = grow(v.start, n), grow(v.end, n)
	v.start[slotUser] = len(v.buf)
	v.buf = append(v.buf, user...)
	v.end[slotUser] = len(v.buf)
	v.start[slotSeq] = len(v.buf)
	v.buf = strconv.AppendUint(v.buf, seq, 10)
	v.end[slotSeq] = len(v.buf)
	for i, g := range t.vars {
		v.start[firstVar+i] = len(v.buf)
		v.buf = g.appendValue(v.buf, r)
		v.end[firstVar+i] = len(v.buf)
	}
}

func grow(s []int, n int) []int {
	if cap(s) < n {
		return make([]int, n)
	}
	return s[:n]
}

// appendText writes t with the placeholders filled.
func (v *values) appendText(b []byte, t *text) []byte {
	if t.static {
		return append(b, t.lit...)
	}
	for _, sg := range t.segs {
		if sg.slot < 0 {
			b = append(b, sg.lit...)
		} else {
			b = append(b, v.buf[v.start[sg.slot]:v.end[sg.slot]]...)
		}
	}
	return b
}
