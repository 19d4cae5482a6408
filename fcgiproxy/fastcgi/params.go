package fastcgi

import (
	"errors"
	"strconv"
)

var (
	errParamsTruncated = errors.New("truncated name-value pair")
)

// readParamLen decodes one length prefix: one byte when the high bit is
// clear, otherwise four bytes with the high bit masked off (so at most
// 2^31-1). ok is false when s is too short to hold the prefix.
func readParamLen(s string) (n uint32, size int, ok bool) {
	if len(s) == 0 {
		return 0, 0, false
	}
	if s[0]>>7 == 0 {
		return uint32(s[0]), 1, true
	}
	if len(s) < 4 {
		return 0, 0, false
	}
	n = uint32(s[0]&0x7f)<<24 | uint32(s[1])<<16 | uint32(s[2])<<8 | uint32(s[3])
	return n, 4, true
}

// decodeParams calls fn for every name-value pair in s, in order. The
// names and values are substrings of s, so a caller that converts the raw
// record bytes to one string pays for a single allocation for all params.
// Lengths are checked against what is left of s before use, in 64-bit
// arithmetic, so absurd prefixes (up to 2^31 each) can neither allocate nor
// overflow; they are reported as errParamsTruncated.
func decodeParams(s string, fn func(name, value string)) error {
	for len(s) > 0 {
		nl, k1, ok := readParamLen(s)
		if !ok {
			return errParamsTruncated
		}
		vl, k2, ok := readParamLen(s[k1:])
		if !ok {
			return errParamsTruncated
		}
		s = s[k1+k2:]
		if uint64(nl)+uint64(vl) > uint64(len(s)) {
			return errParamsTruncated
		}
		fn(s[:nl], s[nl:nl+vl])
		s = s[nl+vl:]
	}
	return nil
}

// cgiVars holds the params that shape the *http.Request, picked out in a
// single pass so that no map of all params is needed per request.
type cgiVars struct {
	method, proto, host, contentLength, contentType, requestURI,
	scriptName, pathInfo, queryString, https, remoteAddr, remotePort string
	pairs, headers int
}

// scanParams decodes s once. As with a map, the last of duplicate names
// wins.
func scanParams(s string) (v cgiVars, err error) {
	err = decodeParams(s, func(name, value string) {
		v.pairs++
		switch name {
		case "REQUEST_METHOD":
			v.method = value
		case "SERVER_PROTOCOL":
			v.proto = value
		case "HTTP_HOST":
			v.host = value
		case "CONTENT_LENGTH":
			v.contentLength = value
		case "CONTENT_TYPE":
			v.contentType = value
		case "REQUEST_URI":
			v.requestURI = value
		case "SCRIPT_NAME":
			v.scriptName = value
		case "PATH_INFO":
			v.pathInfo = value
		case "QUERY_STRING":
			v.queryString = value
		case "HTTPS":
			v.https = value
		case "REMOTE_ADDR":
			v.remoteAddr = value
		case "REMOTE_PORT":
			v.remotePort = value
		default:
			if isHeaderParam(name) {
				v.headers++
			}
		}
	})
	return v, err
}

// isHeaderParam reports whether a param carries a request header.
// HTTP_HOST becomes Request.Host instead, as in net/http/cgi.
func isHeaderParam(name string) bool {
	return len(name) > 5 && name[:5] == "HTTP_" && name != "HTTP_HOST"
}

func appendParamLen(dst []byte, n int) []byte {
	if n <= 127 {
		return append(dst, byte(n))
	}
	return append(dst, byte(n>>24)|0x80, byte(n>>16), byte(n>>8), byte(n))
}

// appendParam encodes one name-value pair. Lengths beyond 2^31-1 cannot be
// represented; callers only encode short management values.
func appendParam(dst []byte, name, value string) []byte {
	dst = appendParamLen(dst, len(name))
	dst = appendParamLen(dst, len(value))
	dst = append(dst, name...)
	return append(dst, value...)
}

func appendParamInt(dst []byte, name string, v int) []byte {
	var b [20]byte
	return appendParam(dst, name, string(strconv.AppendInt(b[:0], int64(v), 10)))
}
