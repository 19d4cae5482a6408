package archive

import (
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"strings"
	"testing"
)

func TestReadFile(t *testing.T) {
	manifest := `{"type":"go"}`
	tests := []struct {
		name    string
		data    []byte
		file    string
		max     int64
		want    string
		wantErr error
	}{
		{name: "found", data: tarball(t, dir("bin/"), file("manifest.json", manifest), exe("bin/app", "x")),
			file: "manifest.json", want: manifest},
		{name: "dot slash entry", data: tarball(t, file("./manifest.json", manifest)), file: "manifest.json", want: manifest},
		{name: "dot slash request", data: tarball(t, file("manifest.json", manifest)), file: "./manifest.json", want: manifest},
		{name: "nested", data: tarball(t, file("a/b.txt", "b")), file: "a/b.txt", want: "b"},
		{name: "empty file", data: tarball(t, file("manifest.json", "")), file: "manifest.json", want: ""},
		{name: "last duplicate wins as in Unpack", data: tarball(t, file("manifest.json", `{"type":"shown"}`), file("other", "x"), file("manifest.json", manifest)),
			file: "manifest.json", want: manifest},
		{name: "replaced by a symlink", data: tarball(t, file("manifest.json", manifest), symlink("manifest.json", "/etc/passwd")),
			file: "manifest.json", wantErr: ErrUnsafe},
		{name: "symlink", data: tarball(t, file("real.json", manifest), symlink("manifest.json", "real.json")),
			file: "manifest.json", wantErr: ErrUnsafe},
		{name: "directory", data: tarball(t, dir("manifest.json/")), file: "manifest.json", wantErr: ErrUnsafe},
		{name: "missing", data: tarball(t, file("other", "x")), file: "manifest.json", wantErr: fs.ErrNotExist},
		{name: "not at root", data: tarball(t, file("app/manifest.json", manifest)), file: "manifest.json", wantErr: fs.ErrNotExist},
		{name: "over max", data: tarball(t, file("manifest.json", strings.Repeat("x", 101))), file: "manifest.json", max: 100, wantErr: ErrTooLarge},
		{name: "at max", data: tarball(t, file("manifest.json", strings.Repeat("x", 100))), file: "manifest.json", max: 100, want: strings.Repeat("x", 100)},
		{name: "truncated after the file", data: truncate(tarball(t, file("manifest.json", manifest), file("pad", strings.Repeat("p", 8192)))),
			file: "manifest.json", wantErr: ErrCorrupt},
		{name: "not gzip", data: []byte("nope"), file: "manifest.json", wantErr: ErrCorrupt},
		{name: "unsafe request", data: tarball(t, file("x", "x")), file: "../x", wantErr: fs.ErrInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ReadFile(bytes.NewReader(tt.data), tt.file, tt.max)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("got %q, %v; want %v", got, err, tt.wantErr)
				}
				return
			}
			if err != nil || string(got) != tt.want {
				t.Fatalf("got %q, %v; want %q", got, err, tt.want)
			}
		})
	}
}

func TestReadFileLimits(t *testing.T) {
	t.Run("header over max", func(t *testing.T) {
		data := gzipBytes(t, bytes.NewReader(headerOnly(t, "manifest.json", 1<<20+1)))
		if _, err := ReadFile(bytes.NewReader(data), "manifest.json", 1<<20); !errors.Is(err, ErrTooLarge) {
			t.Fatalf("got %v, want ErrTooLarge", err)
		}
	})
	t.Run("too many entries", func(t *testing.T) {
		var entries []entry
		for i := range smallLimits.MaxFiles + 1 {
			entries = append(entries, dir(fmt.Sprintf("d%d/", i)))
		}
		data := tarball(t, entries...)
		if _, err := readFile(bytes.NewReader(data), "manifest.json", 0, smallLimits); !errors.Is(err, ErrTooManyFiles) {
			t.Fatalf("got %v, want ErrTooManyFiles", err)
		}
	})
	t.Run("stream bomb", func(t *testing.T) {
		// The manifest comes first and is fine; the zeros after it pass the bound on the
		// whole stream (DefaultLimits in ReadFile, smaller here to keep the test quick).
		bomb := zeroGzip(t, tarStream(t, file("manifest.json", "{}")), smallLimits.streamLimit()+1)
		if _, err := readFile(bytes.NewReader(bomb), "manifest.json", 0, smallLimits); !errors.Is(err, ErrTooLarge) {
			t.Fatalf("got %v, want ErrTooLarge", err)
		}
		// One byte less is within the bound: the same stream is read to its end.
		ok := zeroGzip(t, tarStream(t, file("manifest.json", "{}")), smallLimits.streamLimit()-int64(len(tarStream(t, file("manifest.json", "{}")))))
		if got, err := readFile(bytes.NewReader(ok), "manifest.json", 0, smallLimits); err != nil || string(got) != "{}" {
			t.Fatalf("within the bound: %q, %v", got, err)
		}
	})
}

// zeroGzip compresses prefix followed by n zero bytes, quickly.
func zeroGzip(tb testing.TB, prefix []byte, n int64) []byte {
	tb.Helper()
	var buf bytes.Buffer
	gz, err := gzip.NewWriterLevel(&buf, gzip.BestSpeed)
	if err != nil {
		tb.Fatal(err)
	}
	if _, err := gz.Write(prefix); err != nil {
		tb.Fatal(err)
	}
	if _, err := io.CopyBuffer(gz, io.LimitReader(zeroReader{}, n), make([]byte, 1<<20)); err != nil {
		tb.Fatal(err)
	}
	if err := gz.Close(); err != nil {
		tb.Fatal(err)
	}
	return buf.Bytes()
}
