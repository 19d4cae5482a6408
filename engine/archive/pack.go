package archive

import (
	"archive/tar"
	"compress/gzip"
	"fmt"
	"io"
	"io/fs"
	"os"
	"time"
)

// epoch is the modification time of every packed entry. Zeroing times, owners and mode bits
// that Unpack ignores anyway makes equal trees pack to equal bytes, so a package's digest
// identifies its content and re-uploading an unchanged app is a no-op.
var epoch = time.Unix(0, 0).UTC()

// Pack writes dir as a gzip-compressed tar stream: directories, regular files and symlinks
// that stay inside dir, in lexical order, named relative to dir. Anything else (a symlink
// leading out, a socket, a device) fails with ErrUnsafe rather than being left out, so that
// the package never silently differs from the tree.
//
// Files are recorded with mode 0755 or 0644, directories 0755, owner 0 and time 0, so equal
// trees give equal bytes.
func Pack(dir string, w io.Writer) error {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return fmt.Errorf("archive: pack: %w", err)
	}
	defer root.Close()

	gz, err := gzip.NewWriterLevel(w, gzip.BestCompression)
	if err != nil {
		return fmt.Errorf("archive: pack: %w", err)
	}
	tw := tar.NewWriter(gz)
	// fs.WalkDir reads each directory sorted by name and does not follow symlinks; the fs.FS
	// of an os.Root cannot be led outside dir.
	err = fs.WalkDir(root.FS(), ".", func(name string, d fs.DirEntry, err error) error {
		if err != nil {
			return fmt.Errorf("archive: pack %q: %w", name, err)
		}
		if name == "." {
			return nil
		}
		return packEntry(root, tw, name, d)
	})
	if err != nil {
		return err
	}
	if err := tw.Close(); err != nil {
		return fmt.Errorf("archive: pack: %w", err)
	}
	if err := gz.Close(); err != nil {
		return fmt.Errorf("archive: pack: %w", err)
	}
	return nil
}

func packEntry(root *os.Root, tw *tar.Writer, name string, d fs.DirEntry) error {
	// A name Unpack would refuse (a backslash, an overlong component) would make a package
	// that cannot be deployed; better to fail here, where the author can rename the file.
	if _, reason := cleanName(name); reason != "" {
		return entryError(name, ErrUnsafe, "%s", reason)
	}
	hdr := &tar.Header{Name: name, ModTime: epoch, Format: tar.FormatPAX}
	switch t := d.Type(); {
	case t.IsDir():
		hdr.Typeflag, hdr.Name, hdr.Mode = tar.TypeDir, name+"/", 0o755
		return writeHeader(tw, hdr)
	case t&fs.ModeSymlink != 0:
		target, err := root.Readlink(name)
		if err != nil {
			return fmt.Errorf("archive: pack %q: %w", name, err)
		}
		if reason := checkSymlinkTarget(name, target); reason != "" {
			return entryError(name, ErrUnsafe, "%s", reason)
		}
		if reason := resolveEscape(root, name); reason != "" {
			return entryError(name, ErrUnsafe, "%s", reason)
		}
		hdr.Typeflag, hdr.Linkname, hdr.Mode = tar.TypeSymlink, target, 0o777
		return writeHeader(tw, hdr)
	case t.IsRegular():
		return packFile(root, tw, hdr)
	default:
		return entryError(name, ErrUnsafe, "not a regular file, directory or symlink (%s)", t)
	}
}

func packFile(root *os.Root, tw *tar.Writer, hdr *tar.Header) error {
	// Open, then stat the descriptor: the size and mode written are those of the file read,
	// even if the name is replaced meanwhile.
	f, err := root.Open(hdr.Name)
	if err != nil {
		return fmt.Errorf("archive: pack %q: %w", hdr.Name, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return fmt.Errorf("archive: pack %q: %w", hdr.Name, err)
	}
	if !fi.Mode().IsRegular() {
		return entryError(hdr.Name, ErrUnsafe, "changed while packing")
	}
	hdr.Typeflag, hdr.Size, hdr.Mode = tar.TypeReg, fi.Size(), int64(fileMode(int64(fi.Mode().Perm())))
	if err := writeHeader(tw, hdr); err != nil {
		return err
	}
	// A file that shrinks while it is read leaves the tar short, which tar.Writer reports;
	// one that grows is cut at the size recorded.
	if _, err := io.CopyN(tw, f, fi.Size()); err != nil {
		return fmt.Errorf("archive: pack %q: %w", hdr.Name, err)
	}
	return nil
}

func writeHeader(tw *tar.Writer, hdr *tar.Header) error {
	if err := tw.WriteHeader(hdr); err != nil {
		return fmt.Errorf("archive: pack %q: %w", hdr.Name, err)
	}
	return nil
}
