package files

import (
	"fmt"
	"net/url"
	"strconv"
	"time"
)

// parseURI reads a file:// URI:
//
//	file:///abs/path           absolute (file://localhost/abs/path too)
//	file://./rel, file://../x  relative to the working directory
//	file:rel/path              relative, in the opaque form
//
// with optional query parameters max-log-lines (a count), max-log-bytes (a
// size in bytes) and max-log-age (a Go duration); a negative value turns that bound off. Unknown parameters
// are errors, so that a typo does not silently fall back to a default.
func parseURI(u *url.URL) (string, Options, error) {
	var opts Options
	fail := func(format string, a ...any) (string, Options, error) {
		return "", opts, fmt.Errorf("files: uri %q: "+format, append([]any{u.Redacted()}, a...)...)
	}
	if u.Scheme != "file" {
		return fail("scheme is not file")
	}
	if u.User != nil || u.Fragment != "" {
		return fail("user info and fragments have no meaning here")
	}

	var dir string
	switch {
	case u.Opaque != "":
		p, err := url.PathUnescape(u.Opaque)
		if err != nil {
			return fail("%v", err)
		}
		dir = p
	case u.Host == "" || u.Host == "localhost":
		dir = u.Path
	case u.Host == "." || u.Host == "..":
		// url.Parse takes the leading "." of file://./rel for a host.
		dir = u.Host + u.Path
	default:
		return fail("host %q: only local paths are supported (file:///abs/path or file://./rel)", u.Host)
	}
	if dir == "" {
		return fail("no path")
	}

	query, err := url.ParseQuery(u.RawQuery)
	if err != nil {
		return fail("query: %v", err)
	}
	for name, vals := range query {
		if len(vals) != 1 {
			return fail("%s given %d times", name, len(vals))
		}
		v := vals[0]
		switch name {
		case "max-log-lines":
			n, err := strconv.Atoi(v)
			if err != nil || n == 0 {
				return fail("max-log-lines %q: want a non-zero integer", v)
			}
			opts.MaxLogLines = n
		case "max-log-bytes":
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil || n == 0 {
				return fail("max-log-bytes %q: want a non-zero integer", v)
			}
			opts.MaxLogBytes = n
		case "max-log-age":
			d, err := time.ParseDuration(v)
			if err != nil || d == 0 {
				return fail("max-log-age %q: want a non-zero duration such as 24h", v)
			}
			opts.MaxLogAge = d
		default:
			return fail("unknown parameter %q", name)
		}
	}
	return dir, opts, nil
}
