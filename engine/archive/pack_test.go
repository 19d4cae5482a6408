package archive

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// writeTree makes a tree with every kind of entry Pack keeps.
func writeTree(t *testing.T, root string, fileMode os.FileMode) {
	t.Helper()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.MkdirAll(filepath.Join(root, "bin"), 0o700))
	must(os.MkdirAll(filepath.Join(root, "lib", "deep"), 0o755))
	must(os.MkdirAll(filepath.Join(root, "empty"), 0o755))
	must(os.WriteFile(filepath.Join(root, "manifest.json"), []byte(`{"type":"go"}`), fileMode))
	must(os.WriteFile(filepath.Join(root, "bin", "app"), []byte("#!/bin/sh\n"), 0o700))
	must(os.WriteFile(filepath.Join(root, "lib", "deep", "data"), bytes.Repeat([]byte("data "), 1000), fileMode))
	must(os.Symlink("deep/data", filepath.Join(root, "lib", "current")))
	must(os.Symlink("../lib", filepath.Join(root, "bin", "lib")))
	must(os.Symlink("missing", filepath.Join(root, "dangling")))
}

func pack(t *testing.T, dir string) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := Pack(dir, &buf); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestPackRoundTrip(t *testing.T) {
	src := t.TempDir()
	writeTree(t, src, 0o644)
	_, target := sandbox(t)
	if err := Unpack(bytes.NewReader(pack(t, src)), target, Limits{}); err != nil {
		t.Fatal(err)
	}
	// The source's 0700 directory and file come back 0755: Pack and Unpack normalize modes.
	for _, p := range []string{"bin", "bin/app"} {
		if err := os.Chmod(filepath.Join(src, p), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if got, want := tree(t, target), tree(t, src); got != want {
		t.Fatalf("round trip differs:\n%s\nwant:\n%s", got, want)
	}
}

func TestPackDeterministic(t *testing.T) {
	a, b := t.TempDir(), t.TempDir()
	writeTree(t, a, 0o644)
	writeTree(t, b, 0o600) // other permission bits that Unpack would not keep anyway
	old := time.Date(2001, 2, 3, 4, 5, 6, 0, time.UTC)
	if err := os.Chtimes(filepath.Join(b, "manifest.json"), old, old); err != nil {
		t.Fatal(err)
	}
	first := pack(t, a)
	if !bytes.Equal(first, pack(t, a)) {
		t.Fatal("packing the same tree twice gives different bytes")
	}
	if !bytes.Equal(first, pack(t, b)) {
		t.Fatal("equal trees with other times and modes give different bytes")
	}
}

func TestPackRefuses(t *testing.T) {
	tests := []struct {
		name  string
		setup func(t *testing.T, dir string) error
	}{
		{"absolute symlink", func(t *testing.T, dir string) error {
			return os.Symlink("/etc/passwd", filepath.Join(dir, "passwd"))
		}},
		{"relative symlink out", func(t *testing.T, dir string) error {
			return os.Symlink("../outside", filepath.Join(dir, "out"))
		}},
		{"symlink chain out", func(t *testing.T, dir string) error {
			if err := os.Mkdir(filepath.Join(dir, "sub"), 0o755); err != nil {
				return err
			}
			if err := os.Symlink("..", filepath.Join(dir, "sub", "up")); err != nil {
				return err
			}
			return os.Symlink("sub/up/..", filepath.Join(dir, "x"))
		}},
		{"name Unpack refuses", func(t *testing.T, dir string) error {
			return os.WriteFile(filepath.Join(dir, `back\slash`), nil, 0o644)
		}},
		{"fifo", func(t *testing.T, dir string) error {
			return syscall.Mkfifo(filepath.Join(dir, "pipe"), 0o644)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, "manifest.json"), []byte("{}"), 0o644); err != nil {
				t.Fatal(err)
			}
			if err := tt.setup(t, dir); err != nil {
				t.Fatal(err)
			}
			err := Pack(dir, &bytes.Buffer{})
			if !errors.Is(err, ErrUnsafe) {
				t.Fatalf("got %v, want ErrUnsafe", err)
			}
		})
	}
}

func TestPackMissingDir(t *testing.T) {
	if err := Pack(filepath.Join(t.TempDir(), "nope"), &bytes.Buffer{}); err == nil {
		t.Fatal("packed a missing directory")
	}
}
