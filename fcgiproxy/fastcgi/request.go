package fastcgi

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// request is the per-request state. It is allocated per request and never
// pooled: the handler may legitimately keep r.Context() (which points into
// it) alive after returning. Only its large buffers are pooled.
type request struct {
	c        *conn
	id       uint16
	keepConn bool
	begun    time.Time // BEGIN_REQUEST's arrival

	// Owned by the connection's reader goroutine.
	paramsp *[]byte
	params  []byte
	started bool // written under c.mu; the reader may read it without

	aborted atomic.Bool

	ctx    envCtx
	cancel context.CancelFunc
	body   body
	resp   response
}

type envKey struct{}

// envCtx carries the raw FastCGI params in the request context without the
// allocation of context.WithValue. Embedding the cancel context keeps the
// fast path of context.WithCancel on derived contexts: the context package
// finds the inner *cancelCtx through Value. The map of all params is only
// built if a handler asks for it.
type envCtx struct {
	context.Context
	raw   string // the params stream, already validated
	pairs int
	once  sync.Once
	env   map[string]string
}

func (c *envCtx) Value(key any) any {
	if _, ok := key.(envKey); ok {
		return c
	}
	return c.Context.Value(key)
}

func (c *envCtx) envMap() map[string]string {
	c.once.Do(func() {
		m := make(map[string]string, c.pairs)
		_ = decodeParams(c.raw, func(k, v string) { m[k] = v })
		c.env = m
	})
	return c.env
}

// ProcessEnv returns all FastCGI params of the request r (SCRIPT_NAME,
// PATH_INFO, HTTPS, REMOTE_USER, the HTTP_* headers, ...), or nil if r was
// not received by this package. Unlike net/http/fcgi.ProcessEnv nothing is
// filtered out. The map is built on first use and shared by later calls;
// it must not be modified. Param is cheaper for a few lookups.
func ProcessEnv(r *http.Request) map[string]string {
	if c, ok := r.Context().Value(envKey{}).(*envCtx); ok {
		return c.envMap()
	}
	return nil
}

// Is reports whether r came in over FastCGI through this package.
func Is(r *http.Request) bool {
	_, ok := r.Context().Value(envKey{}).(*envCtx)
	return ok
}

// Param returns the FastCGI param name of the request r without building
// the map of ProcessEnv: a scan of about a kilobyte, no allocation. ok is
// false if the param is absent or r was not received by this package.
func Param(r *http.Request, name string) (value string, ok bool) {
	c, isOurs := r.Context().Value(envKey{}).(*envCtx)
	if !isOurs {
		return "", false
	}
	_ = decodeParams(c.raw, func(k, v string) {
		if k == name {
			value, ok = v, true // the last one wins, as in the map
		}
	})
	return value, ok
}

// commonHeaders maps CGI header names (without HTTP_) to canonical header
// keys, so the usual request headers cost no allocation.
var commonHeaders = func() map[string]string {
	names := []string{
		"Accept", "Accept-Charset", "Accept-Encoding", "Accept-Language",
		"Authorization", "Cache-Control", "Connection", "Content-Length",
		"Content-Type", "Cookie", "Dnt", "Forwarded", "If-Match",
		"If-Modified-Since", "If-None-Match", "If-Range", "If-Unmodified-Since",
		"Origin", "Pragma", "Priority", "Range", "Referer", "Sec-Ch-Ua",
		"Sec-Ch-Ua-Mobile", "Sec-Ch-Ua-Platform", "Sec-Fetch-Dest",
		"Sec-Fetch-Mode", "Sec-Fetch-Site", "Sec-Fetch-User", "Te",
		"Upgrade-Insecure-Requests", "User-Agent", "Via", "X-Forwarded-For",
		"X-Forwarded-Host", "X-Forwarded-Proto", "X-Real-Ip", "X-Request-Id",
		"X-Requested-With",
	}
	m := make(map[string]string, len(names))
	for _, n := range names {
		k := strings.ToUpper(strings.ReplaceAll(n, "-", "_"))
		// Derive the value exactly as the slow path would.
		m[k] = http.CanonicalHeaderKey(strings.ReplaceAll(k, "_", "-"))
	}
	return m
}()

func cgiHeaderKey(name string) string {
	if k, ok := commonHeaders[name]; ok {
		return k
	}
	return http.CanonicalHeaderKey(strings.ReplaceAll(name, "_", "-"))
}

// newHTTPRequest builds the request the way net/http/cgi.RequestFromMap
// does, with deliberate differences: Close is false (the FastCGI connection
// is not closed after the request, and nginx owns the client connection),
// Trailer is nil, RequestURI is set as net/http's server does, and a header
// repeated in params keeps all its values. Header values share one backing
// slice, as net/textproto does.
func newHTTPRequest(ctx context.Context, raw string, v *cgiVars, body io.ReadCloser) (*http.Request, error) {
	var r http.Request // copied by WithContext; stays on the stack
	r.Method = v.method
	if r.Method == "" {
		return nil, errors.New("no REQUEST_METHOD")
	}
	r.Proto = v.proto
	if r.Proto == "INCLUDED" {
		r.ProtoMajor, r.ProtoMinor = 1, 0
	} else {
		var ok bool
		if r.ProtoMajor, r.ProtoMinor, ok = http.ParseHTTPVersion(r.Proto); !ok {
			return nil, errors.New("invalid SERVER_PROTOCOL " + strconv.Quote(r.Proto))
		}
	}
	r.Host = v.host
	if s := v.contentLength; s != "" {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return nil, errors.New("bad CONTENT_LENGTH " + strconv.Quote(s))
		}
		r.ContentLength = n
	}

	n := v.headers
	if v.contentType != "" {
		n++
	}
	r.Header = make(http.Header, n)
	vals := make([]string, n)
	add := func(k, val string) {
		if old, ok := r.Header[k]; ok {
			r.Header[k] = append(old, val)
			return
		}
		vals[0] = val
		r.Header[k] = vals[:1:1]
		vals = vals[1:]
	}
	if v.contentType != "" {
		add("Content-Type", v.contentType)
	}
	if v.headers > 0 {
		_ = decodeParams(raw, func(k, val string) {
			if isHeaderParam(k) {
				add(cgiHeaderKey(k[5:]), val)
			}
		})
	}

	uri := v.requestURI
	if uri == "" {
		uri = v.scriptName + v.pathInfo
		if v.queryString != "" {
			uri += "?" + v.queryString
		}
	}
	r.RequestURI = uri
	if s := v.https; s == "on" || s == "ON" || s == "1" {
		r.TLS = &tls.ConnectionState{HandshakeComplete: true}
	}
	if r.Host != "" {
		scheme := "http://"
		if r.TLS != nil {
			scheme = "https://"
		}
		u, err := url.Parse(scheme + r.Host + uri)
		if err != nil {
			return nil, errors.New("cannot parse host and REQUEST_URI " + strconv.Quote(r.Host+uri))
		}
		r.URL = u
	} else {
		u, err := url.Parse(uri)
		if err != nil {
			return nil, errors.New("cannot parse REQUEST_URI " + strconv.Quote(uri))
		}
		r.URL = u
	}
	r.RemoteAddr = remoteAddr(v.remoteAddr, v.remotePort)
	r.Body = body
	return r.WithContext(ctx), nil
}

// remoteAddr returns what net.JoinHostPort(host, strconv.Itoa(port)) does
// in net/http/cgi, with a single allocation when REMOTE_PORT is already a
// canonical number, as it always is from nginx.
func remoteAddr(host, port string) string {
	canonical := len(port) > 0 && len(port) <= 5 && (port[0] != '0' || len(port) == 1)
	for i := 0; i < len(port) && canonical; i++ {
		canonical = '0' <= port[i] && port[i] <= '9'
	}
	if !canonical {
		p, _ := strconv.Atoi(port) // zero if unset or invalid
		port = strconv.Itoa(p)
	}
	if strings.IndexByte(host, ':') >= 0 {
		return "[" + host + "]:" + port
	}
	return host + ":" + port
}

var bodyBufPool = sync.Pool{New: func() any { b := make([]byte, bodyBufSize); return &b }}

// bodyBufSize bounds how much of one request's STDIN is buffered ahead of
// the handler. When it is full the connection's reader stops reading the
// connection until the handler consumes some (see conn.feedBody).
const bodyBufSize = 64 << 10

var errBodyAborted = errors.New("fastcgi: request aborted by the web server")

// body streams STDIN to the handler. The connection's reader fills
// buf[w:] and the handler drains buf[r:w]. The reader fills outside the
// lock (it reads the connection straight into buf), so while filling is
// set the region past w belongs to it and the buffer must neither be reset
// nor returned to the pool; whoever sees filling cleared does that.
type body struct {
	mu        sync.Mutex
	cond      sync.Cond
	bufp      *[]byte
	buf       []byte
	r, w      int
	filling   bool
	wantSpace bool
	eof       bool  // empty STDIN record seen
	err       error // abort or broken connection
	closed    bool  // handler returned or called Close
}

func (b *body) init() { b.cond.L = &b.mu }

func (b *body) releaseLocked() {
	if b.bufp != nil && !b.filling {
		*b.bufp = b.buf
		bodyBufPool.Put(b.bufp)
		b.bufp, b.buf = nil, nil
		b.r, b.w = 0, 0
	}
}

func (b *body) Read(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for {
		if b.closed {
			return 0, http.ErrBodyReadAfterClose
		}
		if b.r < b.w {
			n := copy(p, b.buf[b.r:b.w])
			b.r += n
			if b.r == b.w {
				if b.eof {
					b.releaseLocked()
				} else if !b.filling {
					b.r, b.w = 0, 0
				}
			}
			if b.wantSpace {
				b.wantSpace = false
				b.cond.Broadcast()
			}
			return n, nil
		}
		if b.eof {
			return 0, io.EOF
		}
		if b.err != nil {
			return 0, b.err
		}
		if len(p) == 0 {
			return 0, nil
		}
		b.cond.Wait()
	}
}

func (b *body) Close() error {
	b.mu.Lock()
	b.closed = true
	b.releaseLocked()
	b.cond.Broadcast()
	b.mu.Unlock()
	return nil
}

func (b *body) setEOF() {
	b.mu.Lock()
	b.eof = true
	if b.r == b.w {
		b.releaseLocked()
	}
	b.cond.Broadcast()
	b.mu.Unlock()
}

func (b *body) sawEOF() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.eof
}

func (b *body) fail(err error) {
	b.mu.Lock()
	if b.err == nil {
		b.err = err
	}
	b.cond.Broadcast()
	b.mu.Unlock()
}

func (b *body) wake() {
	b.mu.Lock()
	b.cond.Broadcast()
	b.mu.Unlock()
}
