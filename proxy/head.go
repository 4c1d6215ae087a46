package proxy

import (
	"net/http"
	"net/textproto"
	"net/url"
	"strconv"
	"strings"

	"golang.org/x/net/http/httpguts"
)

// reqHead is an HTTP/1.1 request head as the dedicated path reads it. Its
// strings all point into text, the one allocation a request head costs.
// parse accepts only what the dedicated path forwards exactly; anything
// else (HTTP/1.0, h2c, upgrades, Expect, chunked bodies, absolute or
// asterisk targets, folded or invalid fields) goes to net/http whole.
type reqHead struct {
	text          string
	method        string
	target        string // origin-form, as sent
	path, query   string // target split at '?', path unescaped only when it had to be
	rawPath       string // the escaped path when it differs from path's default encoding
	host          string
	contentLength int64
	close         bool // Connection: close
	teTrailers    bool // TE: trailers
	fields        []field
	nxff, nfwd    int // X-Forwarded-For and Forwarded fields, forwarded extended
}

// field is one header field as sent: the name's spelling and the value
// without surrounding blanks.
type field struct {
	name, value string
	kind        fieldKind
}

type fieldKind uint8

const (
	fieldPass      fieldKind = iota // forwarded as is
	fieldHop                        // hop-by-hop (or named by Connection): not forwarded
	fieldXFF                        // X-Forwarded-For: extended with the client's address
	fieldForwarded                  // Forwarded: extended with this hop
	fieldReplaced                   // X-Forwarded-Host and -Proto: the proxy sets its own
)

// parse reads a request head (the request line and fields, ending with an
// empty line). It reports false when the head is not one the dedicated path
// handles; net/http then serves the connection.
func (h *reqHead) parse(text string) bool {
	fields := h.fields[:0]
	*h = reqHead{text: text, fields: fields}
	line, rest, ok := cutCRLF(text)
	if !ok {
		return false
	}
	var version string
	var ok1, ok2 bool
	h.method, line, ok1 = strings.Cut(line, " ")
	h.target, version, ok2 = strings.Cut(line, " ")
	if !ok1 || !ok2 || version != "HTTP/1.1" || !httpguts.ValidHeaderFieldName(h.method) || !h.parseTarget() {
		return false
	}
	hosts, lengths := 0, 0
	var connection []string
	for {
		line, rest, ok = cutCRLF(rest)
		if !ok {
			return false
		}
		if line == "" {
			break
		}
		name, value, ok := strings.Cut(line, ":")
		if !ok || !httpguts.ValidHeaderFieldName(name) {
			return false // also a field folded onto the line before (obs-fold)
		}
		value = strings.Trim(value, " \t")
		if !httpguts.ValidHeaderFieldValue(value) {
			return false
		}
		f := field{name: name, value: value}
		switch textproto.CanonicalMIMEHeaderKey(name) {
		case "Host":
			hosts++
			h.host = value
		case "Content-Length":
			lengths++
			n, err := strconv.ParseUint(value, 10, 63)
			if err != nil || value[0] == '+' {
				return false
			}
			h.contentLength = int64(n)
		case "Transfer-Encoding", "Expect", "Upgrade", "Http2-Settings":
			return false
		case "Connection":
			f.kind = fieldHop
			for tok := range strings.SplitSeq(value, ",") {
				switch tok = strings.Trim(tok, " \t"); {
				case strings.EqualFold(tok, "close"):
					h.close = true
				case strings.EqualFold(tok, "upgrade"):
					return false
				case tok != "" && !strings.EqualFold(tok, "keep-alive"):
					connection = append(connection, tok)
				}
			}
		case "Te":
			f.kind = fieldHop
			h.teTrailers = h.teTrailers || httpguts.HeaderValuesContainsToken([]string{value}, "trailers")
		case "Keep-Alive", "Proxy-Connection", "Proxy-Authenticate", "Proxy-Authorization", "Trailer":
			f.kind = fieldHop
		case "X-Forwarded-For":
			f.kind = fieldXFF
			h.nxff++
		case "Forwarded":
			f.kind = fieldForwarded
			h.nfwd++
		case "X-Forwarded-Host", "X-Forwarded-Proto":
			f.kind = fieldReplaced
		}
		h.fields = append(h.fields, f)
	}
	if rest != "" || hosts != 1 || lengths > 1 || !httpguts.ValidHostHeader(h.host) {
		return false
	}
	for _, name := range connection {
		for i := range h.fields {
			if strings.EqualFold(h.fields[i].name, name) {
				h.fields[i].kind = fieldHop
			}
		}
	}
	return true
}

// parseTarget splits an origin-form target into path and query, as
// url.ParseRequestURI would, without allocating when the path needs no
// unescaping.
func (h *reqHead) parseTarget() bool {
	t := h.target
	if t == "" || t[0] != '/' {
		return false // absolute-form, authority-form (CONNECT), asterisk (OPTIONS *)
	}
	path, query, _ := strings.Cut(t, "?")
	for i := 0; i < len(t); i++ {
		if c := t[i]; c <= ' ' || c >= 0x7f || c == '#' {
			return false
		}
	}
	h.path, h.query = path, query
	if plainPath(path) {
		return true
	}
	// Escapes, or bytes net/url would escape: let it decide, as net/http does.
	u, err := url.ParseRequestURI(t)
	if err != nil {
		return false
	}
	h.path, h.rawPath = u.Path, u.RawPath
	return true
}

// plainPath reports whether a path has only bytes net/url leaves as they
// are: then it is its own unescaped form.
func plainPath(p string) bool {
	for i := 0; i < len(p); i++ {
		switch c := p[i]; {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case strings.IndexByte("-_.~$&+,/:;=@", c) >= 0:
		default:
			return false
		}
	}
	return true
}

// cutCRLF returns the text before the first CRLF and the text after it.
func cutCRLF(s string) (line, rest string, ok bool) {
	i := strings.Index(s, "\r\n")
	if i < 0 {
		return "", "", false
	}
	line = s[:i]
	if strings.IndexByte(line, '\n') >= 0 || strings.IndexByte(line, '\r') >= 0 {
		return "", "", false // a bare CR or LF: net/http decides
	}
	return line, s[i+2:], true
}

// request fills r (and its URL and Header, reused from request to request
// on one connection) from the head, as net/http's server would for the
// route table, the groupings, the fault rules and the split.
func (h *reqHead) request(r *http.Request, u *url.URL, hdr http.Header, vals *[]string, remoteAddr string) {
	clear(hdr)
	vs := (*vals)[:0]
	for _, f := range h.fields {
		k := textproto.CanonicalMIMEHeaderKey(f.name)
		if prior, ok := hdr[k]; ok {
			hdr[k] = append(prior, f.value) // a repeated field: its own slice
			continue
		}
		vs = append(vs, f.value)
		hdr[k] = vs[len(vs)-1 : len(vs) : len(vs)]
	}
	*vals = vs
	*u = url.URL{Path: h.path, RawPath: h.rawPath, RawQuery: h.query}
	*r = http.Request{
		Method: h.method, URL: u, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header: hdr, Body: http.NoBody, ContentLength: h.contentLength, Close: h.close,
		Host: h.host, RemoteAddr: remoteAddr, RequestURI: h.target,
	}
}
