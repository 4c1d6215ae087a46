package errclass

import (
	"bytes"
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestSignature(t *testing.T) {
	for _, tc := range []struct {
		name, body, want string
	}{
		{"ids in a JSON message are masked", `{"error":"user 123 not found","id":"7f0c1e2a-9b3d-4c5e-8f6a-0b1c2d3e4f50"}`, `error=user <n> not found`},
		{"nested error objects give their fields", `{"error":{"code":"NOT_FOUND","message":"order 9f8e7d6c5b not in 'eu-west'"}}`, `error.code=NOT_FOUND error.message=order <hex> not in <q>`},
		{"a JSON document without error fields gives its member names", `{"b":1,"a":[2]}`, `json{a,b}`},
		{"text has its times, uuids and numbers masked", "upstream failed at 2026-12-04T12:00:01Z for 0b1c2d3e-9b3d-4c5e-8f6a-0b1c2d3e4f50 after 3.5s\n", `upstream failed at <time> for <uuid> after <n>s`},
		{"an HTML page is named by its title", `<html><head><title>502 Bad Gateway</title></head><body>nginx</body></html>`, `html: <n> Bad Gateway`},
		{"an empty body has no signature", "  \n", ``},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := Signature([]byte(tc.body)); got != tc.want {
				t.Errorf("Signature(%q) = %q, want %q", tc.body, got, tc.want)
			}
		})
	}
}

func TestBodiesDifferingOnlyInIDsAreOneClass(t *testing.T) {
	c := New(Config{})
	t0 := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
	ev := func(body string, at time.Duration) Event {
		return Event{CUJ: "update", Route: "POST /update", Method: "POST", Path: "/update", Status: 500, Kind: KindStatus, Body: []byte(body), Time: t0.Add(at)}
	}
	c.Observe(ev(`{"error":"user 123 not found"}`, 0))
	c.Observe(ev(`{"error":"user 456 not found"}`, time.Second))
	c.Observe(ev(`{"error":"database is locked"}`, 2*time.Second))
	got := c.Classes()
	if len(got) != 2 {
		t.Fatalf("classes = %d, want 2: %+v", len(got), got)
	}
	byBody := map[string]Class{}
	for _, cl := range got {
		byBody[cl.Signature] = cl
	}
	one, two := byBody["error=user <n> not found"], byBody["error=database is locked"]
	if one.Count != 2 || !one.FirstSeen.Equal(t0) || !one.LastSeen.Equal(t0.Add(time.Second)) || one.Example.Body != `{"error":"user 123 not found"}` {
		t.Errorf("first class = %+v", one)
	}
	if two.Count != 1 || !two.FirstSeen.Equal(t0.Add(2*time.Second)) {
		t.Errorf("second class = %+v", two)
	}
	ch := c.Changes()
	if len(ch) != 2 || len(c.Changes()) != 0 {
		t.Errorf("changes = %d then more, want 2 then none", len(ch))
	}
	c.Observe(ev(`{"error":"user 789 not found"}`, 3*time.Second))
	if ch := c.Changes(); len(ch) != 1 || ch[0].Count != 1 {
		t.Errorf("changes after one more = %+v, want the first class with a count of 1", ch)
	}
}

func TestInjectedClassesAreKeptApart(t *testing.T) {
	c := New(Config{PerCUJ: 2})
	for i := range 10 {
		c.Observe(Event{CUJ: "update", Status: 503, Kind: KindStatus, Body: fmt.Appendf(nil, "injected %c", 'a'+i), Injected: true})
	}
	c.Observe(Event{CUJ: "update", Status: 500, Kind: KindStatus, Body: []byte("own")})
	var own, inj int
	for _, cl := range c.Classes() {
		if cl.Injected {
			inj++
		} else {
			own++
		}
	}
	if own != 1 || inj != 2 {
		t.Errorf("own, injected classes = %d, %d; want 1, 2", own, inj)
	}
	for _, st := range c.Stats() {
		if want := map[bool]uint64{false: 0, true: 8}[st.Injected]; st.Dropped != want {
			t.Errorf("%+v: dropped %d, want %d", st, st.Dropped, want)
		}
	}
}

// 100,000 distinct bodies against one CUJ: the classes held stay at the
// bound, the rest are counted as dropped, and the heap stays small.
func TestDistinctBodiesKeepMemoryBounded(t *testing.T) {
	const n, k = 100_000, DefaultPerCUJ
	c := New(Config{})
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	body := make([]byte, 0, 4<<10)
	pad := bytes.Repeat([]byte("x"), 512)
	for i := range n {
		// Distinct words, not numbers: numbers would be masked into one class.
		body = append(body[:0], `{"error":"failed: `...)
		for j := i; ; j /= 20 {
			body = append(body, byte('g'+j%20))
			if j < 20 {
				break
			}
		}
		body = append(body, `","trace":"`...)
		body = append(body, pad...) // a body of half a KiB
		body = append(body, `"}`...)
		c.Observe(Event{CUJ: "update", Route: "POST /update", Status: 500, Kind: KindStatus, Body: body})
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	if got := len(c.Classes()); got != k {
		t.Errorf("classes held = %d, want %d", got, k)
	}
	var dropped uint64
	for _, st := range c.Stats() {
		dropped += st.Dropped
	}
	if dropped != n-k {
		t.Errorf("dropped = %d, want %d", dropped, n-k)
	}
	grew := int64(after.HeapAlloc) - int64(before.HeapAlloc)
	t.Logf("heap after %d distinct bodies: %d bytes more (%d classes held, %d dropped)", n, grew, k, dropped)
	if limit := int64(k * (2*DefaultSampleSize + 1024)); grew > limit {
		t.Errorf("heap grew %d bytes, want at most %d (K classes with their examples)", grew, limit)
	}
}

func TestMetricsCountClassesPerCUJAndKindOnly(t *testing.T) {
	c := New(Config{PerCUJ: 2})
	for i := range 5 {
		c.Observe(Event{CUJ: "update", Status: 500, Kind: KindStatus, Body: fmt.Appendf(nil, "failure %c", 'a'+i)})
	}
	c.Observe(Event{CUJ: "update", Status: 504, Kind: KindTimeout})
	c.Observe(Event{CUJ: "send", Status: 0, Kind: KindAbort, Injected: true, Fault: "cut"})
	want := `
# HELP slolab_error_classes Error classes the proxy holds (bounded per CUJ), by failure kind; injected ones apart.
# TYPE slolab_error_classes gauge
slolab_error_classes{cuj="send",injected="true",kind="abort"} 1
slolab_error_classes{cuj="update",injected="false",kind="status"} 1
slolab_error_classes{cuj="update",injected="false",kind="timeout"} 1
# HELP slolab_error_classes_dropped_total Error classes dropped, least recently seen first, to keep the bound per CUJ.
# TYPE slolab_error_classes_dropped_total counter
slolab_error_classes_dropped_total{cuj="send",injected="false"} 0
slolab_error_classes_dropped_total{cuj="send",injected="true"} 0
slolab_error_classes_dropped_total{cuj="update",injected="false"} 4
slolab_error_classes_dropped_total{cuj="update",injected="true"} 0
`
	if err := testutil.CollectAndCompare(c, strings.NewReader(want)); err != nil {
		t.Error(err)
	}
}

// BenchmarkObserve is the cost of one error of a class already held, its
// body masked once and then found in the signature cache.
func BenchmarkObserve(b *testing.B) {
	c := New(Config{})
	body := []byte(`{"error":{"code":"NOT_FOUND","message":"user 123 not found"},"request":"7f0c1e2a-9b3d-4c5e-8f6a-0b1c2d3e4f50"}`)
	b.ReportAllocs()
	for b.Loop() {
		c.Observe(Event{CUJ: "update", Route: "POST /update", Method: "POST", Path: "/update", Status: 500, Kind: KindStatus, Body: body})
	}
}
