package httpapi

import (
	"crypto/subtle"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"mime"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"slolab.dev/slolab"
)

// MinTokenLength is the shortest token a Guard accepts: 16 characters of a
// random token are beyond guessing at the rate failed attempts are allowed.
const MinTokenLength = 16

// Failed token attempts per client address: FailureBurst in a row, then one
// per FailureEvery. Beyond that the address's token attempts are refused
// (429) without being checked, until its allowance is back.
const (
	FailureBurst = 10
	FailureEvery = time.Second
)

// maxSources bounds the addresses whose failed attempts are remembered;
// beyond it, new addresses share one allowance.
const maxSources = 10_000

// Config configures a Guard.
type Config struct {
	// Name names the API in messages: "the admin API", "the dashboard".
	Name string
	// Listen is the address the API listens on, as given to net.Listen or
	// as bound ("127.0.0.1:9090", ":9090", "localhost:8070"). A request's
	// Host must name it: its IP (any IP when it listens on every address),
	// localhost when it listens on loopback or on every address, or the
	// host name it was given. A Host that is the IP the request arrived at
	// always passes, so an empty Listen accepts that and localhost on
	// loopback only. The port is not compared: port forwarding changes it.
	Listen string
	// AllowHosts are further names a request's Host may carry: the DNS
	// names the API is reached by ("slolab-admin.monitoring.svc"). "*"
	// allows any Host, for an API behind a proxy that checks it.
	AllowHosts []string
	// AllowHostFlag is the flag that sets AllowHosts, for messages.
	AllowHostFlag string
	// Token, when set, is required as "Authorization: Bearer TOKEN" on every
	// request but those to Open paths. It must be at least MinTokenLength
	// characters.
	Token string
	// TokenHint says how to send the token, for messages: "send
	// Authorization: Bearer $SLOLAB_ADMIN_TOKEN".
	TokenHint string
	// Open lists the paths served without the token: exact paths, prefixes
	// ending in "/", and "/{$}" for the root alone (as in net/http patterns).
	Open []string
	// MaxBody bounds request bodies (default MaxBody).
	MaxBody int64
	Now     func() time.Time
	Logger  *slog.Logger
}

func (c *Config) defaults() {
	if c.Name == "" {
		c.Name = "the API"
	}
	if c.AllowHostFlag == "" {
		c.AllowHostFlag = "--allow-host"
	}
	if c.TokenHint == "" {
		c.TokenHint = "send Authorization: Bearer TOKEN"
	}
	if c.MaxBody == 0 {
		c.MaxBody = MaxBody
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
}

// CheckToken refuses a token shorter than MinTokenLength; an empty token
// (none) passes.
func CheckToken(token string) error {
	if token != "" && len(token) < MinTokenLength {
		return slolab.Errorf(slolab.Invalid, "the token has %d characters: use at least %d, random (openssl rand -hex 16 prints 32)", len(token), MinTokenLength)
	}
	return nil
}

// Guard decides which requests reach an API's handlers. In order:
//
//   - the Host header must name the address the API listens on, or a name
//     the user allowed (a web page that rebinds its own DNS name to
//     127.0.0.1 sends its own name);
//   - a change (any method but GET, HEAD and OPTIONS) must not come from
//     another web origin (net/http's CrossOriginProtection: Sec-Fetch-Site,
//     else Origin against Host);
//   - with a token, every request but those to Open paths carries it;
//     wrong tokens are logged with the client's address, and an address
//     that keeps sending them is refused for a while (429) without its
//     attempts being checked, while other addresses are served as usual;
//   - a change's body is JSON or YAML by its Content-Type: form and text
//     bodies, which any web page may send without asking, are refused;
//   - bodies are bounded by MaxBody.
type Guard struct {
	cfg    Config
	hosts  hostRule
	origin *http.CrossOriginProtection
	fails  failures
	notes  notes
}

// NewGuard checks cfg and returns its Guard.
func NewGuard(cfg Config) (*Guard, error) {
	cfg.defaults()
	if err := CheckToken(cfg.Token); err != nil {
		return nil, err
	}
	hosts, err := newHostRule(cfg.Listen, cfg.AllowHosts)
	if err != nil {
		return nil, err
	}
	return &Guard{
		cfg: cfg, hosts: hosts, origin: http.NewCrossOriginProtection(),
		fails: failures{tat: map[string]time.Time{}},
		notes: notes{last: map[string]time.Time{}, quiet: map[string]int{}},
	}, nil
}

// limited is a refusal of an address's token attempts.
type limited struct {
	msg   string
	retry time.Duration
}

func (l *limited) Error() string { return l.msg }

// Wrap returns next behind the guard.
func (g *Guard) Wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := g.check(r); err != nil {
			if l, ok := errors.AsType[*limited](err); ok {
				w.Header().Set("Retry-After", strconv.Itoa(int(l.retry/time.Second)))
				WriteJSON(w, http.StatusTooManyRequests, ErrorBody{Error: l.msg})
				return
			}
			if slolab.KindOf(err) == slolab.Unauthorized {
				w.Header().Set("WWW-Authenticate", `Bearer realm="slolab"`)
			}
			WriteError(w, err)
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, g.cfg.MaxBody)
		next.ServeHTTP(w, r)
	})
}

func (g *Guard) check(r *http.Request) error {
	if !g.hosts.allows(r) {
		g.note("refused a Host", "host", r.Host, "remote", r.RemoteAddr)
		return slolab.Errorf(slolab.Forbidden, "%s does not answer to Host %q: reach it by the address it listens on (%s), or allow that name with %s %s",
			g.cfg.Name, r.Host, g.hosts.describe(), g.cfg.AllowHostFlag, hostName(r.Host))
	}
	if err := g.origin.Check(r); err != nil {
		g.note("refused a cross-origin change", "origin", r.Header.Get("Origin"), "remote", r.RemoteAddr)
		return slolab.Errorf(slolab.Forbidden, "%s refuses changes from another web origin (%s %s from %s)", g.cfg.Name, r.Method, r.URL.Path, orUnknown(r.Header.Get("Origin")))
	}
	if err := g.authorize(r); err != nil {
		return err
	}
	if !safeMethod(r.Method) {
		return g.checkContentType(r)
	}
	return nil
}

func orUnknown(origin string) string {
	if origin == "" {
		return "a cross-site page"
	}
	return origin
}

func safeMethod(m string) bool {
	return m == http.MethodGet || m == http.MethodHead || m == http.MethodOptions
}

func (g *Guard) open(path string) bool {
	for _, p := range g.cfg.Open {
		exact, root := strings.CutSuffix(p, "{$}")
		if path == p || root && path == exact || !root && strings.HasSuffix(p, "/") && strings.HasPrefix(path, p) {
			return true
		}
	}
	return false
}

func (g *Guard) authorize(r *http.Request) error {
	if g.cfg.Token == "" || g.open(r.URL.Path) {
		return nil
	}
	auth := r.Header.Get("Authorization")
	if auth == "" {
		return slolab.Errorf(slolab.Unauthorized, "%s needs its token and none was sent: %s", g.cfg.Name, g.cfg.TokenHint)
	}
	src := sourceOf(r.RemoteAddr)
	now := g.cfg.Now()
	if wait := g.fails.wait(src, now); wait > 0 {
		g.note("refusing token attempts", "remote", src, "retryAfter", wait.Round(time.Millisecond).String())
		secs := (wait + time.Second - 1) / time.Second
		return &limited{
			msg:   fmt.Sprintf("%s refuses token attempts from %s for %ds: too many wrong tokens were sent from there", g.cfg.Name, src, secs),
			retry: secs * time.Second,
		}
	}
	got, ok := strings.CutPrefix(auth, "Bearer ")
	if ok && subtle.ConstantTimeCompare([]byte(got), []byte(g.cfg.Token)) == 1 {
		return nil
	}
	g.fails.fail(src, now)
	g.cfg.Logger.Warn(g.cfg.Name+": a wrong token was sent", "remote", r.RemoteAddr, "method", r.Method, "path", r.URL.Path)
	if !ok {
		return slolab.Errorf(slolab.Unauthorized, "%s takes its token as \"Authorization: Bearer TOKEN\", got another Authorization scheme", g.cfg.Name)
	}
	return slolab.Errorf(slolab.Unauthorized, "the token sent is not %s's token: %s", g.cfg.Name, g.cfg.TokenHint)
}

// bodyTypes are the content types a change's body may have.
var bodyTypes = map[string]bool{"application/json": true, "application/yaml": true, "application/x-yaml": true}

func (g *Guard) checkContentType(r *http.Request) error {
	ct := r.Header.Get("Content-Type")
	if ct == "" {
		if r.ContentLength != 0 {
			return slolab.Errorf(slolab.Invalid, "a change's body needs Content-Type: application/json")
		}
		return nil
	}
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil || !bodyTypes[mt] {
		g.note("refused a body type", "contentType", ct, "remote", r.RemoteAddr)
		return slolab.Errorf(slolab.Invalid, "Content-Type %q: a change's body must be application/json (or application/yaml); %s refuses form and text bodies, which any web page can send", ct, g.cfg.Name)
	}
	return nil
}

// hostRule is what a request's Host may name.
type hostRule struct {
	listen   string          // for messages
	any      bool            // AllowHosts holds "*"
	names    map[string]bool // allowed names, lower case, without a trailing dot
	ip       netip.Addr      // the IP listened on, if one
	everyIP  bool            // listens on every address
	loopback bool            // localhost names this listener
}

func newHostRule(listen string, allow []string) (hostRule, error) {
	h := hostRule{listen: listen, names: map[string]bool{}}
	for _, a := range allow {
		if a == "*" {
			h.any = true
			continue
		}
		if a == "" || strings.ContainsAny(a, "/:@ ") {
			return h, slolab.Errorf(slolab.Invalid, "allowed host %q: want a host name such as slolab-admin.monitoring.svc (no scheme, no port), or *", a)
		}
		h.names[hostName(a)] = true
	}
	if listen == "" {
		return h, nil
	}
	host, _, err := net.SplitHostPort(listen)
	if err != nil {
		return h, slolab.Errorf(slolab.Invalid, "listen address %q: %v", listen, err)
	}
	host = hostName(host)
	if ip, err := netip.ParseAddr(host); err == nil {
		h.ip = ip.Unmap()
		h.everyIP = ip.IsUnspecified()
		h.loopback = ip.IsLoopback() || h.everyIP
		return h, nil
	}
	switch host {
	case "":
		h.everyIP, h.loopback = true, true
	case "localhost":
		h.loopback = true
	default:
		h.names[host] = true
	}
	return h, nil
}

// hostName is the host part of a Host header or an address, lower case,
// without brackets, a zone or a trailing dot.
func hostName(hostport string) string {
	host := hostport
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		host = h
	}
	host = strings.TrimSuffix(strings.ToLower(strings.Trim(host, "[]")), ".")
	if i := strings.IndexByte(host, '%'); i >= 0 && strings.Contains(host, ":") {
		host = host[:i]
	}
	return host
}

func (h *hostRule) allows(r *http.Request) bool {
	host := hostName(r.Host)
	switch {
	case host == "":
		return false
	case h.any || h.names[host]:
		return true
	case host == "localhost":
		return h.loopback || arrivedOnLoopback(r)
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return false
	}
	ip = ip.Unmap()
	if h.everyIP || ip == h.ip {
		return true
	}
	local, ok := r.Context().Value(http.LocalAddrContextKey).(net.Addr)
	if !ok {
		return false
	}
	lip, err := netip.ParseAddr(hostName(local.String()))
	return err == nil && lip.Unmap() == ip
}

func arrivedOnLoopback(r *http.Request) bool {
	local, ok := r.Context().Value(http.LocalAddrContextKey).(net.Addr)
	if !ok {
		return false
	}
	ip, err := netip.ParseAddr(hostName(local.String()))
	return err == nil && ip.IsLoopback()
}

func (h *hostRule) describe() string {
	var parts []string
	if h.listen != "" {
		parts = append(parts, h.listen)
	}
	if h.loopback {
		parts = append(parts, "localhost")
	}
	parts = append(parts, slices.Sorted(maps.Keys(h.names))...)
	if len(parts) == 0 {
		return "the IP address a request arrives at"
	}
	return strings.Join(parts, ", ")
}

// sourceOf is the client address failed attempts are counted against: the
// IP, or the /64 of an IPv6 address (one host usually holds a whole /64).
func sourceOf(remoteAddr string) string {
	host := remoteAddr
	if h, _, err := net.SplitHostPort(remoteAddr); err == nil {
		host = h
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return host
	}
	ip = ip.Unmap()
	if ip.Is6() {
		if p, err := ip.WithZone("").Prefix(64); err == nil {
			return p.String()
		}
	}
	return ip.String()
}

// failures paces failed token attempts per address (the generic cell rate
// algorithm): each failure moves the address's theoretical arrival time one
// FailureEvery on from now or from where it was; an address whose time lies
// more than FailureBurst-1 periods ahead is refused until it does not.
type failures struct {
	mu  sync.Mutex
	tat map[string]time.Time
}

// overflow is the address that sources beyond maxSources share.
const overflow = "*"

func (f *failures) wait(src string, now time.Time) time.Duration {
	f.mu.Lock()
	defer f.mu.Unlock()
	t, ok := f.tat[src]
	if !ok {
		if len(f.tat) < maxSources {
			return 0
		}
		t = f.tat[overflow]
	}
	if ahead := t.Sub(now); ahead > (FailureBurst-1)*FailureEvery {
		return ahead - (FailureBurst-1)*FailureEvery
	}
	return 0
}

func (f *failures) fail(src string, now time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.tat[src]; !ok && len(f.tat) >= maxSources {
		for s, t := range f.tat {
			if !t.After(now) {
				delete(f.tat, s)
			}
		}
		if len(f.tat) >= maxSources {
			src = overflow
		}
	}
	f.tat[src] = later(f.tat[src], now).Add(FailureEvery)
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// notes logs refusals at most once a second per kind, with how many were
// left unlogged since, so that a flood of refused requests does not flood
// the log.
type notes struct {
	mu    sync.Mutex
	last  map[string]time.Time
	quiet map[string]int
}

func (g *Guard) note(what string, attrs ...any) {
	now := g.cfg.Now()
	n := &g.notes
	n.mu.Lock()
	if now.Sub(n.last[what]) < time.Second {
		n.quiet[what]++
		n.mu.Unlock()
		return
	}
	n.last[what] = now
	quiet := n.quiet[what]
	n.quiet[what] = 0
	n.mu.Unlock()
	if quiet > 0 {
		attrs = append(attrs, "alsoRefusedSinceLastLine", quiet)
	}
	g.cfg.Logger.Warn(g.cfg.Name+": "+what, attrs...)
}
