package httpmsg

import (
	"net/http"
	"strconv"
	"strings"
)

// NewMeta describes a request received by a net/http server (or the
// fastcgi package, which fills r the same way). scriptName is the raw,
// still percent-encoded prefix of the path that the front's route consumed;
// when it is not a prefix of the path, the whole path is path_info.
//
// The scheme comes from r.TLS alone: X-Forwarded-Proto and the like are
// the client's to forge. A front behind a TLS-terminating proxy it trusts
// sets r.TLS itself before calling NewMeta.
func NewMeta(r *http.Request, scriptName string) *Meta {
	path := r.URL.EscapedPath()
	if path == "" {
		path = "/"
	}
	host := r.Host
	if host == "" {
		host = r.URL.Host
	}
	m := &Meta{
		Method:     r.Method,
		Path:       path,
		Query:      r.URL.RawQuery,
		Host:       host,
		RemoteAddr: r.RemoteAddr,
		Secure:     r.TLS != nil,
		Protocol:   r.Proto,
		PathInfo:   path,
	}
	if m.Protocol == "" {
		m.Protocol = "HTTP/1.1"
	}
	scheme := "http"
	if m.Secure {
		scheme = "https"
	}
	m.URL = scheme + "://" + host + path
	if m.Query != "" {
		m.URL += "?" + m.Query
	}
	if scriptName != "" && strings.HasPrefix(path, scriptName) {
		m.ScriptName, m.PathInfo = scriptName, path[len(scriptName):]
	}

	m.Headers = make(map[string][]string, len(r.Header)+1)
	for name, vals := range r.Header {
		name = http.CanonicalHeaderKey(name)
		if name == "Host" || len(vals) == 0 {
			continue
		}
		m.Headers[name] = append(m.Headers[name], vals...)
	}
	// The fastcgi package, like net/http/cgi, takes CONTENT_LENGTH into
	// r.ContentLength but not into the headers; the app needs it there.
	if _, ok := m.Headers["Content-Length"]; !ok && r.ContentLength > 0 {
		m.Headers["Content-Length"] = []string{strconv.FormatInt(r.ContentLength, 10)}
	}

	if len(m.Headers) == 0 {
		m.Headers = nil
	}

	for _, c := range r.Cookies() {
		if m.Cookies == nil {
			m.Cookies = map[string]string{}
		}
		if _, seen := m.Cookies[c.Name]; !seen {
			m.Cookies[c.Name] = c.Value
		}
	}
	return m
}
