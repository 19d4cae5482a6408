package fastcgi

import "encoding/binary"

// Wire constants from the FastCGI 1.0 specification.
const (
	version1 = 1

	typeBeginRequest    = 1
	typeAbortRequest    = 2
	typeEndRequest      = 3
	typeParams          = 4
	typeStdin           = 5
	typeStdout          = 6
	typeStderr          = 7
	typeData            = 8
	typeGetValues       = 9
	typeGetValuesResult = 10
	typeUnknownType     = 11

	roleResponder = 1

	flagKeepConn = 1

	statusRequestComplete = 0
	statusCantMultiplex   = 1
	statusOverloaded      = 2
	statusUnknownRole     = 3

	headerLen = 8
	// maxContent is the largest contentLength a record header can carry.
	maxContent = 65535
	// maxDirectChunk is maxContent rounded down to a multiple of 8, so the
	// chunks of a large write need no padding except the last one.
	maxDirectChunk = maxContent &^ 7
	// endLen is what finishing a request appends: an empty STDOUT record
	// plus an END_REQUEST record (header and 8-byte body).
	endLen = 2*headerLen + 8
)

// zeros supplies padding bytes; padding is at most 7 bytes for our own
// records and the spec allows 255 for the peer's, which we only discard.
var zeros [8]byte

type header struct {
	version    uint8
	typ        uint8
	id         uint16
	contentLen uint16
	padLen     uint8
}

func parseHeader(b *[headerLen]byte) header {
	return header{
		version:    b[0],
		typ:        b[1],
		id:         binary.BigEndian.Uint16(b[2:4]),
		contentLen: binary.BigEndian.Uint16(b[4:6]),
		padLen:     b[6],
	}
}

// padLen returns the padding that rounds n up to a multiple of 8. The spec
// only recommends alignment, but aligned records let nginx copy less.
func padLen(n int) int { return -n & 7 }

func putHeader(b []byte, typ uint8, id uint16, contentLen, pad int) {
	_ = b[7]
	b[0] = version1
	b[1] = typ
	binary.BigEndian.PutUint16(b[2:4], id)
	binary.BigEndian.PutUint16(b[4:6], uint16(contentLen))
	b[6] = uint8(pad)
	b[7] = 0
}

func appendHeader(dst []byte, typ uint8, id uint16, contentLen, pad int) []byte {
	var h [headerLen]byte
	putHeader(h[:], typ, id, contentLen, pad)
	return append(dst, h[:]...)
}

// appendRecords appends content as one or more padded records of type typ.
// An empty content yields a single empty record, which is how a stream
// is terminated.
func appendRecords(dst []byte, typ uint8, id uint16, content []byte) []byte {
	for {
		n := min(len(content), maxDirectChunk)
		pad := padLen(n)
		dst = appendHeader(dst, typ, id, n, pad)
		dst = append(dst, content[:n]...)
		dst = append(dst, zeros[:pad]...)
		content = content[n:]
		if len(content) == 0 {
			return dst
		}
	}
}

func appendEndRequest(dst []byte, id uint16, appStatus uint32, protoStatus uint8) []byte {
	dst = appendHeader(dst, typeEndRequest, id, 8, 0)
	var b [8]byte
	binary.BigEndian.PutUint32(b[0:4], appStatus)
	b[4] = protoStatus
	return append(dst, b[:]...)
}

func appendUnknownType(dst []byte, typ uint8) []byte {
	dst = appendHeader(dst, typeUnknownType, 0, 8, 0)
	var b [8]byte
	b[0] = typ
	return append(dst, b[:]...)
}
