// Package archive packs and unpacks app packages: gzip-compressed tar streams with
// manifest.json at the root.
//
// Packages come from users, so Unpack treats every archive as hostile. It writes only beneath
// the target directory, never through a symlink, keeps no device or special files, drops
// setuid, setgid and sticky bits, and counts the bytes it actually decompresses rather than
// trusting headers. When it fails, it may leave partial content inside the target directory,
// so callers unpack into a fresh temporary directory and rename it into place on success.
package archive

import (
	"errors"
	"fmt"
	"math"
)

// Sentinels that Unpack, ReadFile and Pack wrap; the wrapping error names the entry.
var (
	// ErrUnsafe marks an entry that would reach outside the target directory (absolute or
	// ".." paths, symlinks or hard links leading out, writes through a symlink) or that is not
	// a regular file, directory or link (devices, FIFOs).
	ErrUnsafe = errors.New("unsafe entry")
	// ErrTooLarge marks an archive whose unpacked data, or one of whose files, exceeds Limits.
	ErrTooLarge = errors.New("archive too large")
	// ErrTooManyFiles marks an archive with more entries than Limits.MaxFiles.
	ErrTooManyFiles = errors.New("too many entries")
	// ErrCorrupt marks a stream that is not valid gzip or tar, is truncated, or whose entries
	// contradict each other (a file where an earlier entry needs a directory).
	ErrCorrupt = errors.New("corrupt archive")
)

// Limits bound what Unpack writes. A zero or negative field takes its default.
type Limits struct {
	// MaxBytes bounds the total bytes of all files (default 256 MiB).
	MaxBytes int64
	// MaxFiles bounds the number of entries of any kind (default 10000).
	MaxFiles int
	// MaxFileBytes bounds the bytes of any one file (default 128 MiB).
	MaxFileBytes int64
}

// DefaultLimits returns the limits used for app packages.
func DefaultLimits() Limits {
	return Limits{MaxBytes: 256 << 20, MaxFiles: 10000, MaxFileBytes: 128 << 20}
}

func (l Limits) withDefaults() Limits {
	d := DefaultLimits()
	if l.MaxBytes <= 0 {
		l.MaxBytes = d.MaxBytes
	}
	if l.MaxFiles <= 0 {
		l.MaxFiles = d.MaxFiles
	}
	if l.MaxFileBytes <= 0 {
		l.MaxFileBytes = d.MaxFileBytes
	}
	return l
}

// Every entry costs a 512-byte header, up to 511 bytes of padding and, with long names, PAX
// records; 8 KiB each is generous for real archives and still bounds a stream that is all
// headers, skipped data or trailing zeros.
const (
	entryOverhead  = 8 << 10
	streamOverhead = 1 << 20
)

// streamLimit bounds the decompressed tar stream as a whole, so that a gzip bomb is cut off
// after a bounded amount of work even where no file data is written (directory entries that
// claim a size, padding after the end of the archive).
func (l Limits) streamLimit() int64 {
	if int64(l.MaxFiles) > (math.MaxInt64-streamOverhead)/entryOverhead {
		return math.MaxInt64
	}
	n := l.MaxBytes
	for _, add := range []int64{int64(l.MaxFiles) * entryOverhead, streamOverhead} {
		if n > math.MaxInt64-add {
			return math.MaxInt64
		}
		n += add
	}
	return n
}

func entryError(name string, sentinel error, format string, args ...any) error {
	return fmt.Errorf("archive: entry %s: %w: %s", displayName(name), sentinel, fmt.Sprintf(format, args...))
}

// displayName quotes an entry name for messages, shortened: a hostile name can be megabytes.
func displayName(name string) string {
	const max = 200
	if len(name) > max {
		return fmt.Sprintf("%q... (%d bytes)", name[:max], len(name))
	}
	return fmt.Sprintf("%q", name)
}
