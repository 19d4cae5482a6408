package archive

import (
	"compress/gzip"
	"errors"
	"fmt"
	"io"
)

// errStreamTooLarge is what the bounded reader returns past its limit; callers turn it into
// ErrTooLarge with the entry being read.
var errStreamTooLarge = errors.New("decompressed stream exceeds its limit")

// boundedReader passes at most n bytes and then fails, instead of ending quietly as
// io.LimitReader does: a stream cut at the limit must not look like a complete archive.
type boundedReader struct {
	r io.Reader
	n int64
}

func (b *boundedReader) Read(p []byte) (int, error) {
	if b.n <= 0 {
		// At the limit: the stream is fine only if nothing follows.
		var one [1]byte
		for range 100 { // as bufio does, give up on a reader that never makes progress
			k, err := b.r.Read(one[:])
			if k > 0 {
				return 0, errStreamTooLarge
			}
			if err != nil {
				return 0, err
			}
		}
		return 0, io.ErrNoProgress
	}
	if int64(len(p)) > b.n {
		p = p[:b.n]
	}
	k, err := b.r.Read(p)
	b.n -= int64(k)
	return k, err
}

// stream is the decompressed side of a package.
type stream struct {
	gz *gzip.Reader
	*boundedReader
}

func openStream(r io.Reader, limit int64) (*stream, error) {
	gz, err := gzip.NewReader(r)
	if err != nil {
		return nil, fmt.Errorf("archive: %w: not a gzip stream: %v", ErrCorrupt, err)
	}
	return &stream{gz: gz, boundedReader: &boundedReader{r: gz, n: limit}}, nil
}

// finish reads what follows the tar end marker (normally zero padding) so that gzip checks its
// CRC and length: a package whose tail is damaged is refused rather than half trusted.
func (s *stream) finish() error {
	_, err := io.Copy(io.Discard, s.boundedReader)
	if err != nil {
		return streamError("after the end of the tar archive", err)
	}
	return nil
}

// streamError classifies an error from reading the decompressed stream; where says which
// entry was being read, if any.
func streamError(where string, err error) error {
	prefix := "archive: "
	if where != "" {
		prefix += where + ": "
	}
	if errors.Is(err, errStreamTooLarge) {
		return fmt.Errorf("%s%w: the decompressed stream passes its limit", prefix, ErrTooLarge)
	}
	return fmt.Errorf("%s%w: %w", prefix, ErrCorrupt, err)
}

func inEntry(name string) string {
	return "entry " + displayName(name)
}

// afterEntry names where a stream broke between entries (or while skipping one's padding).
func afterEntry(name string) string {
	if name == "" {
		return "at the first entry"
	}
	return "after entry " + displayName(name)
}
