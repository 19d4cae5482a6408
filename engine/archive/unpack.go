package archive

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"strings"
)

// Unpack extracts a gzip-compressed tar stream into dir, which must be empty or not yet exist
// (its parent must). Every entry is checked before anything is written for it; the first
// refused entry stops extraction with an error wrapping ErrUnsafe, ErrTooLarge,
// ErrTooManyFiles or ErrCorrupt and naming the entry.
//
// Nothing is ever written outside dir. On error, dir may hold part of the archive: unpack into
// a fresh temporary directory, and rename it into place only when Unpack succeeds. Whatever
// the outcome, no symlink left in dir leads outside it.
//
// Regular files get mode 0755 when any executable bit is set and 0644 otherwise, directories
// 0755; owners, times, setuid, setgid and sticky bits are not kept. When a name repeats, the
// later entry replaces the earlier one, and a symlink placed by an earlier entry is replaced,
// never followed.
func Unpack(r io.Reader, dir string, lim Limits) (err error) {
	lim = lim.withDefaults()
	if err := prepareDir(dir); err != nil {
		return err
	}
	// os.Root resolves every name beneath dir with openat and O_NOFOLLOW per component, so
	// even a check this code forgot cannot be turned into a write outside dir.
	root, err := os.OpenRoot(dir)
	if err != nil {
		return fmt.Errorf("archive: %w", err)
	}
	defer root.Close()

	u := &unpacker{root: root, lim: lim, kinds: map[string]entryKind{}}
	defer func() {
		if verr := u.verifySymlinks(); err == nil {
			err = verr
		}
	}()

	s, err := openStream(r, lim.streamLimit())
	if err != nil {
		return err
	}
	tr := tar.NewReader(s)
	entries := 0
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			if hdr != nil && errors.Is(err, tar.ErrInsecurePath) {
				return entryError(hdr.Name, ErrUnsafe, "insecure path")
			}
			return streamError(afterEntry(u.last), err)
		}
		if hdr.Typeflag == tar.TypeXGlobalHeader {
			// archive/tar does not apply global PAX records to later entries, and neither does
			// Unpack: each entry is judged by its own header, the same one ReadFile sees.
			continue
		}
		entries++
		if entries > lim.MaxFiles {
			return entryError(hdr.Name, ErrTooManyFiles, "more than %d entries", lim.MaxFiles)
		}
		u.last = hdr.Name
		if err := u.extract(hdr, tr); err != nil {
			return err
		}
	}
	return s.finish()
}

// prepareDir makes dir if it does not exist and refuses it if it holds anything: whatever is
// there would be mixed with the package, and a symlink there could be written through.
func prepareDir(dir string) error {
	fi, err := os.Stat(dir)
	if errors.Is(err, fs.ErrNotExist) {
		if err := os.Mkdir(dir, 0o755); err != nil {
			return fmt.Errorf("archive: create target: %w", err)
		}
		return nil
	}
	if err != nil {
		return fmt.Errorf("archive: target: %w", err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("archive: target %s is not a directory", dir)
	}
	f, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("archive: target: %w", err)
	}
	defer f.Close()
	names, err := f.Readdirnames(1)
	if len(names) > 0 {
		return fmt.Errorf("archive: target %s is not empty: %w", dir, fs.ErrExist)
	}
	if err != nil && err != io.EOF {
		return fmt.Errorf("archive: target: %w", err)
	}
	return nil
}

type entryKind int

const (
	kindDir entryKind = iota + 1
	kindFile
	kindSymlink
)

type unpacker struct {
	root *os.Root
	lim  Limits
	// kinds records what the archive has put at each cleaned name (implicit parents included);
	// the target was empty, so nothing else is there.
	kinds map[string]entryKind
	// symlinks lists every symlink created, for the final check that none leads out.
	symlinks []string
	// written counts file bytes actually written, against Limits.MaxBytes.
	written int64
	// last is the entry being read, to name it when the stream breaks inside it.
	last string
}

func (u *unpacker) extract(hdr *tar.Header, tr io.Reader) error {
	name, reason := cleanName(hdr.Name)
	if reason != "" {
		return entryError(hdr.Name, ErrUnsafe, "%s", reason)
	}
	switch hdr.Typeflag {
	case tar.TypeDir:
		if name == "." {
			return nil // the target itself; its mode is the caller's
		}
		if err := u.parents(hdr.Name, name); err != nil {
			return err
		}
		return u.mkdir(hdr.Name, name)
	case tar.TypeReg, tar.TypeGNUSparse:
		return u.file(hdr, name, tr)
	case tar.TypeSymlink:
		return u.symlink(hdr, name)
	case tar.TypeLink:
		return u.hardlink(hdr, name)
	case tar.TypeChar, tar.TypeBlock, tar.TypeFifo:
		return entryError(hdr.Name, ErrUnsafe, "device and FIFO entries are not allowed")
	default:
		return entryError(hdr.Name, ErrUnsafe, "unsupported entry type %q", hdr.Typeflag)
	}
}

// parents makes sure every parent of name is a real directory made by this archive, creating
// missing ones. A parent that is a symlink is refused even when it points inside: writing
// through links is how "link -> /etc" then "link/passwd" escapes, and tar never produces an
// entry beneath a symlink itself.
func (u *unpacker) parents(raw, name string) error {
	dir := path.Dir(name)
	if dir == "." {
		return nil
	}
	parts := strings.Split(dir, "/")
	for i := range parts {
		p := strings.Join(parts[:i+1], "/")
		switch u.kinds[p] {
		case kindDir:
			continue
		case kindSymlink:
			return entryError(raw, ErrUnsafe, "parent %q is a symlink; refusing to write through it", p)
		case kindFile:
			return entryError(raw, ErrCorrupt, "parent %q is a file from an earlier entry", p)
		}
		if err := u.root.Mkdir(p, 0o755); err != nil {
			return fmt.Errorf("archive: entry %s: create parent: %w", displayName(raw), err)
		}
		if err := u.root.Chmod(p, 0o755); err != nil { // undo the umask
			return fmt.Errorf("archive: entry %s: %w", displayName(raw), err)
		}
		u.kinds[p] = kindDir
	}
	return nil
}

// clear removes whatever an earlier entry put at name, so that the new entry is created fresh
// (O_EXCL) instead of written through it. os.Root.Remove unlinks a symlink itself.
func (u *unpacker) clear(raw, name string) error {
	switch u.kinds[name] {
	case 0:
		return nil
	case kindDir:
		if err := u.root.Remove(name); err != nil {
			return entryError(raw, ErrCorrupt, "replaces a directory that is not empty")
		}
	default:
		if err := u.root.Remove(name); err != nil {
			return fmt.Errorf("archive: entry %s: replace: %w", displayName(raw), err)
		}
	}
	delete(u.kinds, name)
	return nil
}

func (u *unpacker) mkdir(raw, name string) error {
	if u.kinds[name] == kindDir {
		return nil
	}
	if err := u.clear(raw, name); err != nil {
		return err
	}
	if err := u.root.Mkdir(name, 0o755); err != nil {
		return fmt.Errorf("archive: entry %s: %w", displayName(raw), err)
	}
	if err := u.root.Chmod(name, 0o755); err != nil {
		return fmt.Errorf("archive: entry %s: %w", displayName(raw), err)
	}
	u.kinds[name] = kindDir
	return nil
}

func fileMode(m int64) os.FileMode {
	if m&0o111 != 0 {
		return 0o755
	}
	return 0o644
}

func (u *unpacker) file(hdr *tar.Header, name string, tr io.Reader) error {
	raw := hdr.Name
	if name == "." {
		return entryError(raw, ErrUnsafe, "a file cannot replace the target directory")
	}
	// The header is trusted only to refuse early; the copy below counts real bytes.
	limit := min(u.lim.MaxFileBytes, u.lim.MaxBytes-u.written)
	if hdr.Size > limit {
		return u.tooLarge(raw, hdr.Size)
	}
	if err := u.parents(raw, name); err != nil {
		return err
	}
	if err := u.clear(raw, name); err != nil {
		return err
	}
	mode := fileMode(hdr.Mode)
	f, err := u.root.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if err != nil {
		return fmt.Errorf("archive: entry %s: %w", displayName(raw), err)
	}
	u.kinds[name] = kindFile
	n, err := copyBounded(f, tr, limit)
	u.written += n
	if err == nil {
		err = f.Chmod(mode) // undo the umask, on the descriptor rather than by name
	}
	if cerr := f.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("archive: entry %s: %w", displayName(raw), cerr)
	}
	switch {
	case errors.Is(err, errLimit):
		return u.tooLarge(raw, n)
	case errors.Is(err, errRead):
		return streamError(inEntry(raw), err)
	case err != nil:
		return fmt.Errorf("archive: entry %s: %w", displayName(raw), err)
	}
	return nil
}

func (u *unpacker) tooLarge(raw string, size int64) error {
	if size > u.lim.MaxFileBytes {
		return entryError(raw, ErrTooLarge, "file exceeds %d bytes", u.lim.MaxFileBytes)
	}
	return entryError(raw, ErrTooLarge, "files exceed %d bytes in total", u.lim.MaxBytes)
}

var (
	errLimit = errors.New("limit reached")
	errRead  = errors.New("reading file data")
)

// copyBounded copies until EOF, failing with errLimit once more than limit bytes arrive, and
// tags read errors with errRead so they are not mistaken for the disk's write errors.
func copyBounded(w io.Writer, r io.Reader, limit int64) (int64, error) {
	buf := make([]byte, 32<<10)
	var n int64
	for {
		k, rerr := r.Read(buf)
		if k > 0 {
			if n+int64(k) > limit {
				return n + int64(k), errLimit
			}
			if _, werr := w.Write(buf[:k]); werr != nil {
				return n, werr
			}
			n += int64(k)
		}
		if rerr == io.EOF {
			return n, nil
		}
		if rerr != nil {
			return n, fmt.Errorf("%w: %w", errRead, rerr)
		}
	}
}

func (u *unpacker) symlink(hdr *tar.Header, name string) error {
	raw := hdr.Name
	if name == "." {
		return entryError(raw, ErrUnsafe, "a symlink cannot replace the target directory")
	}
	if reason := checkSymlinkTarget(name, hdr.Linkname); reason != "" {
		return entryError(raw, ErrUnsafe, "%s", reason)
	}
	if err := u.parents(raw, name); err != nil {
		return err
	}
	if err := u.clear(raw, name); err != nil {
		return err
	}
	if err := u.root.Symlink(hdr.Linkname, name); err != nil {
		return fmt.Errorf("archive: entry %s: %w", displayName(raw), err)
	}
	u.kinds[name] = kindSymlink
	u.symlinks = append(u.symlinks, name)
	return nil
}

// hardlink links to a regular file this archive already wrote. Links to anything else would
// let a later write or chmod reach a file the archive did not create.
func (u *unpacker) hardlink(hdr *tar.Header, name string) error {
	raw := hdr.Name
	if name == "." {
		return entryError(raw, ErrUnsafe, "a hard link cannot replace the target directory")
	}
	target, reason := cleanName(hdr.Linkname)
	if reason != "" {
		return entryError(raw, ErrUnsafe, "hard link target: %s", reason)
	}
	if target == name {
		return entryError(raw, ErrCorrupt, "hard link to itself")
	}
	if u.kinds[target] != kindFile {
		return entryError(raw, ErrUnsafe, "hard link target %q is not a file extracted earlier", hdr.Linkname)
	}
	// Lstat confirms through the filesystem what kinds says, so a bookkeeping slip cannot make
	// this link a directory or a symlink.
	if fi, err := u.root.Lstat(target); err != nil || !fi.Mode().IsRegular() {
		return entryError(raw, ErrUnsafe, "hard link target %q is not a regular file", hdr.Linkname)
	}
	if err := u.parents(raw, name); err != nil {
		return err
	}
	if err := u.clear(raw, name); err != nil {
		return err
	}
	if err := u.root.Link(target, name); err != nil {
		return fmt.Errorf("archive: entry %s: %w", displayName(raw), err)
	}
	u.kinds[name] = kindFile
	return nil
}

// verifySymlinks follows every symlink the archive left. If any leads out of the tree through
// other symlinks, it removes every symlink the archive made: removing only the offenders could
// change where the others lead, and the archive is refused either way. So even a failed Unpack
// leaves no symlink in dir that leads outside it.
func (u *unpacker) verifySymlinks() error {
	var bad error
	for _, name := range u.symlinks {
		if u.kinds[name] != kindSymlink {
			continue // replaced by a later entry
		}
		if reason := resolveEscape(u.root, name); reason != "" {
			bad = entryError(name, ErrUnsafe, "%s", reason)
			break
		}
	}
	if bad == nil {
		return nil
	}
	for _, name := range u.symlinks {
		if u.kinds[name] != kindSymlink {
			continue
		}
		if err := u.root.Remove(name); err != nil {
			return fmt.Errorf("%w (removing symlink %q failed: %v)", bad, name, err)
		}
		delete(u.kinds, name)
	}
	return bad
}
