// Package cuespec reads slolab specs written in CUE. It evaluates one
// self-contained .cue file with cuelang.org/go and turns the concrete result
// into the same positioned spec.Node tree that YAML produces, so the one
// decoder in package spec validates it and every error points at
// file:line:col in the .cue source.
//
// A file holds one document or several:
//
//   - a top-level struct with apiVersion, kind, metadata and spec is one document;
//   - a top-level field documents: [...] holds several, in list order.
//
// Definitions (#Name) and hidden fields (_name) are not part of any document,
// so a file may keep templates and defaults beside what it exports. Imports of
// CUE's standard library (strings, list, ...) work; imports of other CUE
// modules do not, since slolab reads the file alone.
package cuespec

import (
	"fmt"
	"os"
	"strconv"
	"strings"

	"cuelang.org/go/cue"
	"cuelang.org/go/cue/ast"
	"cuelang.org/go/cue/cuecontext"
	cueerrors "cuelang.org/go/cue/errors"
	"cuelang.org/go/cue/token"

	"slolab.dev/slolab/spec"
)

// DocumentsField is the top-level field that holds several documents.
const DocumentsField = "documents"

// LoadFile reads and decodes a .cue spec file.
func LoadFile(path string) (*spec.File, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return Parse(path, data)
}

// Parse evaluates CUE source and decodes it; name is used in positions.
func Parse(name string, data []byte) (*spec.File, error) {
	docs, err := Nodes(name, data)
	if err != nil {
		return nil, err
	}
	f, err := spec.Decode(docs)
	if f != nil {
		f.Path = name
	}
	return f, err
}

// Nodes evaluates CUE source and returns its documents as positioned Nodes.
// Evaluation errors (conflicts, incomplete values, syntax) come back as
// spec.Errors carrying CUE's positions.
func Nodes(name string, data []byte) ([]*spec.Node, error) {
	ctx := cuecontext.New()
	v := ctx.CompileBytes(data, cue.Filename(name))
	if err := v.Err(); err != nil {
		return nil, convertErrors(name, err)
	}
	if err := v.Validate(cue.Concrete(true)); err != nil {
		return nil, convertErrors(name, err)
	}
	c := &converter{file: name}
	var docs []*spec.Node
	if list := v.LookupPath(cue.ParsePath(DocumentsField)); list.Exists() {
		if list.Kind() != cue.ListKind {
			return nil, spec.Errors{{Pos: c.pos(list.Pos()), Path: DocumentsField, Msg: fmt.Sprintf("want a list of documents, got %s", list.Kind())}}
		}
		it, err := list.List()
		if err != nil {
			return nil, convertErrors(name, err)
		}
		for it.Next() {
			docs = append(docs, c.convert(it.Value(), it.Value().Pos()))
		}
		if others := c.otherFields(v); len(others) > 0 {
			return nil, spec.Errors{{Pos: c.pos(list.Pos()), Path: DocumentsField,
				Msg: fmt.Sprintf("a file with %q holds nothing else at the top level (found %s); move it into a document or make it hidden (_%s) or a definition (#%s)", DocumentsField, strings.Join(others, ", "), others[0], others[0])}}
		}
	} else {
		docs = append(docs, c.convert(v, v.Pos()))
	}
	if len(c.errs) > 0 {
		return nil, c.errs
	}
	return docs, nil
}

type converter struct {
	file string
	errs spec.Errors
}

func (c *converter) pos(p token.Pos) spec.Pos {
	if !p.IsValid() {
		return spec.Pos{File: c.file}
	}
	file := p.Filename()
	if file == "" {
		file = c.file
	}
	return spec.Pos{File: file, Line: p.Line(), Col: p.Column()}
}

// otherFields lists the regular top-level fields besides DocumentsField.
func (c *converter) otherFields(v cue.Value) []string {
	var out []string
	it, err := v.Fields()
	if err != nil {
		return nil
	}
	for it.Next() {
		if s := it.Selector().String(); s != DocumentsField {
			out = append(out, s)
		}
	}
	return out
}

// valuePos is where a field's value is written: the expression after the
// colon when CUE knows a single source, else the field itself.
func valuePos(v cue.Value) token.Pos {
	if f, ok := v.Source().(*ast.Field); ok && f.Value != nil && f.Value.Pos().IsValid() {
		return f.Value.Pos()
	}
	return v.Pos()
}

func (c *converter) convert(v cue.Value, at token.Pos) *spec.Node {
	pos := c.pos(at)
	switch v.Kind() {
	case cue.StructKind:
		n := &spec.Node{Kind: spec.MapNode, Pos: pos}
		it, err := v.Fields()
		if err != nil {
			c.errs = append(c.errs, convertErrors(c.file, err)...)
			return n
		}
		for it.Next() {
			fv := it.Value()
			label := it.Selector().Unquoted()
			n.Keys = append(n.Keys, &spec.Node{Kind: spec.ScalarNode, Pos: c.pos(fv.Pos()), Value: label})
			n.Items = append(n.Items, c.convert(fv, valuePos(fv)))
		}
		return n
	case cue.ListKind:
		n := &spec.Node{Kind: spec.ListNode, Pos: pos}
		it, err := v.List()
		if err != nil {
			c.errs = append(c.errs, convertErrors(c.file, err)...)
			return n
		}
		for it.Next() {
			n.Items = append(n.Items, c.convert(it.Value(), it.Value().Pos()))
		}
		return n
	case cue.StringKind:
		s, _ := v.String()
		return &spec.Node{Kind: spec.ScalarNode, Pos: pos, Value: s, Quoted: true}
	case cue.BoolKind:
		b, _ := v.Bool()
		return &spec.Node{Kind: spec.ScalarNode, Pos: pos, Value: strconv.FormatBool(b)}
	case cue.IntKind, cue.FloatKind, cue.NumberKind:
		// JSON gives the exact decimal text CUE holds (99.95, 1e-6), which
		// the decoder parses exactly; a float64 would round it.
		b, err := v.MarshalJSON()
		if err != nil {
			c.errs = append(c.errs, convertErrors(c.file, err)...)
		}
		return &spec.Node{Kind: spec.ScalarNode, Pos: pos, Value: string(b)}
	case cue.NullKind:
		return &spec.Node{Kind: spec.NullNode, Pos: pos}
	}
	c.errs = append(c.errs, &spec.Error{Pos: pos, Msg: fmt.Sprintf("a %s cannot appear in a spec", v.Kind())})
	return &spec.Node{Kind: spec.NullNode, Pos: pos}
}

// convertErrors turns CUE's errors into spec.Errors with CUE's positions and
// the field path written the way the decoder writes it (spec.cujs[0].name).
func convertErrors(name string, err error) spec.Errors {
	var out spec.Errors
	for _, e := range cueerrors.Errors(err) {
		se := &spec.Error{Pos: spec.Pos{File: name}, Path: fieldPath(e.Path())}
		if ps := cueerrors.Positions(e); len(ps) > 0 && ps[0].IsValid() {
			se.Pos = spec.Pos{File: ps[0].Filename(), Line: ps[0].Line(), Col: ps[0].Column()}
			if se.Pos.File == "" {
				se.Pos.File = name
			}
		}
		format, args := e.Msg()
		se.Msg = fmt.Sprintf(format, args...)
		out = append(out, se)
	}
	if len(out) == 0 {
		out = spec.Errors{{Pos: spec.Pos{File: name}, Msg: err.Error()}}
	}
	var dedup spec.Errors
	seen := map[string]bool{}
	for _, e := range out {
		if !seen[e.Error()] {
			seen[e.Error()] = true
			dedup = append(dedup, e)
		}
	}
	return dedup
}

func fieldPath(sels []string) string {
	var b strings.Builder
	for _, s := range sels {
		if _, err := strconv.Atoi(s); err == nil {
			fmt.Fprintf(&b, "[%s]", s)
			continue
		}
		if b.Len() > 0 {
			b.WriteByte('.')
		}
		b.WriteString(s)
	}
	return b.String()
}
