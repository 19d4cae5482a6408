package fastcgi

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
)

const (
	respBufSize = 16 << 10
	// respWindow is how much STDOUT content is buffered before a record
	// goes out. The rest of the buffer is room for padding and the closing
	// records, so the common response is one write of one buffer.
	respWindow = respBufSize - headerLen - 8 - endLen
	sniffLen   = 512
	// maxPooledBuf keeps a buffer that grew for a giant header out of the
	// pool, so one odd response does not pin memory forever.
	maxPooledBuf = 4 * respBufSize
)

var respBufPool = sync.Pool{New: func() any { b := make([]byte, 0, respBufSize); return &b }}

var errWriteAfterFinish = errors.New("fastcgi: Write after the handler returned")

// response implements http.ResponseWriter and http.Flusher.
//
// The body is buffered in buf behind a reserved record-header slot:
// buf[:headerLen] is filled in when the record is written, so a record
// costs no copy and the final STDOUT, the empty STDOUT and END_REQUEST go
// out in a single write. The CGI header block is produced lazily (on
// overflow, Flush or finish) so that Content-Type can be sniffed and
// Content-Length set for bodies that fit the buffer, as net/http does.
type response struct {
	req         *request
	header      http.Header
	status      int
	wroteHeader bool // status fixed
	sentHeader  bool // CGI header block is in buf or on the wire
	isHead      bool
	done        bool
	headBytes   int64  // bytes a HEAD handler wrote (and we dropped)
	ctype       string // sniffed before the header went out (HEAD only)
	bufp        *[]byte
	buf         []byte
	err         error // sticky connection write error

	direct *directScratch // allocated by the first large write
}

// directScratch lets a large write go out by writev without allocating
// per call; most responses never need it.
type directScratch struct {
	iov  [9][]byte
	hdrs [4][headerLen]byte
	nb   net.Buffers
}

func (w *response) Header() http.Header {
	if w.header == nil {
		w.header = make(http.Header)
	}
	return w.header
}

func (w *response) WriteHeader(code int) {
	if code < 100 || code > 999 {
		panic(fmt.Sprintf("invalid WriteHeader code %v", code))
	}
	if w.wroteHeader || w.done {
		return
	}
	// CGI has no way to send interim (1xx) responses ahead of the final
	// one; dropping them is what a proxy without 1xx support would do.
	if code < 200 && code != http.StatusSwitchingProtocols {
		return
	}
	w.wroteHeader = true
	w.status = code
}

func bodyAllowed(status int) bool {
	return (status < 100 || status > 199) && status != http.StatusNoContent && status != http.StatusNotModified
}

func (w *response) Write(p []byte) (int, error) { return writeBody(w, p) }

func (w *response) WriteString(s string) (int, error) { return writeBody(w, s) }

func writeBody[S ~string | ~[]byte](w *response, p S) (int, error) {
	if w.done {
		return 0, errWriteAfterFinish
	}
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	if !bodyAllowed(w.status) {
		return 0, http.ErrBodyNotAllowed
	}
	if w.err != nil {
		return 0, w.err
	}
	if w.req.aborted.Load() {
		return 0, errBodyAborted
	}
	if w.isHead {
		if !w.sentHeader {
			w.headBytes += int64(len(p))
			if w.ctype == "" && len(p) > 0 {
				w.ctype = http.DetectContentType([]byte(p[:min(len(p), sniffLen)]))
			}
		}
		return len(p), nil
	}
	if w.buf == nil {
		w.getBuf()
	}
	if !w.sentHeader {
		if len(w.buf)-headerLen+len(p) <= respWindow {
			w.buf = append(w.buf, p...)
			return len(p), nil
		}
		w.sendHeader(-1)
	}
	n := len(p)
	for len(p) > 0 && w.err == nil {
		content := len(w.buf) - headerLen
		free := respWindow - content
		switch {
		case len(p) <= free:
			w.buf = append(w.buf, p...)
			p = p[:0]
		case len(p) >= respWindow && !isString(p):
			// Large writes skip the copy: flush what is buffered and
			// hand the caller's bytes to writev.
			w.flushBuf()
			w.writeDirect([]byte(p))
			p = p[:0]
		default:
			if free > 0 {
				w.buf = append(w.buf, p[:free]...)
				p = p[free:]
			}
			w.flushBuf()
		}
	}
	if w.err != nil {
		return 0, w.err
	}
	return n, nil
}

func isString[S ~string | ~[]byte](p S) bool {
	_, ok := any(p).(string)
	return ok
}

func (w *response) getBuf() {
	w.bufp = respBufPool.Get().(*[]byte)
	w.buf = append((*w.bufp)[:0], zeros[:]...) // record header slot
}

func (w *response) release() {
	if w.bufp != nil && cap(w.buf) <= maxPooledBuf {
		*w.bufp = w.buf[:0]
		respBufPool.Put(w.bufp)
	}
	w.bufp, w.buf = nil, nil
	w.done = true
}

// Flush implements http.Flusher: everything buffered, including the header
// block, is written as a STDOUT record at once. With fastcgi_buffering off
// nginx forwards each record to the client as it arrives.
func (w *response) Flush() { _ = w.FlushError() }

// FlushError is preferred by http.ResponseController.
func (w *response) FlushError() error {
	if w.done {
		return errWriteAfterFinish
	}
	if w.err != nil {
		return w.err
	}
	if w.req.aborted.Load() {
		return errBodyAborted
	}
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	if w.buf == nil {
		w.getBuf()
	}
	if !w.sentHeader {
		w.sendHeader(-1)
	}
	w.flushBuf()
	return w.err
}

// sendHeader appends the CGI header block to buf and moves it in front of
// the body bytes buffered so far. contentLength < 0 means unknown.
func (w *response) sendHeader(contentLength int64) {
	w.sentHeader = true
	pend := len(w.buf) - headerLen
	b := w.buf
	start := len(b)

	b = append(b, "Status: "...)
	b = strconv.AppendInt(b, int64(w.status), 10)
	b = append(b, ' ')
	if text := http.StatusText(w.status); text != "" {
		b = append(b, text...)
	} else {
		b = append(b, "Unknown"...)
	}
	b = append(b, "\r\n"...)

	allowed := bodyAllowed(w.status)
	if _, haveType := w.header["Content-Type"]; !haveType && allowed && w.header.Get("Content-Encoding") == "" {
		ct := w.ctype
		if ct == "" && pend > 0 {
			ct = http.DetectContentType(w.buf[headerLen : headerLen+min(pend, sniffLen)])
		}
		if ct != "" {
			b = append(b, "Content-Type: "...)
			b = append(b, ct...)
			b = append(b, "\r\n"...)
		}
	}
	for k, vv := range w.header {
		if !sendableHeader(k) {
			continue
		}
		for _, v := range vv {
			b = append(b, k...)
			b = append(b, ": "...)
			b = appendHeaderValue(b, v)
			b = append(b, "\r\n"...)
		}
	}
	if contentLength >= 0 && allowed {
		b = append(b, "Content-Length: "...)
		b = strconv.AppendInt(b, contentLength, 10)
		b = append(b, "\r\n"...)
	}
	b = append(b, "\r\n"...)

	// Rotate so the header block precedes the pending body. The header
	// is usually a few hundred bytes, so it goes through a stack copy.
	hl := len(b) - start
	if pend > 0 {
		var tmp [1024]byte
		var h []byte
		if hl <= len(tmp) {
			h = tmp[:hl]
		} else {
			h = make([]byte, hl)
		}
		copy(h, b[start:])
		copy(b[headerLen+hl:], b[headerLen:start])
		copy(b[headerLen:], h)
	}
	w.buf = b
}

// sendableHeader drops what cannot or must not reach the web server as a
// CGI header: Status (we write our own), Transfer-Encoding (STDOUT is not
// chunk-encoded), trailer declarations, and names that would let a handler
// inject lines.
func sendableHeader(k string) bool {
	if k == "" || k == "Status" || k == "Transfer-Encoding" || strings.HasPrefix(k, http.TrailerPrefix) {
		return false
	}
	for i := 0; i < len(k); i++ {
		c := k[i]
		if c <= ' ' || c >= 0x7f || c == ':' {
			return false
		}
	}
	return true
}

// appendHeaderValue replaces CR and LF by spaces, as net/http does, so a
// value cannot start a new header line.
func appendHeaderValue(b []byte, v string) []byte {
	if !strings.ContainsAny(v, "\r\n") {
		return append(b, v...)
	}
	for i := 0; i < len(v); i++ {
		c := v[i]
		if c == '\r' || c == '\n' {
			c = ' '
		}
		b = append(b, c)
	}
	return b
}

// flushBuf writes the buffered content as one STDOUT record.
func (w *response) flushBuf() {
	n := len(w.buf) - headerLen
	if n == 0 || w.err != nil {
		return
	}
	if n > maxContent { // only a header block larger than a record
		w.writeDirect(w.buf[headerLen:])
		w.buf = w.buf[:headerLen]
		return
	}
	pad := padLen(n)
	w.buf = append(w.buf, zeros[:pad]...)
	putHeader(w.buf, typeStdout, w.req.id, n, pad)
	w.err = w.req.c.write(w.buf)
	w.buf = w.buf[:headerLen]
}

// writeDirect writes p as STDOUT records straight from the caller's
// memory, up to four records per writev.
func (w *response) writeDirect(p []byte) {
	if w.direct == nil {
		w.direct = new(directScratch)
	}
	d := w.direct
	for len(p) > 0 && w.err == nil {
		iov := d.iov[:0]
		for i := 0; i < len(d.hdrs) && len(p) > 0; i++ {
			n := min(len(p), maxDirectChunk)
			pad := padLen(n)
			putHeader(d.hdrs[i][:], typeStdout, w.req.id, n, pad)
			iov = append(iov, d.hdrs[i][:], p[:n])
			if pad > 0 {
				iov = append(iov, zeros[:pad])
			}
			p = p[n:]
		}
		d.nb = net.Buffers(iov)
		w.err = w.req.c.writev(&d.nb)
	}
}

// finish completes the response after the handler returned: header block
// if still pending (with Content-Length when the whole body is buffered),
// the last STDOUT record, the empty STDOUT that ends the stream and
// END_REQUEST, all in one write when they fit the buffer.
func (w *response) finish() {
	if w.done {
		return
	}
	defer w.release()
	if w.err != nil {
		return
	}
	if w.buf == nil {
		w.getBuf()
	}
	off := 0
	if w.req.aborted.Load() {
		// The web server no longer wants the output; END_REQUEST is
		// still owed.
		w.buf = w.buf[:headerLen]
		off = headerLen
	} else {
		if !w.wroteHeader {
			w.WriteHeader(http.StatusOK)
		}
		if !w.sentHeader {
			cl := int64(-1)
			_, hasCL := w.header["Content-Length"]
			_, hasTE := w.header["Transfer-Encoding"]
			if !hasCL && !hasTE {
				if !w.isHead {
					cl = int64(len(w.buf) - headerLen)
				} else if w.headBytes > 0 {
					cl = w.headBytes
				}
			}
			w.sendHeader(cl)
		}
		if len(w.buf)-headerLen > maxContent {
			w.flushBuf()
		}
		if n := len(w.buf) - headerLen; n > 0 {
			pad := padLen(n)
			w.buf = append(w.buf, zeros[:pad]...)
			putHeader(w.buf, typeStdout, w.req.id, n, pad)
		} else {
			off = headerLen
		}
		w.buf = appendHeader(w.buf, typeStdout, w.req.id, 0, 0)
	}
	w.buf = appendEndRequest(w.buf, w.req.id, 0, statusRequestComplete)
	if w.err == nil {
		w.err = w.req.c.write(w.buf[off:])
	}
}

// resetForPanic replaces whatever a panicking handler buffered by a plain
// 500, which is only possible while nothing has reached the wire.
func (w *response) resetForPanic() {
	if w.buf != nil {
		w.buf = w.buf[:headerLen]
	}
	w.header = http.Header{
		"Content-Type":           {"text/plain; charset=utf-8"},
		"X-Content-Type-Options": {"nosniff"},
	}
	w.wroteHeader, w.sentHeader = true, false
	w.status = http.StatusInternalServerError
	w.headBytes, w.ctype = 0, ""
	if !w.isHead {
		_, _ = w.WriteString("Internal Server Error\n")
	}
}
