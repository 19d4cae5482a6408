package archive

import (
	"archive/tar"
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
)

// ReadFile returns the content of one regular file, such as "manifest.json", from a
// gzip-compressed tar stream without unpacking it. It reads at most maxBytes of that file
// (DefaultLimits().MaxFileBytes when maxBytes <= 0) and fails with ErrTooLarge past it.
//
// It reads the whole stream, bounded as Unpack bounds it with DefaultLimits, because a name may
// repeat and Unpack keeps the last: the file returned here is the one Unpack would leave, so a
// package cannot show one manifest to validation and install another. A name that ends as
// anything but a regular file is refused with ErrUnsafe; a missing one wraps fs.ErrNotExist.
func ReadFile(r io.Reader, name string, maxBytes int64) ([]byte, error) {
	return readFile(r, name, maxBytes, DefaultLimits())
}

// readFile is ReadFile with the stream bounded by lim, so tests can reach the bounds cheaply.
func readFile(r io.Reader, name string, maxBytes int64, lim Limits) ([]byte, error) {
	want, reason := cleanName(name)
	if reason != "" {
		return nil, fmt.Errorf("archive: read %q: %s: %w", name, reason, fs.ErrInvalid)
	}
	lim = lim.withDefaults()
	if maxBytes <= 0 {
		maxBytes = lim.MaxFileBytes
	}
	s, err := openStream(r, lim.streamLimit())
	if err != nil {
		return nil, err
	}
	tr := tar.NewReader(s)
	var (
		found   bool
		kind    byte
		content []byte
		last    string
		entries int
	)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil && !(hdr != nil && errors.Is(err, tar.ErrInsecurePath)) {
			return nil, streamError(afterEntry(last), err)
		}
		last = hdr.Name
		if hdr.Typeflag == tar.TypeXGlobalHeader {
			continue
		}
		if entries++; entries > lim.MaxFiles {
			return nil, entryError(hdr.Name, ErrTooManyFiles, "more than %d entries", lim.MaxFiles)
		}
		if got, reason := cleanName(hdr.Name); reason != "" || got != want {
			continue
		}
		found, kind, content = true, hdr.Typeflag, nil
		if kind != tar.TypeReg && kind != tar.TypeGNUSparse {
			continue
		}
		if hdr.Size > maxBytes {
			return nil, entryError(hdr.Name, ErrTooLarge, "file exceeds %d bytes", maxBytes)
		}
		var buf bytes.Buffer
		n, err := copyBounded(&buf, tr, maxBytes)
		switch {
		case errors.Is(err, errLimit):
			return nil, entryError(hdr.Name, ErrTooLarge, "file exceeds %d bytes (read %d)", maxBytes, n)
		case err != nil:
			return nil, streamError(inEntry(hdr.Name), err)
		}
		content = buf.Bytes()
	}
	if err := s.finish(); err != nil {
		return nil, err
	}
	switch {
	case !found:
		return nil, fmt.Errorf("archive: %q: %w", name, fs.ErrNotExist)
	case kind != tar.TypeReg && kind != tar.TypeGNUSparse:
		return nil, entryError(name, ErrUnsafe, "is a %s, not a regular file", typeName(kind))
	}
	return content, nil
}

func typeName(t byte) string {
	switch t {
	case tar.TypeDir:
		return "directory"
	case tar.TypeSymlink:
		return "symlink"
	case tar.TypeLink:
		return "hard link"
	case tar.TypeChar, tar.TypeBlock:
		return "device"
	case tar.TypeFifo:
		return "FIFO"
	}
	return fmt.Sprintf("entry of type %q", t)
}
