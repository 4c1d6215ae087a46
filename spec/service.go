package spec

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"
)

// APIVersion is the only apiVersion this version of slolab reads.
const APIVersion = "slolab.dev/v1"

// OtherCUJ is the pseudo-CUJ that counts requests matching no route.
const OtherCUJ = "_other"

// Service is a service and its Critical User Journeys.
type Service struct {
	Name     string
	Labels   map[string]string
	Pos      Pos // the document
	CUJs     []*CUJ
	Alerting *Alerting     // defaults for every CUJ; nil means the SRE Workbook table
	Policy   []*PolicyRule // error-budget policy applying to every CUJ
}

// CUJ is a Critical User Journey: the routes that make it up and its SLOs.
type CUJ struct {
	Name         string
	Owner        string
	Description  string
	Pos          Pos
	Routes       []Route
	Availability *AvailabilitySLO
	Latency      *LatencySLO
	Alerting     *Alerting     // overrides Service.Alerting
	Queries      *Queries      // user-supplied PromQL instead of slolab's own metrics
	Load         *LoadProfile  // how `slolab load` exercises this CUJ
	Policy       []*PolicyRule // extra error-budget policy for this CUJ
	// UpstreamTimeout, when set, bounds how long the proxy waits for the
	// app's response head to this CUJ's requests (the proxy's
	// --upstream-timeout otherwise).
	UpstreamTimeout time.Duration
}

// Route is a net/http pattern ("POST /update", "GET /messages/{id}").
type Route struct {
	Pattern string
	Pos     Pos

	path string // field path, for messages about conflicts between CUJs
}

// AvailabilitySLO is the share of requests that must not fail (5xx or no response).
type AvailabilitySLO struct {
	Objective Ratio
	Window    Window
	Pos       Pos
}

// LatencySLO is the share of requests that must complete within Threshold.
type LatencySLO struct {
	Threshold time.Duration
	Objective Ratio
	Window    Window
	Pos       Pos
}

// Window is an SLO's compliance period: rolling (the last 30d) or a calendar month.
type Window struct {
	Rolling  time.Duration // set for rolling windows
	Calendar string        // "month" for calendar windows
}

// DefaultWindow is the window of an SLO that names none.
var DefaultWindow = Window{Rolling: 30 * Day}

func (w Window) String() string {
	if w.Calendar != "" {
		return w.Calendar
	}
	return FormatDuration(w.Rolling)
}

// Alerting tunes the multiwindow multi-burn-rate alerts of a CUJ.
type Alerting struct {
	// MinBadEvents: no alert fires on fewer bad events than this in the long
	// window (a low-traffic guard). Zero means the engine's default.
	MinBadEvents int64
	// BurnRates replaces the SRE Workbook table when not empty.
	BurnRates []BurnRateAlert
	// AlertIdentity names the alerts and adds labels and annotations to
	// them: every generator that writes alerts and the engine's
	// notifications use it, so Alertmanager routes match both. Page and
	// Ticket refine it per severity (as Sloth's page_alert and
	// ticket_alert do).
	AlertIdentity
	Page, Ticket *SeverityAlerting
}

// SeverityAlerting refines the alert identity for one severity, or
// switches that severity's alerts off (Sloth's page_alert.disable).
type SeverityAlerting struct {
	AlertIdentity
	Disable bool
}

// AlertIdentity is what Alertmanager routes on: an alert's name, labels
// and annotations. A CUJ's identity refines its service's; a severity's
// refines both.
type AlertIdentity struct {
	Name        string // the alertname; default DefaultAlertName
	Labels      map[string]string
	Annotations map[string]string
}

// DefaultAlertName is the alertname of burn-rate alerts when the spec names none.
const DefaultAlertName = "SLOBurnRateHigh"

// AlertLabels are the labels slolab sets on every burn-rate alert to tell
// them apart; a spec may not set them. (severity is set too, but a spec may
// give it another value for its routes.)
var AlertLabels = []string{"alertname", "service", "cuj", "slo", "long_window", "short_window", "burn_rate"}

// Severity returns the block of one severity, nil when none is given.
func (a *Alerting) Severity(severity string) *SeverityAlerting {
	switch {
	case a == nil:
		return nil
	case severity == "page":
		return a.Page
	case severity == "ticket":
		return a.Ticket
	}
	return nil
}

// BurnRateAlert fires when both the long and the short window burn at least Factor.
type BurnRateAlert struct {
	Severity string // "page" or "ticket"
	Long     time.Duration
	Short    time.Duration
	Factor   Ratio
	Pos      Pos
}

// Queries are PromQL expressions for teams whose SLIs come from Istio or their
// apps rather than from slolab's proxy. Each may use {{.window}} for the range.
type Queries struct {
	Availability *QueryPair
	Latency      *QueryPair
}

// QueryPair counts events: exactly one of Good and Bad, and Total.
type QueryPair struct {
	Good, Bad, Total string
	Pos              Pos
}

// PolicyRule is one line of an error-budget policy: when the condition holds,
// the action is what the team agreed to do.
type PolicyRule struct {
	When   BudgetCondition
	Action string
	Pos    Pos
}

// BudgetCondition compares a budget measure ("remaining" or "consumed") with a percentage.
type BudgetCondition struct {
	Measure   string // "remaining" or "consumed"
	Op        string // "<", "<=", ">", ">="
	Threshold Ratio
}

func (c BudgetCondition) String() string {
	return fmt.Sprintf("%s %s %s", c.Measure, c.Op, c.Threshold)
}

// Holds reports whether the condition holds for a measure given as a ratio.
func (c BudgetCondition) Holds(value float64) bool {
	t := c.Threshold.Float()
	switch c.Op {
	case "<":
		return value < t
	case "<=":
		return value <= t
	case ">":
		return value > t
	case ">=":
		return value >= t
	}
	return false
}

// CUJ returns the CUJ with the given name, or nil.
func (s *Service) CUJ(name string) *CUJ {
	for _, c := range s.CUJs {
		if c.Name == name {
			return c
		}
	}
	return nil
}

// UpstreamTimeouts returns the CUJs' own upstream timeouts, by CUJ name.
func (s *Service) UpstreamTimeouts() map[string]time.Duration {
	out := map[string]time.Duration{}
	for _, c := range s.CUJs {
		if c.UpstreamTimeout > 0 {
			out[c.Name] = c.UpstreamTimeout
		}
	}
	return out
}

// CUJNames lists the CUJs in spec order.
func (s *Service) CUJNames() []string {
	names := make([]string, len(s.CUJs))
	for i, c := range s.CUJs {
		names[i] = c.Name
	}
	return names
}

// Summary counts what a Service declares, for `slolab validate`.
type Summary struct {
	Service string `json:"service"`
	CUJs    int    `json:"cujs"`
	Routes  int    `json:"routes"`
	SLOs    int    `json:"slos"`
}

// Summary counts CUJs, routes and SLOs.
func (s *Service) Summary() Summary {
	sum := Summary{Service: s.Name, CUJs: len(s.CUJs)}
	for _, c := range s.CUJs {
		sum.Routes += len(c.Routes)
		if c.Availability != nil {
			sum.SLOs++
		}
		if c.Latency != nil {
			sum.SLOs++
		}
	}
	return sum
}

func (d *decoder) service(spec *Node, path string, svc *Service) {
	cujPaths := map[string]string{}
	d.object(spec, path, fields{
		"cujs": func(v *Node, p string) {
			if !d.withinLimits(v, p) {
				return
			}
			d.list(v, p, func(i int, item *Node, p string) {
				c := d.cuj(item, p)
				if c == nil {
					return
				}
				if prev, dup := cujPaths[c.Name]; dup && c.Name != "" {
					d.errorf(item.Get("name"), join(p, "name"), "duplicate CUJ name %q (also %s)", c.Name, prev)
				}
				cujPaths[c.Name] = p
				svc.CUJs = append(svc.CUJs, c)
			})
			if v.Kind == ListNode && len(v.Items) == 0 {
				d.errorf(v, p, "a service needs at least one CUJ")
			}
		},
		"alerting": func(v *Node, p string) { svc.Alerting = d.alerting(v, p) },
		"policy":   func(v *Node, p string) { svc.Policy = d.policy(v, p) },
	}, "cujs")
	d.routeConflicts(svc)
}

// withinLimits checks a service's CUJ list against MaxCUJs and MaxRoutes
// before anything in it is decoded, and reports the first item beyond.
func (d *decoder) withinLimits(cujs *Node, path string) bool {
	if cujs == nil || cujs.Kind != ListNode {
		return true
	}
	if len(cujs.Items) > MaxCUJs {
		d.errorf(cujs.Items[MaxCUJs], index(path, MaxCUJs), "a service may have at most %d CUJs, this one has %d: each CUJ is series in every proxy and in Prometheus; split the service", MaxCUJs, len(cujs.Items))
		return false
	}
	n := 0
	for i, c := range cujs.Items {
		routes := c.Get("routes")
		if routes == nil || routes.Kind != ListNode {
			continue
		}
		if n+len(routes.Items) > MaxRoutes {
			d.errorf(routes.Items[MaxRoutes-n], index(join(index(path, i), "routes"), MaxRoutes-n), "a service may have at most %d routes, all CUJs together: use patterns ({id}, {rest...}) rather than one route per path", MaxRoutes)
			return false
		}
		n += len(routes.Items)
	}
	return true
}

func (d *decoder) cuj(n *Node, path string) *CUJ {
	c := &CUJ{Pos: n.Pos}
	routes := map[string]string{}
	ok := d.object(n, path, fields{
		"name": func(v *Node, p string) {
			c.Name = d.name(v, p)
			if strings.HasPrefix(c.Name, "_") {
				d.errorf(v, p, "names starting with '_' are reserved (%s counts unmatched requests)", OtherCUJ)
			}
		},
		"owner":       func(v *Node, p string) { c.Owner = d.str(v, p) },
		"description": func(v *Node, p string) { c.Description = d.str(v, p) },
		"routes": func(v *Node, p string) {
			d.list(v, p, func(i int, item *Node, p string) {
				pat := d.str(item, p)
				if pat == "" {
					return
				}
				if prev, dup := routes[pat]; dup {
					d.errorf(item, p, "route %q is listed twice (also %s)", pat, prev)
					return
				}
				routes[pat] = p
				if err := checkPattern(pat); err != nil {
					d.errorf(item, p, "%v", err)
					return
				}
				c.Routes = append(c.Routes, Route{Pattern: pat, Pos: item.Pos, path: p})
			})
			if v.Kind == ListNode && len(v.Items) == 0 {
				d.errorf(v, p, "a CUJ needs at least one route")
			}
		},
		"availability": func(v *Node, p string) { c.Availability = d.availability(v, p) },
		"latency":      func(v *Node, p string) { c.Latency = d.latency(v, p) },
		"alerting":     func(v *Node, p string) { c.Alerting = d.alerting(v, p) },
		"queries":      func(v *Node, p string) { c.Queries = d.queries(v, p) },
		"load":         func(v *Node, p string) { c.Load = d.loadProfile(v, p) },
		"policy":       func(v *Node, p string) { c.Policy = d.policy(v, p) },
		"upstreamTimeout": func(v *Node, p string) {
			c.UpstreamTimeout = d.durationIn(v, p, time.Millisecond, 24*time.Hour)
		},
	}, "name", "owner", "routes")
	if !ok {
		return nil
	}
	if n.Get("availability") == nil && n.Get("latency") == nil {
		d.errorf(n, path, "CUJ %q needs an availability or a latency SLO (or both)", c.Name)
	}
	return c
}

func (d *decoder) availability(n *Node, path string) *AvailabilitySLO {
	s := &AvailabilitySLO{Window: DefaultWindow, Pos: n.Pos}
	d.object(n, path, fields{
		"objective": func(v *Node, p string) { s.Objective = d.objective(v, p) },
		"window":    func(v *Node, p string) { s.Window = d.window(v, p) },
	}, "objective")
	return s
}

func (d *decoder) latency(n *Node, path string) *LatencySLO {
	s := &LatencySLO{Window: DefaultWindow, Pos: n.Pos}
	d.object(n, path, fields{
		"threshold": func(v *Node, p string) { s.Threshold = d.duration(v, p) },
		"objective": func(v *Node, p string) { s.Objective = d.objective(v, p) },
		"window":    func(v *Node, p string) { s.Window = d.window(v, p) },
	}, "threshold", "objective")
	return s
}

// maxWindow is the longest rolling window the store keeps history for.
const maxWindow = 400 * Day

func (d *decoder) window(n *Node, path string) Window {
	s, ok := d.scalar(n, path, "a window such as 30d or month")
	if !ok {
		return DefaultWindow
	}
	if s == "month" {
		return Window{Calendar: "month"}
	}
	w, err := ParseDuration(s)
	switch {
	case err != nil:
		d.errorf(n, path, "want a rolling window such as 28d or 30d, or \"month\" for calendar months: %v", err)
		return DefaultWindow
	case w < time.Hour || w > maxWindow:
		d.errorf(n, path, "must be between 1h and %s, got %s", FormatDuration(maxWindow), s)
		return DefaultWindow
	}
	return Window{Rolling: w}
}

func (d *decoder) alerting(n *Node, path string) *Alerting {
	a := &Alerting{}
	identity := func(id *AlertIdentity) fields {
		return fields{
			"name": func(v *Node, p string) {
				// An alertname is a label value: Prometheus takes any text
				// (Sloth's VictoriaMetrics example uses '-').
				if id.Name = d.str(v, p); strings.TrimSpace(id.Name) == "" {
					d.errorf(v, p, "want the alerts' name, such as SLOBurnRateHigh, got %q", id.Name)
				}
			},
			"labels": func(v *Node, p string) {
				id.Labels = d.stringMap(v, p)
				if id.Labels == nil {
					return
				}
				for _, k := range v.Keys {
					switch {
					case slices.Contains(AlertLabels, k.Value):
						d.errorf(k, join(p, k.Value), "slolab sets %s on every alert to tell them apart; choose another label", k.Value)
					case !labelName.MatchString(k.Value):
						d.errorf(k, join(p, k.Value), "want a Prometheus label name (letters, digits and '_', not starting with a digit), got %q", k.Value)
					case strings.HasPrefix(k.Value, "__"):
						d.errorf(k, join(p, k.Value), "label names starting with __ are reserved for Prometheus")
					}
				}
			},
			"annotations": func(v *Node, p string) { id.Annotations = d.stringMap(v, p) },
		}
	}
	severity := func(v *Node, p string) *SeverityAlerting {
		sa := &SeverityAlerting{}
		f := identity(&sa.AlertIdentity)
		f["disable"] = func(v *Node, p string) { sa.Disable = d.boolean(v, p) }
		d.object(v, p, f)
		return sa
	}
	f := identity(&a.AlertIdentity)
	f["page"] = func(v *Node, p string) { a.Page = severity(v, p) }
	f["ticket"] = func(v *Node, p string) { a.Ticket = severity(v, p) }
	f["minBadEvents"] = func(v *Node, p string) { a.MinBadEvents = d.integer(v, p, 0, 1<<40) }
	f["burnRates"] = func(v *Node, p string) {
		d.list(v, p, func(_ int, item *Node, p string) {
			b := BurnRateAlert{Pos: item.Pos}
			d.object(item, p, fields{
				"severity": func(v *Node, p string) {
					b.Severity = d.str(v, p)
					if b.Severity != "page" && b.Severity != "ticket" {
						d.errorf(v, p, "want page or ticket, got %q", b.Severity)
					}
				},
				"long":     func(v *Node, p string) { b.Long = d.duration(v, p) },
				"short":    func(v *Node, p string) { b.Short = d.duration(v, p) },
				"burnRate": func(v *Node, p string) { b.Factor = d.burnRate(v, p) },
			}, "severity", "long", "short", "burnRate")
			if b.Long > 0 && b.Short >= b.Long {
				d.errorf(item.Get("short"), join(p, "short"), "the short window (%s) must be shorter than the long one (%s)", FormatDuration(b.Short), FormatDuration(b.Long))
			}
			a.BurnRates = append(a.BurnRates, b)
		})
	}
	d.object(n, path, f)
	return a
}

var labelName = regexp.MustCompile(`^[a-zA-Z_][a-zA-Z0-9_]*$`)

func (d *decoder) queries(n *Node, path string) *Queries {
	q := &Queries{}
	pair := func(v *Node, p string) *QueryPair {
		qp := &QueryPair{Pos: v.Pos}
		d.object(v, p, fields{
			"good":  func(v *Node, p string) { qp.Good = d.str(v, p) },
			"bad":   func(v *Node, p string) { qp.Bad = d.str(v, p) },
			"total": func(v *Node, p string) { qp.Total = d.str(v, p) },
		}, "total")
		if (qp.Good == "") == (qp.Bad == "") && v.Kind == MapNode {
			d.errorf(v, p, "give exactly one of good and bad")
		}
		return qp
	}
	d.object(n, path, fields{
		"availability": func(v *Node, p string) { q.Availability = pair(v, p) },
		"latency":      func(v *Node, p string) { q.Latency = pair(v, p) },
	})
	return q
}

func (d *decoder) policy(n *Node, path string) []*PolicyRule {
	var out []*PolicyRule
	d.list(n, path, func(_ int, item *Node, p string) {
		r := &PolicyRule{Pos: item.Pos}
		d.object(item, p, fields{
			"when": func(v *Node, p string) {
				s, ok := d.scalar(v, p, "a condition such as \"remaining < 25%\"")
				if !ok {
					return
				}
				c, err := ParseBudgetCondition(s)
				if err != nil {
					d.errorf(v, p, "%v", err)
				}
				r.When = c
			},
			"action": func(v *Node, p string) { r.Action = d.str(v, p) },
		}, "when", "action")
		out = append(out, r)
	})
	return out
}

// ParseBudgetCondition reads "remaining < 25%" or "consumed >= 100%".
func ParseBudgetCondition(s string) (BudgetCondition, error) {
	bad := fmt.Errorf("want a condition such as \"remaining < 25%%\" or \"consumed >= 100%%\", got %q", s)
	f := strings.Fields(s)
	if len(f) != 3 {
		return BudgetCondition{}, bad
	}
	c := BudgetCondition{Measure: f[0], Op: f[1]}
	if c.Measure != "remaining" && c.Measure != "consumed" {
		return BudgetCondition{}, bad
	}
	switch c.Op {
	case "<", "<=", ">", ">=":
	default:
		return BudgetCondition{}, bad
	}
	if !strings.HasSuffix(f[2], "%") {
		return BudgetCondition{}, bad
	}
	t, err := ParseRatio(f[2])
	if err != nil {
		return BudgetCondition{}, bad
	}
	c.Threshold = t
	return c, nil
}
