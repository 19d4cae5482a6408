// Package httpmsg is the HTTP payload between the front and an app's HTTP
// event (slaves/python/README.md, "HTTP payload"): the request stream starts
// with one MessagePack map {meta, body} and continues with raw body chunks;
// the answer starts with a chunk {code, headers} and continues with raw body.
//
// The front encodes requests and decodes answer heads; the Go framework
// (slaves/go) does the reverse. The Python runtime (slaves/python/cocaine/http.py)
// is the other implementation, and the tests check both agree byte for byte.
//
// Strings are MessagePack str holding the bytes as the client sent them,
// not necessarily valid UTF-8; bytes are bin. Decoders accept either for
// both, as the Python runtime does.
package httpmsg

import "errors"

// Limits of a decoded meta or head. They keep a broken or hostile peer from
// making the decoder allocate without bound; the encoders enforce them too,
// so a front learns at once that a request is too big to pass
// (431 Request Header Fields Too Large) rather than the app failing it.
const (
	// MaxHeadSize bounds the MessagePack bytes of a request map or answer
	// head. A request body sent as the map's last entry is not counted: it
	// streams.
	MaxHeadSize = 1 << 20
	// MaxHeaders bounds the header values of a meta or head, and the cookies
	// of a meta.
	MaxHeaders = 1000
)

// ErrMalformed marks input that is not a valid request map or answer head.
var ErrMalformed = errors.New("httpmsg: malformed HTTP payload")

// ErrTooLarge marks a meta or head over the limits. Decoders return it
// together with ErrMalformed.
var ErrTooLarge = errors.New("httpmsg: HTTP payload too large")

// Meta describes an HTTP request. Strings are raw, as the client sent them:
// Path, Query, ScriptName and PathInfo are still percent-encoded.
type Meta struct {
	Method     string
	URL        string // absolute: scheme://host/path?query
	Path       string
	Query      string // without "?"; "" if none
	Host       string // the Host header, with its port if any
	RemoteAddr string // "ip:port" or "[ipv6]:port"
	Secure     bool   // https
	Headers    map[string][]string
	Cookies    map[string]string // the first value of each name
	ScriptName string            // the prefix of Path the front's route consumed
	PathInfo   string            // the rest: ScriptName + PathInfo == Path
	Protocol   string            // "HTTP/1.1", "HTTP/2.0"
}

// Head is the first chunk of an answer: the status and the headers in order,
// names repeated as needed.
type Head struct {
	Code    int
	Headers [][2]string
}

// Field names on the wire.
const (
	keyMeta, keyBody                = "meta", "body"
	keyCode, keyHeaders             = "code", "headers"
	keyMethod, keyURL, keyPath      = "method", "url", "path"
	keyQuery, keyHost, keyRemote    = "query", "host", "remote_addr"
	keySecure, keyCookies           = "secure", "cookies"
	keyScript, keyPathInfo, keyProt = "script_name", "path_info", "protocol"
)
