package spec

import (
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"
)

// decoder turns Nodes into model values, collecting every error instead of
// stopping at the first one.
type decoder struct {
	errs Errors
}

func (d *decoder) errorf(n *Node, path, format string, args ...any) {
	var pos Pos
	if n != nil {
		pos = n.Pos
	}
	d.errs = append(d.errs, &Error{Pos: pos, Path: path, Msg: fmt.Sprintf(format, args...)})
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func index(path string, i int) string { return fmt.Sprintf("%s[%d]", path, i) }

// fields maps the keys a mapping may hold to the function that decodes each value.
type fields map[string]func(v *Node, path string)

// object decodes a mapping. Unknown keys (with a suggestion when one is close),
// duplicate keys and missing required keys are errors. It reports whether n
// was a mapping at all.
func (d *decoder) object(n *Node, path string, fs fields, required ...string) bool {
	if n == nil || n.Kind != MapNode {
		d.errorf(n, path, "want a mapping, got %s", describe(n))
		return false
	}
	seen := make(map[string]bool, len(n.Keys))
	for i, k := range n.Keys {
		p := join(path, k.Value)
		if seen[k.Value] {
			d.errorf(k, p, "duplicate key %q", k.Value)
			continue
		}
		seen[k.Value] = true
		fn, ok := fs[k.Value]
		if !ok {
			d.errorf(k, p, "unknown field%s", suggest(k.Value, fs))
			continue
		}
		fn(n.Items[i], p)
	}
	for _, r := range required {
		if v := n.Get(r); v == nil || v.Kind == NullNode {
			d.errorf(n, join(path, r), "required")
		}
	}
	return true
}

// suggest returns `; did you mean "x"?` for the known key closest to key, or "".
func suggest(key string, fs fields) string {
	names := make([]string, 0, len(fs))
	for name := range fs {
		names = append(names, name)
	}
	sort.Strings(names)
	best, bestDist := "", 3
	for _, name := range names {
		if strings.EqualFold(name, key) {
			return fmt.Sprintf("; did you mean %q?", name)
		}
		if dist := editDistance(strings.ToLower(key), strings.ToLower(name)); dist < bestDist {
			best, bestDist = name, dist
		}
	}
	if best != "" {
		return fmt.Sprintf("; did you mean %q?", best)
	}
	return fmt.Sprintf(" (known: %s)", strings.Join(names, ", "))
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// list decodes a list, calling fn for each item.
func (d *decoder) list(n *Node, path string, fn func(i int, item *Node, path string)) {
	if n == nil || n.Kind != ListNode {
		d.errorf(n, path, "want a list, got %s", describe(n))
		return
	}
	for i, item := range n.Items {
		fn(i, item, index(path, i))
	}
}

// scalar returns n's text, or reports an error and returns ok=false.
func (d *decoder) scalar(n *Node, path, want string) (string, bool) {
	if n == nil || n.Kind != ScalarNode {
		d.errorf(n, path, "want %s, got %s", want, describe(n))
		return "", false
	}
	return n.Value, true
}

func (d *decoder) str(n *Node, path string) string {
	s, _ := d.scalar(n, path, "a string")
	return s
}

// ValidName reports whether s is a valid name: lower-case letters, digits, '-' and '_', at most 63.
func ValidName(s string) bool { return namePattern.MatchString(s) }

var namePattern = regexp.MustCompile(`^[a-z0-9]([a-z0-9_-]{0,61}[a-z0-9])?$`)

// name decodes an identifier: lower-case letters, digits, '-' and '_', at most 63 characters.
func (d *decoder) name(n *Node, path string) string {
	s, ok := d.scalar(n, path, "a name")
	if ok && !namePattern.MatchString(s) {
		d.errorf(n, path, "%s", invalidName(s))
	}
	return s
}

// invalidName says why s is not a name, quoting at most its first 64 bytes.
func invalidName(s string) string {
	q := strconv.Quote(s)
	if len(s) > 64 {
		q = fmt.Sprintf("%q… (%d bytes)", s[:64], len(s))
	}
	return q + " is not a valid name: use lower-case letters, digits, '-' and '_' (at most 63, starting and ending with a letter or digit)"
}

func (d *decoder) boolean(n *Node, path string) bool {
	s, ok := d.scalar(n, path, "true or false")
	if !ok {
		return false
	}
	switch s {
	case "true":
		return true
	case "false":
		return false
	}
	d.errorf(n, path, "want true or false, got %q", s)
	return false
}

func (d *decoder) integer(n *Node, path string, lo, hi int64) int64 {
	s, ok := d.scalar(n, path, "an integer")
	if !ok {
		return 0
	}
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		d.errorf(n, path, "want an integer, got %q", s)
		return 0
	}
	if v < lo || v > hi {
		d.errorf(n, path, "must be between %d and %d, got %d", lo, hi, v)
	}
	return v
}

// duration decodes a positive duration such as 250ms, 1h30m or 30d.
func (d *decoder) duration(n *Node, path string) time.Duration {
	s, ok := d.scalar(n, path, "a duration")
	if !ok {
		return 0
	}
	v, err := ParseDuration(s)
	if err != nil {
		d.errorf(n, path, "%v", err)
		return 0
	}
	if v <= 0 {
		d.errorf(n, path, "must be positive, got %s", s)
	}
	return v
}

// durationIn decodes a duration that must lie in [lo, hi].
func (d *decoder) durationIn(n *Node, path string, lo, hi time.Duration) time.Duration {
	v := d.duration(n, path)
	if v > 0 && (v < lo || v > hi) {
		d.errorf(n, path, "must be between %s and %s, got %s", FormatDuration(lo), FormatDuration(hi), n.Value)
	}
	return v
}

// timestamp decodes an RFC 3339 time.
func (d *decoder) timestamp(n *Node, path string) time.Time {
	s, ok := d.scalar(n, path, "a time")
	if !ok {
		return time.Time{}
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		d.errorf(n, path, "want an RFC 3339 time such as 2026-11-23T14:00:00Z, got %q", s)
	}
	return t
}

// stringMap decodes a mapping of strings to strings (headers, labels).
func (d *decoder) stringMap(n *Node, path string) map[string]string {
	if n == nil || n.Kind != MapNode {
		d.errorf(n, path, "want a mapping of strings, got %s", describe(n))
		return nil
	}
	out := make(map[string]string, len(n.Keys))
	for i, k := range n.Keys {
		p := join(path, k.Value)
		if _, dup := out[k.Value]; dup {
			d.errorf(k, p, "duplicate key %q", k.Value)
			continue
		}
		out[k.Value] = d.str(n.Items[i], p)
	}
	return out
}

// stringList decodes a list of strings, also accepting a single string.
func (d *decoder) stringList(n *Node, path string) []string {
	if n != nil && n.Kind == ScalarNode {
		return []string{n.Value}
	}
	var out []string
	d.list(n, path, func(_ int, item *Node, p string) { out = append(out, d.str(item, p)) })
	return out
}
