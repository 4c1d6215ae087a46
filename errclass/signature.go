package errclass

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

// Masks, applied in this order: what varies between two occurrences of one
// error (ids, times, numbers, quoted values) becomes a placeholder, so that
// "user 123 not found" and "user 456 not found" read the same.
var masks = []struct {
	re   *regexp.Regexp
	with string
}{
	{regexp.MustCompile(`"(?:[^"\\]|\\.)*"|'[^'\n]*'`), `<q>`},
	{regexp.MustCompile(`(?i)\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b`), `<uuid>`},
	{regexp.MustCompile(`\b\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?)?\b`), `<time>`},
	{regexp.MustCompile(`\b\d{2}:\d{2}:\d{2}(?:\.\d+)?\b`), `<time>`},
	{regexp.MustCompile(`(?i)\b(?:0x)?[0-9a-f]*\d[0-9a-f]*[a-f][0-9a-f]*\b|\b(?:0x)?[0-9a-f]*[a-f][0-9a-f]*\d[0-9a-f]*\b`), `<hex>`},
	{regexp.MustCompile(`\d+(?:\.\d+)?(?:[eE][-+]?\d+)?`), `<n>`},
}

var spaces = regexp.MustCompile(`\s+`)

// Mask replaces the parts of s that vary between occurrences of one error
// with placeholders: quoted values <q>, UUIDs <uuid>, timestamps <time>,
// hexadecimal ids <hex> (a run of hex digits with both a digit and a
// letter), numbers <n>; runs of white space become one space.
func Mask(s string) string {
	for _, m := range masks {
		s = m.re.ReplaceAllString(s, m.with)
	}
	return strings.TrimSpace(spaces.ReplaceAllString(s, " "))
}

// maxSignature bounds a signature's length.
const maxSignature = 256

// errorFields are the JSON members that say what went wrong, by the
// conventions of RFC 9457 problem details, Google's and GraphQL's error
// objects and the common {"error": "..."} (compared in lower case).
var errorFields = map[string]bool{
	"error": true, "errors": true, "message": true, "msg": true, "code": true,
	"type": true, "title": true, "detail": true, "reason": true, "status": true,
	"error_code": true, "errorcode": true, "error_description": true, "errormessage": true,
	"exception": true, "kind": true,
}

// Signature is the shape of an error response's body: for JSON, its error
// fields (name=masked value, sorted); for other bodies, the masked text (an
// HTML page's title when it has one). At most 256 bytes; "" for an empty body.
func Signature(body []byte) string {
	body = bytes.TrimSpace(body)
	if len(body) == 0 {
		return ""
	}
	var sig string
	if body[0] == '{' || body[0] == '[' {
		sig = jsonSignature(body)
	}
	if sig == "" {
		sig = Mask(textOf(body))
	}
	return truncate(sig, maxSignature)
}

// jsonSignature reads the error fields of a JSON body, or "" when it is
// not JSON. A sample cut short is read as far as it goes: the error fields
// usually come first.
func jsonSignature(body []byte) string {
	fields, keys, ok := jsonFields(body)
	switch {
	case len(fields) > 0:
		sort.Strings(fields)
		return strings.Join(fields, " ")
	case !ok && len(keys) == 0:
		return ""
	}
	// No error fields: the shape of the document, its member names.
	sort.Strings(keys)
	return "json{" + strings.Join(keys, ",") + "}"
}

// frame is an object or array being read.
type frame struct {
	obj     bool
	path    string
	errish  bool // reached through error fields (or the root)
	wantKey bool
	key     string
	idx     int
}

// jsonFields streams body's tokens and returns path=masked value for the
// scalars under error fields (three levels deep, an array's first element
// only), and the root object's member names; ok is false when body is not
// JSON as far as it goes.
func jsonFields(body []byte) (fields, keys []string, ok bool) {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var stack []frame
	done := func() { // a value of the top frame has been read
		if n := len(stack); n > 0 {
			if stack[n-1].obj {
				stack[n-1].wantKey = true
			} else {
				stack[n-1].idx++
			}
		}
	}
	for {
		tok, err := dec.Token()
		if err != nil {
			return fields, keys, errors.Is(err, io.EOF) && len(stack) == 0
		}
		var top *frame
		if n := len(stack); n > 0 {
			top = &stack[n-1]
		}
		if d, isDelim := tok.(json.Delim); isDelim && (d == '}' || d == ']') {
			stack = stack[:len(stack)-1]
			done()
			continue
		}
		if top != nil && top.obj && top.wantKey {
			top.key, _ = tok.(string)
			top.wantKey = false
			if len(stack) == 1 {
				keys = append(keys, top.key)
			}
			continue
		}
		path, errish := "", true
		switch {
		case top == nil:
		case top.obj:
			path, errish = join(top.path, top.key), top.errish && errorFields[strings.ToLower(top.key)]
		default:
			path, errish = top.path+"[]", top.errish && top.idx == 0
		}
		var text string
		switch v := tok.(type) {
		case json.Delim:
			stack = append(stack, frame{obj: v == '{', path: path, errish: errish && len(stack) < 4, wantKey: v == '{'})
			continue
		case string:
			text = v
		case json.Number:
			text = v.String()
		case bool:
			text = strconv.FormatBool(v)
		}
		if errish && top != nil && tok != nil {
			fields = append(fields, path+"="+Mask(text))
		}
		done()
	}
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

var title = regexp.MustCompile(`(?is)<title[^>]*>(.*?)</title>`)

// textOf is the part of a non-JSON body that names the error: an HTML
// page's title, or the first 512 bytes.
func textOf(body []byte) string {
	if m := title.FindSubmatch(body); m != nil {
		return "html: " + string(m[1])
	}
	return truncate(strings.ToValidUTF8(string(body[:min(len(body), 512)]), ""), 512)
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	s = s[:n]
	return strings.ToValidUTF8(s, "")
}
