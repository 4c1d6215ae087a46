package experiment

import (
	"strconv"

	"slolab.dev/slolab/spec"
)

// rewrite is an expression's text as CEL reads it, and how to map a
// character of it back to the text the user wrote.
type rewrite struct {
	text  string
	edits []edit // in order of position
}

// edit replaced the runes [from, to) of the original with n runes at at.
type edit struct {
	from, to int
	at, n    int
}

// original maps a rune offset of the rewritten text to one of the original.
func (r rewrite) original(off int) int {
	shift := 0
	for _, e := range r.edits {
		if off < e.at {
			break
		}
		if off < e.at+e.n {
			return e.from // inside a replacement: point at the literal
		}
		shift = e.to - e.at - e.n
	}
	return off + shift
}

// rewriteDurations turns the duration literals CEL lacks (800ms, 5m, 1h30m,
// 30d) into calls CEL knows (duration("800ms")), so that the natural
// `p99("update", "1m") < 800ms` and `recovers_within("token", 5m)` read as
// written. Strings, identifiers and numbers that are not followed by a
// duration unit are left alone; in CEL a number directly followed by letters
// is a syntax error, so no valid expression changes meaning.
func rewriteDurations(src string) rewrite {
	rs := []rune(src)
	var out []rune
	var edits []edit
	isDigit := func(c rune) bool { return c >= '0' && c <= '9' }
	isIdent := func(c rune) bool { return c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || isDigit(c) }
	for i := 0; i < len(rs); {
		c := rs[i]
		switch {
		case c == '"' || c == '\'':
			j := skipString(rs, i)
			out = append(out, rs[i:j]...)
			i = j
		case (c == 'r' || c == 'R' || c == 'b' || c == 'B') && i+1 < len(rs) && (rs[i+1] == '"' || rs[i+1] == '\''):
			j := skipString(rs, i+1)
			out = append(out, rs[i:j]...)
			i = j
		case isIdent(c) && !isDigit(c):
			j := i
			for j < len(rs) && isIdent(rs[j]) {
				j++
			}
			out = append(out, rs[i:j]...)
			i = j
		case isDigit(c):
			if c == '0' && i+1 < len(rs) && (rs[i+1] == 'x' || rs[i+1] == 'X') {
				j := i + 2
				for j < len(rs) && isIdent(rs[j]) {
					j++
				}
				out = append(out, rs[i:j]...)
				i = j
				continue
			}
			// A run of number+unit pairs: 1h30m, 1.5s, 250ms.
			k := i
			for k < len(rs) && (isDigit(rs[k]) || rs[k] == '.') {
				k++
			}
			u := k
			for u < len(rs) && isIdent(rs[u]) {
				u++
			}
			lit := string(rs[i:u])
			if u > k {
				if d, err := spec.ParseDuration(lit); err == nil && !isExponent(rs[k:u]) {
					rep := []rune("duration(" + strconv.Quote(d.String()) + ")")
					edits = append(edits, edit{from: i, to: u, at: len(out), n: len(rep)})
					out = append(out, rep...)
					i = u
					continue
				}
			}
			out = append(out, rs[i:u]...)
			i = u
		default:
			out = append(out, c)
			i++
		}
	}
	return rewrite{text: string(out), edits: edits}
}

// isExponent reports whether the letters after a number are a float exponent or a uint suffix.
func isExponent(rs []rune) bool {
	if len(rs) == 0 {
		return false
	}
	switch rs[0] {
	case 'e', 'E':
		return true
	case 'u', 'U':
		return len(rs) == 1
	}
	return false
}

// skipString returns the index just past the string literal starting at i,
// which may be triple-quoted.
func skipString(rs []rune, i int) int {
	q := rs[i]
	if i+2 < len(rs) && rs[i+1] == q && rs[i+2] == q {
		for j := i + 3; j+2 < len(rs); j++ {
			if rs[j] == '\\' {
				j++
				continue
			}
			if rs[j] == q && rs[j+1] == q && rs[j+2] == q {
				return j + 3
			}
		}
		return len(rs)
	}
	for j := i + 1; j < len(rs); j++ {
		switch rs[j] {
		case '\\':
			j++
		case q:
			return j + 1
		case '\n':
			return j
		}
	}
	return len(rs)
}

// runeOffset converts a CEL line and column (characters) on a line of text to a rune offset of the whole text.
func runeOffset(text string, line, col int) int {
	off, l := 0, 1
	for _, c := range text {
		if l == line {
			break
		}
		off++
		if c == '\n' {
			l++
		}
	}
	return off + col
}

// lineCol is the inverse of runeOffset.
func lineCol(text string, off int) (line, col int) {
	line = 1
	i := 0
	for _, c := range text {
		if i == off {
			break
		}
		i++
		col++
		if c == '\n' {
			line++
			col = 0
		}
	}
	return line, col
}
