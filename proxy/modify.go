package proxy

import (
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"strings"

	"slolab.dev/slolab/fault"
)

// applyRequest applies the replace and patch actions of injected rules to the
// outgoing request, in evaluation order.
func applyRequest(out *http.Request, mods []*fault.Rule) {
	for _, m := range mods {
		s := m.Spec
		if s.Replace != nil && s.Replace.Request != nil {
			rr := s.Replace.Request
			if rr.Method != "" {
				out.Method = rr.Method
			}
			if rr.Path != "" {
				out.URL.Path, out.URL.RawPath = rr.Path, ""
			}
			if rr.Query != nil {
				out.URL.RawQuery = *rr.Query
			}
			for k, v := range rr.Headers {
				out.Header.Set(k, v)
			}
			if rr.Body != nil {
				setRequestBody(out, *rr.Body)
				setBodyType(out.Header, rr.Headers, *rr.Body)
			}
		}
		if s.Patch != nil && s.Patch.Request != nil {
			rp := s.Patch.Request
			for k, v := range rp.Headers {
				out.Header.Add(k, v)
			}
			if len(rp.Query) > 0 {
				q := out.URL.Query()
				for k, v := range rp.Query {
					q.Add(k, v)
				}
				out.URL.RawQuery = q.Encode()
			}
			if rp.Body != "" {
				appendRequestBody(out, rp.Body)
			}
		}
		if changesResponseBody(m) {
			// The upstream must answer with a body we can edit as text.
			out.Header.Del("Accept-Encoding")
		}
	}
}

func changesResponseBody(m *fault.Rule) bool {
	s := m.Spec
	return s.Replace != nil && s.Replace.Response != nil && s.Replace.Response.Body != nil ||
		s.Patch != nil && s.Patch.Response != nil && s.Patch.Response.Body != ""
}

func setRequestBody(out *http.Request, body string) {
	if out.Body != nil {
		out.Body.Close()
	}
	out.Body = io.NopCloser(strings.NewReader(body))
	out.ContentLength = int64(len(body))
	out.TransferEncoding = nil
	out.Header.Set("Content-Length", strconv.Itoa(len(body)))
	out.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(strings.NewReader(body)), nil }
}

func appendRequestBody(out *http.Request, suffix string) {
	orig := out.Body
	if orig == nil || orig == http.NoBody {
		setRequestBody(out, suffix)
		return
	}
	out.Body = readCloser{io.MultiReader(orig, strings.NewReader(suffix)), orig}
	out.GetBody = nil
	if out.ContentLength >= 0 {
		out.ContentLength += int64(len(suffix))
		out.Header.Set("Content-Length", strconv.FormatInt(out.ContentLength, 10))
	}
}

type readCloser struct {
	io.Reader
	io.Closer
}

// applyResponse applies the replace and patch actions to the upstream's response.
func applyResponse(resp *http.Response, mods []*fault.Rule) {
	for _, m := range mods {
		s := m.Spec
		if s.Replace != nil && s.Replace.Response != nil {
			rr := s.Replace.Response
			if rr.Status != 0 {
				resp.StatusCode = rr.Status
				resp.Status = strconv.Itoa(rr.Status) + " " + http.StatusText(rr.Status)
			}
			for k, v := range rr.Headers {
				resp.Header.Set(k, v)
			}
			if rr.Body != nil {
				resp.Body.Close()
				setResponseBody(resp, io.NopCloser(strings.NewReader(*rr.Body)), int64(len(*rr.Body)))
				setBodyType(resp.Header, rr.Headers, *rr.Body)
			}
		}
		if s.Patch != nil && s.Patch.Response != nil {
			rp := s.Patch.Response
			for k, v := range rp.Headers {
				resp.Header.Add(k, v)
			}
			if rp.Body != "" {
				n := int64(-1)
				if resp.ContentLength >= 0 {
					n = resp.ContentLength + int64(len(rp.Body))
				}
				setResponseBody(resp, readCloser{io.MultiReader(resp.Body, strings.NewReader(rp.Body)), resp.Body}, n)
			}
		}
	}
}

// setBodyType gives a replaced body the Content-Type that fits it, unless
// the rule sets one: the upstream's (or the client's) type described the
// body that is gone, and a plain-text error under "application/json" breaks
// the client that reads it.
func setBodyType(h http.Header, ruleHeaders map[string]string, body string) {
	for k := range ruleHeaders {
		if http.CanonicalHeaderKey(k) == "Content-Type" {
			return
		}
	}
	switch {
	case body == "":
		h.Del("Content-Type")
	case json.Valid([]byte(body)):
		h.Set("Content-Type", "application/json")
	default:
		h.Set("Content-Type", http.DetectContentType([]byte(body)))
	}
}

func setResponseBody(resp *http.Response, body io.ReadCloser, n int64) {
	resp.Body = body
	resp.ContentLength = n
	resp.Header.Del("Content-Encoding") // a replaced or extended body is no longer the upstream's encoding
	if n >= 0 {
		resp.Header.Set("Content-Length", strconv.FormatInt(n, 10))
		resp.TransferEncoding = nil
	} else {
		resp.Header.Del("Content-Length")
	}
}
