package web

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/cocaine-cloud/cocaine/engine/archive"
	"github.com/cocaine-cloud/cocaine/engine/manifest"
)

// withManifest returns pkg (a tar.gz, or nothing) with manifest.json
// appended. Appending is enough: when a name repeats, the package readers
// keep the last entry, so the given manifest is the one validated and
// deployed. Entries are copied as they are; the package is then checked in
// full by the store, so nothing here needs to judge them. The copy is
// bounded like an unpack, so a gzip bomb costs bounded work.
func withManifest(pkg, man []byte) ([]byte, error) {
	if len(man) > manifest.MaxSize {
		return nil, &manifest.Error{Problems: []manifest.Problem{{Message: fmt.Sprintf("the manifest part is larger than %d bytes", manifest.MaxSize)}}}
	}
	lim := archive.DefaultLimits()
	var out bytes.Buffer
	gz := gzip.NewWriter(&out)
	tw := tar.NewWriter(gz)
	if len(pkg) > 0 {
		if err := copyEntries(tw, pkg, lim); err != nil {
			return nil, err
		}
	}
	hdr := &tar.Header{Name: "manifest.json", Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(man)), ModTime: time.Unix(0, 0), Format: tar.FormatPAX}
	if err := tw.WriteHeader(hdr); err != nil {
		return nil, fmt.Errorf("repack: %w", err)
	}
	if _, err := tw.Write(man); err != nil {
		return nil, fmt.Errorf("repack: %w", err)
	}
	if err := tw.Close(); err != nil {
		return nil, fmt.Errorf("repack: %w", err)
	}
	if err := gz.Close(); err != nil {
		return nil, fmt.Errorf("repack: %w", err)
	}
	return out.Bytes(), nil
}

func copyEntries(tw *tar.Writer, pkg []byte, lim archive.Limits) error {
	gr, err := gzip.NewReader(bytes.NewReader(pkg))
	if err != nil {
		return fmt.Errorf("package part: %w: %v", archive.ErrCorrupt, err)
	}
	tr := tar.NewReader(gr)
	var total int64
	for n := 0; ; n++ {
		hdr, err := tr.Next()
		if err == io.EOF {
			return nil
		}
		if hdr != nil && errors.Is(err, tar.ErrInsecurePath) {
			return fmt.Errorf("package part: entry %q: %w", hdr.Name, archive.ErrUnsafe)
		}
		if err != nil {
			return fmt.Errorf("package part: %w: %v", archive.ErrCorrupt, err)
		}
		if n >= lim.MaxFiles {
			return fmt.Errorf("package part: %w: more than %d entries", archive.ErrTooManyFiles, lim.MaxFiles)
		}
		if hdr.Typeflag == tar.TypeXGlobalHeader {
			continue
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return fmt.Errorf("package part: entry %q: %w: %v", hdr.Name, archive.ErrCorrupt, err)
		}
		if hdr.Typeflag != tar.TypeReg { // Next reports the old '\x00' as TypeReg too
			continue
		}
		copied, err := io.Copy(tw, io.LimitReader(tr, lim.MaxBytes-total+1))
		total += copied
		if total > lim.MaxBytes {
			return fmt.Errorf("package part: %w: more than %d bytes unpacked", archive.ErrTooLarge, lim.MaxBytes)
		}
		if err != nil {
			return fmt.Errorf("package part: entry %q: %w: %v", hdr.Name, archive.ErrCorrupt, err)
		}
	}
}
