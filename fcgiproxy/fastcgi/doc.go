// Package fastcgi serves http.Handlers over FastCGI (Responder role) for a
// web server such as nginx (fastcgi_pass).
//
// Compared with net/http/fcgi it keeps FCGI_KEEP_CONN connections and
// multiplexed requests cheap: buffers are pooled, a response usually leaves
// in one write (last STDOUT, empty STDOUT and END_REQUEST coalesced), the
// request body streams to the handler as STDIN arrives with bounded
// buffering, and FCGI_GET_VALUES, FCGI_ABORT_REQUEST and unknown record
// types are answered as the FastCGI 1.0 specification asks.
//
// All FastCGI params are available to handlers through ProcessEnv; the
// *http.Request is built from them as net/http/cgi.RequestFromMap does.
//
// Typical nginx configuration, with connection reuse:
//
//	upstream app { server unix:/run/app.sock; keepalive 16; }
//	location / {
//	    include fastcgi_params;
//	    fastcgi_keep_conn on;
//	    fastcgi_pass app;
//	}
//
// With "fastcgi_buffering off" every Flush of a handler reaches the client
// as it happens.
//
// Request bodies: each request buffers at most 64 KiB of STDIN ahead of its
// handler. FastCGI has no per-request flow control, so when that buffer is
// full the server stops reading the connection until the handler reads
// (or returns, or the request is aborted). On a multiplexed connection this
// stalls the other requests' input too; their handlers keep running and
// writing. nginx does not multiplex, so there it is ordinary backpressure.
// Likewise a web server that stops reading responses blocks every writer on
// that connection.
//
// Handler panics: before any output reached the wire the response becomes a
// 500 and the connection stays usable; afterwards the connection is closed
// so the web server reports a broken upstream instead of passing a
// truncated response as complete.
//
// There are no read, write or idle timeouts: the web server's own
// (fastcgi_read_timeout, fastcgi_send_timeout, keepalive_timeout) close the
// connection, which cancels the contexts of its requests.
package fastcgi
