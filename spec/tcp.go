package spec

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// TCP fault granularity: what one position of a rule's exact-rate counter is.
const (
	PerConnection = "connection" // a connection is injected or not, as a whole
	PerChunk      = "chunk"      // every chunk read from either side is offered on its own
)

// TCP fault directions.
const (
	Downstream = "downstream" // upstream → client (responses)
	Upstream   = "upstream"   // client → upstream (requests)
	Both       = "both"
)

// TCPAction degrades connections through a TCP listener of the proxy
// (`slolab proxy --tcp NAME=LISTEN,UPSTREAM`). A rule with a TCP action
// selects its listener with match.tcp and has no HTTP action.
type TCPAction struct {
	// Per says what the rule's rate counts: connections (default) or chunks.
	Per string
	// Direction is the flow the rule acts on (default downstream).
	Direction string
	// Latency delays every affected chunk by Latency ± Jitter (uniform,
	// reproducible from the rule's seed).
	Latency time.Duration
	Jitter  time.Duration
	// Bandwidth limits affected data to this many bytes per second.
	Bandwidth int64
	// Reset closes both sides with a TCP reset: at once for a connection, on
	// arrival of a chunk (which is dropped).
	Reset bool
	// Blackhole stops forwarding: data is read and dropped, nothing reaches
	// the other side, and the connection stays open until Timeout (0: until a
	// side closes it), as a dependency that hangs.
	Blackhole bool
	Timeout   time.Duration
	// SlowClose holds the close of one side for this long before passing it on.
	SlowClose time.Duration
}

// String describes the action in one line: "latency 100ms±20ms downstream per chunk".
func (t *TCPAction) String() string {
	var parts []string
	if t.Latency > 0 {
		s := "latency " + FormatDuration(t.Latency)
		if t.Jitter > 0 {
			s += "±" + FormatDuration(t.Jitter)
		}
		parts = append(parts, s)
	}
	if t.Bandwidth > 0 {
		parts = append(parts, "bandwidth "+FormatBandwidth(t.Bandwidth))
	}
	if t.Reset {
		parts = append(parts, "reset")
	}
	if t.Blackhole {
		s := "blackhole"
		if t.Timeout > 0 {
			s += " then close after " + FormatDuration(t.Timeout)
		}
		parts = append(parts, s)
	}
	if t.SlowClose > 0 {
		parts = append(parts, "slow close "+FormatDuration(t.SlowClose))
	}
	return strings.Join(parts, " + ") + " " + t.Direction + " per " + t.Per
}

var bandwidthUnits = []struct {
	name  string
	bytes float64
}{
	{"B", 1}, {"KB", 1e3}, {"KiB", 1 << 10}, {"MB", 1e6}, {"MiB", 1 << 20}, {"GB", 1e9}, {"GiB", 1 << 30},
	{"bit", 1.0 / 8}, {"kbit", 1e3 / 8}, {"Mbit", 1e6 / 8}, {"Gbit", 1e9 / 8},
}

// ParseBandwidth reads a rate such as "64KiB/s", "1MB/s" or "10Mbit/s" as bytes per second.
func ParseBandwidth(s string) (int64, error) {
	bad := fmt.Errorf("want a bandwidth such as 64KiB/s, 1MB/s or 10Mbit/s, got %q", s)
	t, ok := strings.CutSuffix(strings.TrimSpace(s), "/s")
	if !ok {
		return 0, bad
	}
	i := 0
	for i < len(t) && (t[i] >= '0' && t[i] <= '9' || t[i] == '.') {
		i++
	}
	num, err := strconv.ParseFloat(t[:i], 64)
	if err != nil {
		return 0, bad
	}
	unit := strings.TrimSpace(t[i:])
	for _, u := range bandwidthUnits {
		if u.name == unit {
			v := num * u.bytes
			if v < 1 || v > 1<<50 {
				return 0, fmt.Errorf("bandwidth %q: must be between 1B/s and 1PiB/s", s)
			}
			return int64(v), nil
		}
	}
	return 0, bad
}

// FormatBandwidth writes bytes per second in the largest binary unit that keeps it whole.
func FormatBandwidth(b int64) string {
	for _, u := range []struct {
		name string
		n    int64
	}{{"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}} {
		if b%u.n == 0 {
			return fmt.Sprintf("%d%s/s", b/u.n, u.name)
		}
	}
	return fmt.Sprintf("%dB/s", b)
}

func (d *decoder) tcpAction(n *Node, path string) *TCPAction {
	t := &TCPAction{Per: PerConnection, Direction: Downstream}
	ok := d.object(n, path, fields{
		"per": func(v *Node, p string) {
			t.Per = d.str(v, p)
			if t.Per != PerConnection && t.Per != PerChunk {
				d.errorf(v, p, "want %s or %s, got %q", PerConnection, PerChunk, t.Per)
			}
		},
		"direction": func(v *Node, p string) {
			t.Direction = d.str(v, p)
			if t.Direction != Downstream && t.Direction != Upstream && t.Direction != Both {
				d.errorf(v, p, "want %s, %s or %s, got %q", Downstream, Upstream, Both, t.Direction)
			}
		},
		"latency": func(v *Node, p string) { t.Latency = d.duration(v, p) },
		"jitter":  func(v *Node, p string) { t.Jitter = d.duration(v, p) },
		"bandwidth": func(v *Node, p string) {
			s, ok := d.scalar(v, p, "a bandwidth such as 64KiB/s")
			if !ok {
				return
			}
			b, err := ParseBandwidth(s)
			if err != nil {
				d.errorf(v, p, "%v", err)
			}
			t.Bandwidth = b
		},
		"reset":     func(v *Node, p string) { t.Reset = d.boolean(v, p) },
		"blackhole": func(v *Node, p string) { t.Blackhole = d.boolean(v, p) },
		"timeout":   func(v *Node, p string) { t.Timeout = d.duration(v, p) },
		"slowClose": func(v *Node, p string) { t.SlowClose = d.duration(v, p) },
	})
	if !ok {
		return t
	}
	if n.Get("latency") == nil && n.Get("bandwidth") == nil && n.Get("reset") == nil && n.Get("blackhole") == nil && n.Get("slowClose") == nil {
		d.errorf(n, path, "a TCP fault needs an effect: latency, bandwidth, reset, blackhole or slowClose")
	}
	if t.Jitter > 0 && t.Jitter > t.Latency {
		d.errorf(n.Get("jitter"), join(path, "jitter"), "must not exceed latency (%s), or delays would be negative", FormatDuration(t.Latency))
	}
	if t.Reset && t.Blackhole {
		d.errorf(n.Get("blackhole"), join(path, "blackhole"), "reset and blackhole both end the data flow; give one")
	}
	if t.Timeout > 0 && !t.Blackhole {
		d.errorf(n.Get("timeout"), join(path, "timeout"), "timeout closes a blackholed connection; it needs blackhole: true")
	}
	if t.SlowClose > 0 && t.Per == PerChunk {
		d.errorf(n.Get("slowClose"), join(path, "slowClose"), "a close belongs to a connection, not a chunk: use per: connection")
	}
	if t.Latency > time.Hour || t.SlowClose > time.Hour || t.Timeout > 24*time.Hour {
		d.errorf(n, path, "latency and slowClose are limited to an hour, timeout to a day")
	}
	return t
}
