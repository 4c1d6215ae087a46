package errclass

import (
	"bytes"
	"encoding/json"
	"regexp"
	"sort"
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
// not JSON (a sample cut short is read as far as it parses).
func jsonSignature(body []byte) string {
	var v any
	if err := json.Unmarshal(body, &v); err != nil {
		return ""
	}
	var fields []string
	collect(v, "", 0, &fields)
	if len(fields) == 0 {
		// No error fields: the shape of the document, its member names.
		if m, ok := v.(map[string]any); ok {
			keys := make([]string, 0, len(m))
			for k := range m {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			return "json{" + strings.Join(keys, ",") + "}"
		}
		return "json"
	}
	sort.Strings(fields)
	return strings.Join(fields, " ")
}

// collect appends path=value for the error fields of v, descending into
// error objects and the first element of error arrays, three levels deep.
func collect(v any, path string, depth int, out *[]string) {
	if depth > 3 {
		return
	}
	switch v := v.(type) {
	case map[string]any:
		for k, e := range v {
			if !errorFields[strings.ToLower(k)] {
				continue
			}
			p := k
			if path != "" {
				p = path + "." + k
			}
			switch e := e.(type) {
			case map[string]any, []any:
				collect(e, p, depth+1, out)
			case string:
				*out = append(*out, p+"="+Mask(e))
			case nil:
			default:
				b, _ := json.Marshal(e)
				*out = append(*out, p+"="+Mask(string(b)))
			}
		}
	case []any:
		if len(v) > 0 {
			collect(v[0], path+"[]", depth+1, out)
		}
		if len(v) > 0 && path == "" {
			return
		}
	}
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
