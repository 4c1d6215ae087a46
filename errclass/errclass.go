// Package errclass sorts the errors a proxy sees into classes — CUJ, route,
// status or failure kind, and a signature of the response body with its ids,
// numbers, times and quoted values masked — so that what fails differently
// today stands out from what always fails. Memory is bounded: at most K
// classes per CUJ (the least recently seen dropped first, and counted), and
// bodies are read from a sample of a few KiB.
package errclass

import (
	"container/list"
	"crypto/sha256"
	"encoding/hex"
	"hash/fnv"
	"strconv"
	"sync"
	"time"
)

// Failure kinds: how a request failed when no response (or the proxy's
// own) says it.
const (
	KindStatus      = "status"      // a response with an error status
	KindAbort       = "abort"       // the connection closed without a response, by a fault rule
	KindReset       = "reset"       // the upstream broke off its response
	KindTimeout     = "timeout"     // the upstream sent no response head in time (504)
	KindUnreachable = "unreachable" // the upstream could not be dialled (502)
	KindFailed      = "failed"      // the upstream connection failed otherwise (502)
	KindTCP         = "tcp"         // a TCP fault on a dependency
)

// Kinds lists the failure kinds, for metrics and documentation.
var Kinds = []string{KindStatus, KindAbort, KindReset, KindTimeout, KindUnreachable, KindFailed, KindTCP}

// Defaults.
const (
	DefaultPerCUJ     = 100
	DefaultSampleSize = 4 << 10
)

// Event is one failed request as the proxy saw it.
type Event struct {
	CUJ    string
	Route  string // the route pattern; "" for none
	Method string
	Path   string // the request path, without its query (which may carry secrets)
	Status int    // the status the client saw; 0 for none
	Kind   string // one of the Kind constants
	Body   []byte // the response body's first bytes (KindStatus), or what befell a TCP connection; read, not kept
	// Injected marks a request a fault rule changed: its classes are kept
	// apart from the app's own, with their own bound.
	Injected bool
	Fault    string // the rules injected, comma-separated
	Time     time.Time
}

// Example is one occurrence of a class, without headers: the request line
// (path, no query) and the body sample.
type Example struct {
	Method string `json:"method"`
	Path   string `json:"path"`
	Status int    `json:"status"`
	Fault  string `json:"fault,omitempty"`
	Body   string `json:"body,omitempty"`
}

// Class is an error class and what was seen of it.
type Class struct {
	ID        string    `json:"id"` // a hash of what identifies the class
	CUJ       string    `json:"cuj"`
	Route     string    `json:"route"`
	Status    int       `json:"status"`
	Kind      string    `json:"kind"`
	Signature string    `json:"signature"`
	Injected  bool      `json:"injected"`
	FirstSeen time.Time `json:"firstSeen"`
	LastSeen  time.Time `json:"lastSeen"`
	Count     uint64    `json:"count"`
	Example   Example   `json:"example"`
}

// ID is the identity of a class: the hash of its CUJ, route, status, kind,
// signature and injected flag. It is the same on every proxy of a fleet.
func ID(cuj, route string, status int, kind, sig string, injected bool) string {
	h := sha256.New()
	for _, s := range []string{cuj, route, strconv.Itoa(status), kind, sig, strconv.FormatBool(injected)} {
		h.Write([]byte(s))
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil)[:8])
}

// Config configures a Classifier.
type Config struct {
	// PerCUJ is the most classes kept per CUJ, for the app's errors and for
	// injected ones each (default DefaultPerCUJ).
	PerCUJ int
	// SampleSize is the most body bytes read per error (default
	// DefaultSampleSize).
	SampleSize int
}

// Classifier sorts events into classes. It is safe for concurrent use;
// only errors take its lock, one per CUJ.
type Classifier struct {
	cfg  Config
	mu   sync.Mutex // guards cujs
	cujs map[string]*cujSet
}

// cujSet holds one CUJ's classes, its own errors and the injected ones apart.
type cujSet struct {
	mu   sync.Mutex
	own  lru
	inj  lru
	sigs map[uint64]string // signatures of recent bodies, by hash: an error that repeats is masked once
}

// maxSigs bounds a CUJ's signature cache; it is emptied when full.
const maxSigs = 256

// lru is a bounded set of classes, the most recently seen at the front.
type lru struct {
	byKey   map[classKey]*list.Element // of *entry
	order   list.List
	dropped uint64
}

// classKey is what tells a CUJ's classes apart (the injected flag picks
// the lru): comparing it costs no hashing of the class's identity.
type classKey struct {
	route  string
	status int
	kind   string
	sig    string
}

type entry struct {
	Class
	key    classKey
	stored uint64 // the count already handed to Changes
}

// New returns a Classifier.
func New(cfg Config) *Classifier {
	if cfg.PerCUJ <= 0 {
		cfg.PerCUJ = DefaultPerCUJ
	}
	if cfg.SampleSize <= 0 {
		cfg.SampleSize = DefaultSampleSize
	}
	return &Classifier{cfg: cfg, cujs: map[string]*cujSet{}}
}

// SampleSize is the most body bytes an Event's Body needs.
func (c *Classifier) SampleSize() int { return c.cfg.SampleSize }

func (c *Classifier) set(cuj string) *cujSet {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.cujs[cuj]
	if s == nil {
		s = &cujSet{own: lru{byKey: map[classKey]*list.Element{}}, inj: lru{byKey: map[classKey]*list.Element{}}, sigs: map[uint64]string{}}
		c.cujs[cuj] = s
	}
	return s
}

// Observe counts an event in its class, making the class when it is new.
func (c *Classifier) Observe(e Event) {
	body := e.Body[:min(len(e.Body), c.cfg.SampleSize)]
	s := c.set(e.CUJ)
	var sig string
	if len(body) > 0 {
		h := fnv.New64a()
		h.Write(body)
		sum := h.Sum64()
		s.mu.Lock()
		cached, ok := s.sigs[sum]
		s.mu.Unlock()
		sig = cached
		if !ok {
			sig = Signature(body)
			s.mu.Lock()
			if len(s.sigs) >= maxSigs {
				clear(s.sigs)
			}
			s.sigs[sum] = sig
			s.mu.Unlock()
		}
	}
	key := classKey{e.Route, e.Status, e.Kind, sig}
	s.mu.Lock()
	defer s.mu.Unlock()
	l := &s.own
	if e.Injected {
		l = &s.inj
	}
	if el, ok := l.byKey[key]; ok {
		en := el.Value.(*entry)
		en.Count++
		if e.Time.After(en.LastSeen) {
			en.LastSeen = e.Time
		}
		l.order.MoveToFront(el)
		return
	}
	en := &entry{key: key, Class: Class{
		ID: ID(e.CUJ, e.Route, e.Status, e.Kind, sig, e.Injected), CUJ: e.CUJ, Route: e.Route, Status: e.Status, Kind: e.Kind, Signature: sig, Injected: e.Injected,
		FirstSeen: e.Time, LastSeen: e.Time, Count: 1,
		Example: Example{Method: e.Method, Path: e.Path, Status: e.Status, Fault: e.Fault, Body: string(body)},
	}}
	l.byKey[key] = l.order.PushFront(en)
	for l.order.Len() > c.cfg.PerCUJ {
		last := l.order.Back()
		l.order.Remove(last)
		delete(l.byKey, last.Value.(*entry).key)
		l.dropped++
	}
}

// Classes returns the classes held, every CUJ's, most recently seen first
// within a CUJ.
func (c *Classifier) Classes() []Class {
	var out []Class
	c.each(func(_ string, s *cujSet) {
		for _, l := range []*lru{&s.own, &s.inj} {
			for el := l.order.Front(); el != nil; el = el.Next() {
				out = append(out, el.Value.(*entry).Class)
			}
		}
	})
	return out
}

// Changes returns the classes seen since the last call, each with Count set
// to the occurrences since then, for a store that adds them up. Classes
// dropped meanwhile lose the occurrences not yet handed over.
func (c *Classifier) Changes() []Class {
	var out []Class
	c.each(func(_ string, s *cujSet) {
		for _, l := range []*lru{&s.own, &s.inj} {
			for el := l.order.Front(); el != nil; el = el.Next() {
				en := el.Value.(*entry)
				if en.Count == en.stored {
					continue
				}
				cl := en.Class
				cl.Count -= en.stored
				en.stored = en.Count
				out = append(out, cl)
			}
		}
	})
	return out
}

// Restore gives back changes a store could not take, to be handed over again.
func (c *Classifier) Restore(changes []Class) {
	for _, ch := range changes {
		s := c.set(ch.CUJ)
		s.mu.Lock()
		l := &s.own
		if ch.Injected {
			l = &s.inj
		}
		for el := l.order.Front(); el != nil; el = el.Next() {
			if en := el.Value.(*entry); en.ID == ch.ID {
				en.stored -= min(en.stored, ch.Count)
				break
			}
		}
		s.mu.Unlock()
	}
}

// Stats is one CUJ's figures.
type Stats struct {
	CUJ      string
	Injected bool
	Kinds    map[string]int // classes held per kind
	Dropped  uint64         // classes dropped to keep the bound
}

// Stats returns the figures of every CUJ, the app's and the injected apart.
func (c *Classifier) Stats() []Stats {
	var out []Stats
	c.each(func(cuj string, s *cujSet) {
		for _, inj := range []bool{false, true} {
			l := &s.own
			if inj {
				l = &s.inj
			}
			st := Stats{CUJ: cuj, Injected: inj, Kinds: map[string]int{}, Dropped: l.dropped}
			for el := l.order.Front(); el != nil; el = el.Next() {
				st.Kinds[el.Value.(*entry).Kind]++
			}
			out = append(out, st)
		}
	})
	return out
}

// each calls f with every CUJ's set, locked, in no particular order.
func (c *Classifier) each(f func(string, *cujSet)) {
	c.mu.Lock()
	sets := make(map[string]*cujSet, len(c.cujs))
	for k, v := range c.cujs {
		sets[k] = v
	}
	c.mu.Unlock()
	for cuj, s := range sets {
		s.mu.Lock()
		f(cuj, s)
		s.mu.Unlock()
	}
}
