package spec

import (
	"strings"
	"unicode/utf8"
)

// Expr is an expression written in a spec (a steady-state hypothesis, a
// guardrail, an expected outcome). Package spec keeps its text and where it
// was written; package experiment compiles it, and its messages about a
// character inside the text point into the file through At.
type Expr struct {
	Text        string
	Description string // optional, shown in reports beside the expression
	Pos         Pos    // the scalar holding the text
	Path        string // field path, e.g. spec.steadyState[0]

	content Pos
	style   ScalarStyle
	quoted  bool
}

// At returns the position in the file of the character at line (from 1) and
// column (from 0, in characters) of Text. Where the written form makes the
// mapping uncertain (a folded block, escapes spanning lines) it returns the
// start of the text.
func (e Expr) At(line, col int) Pos {
	start := e.content
	if start.Line == 0 {
		start = e.Pos
		if e.style == StyleUnknown && e.quoted && start.Line > 0 {
			start.Col++
		}
	}
	if start.Line == 0 || line < 1 || col < 0 {
		return start
	}
	if e.style == StyleLiteral {
		p := start
		p.Line += line - 1
		p.Col += col
		return p
	}
	if line != 1 || e.style == StyleFolded {
		return start
	}
	first, _, _ := strings.Cut(e.Text, "\n")
	before := first
	if n := utf8.RuneCountInString(first); col < n {
		before = string([]rune(first)[:col])
	}
	shift := 0
	switch e.style {
	case StyleSingleQuoted:
		shift = strings.Count(before, "'") // each was written ''
	case StyleDoubleQuoted:
		shift = strings.Count(before, `"`) + strings.Count(before, `\`) // each was escaped
	}
	p := start
	p.Col += col + shift
	return p
}

// expr decodes an expression: a string, or a mapping with expr and description.
func (d *decoder) expr(n *Node, path string) Expr {
	e := Expr{Path: path}
	if n != nil && n.Kind == MapNode {
		d.object(n, path, fields{
			"expr":        func(v *Node, p string) { e = d.exprText(v, p, e.Description) },
			"description": func(v *Node, p string) { e.Description = d.str(v, p) },
		}, "expr")
		e.Path = join(path, "expr")
		return e
	}
	return d.exprText(n, path, "")
}

func (d *decoder) exprText(n *Node, path, description string) Expr {
	s, ok := d.scalar(n, path, "an expression such as availability(\"login\", \"5m\") >= 99.9")
	e := Expr{Text: s, Description: description, Path: path}
	if !ok {
		return e
	}
	e.Pos, e.content, e.style, e.quoted = n.Pos, n.Content, n.Style, n.Quoted
	if strings.TrimSpace(s) == "" {
		d.errorf(n, path, "empty expression")
	}
	return e
}

// exprList decodes a list of expressions.
func (d *decoder) exprList(n *Node, path string) []Expr {
	var out []Expr
	d.list(n, path, func(_ int, item *Node, p string) { out = append(out, d.expr(item, p)) })
	return out
}
