package spec

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// NodeKind says what a Node holds.
type NodeKind uint8

// The node kinds.
const (
	NullNode NodeKind = iota
	ScalarNode
	MapNode
	ListNode
)

func (k NodeKind) String() string {
	return [...]string{"null", "scalar", "mapping", "list"}[k]
}

// Node is a positioned tree of a document, independent of the syntax it came from.
// A mapping keeps its keys in source order.
type Node struct {
	Kind   NodeKind
	Pos    Pos
	Value  string  // for scalars, the text; for keys of a mapping, see Keys
	Quoted bool    // a scalar that was written as a string ("1", '99.9%')
	Keys   []*Node // mapping keys (scalars), parallel to Items
	Items  []*Node // mapping values or list items

	// Style is how a scalar was written, and Content where its text begins
	// (after an opening quote, or on the first line of a block scalar), so
	// that a message about a character inside the text (a CEL expression)
	// can point at it. Front ends that do not know leave them zero.
	Style   ScalarStyle
	Content Pos

	merged bool // a mapping key that came from a YAML merge key (<<); an explicit key overrides it
}

// ScalarStyle is how a YAML scalar was written.
type ScalarStyle uint8

// The scalar styles. StyleUnknown is any front end that does not say.
const (
	StyleUnknown ScalarStyle = iota
	StylePlain
	StyleSingleQuoted
	StyleDoubleQuoted
	StyleLiteral // |
	StyleFolded  // >
)

// Get returns the value of key in a mapping, or nil.
func (n *Node) Get(key string) *Node {
	if n == nil || n.Kind != MapNode {
		return nil
	}
	for i, k := range n.Keys {
		if k.Value == key {
			return n.Items[i]
		}
	}
	return nil
}

// ParseYAML parses every document in a YAML (or JSON) stream into Nodes.
// Anchors, aliases and merge keys (<<) are resolved. name is the file name used
// in positions.
func ParseYAML(name string, data []byte) ([]*Node, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var docs []*Node
	for {
		var doc yaml.Node
		err := dec.Decode(&doc)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, Errors{yamlSyntaxError(name, err)}
		}
		if len(doc.Content) == 0 {
			continue
		}
		c := converter{file: name, data: data, budget: expansionBudget(&doc)}
		n := c.convert(doc.Content[0], 0)
		if len(c.errs) > 0 {
			return nil, c.errs.err()
		}
		docs = append(docs, n)
	}
	return docs, nil
}

var yamlLine = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// yamlSyntaxError turns "yaml: line 3: did not find expected key" into a positioned Error.
func yamlSyntaxError(name string, err error) *Error {
	msg := err.Error()
	if m := yamlLine.FindStringSubmatch(msg); m != nil {
		line, _ := strconv.Atoi(m[1])
		return &Error{Pos: Pos{File: name, Line: line}, Msg: "YAML syntax: " + m[2]}
	}
	var te *yaml.TypeError
	if errors.As(err, &te) && len(te.Errors) > 0 {
		msg = te.Errors[0]
	}
	return &Error{Pos: Pos{File: name}, Msg: "YAML syntax: " + trimYAMLPrefix(msg)}
}

func trimYAMLPrefix(s string) string {
	if len(s) > 6 && s[:6] == "yaml: " {
		return s[6:]
	}
	return s
}

// maxAliasDepth bounds alias expansion so that a "billion laughs" document is an error, not a hang.
const maxAliasDepth = 32

type converter struct {
	file  string
	data  []byte
	lines []string // data split into lines, made on first need
	errs  Errors
	// expanded counts nodes produced, to stop exponential alias expansion
	// at budget.
	expanded, budget int
}

// A document may expand to aliasFactor times the nodes it is written with
// (at least minBudget, at most maxNodes): aliases and merge keys that share
// a block stay cheap, and a "billion laughs" costs little more than its
// text instead of gigabytes.
const (
	aliasFactor = 4
	minBudget   = 10_000
	maxNodes    = 1 << 20
)

// expansionBudget is how many nodes doc may expand to.
func expansionBudget(doc *yaml.Node) int {
	written := 0
	var count func(y *yaml.Node)
	count = func(y *yaml.Node) {
		written++
		for _, c := range y.Content {
			count(c)
		}
	}
	count(doc)
	return min(max(aliasFactor*written, minBudget), maxNodes)
}

func (c *converter) pos(y *yaml.Node) Pos { return Pos{File: c.file, Line: y.Line, Col: y.Column} }

func (c *converter) convert(y *yaml.Node, depth int) *Node {
	c.expanded++
	if c.expanded > c.budget {
		if c.expanded == c.budget+1 {
			c.errs = append(c.errs, &Error{Pos: c.pos(y), Msg: fmt.Sprintf("aliases expand the document past %d nodes (%d times what it is written with, at least %d): refused, as a YAML alias bomb would be", c.budget, aliasFactor, minBudget)})
		}
		return &Node{Kind: NullNode, Pos: c.pos(y)}
	}
	switch y.Kind {
	case yaml.AliasNode:
		if depth > maxAliasDepth || y.Alias == nil {
			c.errs = append(c.errs, &Error{Pos: c.pos(y), Msg: "alias nested too deeply"})
			return &Node{Kind: NullNode, Pos: c.pos(y)}
		}
		n := c.convert(y.Alias, depth+1)
		return n
	case yaml.ScalarNode:
		if y.Tag == "!!null" {
			return &Node{Kind: NullNode, Pos: c.pos(y)}
		}
		quoted := y.Style&(yaml.DoubleQuotedStyle|yaml.SingleQuotedStyle|yaml.LiteralStyle|yaml.FoldedStyle) != 0
		n := &Node{Kind: ScalarNode, Pos: c.pos(y), Value: y.Value, Quoted: quoted, Style: StylePlain, Content: c.pos(y)}
		switch {
		case y.Style&yaml.SingleQuotedStyle != 0:
			n.Style = StyleSingleQuoted
			n.Content.Col++
		case y.Style&yaml.DoubleQuotedStyle != 0:
			n.Style = StyleDoubleQuoted
			n.Content.Col++
		case y.Style&(yaml.LiteralStyle|yaml.FoldedStyle) != 0:
			n.Style = StyleLiteral
			if y.Style&yaml.FoldedStyle != 0 {
				n.Style = StyleFolded
			}
			n.Content = c.blockContent(y.Line)
		}
		return n
	case yaml.SequenceNode:
		n := &Node{Kind: ListNode, Pos: c.pos(y)}
		for _, item := range y.Content {
			n.Items = append(n.Items, c.convert(item, depth))
		}
		return n
	case yaml.MappingNode:
		n := &Node{Kind: MapNode, Pos: c.pos(y)}
		for i := 0; i+1 < len(y.Content); i += 2 {
			k, v := y.Content[i], y.Content[i+1]
			if k.Tag == "!!merge" {
				c.merge(n, v, depth)
				continue
			}
			if k.Kind != yaml.ScalarNode {
				c.errs = append(c.errs, &Error{Pos: c.pos(k), Msg: "mapping keys must be plain strings"})
				continue
			}
			val := c.convert(v, depth)
			if i := mergedKey(n, k.Value); i >= 0 {
				n.Keys[i] = &Node{Kind: ScalarNode, Pos: c.pos(k), Value: k.Value}
				n.Items[i] = val
				continue
			}
			n.Keys = append(n.Keys, &Node{Kind: ScalarNode, Pos: c.pos(k), Value: k.Value})
			n.Items = append(n.Items, val)
		}
		return n
	case yaml.DocumentNode:
		if len(y.Content) > 0 {
			return c.convert(y.Content[0], depth)
		}
	}
	return &Node{Kind: NullNode, Pos: c.pos(y)}
}

// blockContent returns where the text of a block scalar whose indicator (| or
// >) is on line begins: the first non-blank line after it, at its indentation.
func (c *converter) blockContent(line int) Pos {
	if c.lines == nil {
		c.lines = strings.Split(string(c.data), "\n")
	}
	for l := line; l < len(c.lines); l++ { // c.lines[l] is line l+1
		text := strings.TrimRight(c.lines[l], "\r")
		if strings.TrimSpace(text) == "" {
			continue
		}
		return Pos{File: c.file, Line: l + 1, Col: len(text) - len(strings.TrimLeft(text, " ")) + 1}
	}
	return Pos{File: c.file, Line: line + 1, Col: 1}
}

// mergedKey returns the index of key in n if it came from a merge key, else -1.
func mergedKey(n *Node, key string) int {
	for i, k := range n.Keys {
		if k.merged && k.Value == key {
			return i
		}
	}
	return -1
}

// merge applies a YAML merge key: keys of the merged mapping(s) that the
// enclosing mapping does not set itself. Explicit keys always win, wherever they
// are written; explicit duplicates are still reported by the decoder.
func (c *converter) merge(into *Node, v *yaml.Node, depth int) {
	src := c.convert(v, depth)
	var maps []*Node
	switch src.Kind {
	case MapNode:
		maps = []*Node{src}
	case ListNode:
		maps = src.Items
	}
	for _, m := range maps {
		if m.Kind != MapNode {
			c.errs = append(c.errs, &Error{Pos: m.Pos, Msg: "a merge key (<<) needs a mapping or a list of mappings"})
			continue
		}
		for i, k := range m.Keys {
			if into.Get(k.Value) == nil {
				into.Keys = append(into.Keys, &Node{Kind: ScalarNode, Pos: k.Pos, Value: k.Value, merged: true})
				into.Items = append(into.Items, m.Items[i])
			}
		}
	}
}

// describe names a node's kind for messages like "want a mapping, got a list".
func describe(n *Node) string {
	if n == nil {
		return "nothing"
	}
	if n.Kind == ScalarNode {
		return fmt.Sprintf("%q", n.Value)
	}
	return "a " + n.Kind.String()
}
