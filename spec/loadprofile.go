package spec

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// LoadProfile says how `slolab load` exercises a CUJ: its share of the total
// rate (or a rate of its own) and the requests to send. Without requests, the
// generator derives them from the CUJ's routes.
type LoadProfile struct {
	Share    Ratio // share of the total rate; zero means "split what is left evenly"
	Rate     Rate  // an absolute rate for this CUJ instead of a share
	Requests []*RequestTemplate
	Pos      Pos
}

// RequestTemplate is one kind of request. Path, header values and the body may
// use {name} placeholders, filled from Vars or the built-ins {user} (the client
// identity) and {seq} (the request's sequence number).
type RequestTemplate struct {
	Method   string
	Path     string
	Vars     map[string]Var
	Headers  map[string]string
	Body     string
	BodyFile string // read relative to the spec file
	Weight   int64  // relative frequency within the CUJ; default 1
	Pos      Pos
}

// VarKind says how a template variable is drawn.
type VarKind uint8

// The variable kinds.
const (
	VarConst VarKind = iota // always Value
	VarRange                // an integer in [Lo, Hi], uniformly
	VarList                 // one of List, uniformly
	VarUUID                 // a random UUID
	VarHex                  // Len random hex digits
)

// Var is a template variable: "1..1000", a list, "uuid", "hex:16" or a constant.
type Var struct {
	Kind   VarKind
	Lo, Hi int64
	List   []string
	Len    int
	Value  string
}

// Rate is an arrival rate: Freq requests every Per ("200/s", "30/m", "5/2s").
type Rate struct {
	Freq uint64
	Per  time.Duration
}

// IsZero reports whether no rate was set.
func (r Rate) IsZero() bool { return r.Freq == 0 }

// PerSecond returns the rate as a float, for display.
func (r Rate) PerSecond() float64 {
	if r.Per == 0 {
		return 0
	}
	return float64(r.Freq) / r.Per.Seconds()
}

func (r Rate) String() string {
	if r.Per == time.Second {
		return fmt.Sprintf("%d/s", r.Freq)
	}
	if r.Per == time.Minute {
		return fmt.Sprintf("%d/m", r.Freq)
	}
	return fmt.Sprintf("%d/%s", r.Freq, FormatDuration(r.Per))
}

// ParseRate reads "200/s", "200" (per second), "30/m", "5/2s" or "0.5/s".
func ParseRate(s string) (Rate, error) {
	bad := fmt.Errorf("want a rate such as 200/s, 30/m or 5/2s, got %q", s)
	if strings.Contains(s, "%") {
		return Rate{}, fmt.Errorf("want a rate such as 200/s, 30/m or 5/2s, got %q: a rate counts requests per unit of time, not a percentage", s)
	}
	num, per, ok := strings.Cut(strings.TrimSpace(s), "/")
	if !ok {
		per = "s"
	}
	if per == "" {
		return Rate{}, bad
	}
	if per[0] < '0' || per[0] > '9' {
		per = "1" + per
	}
	d, err := ParseDuration(per)
	if err != nil || d <= 0 {
		return Rate{}, bad
	}
	f, err := ParseRatio(num)
	if err != nil || f.IsZero() {
		return Rate{}, bad
	}
	// Make the frequency an integer by stretching the period: 0.5/s = 1/2s.
	if f.Den() > 1 {
		if uint64(d)*f.Den()/f.Den() != uint64(d) {
			return Rate{}, bad
		}
		d *= time.Duration(f.Den())
	}
	return Rate{Freq: f.Num(), Per: d}, nil
}

// MarshalText writes the rate in the form ParseRate reads.
func (r Rate) MarshalText() ([]byte, error) { return []byte(r.String()), nil }

// UnmarshalText reads any form ParseRate accepts.
func (r *Rate) UnmarshalText(b []byte) error {
	v, err := ParseRate(string(b))
	if err != nil {
		return err
	}
	*r = v
	return nil
}

var (
	rangeRe       = regexp.MustCompile(`^(-?\d+)\.\.(-?\d+)$`)
	hexRe         = regexp.MustCompile(`^hex:(\d+)$`)
	placeholderRe = regexp.MustCompile(`\{([A-Za-z_][A-Za-z0-9_]*)(\.\.\.)?\}`)
)

// Placeholders lists the {name} placeholders in s, in order, without duplicates.
func Placeholders(s string) []string {
	var out []string
	seen := map[string]bool{}
	for _, m := range placeholderRe.FindAllStringSubmatch(s, -1) {
		if !seen[m[1]] {
			seen[m[1]] = true
			out = append(out, m[1])
		}
	}
	return out
}

func (d *decoder) loadProfile(n *Node, path string) *LoadProfile {
	lp := &LoadProfile{Pos: n.Pos}
	d.object(n, path, fields{
		"share": func(v *Node, p string) {
			lp.Share = d.ratio(v, p)
			if lp.Share.IsZero() && v.Kind == ScalarNode {
				d.errorf(v, p, "must be positive; leave the CUJ out of the load by not giving it a load block with requests")
			}
		},
		"rate": func(v *Node, p string) {
			s, ok := d.scalar(v, p, "a rate such as 20/s")
			if !ok {
				return
			}
			r, err := ParseRate(s)
			if err != nil {
				d.errorf(v, p, "%v", err)
			}
			lp.Rate = r
		},
		"requests": func(v *Node, p string) {
			d.list(v, p, func(_ int, item *Node, p string) {
				if t := d.requestTemplate(item, p); t != nil {
					lp.Requests = append(lp.Requests, t)
				}
			})
		},
	})
	if n.Get("share") != nil && n.Get("rate") != nil {
		d.errorf(n.Get("rate"), join(path, "rate"), "give a share or a rate, not both")
	}
	return lp
}

func (d *decoder) requestTemplate(n *Node, path string) *RequestTemplate {
	t := &RequestTemplate{Method: "GET", Weight: 1, Pos: n.Pos}
	ok := d.object(n, path, fields{
		"method": func(v *Node, p string) {
			t.Method = strings.ToUpper(d.str(v, p))
			if !standardMethods[t.Method] {
				d.errorf(v, p, "unknown method %q", t.Method)
			}
		},
		"path": func(v *Node, p string) {
			t.Path = d.str(v, p)
			if !strings.HasPrefix(t.Path, "/") {
				d.errorf(v, p, "must start with '/', got %q", t.Path)
			}
		},
		"vars": func(v *Node, p string) {
			if v.Kind != MapNode {
				d.errorf(v, p, "want a mapping of variable names, got %s", describe(v))
				return
			}
			t.Vars = map[string]Var{}
			for i, k := range v.Keys {
				t.Vars[k.Value] = d.variable(v.Items[i], join(p, k.Value))
			}
		},
		"headers":  func(v *Node, p string) { t.Headers = d.stringMap(v, p) },
		"body":     func(v *Node, p string) { t.Body = d.str(v, p) },
		"bodyFile": func(v *Node, p string) { t.BodyFile = d.str(v, p) },
		"weight":   func(v *Node, p string) { t.Weight = d.integer(v, p, 1, 1_000_000) },
	}, "path")
	if !ok {
		return nil
	}
	if t.Body != "" && t.BodyFile != "" {
		d.errorf(n.Get("bodyFile"), join(path, "bodyFile"), "give body or bodyFile, not both")
	}
	return t
}

func (d *decoder) variable(n *Node, path string) Var {
	if n.Kind == ListNode {
		v := Var{Kind: VarList}
		v.List = d.stringList(n, path)
		if len(v.List) == 0 {
			d.errorf(n, path, "an empty list has nothing to draw from")
		}
		return v
	}
	s, ok := d.scalar(n, path, `"1..1000", a list, "uuid", "hex:16" or a constant`)
	if !ok {
		return Var{}
	}
	if m := rangeRe.FindStringSubmatch(s); m != nil {
		lo, err1 := strconv.ParseInt(m[1], 10, 64)
		hi, err2 := strconv.ParseInt(m[2], 10, 64)
		if err1 != nil || err2 != nil || lo > hi {
			d.errorf(n, path, "want a range low..high with low ≤ high, got %q", s)
		}
		return Var{Kind: VarRange, Lo: lo, Hi: hi}
	}
	if s == "uuid" {
		return Var{Kind: VarUUID}
	}
	if m := hexRe.FindStringSubmatch(s); m != nil {
		l, _ := strconv.Atoi(m[1])
		if l < 1 || l > 64 {
			d.errorf(n, path, "hex length must be 1 to 64, got %d", l)
		}
		return Var{Kind: VarHex, Len: l}
	}
	return Var{Kind: VarConst, Value: s}
}
