package archive

import (
	"archive/tar"
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

type hostileCase struct {
	name string
	data []byte
	// build makes data aimed at a given bait, for cases that aim at one.
	build func(bait string) []byte
	lim   Limits
	want  error
}

// smallLimits keep the size tests quick: a bomb need only pass a few MiB.
var smallLimits = Limits{MaxBytes: 1 << 20, MaxFiles: 100, MaxFileBytes: 512 << 10}

// hostileArchives builds archives that must be refused. bait is an absolute path outside the
// target that escaping entries aim at; the fuzz target reuses the bytes as seeds.
func hostileArchives(tb testing.TB, bait string) []hostileCase {
	cases := baitArchives(tb)
	for i := range cases {
		cases[i].data = cases[i].build(bait)
	}
	return append(cases, staticArchives(tb)...)
}

// baitArchives are the cheap cases, built for each test's own bait.
func baitArchives(tb testing.TB) []hostileCase {
	return []hostileCase{
		{name: "dotdot", build: func(bait string) []byte { return tarball(tb, file("../evil", "x")) }, want: ErrUnsafe},
		{name: "dotdot after dot", build: func(bait string) []byte { return tarball(tb, file("./../evil", "x")) }, want: ErrUnsafe},
		{name: "absolute etc", build: func(bait string) []byte { return tarball(tb, file("/etc/x", "x")) }, want: ErrUnsafe},
		{name: "absolute bait", build: func(bait string) []byte { return tarball(tb, file(bait, "overwritten")) }, want: ErrUnsafe},
		{name: "absolute new file", build: func(bait string) []byte { return tarball(tb, file(filepath.Join(filepath.Dir(bait), "new"), "x")) }, want: ErrUnsafe},
		{name: "dotdot escaping after clean", build: func(bait string) []byte { return tarball(tb, file("a/../../x", "x")) }, want: ErrUnsafe},
		{name: "dotdot inside after clean", build: func(bait string) []byte { return tarball(tb, file("a/../b", "x")) }, want: ErrUnsafe},
		{name: "deep dotdot", build: func(bait string) []byte { return tarball(tb, dir("a/"), dir("a/b/"), file("a/b/../../../bait", "x")) }, want: ErrUnsafe},
		{name: "backslash dotdot", build: func(bait string) []byte { return tarball(tb, file(`..\evil`, "x")) }, want: ErrUnsafe},
		{name: "backslash nested dotdot", build: func(bait string) []byte { return tarball(tb, file(`a\..\..\evil`, "x")) }, want: ErrUnsafe},
		{name: "drive letter backslash", build: func(bait string) []byte { return tarball(tb, file(`C:\evil`, "x")) }, want: ErrUnsafe},
		{name: "drive letter slash", build: func(bait string) []byte { return tarball(tb, file(`c:/evil`, "x")) }, want: ErrUnsafe},
		{name: "drive relative", build: func(bait string) []byte { return tarball(tb, file(`C:evil`, "x")) }, want: ErrUnsafe},
		{name: "unc", build: func(bait string) []byte { return tarball(tb, file(`//server/share/x`, "x")) }, want: ErrUnsafe},
		{name: "dir dotdot", build: func(bait string) []byte { return tarball(tb, dir("../evildir/")) }, want: ErrUnsafe},
		{name: "symlink absolute then write through", build: func(bait string) []byte { return tarball(tb, symlink("link", filepath.Dir(bait)), file("link/x", "x")) }, want: ErrUnsafe},
		{name: "symlink to bait then overwrite", build: func(bait string) []byte { return tarball(tb, symlink("link", bait), file("link", "x")) }, want: ErrUnsafe},
		{name: "symlink relative out then write through", build: func(bait string) []byte { return tarball(tb, symlink("link", ".."), file("link/bait", "x")) }, want: ErrUnsafe},
		{name: "symlink nested out", build: func(bait string) []byte { return tarball(tb, dir("a/"), symlink("a/link", "../../x")) }, want: ErrUnsafe},
		{name: "symlink etc", build: func(bait string) []byte { return tarball(tb, symlink("passwd", "/etc/passwd")) }, want: ErrUnsafe},
		{name: "symlink backslash", build: func(bait string) []byte { return tarball(tb, symlink("l", `..\..\x`)) }, want: ErrUnsafe},
		{name: "symlink inside then write through", build: func(bait string) []byte {
			return tarball(tb, dir("real/"), symlink("link", "real"), file("link/x", "x"))
		}, want: ErrUnsafe},
		{name: "symlink inside then dir through", build: func(bait string) []byte { return tarball(tb, dir("real/"), symlink("link", "real"), dir("link/sub/")) }, want: ErrUnsafe},
		{name: "symlink chain out", build: func(bait string) []byte {
			return tarball(tb, dir("sub/"), symlink("sub/up", ".."), symlink("x", "sub/up/.."))
		}, want: ErrUnsafe},
		{name: "symlink chain out made later", build: func(bait string) []byte {
			return tarball(tb, symlink("x", "sub/up/.."), dir("sub/"), symlink("sub/up", ".."))
		}, want: ErrUnsafe},
		{name: "symlink chain out via missing", build: func(bait string) []byte {
			return tarball(tb, dir("sub/"), symlink("sub/up", ".."), symlink("x", "sub/up/missing/../../bait"))
		}, want: ErrUnsafe},
		{name: "symlink chain then corrupt", build: func(bait string) []byte {
			return truncate(tarball(tb, dir("sub/"), symlink("sub/up", ".."), symlink("x", "sub/up/.."), file("pad", strings.Repeat("z", 4096))))
		}, want: ErrCorrupt},
		{name: "symlink loop", build: func(bait string) []byte { return tarball(tb, symlink("a", "b"), symlink("b", "a")) }, want: ErrUnsafe},
		{name: "symlink self", build: func(bait string) []byte { return tarball(tb, symlink("a", "a")) }, want: ErrUnsafe},
		{name: "symlink as root", build: func(bait string) []byte { return tarball(tb, symlink(".", "..")) }, want: ErrUnsafe},
		{name: "hardlink etc passwd", build: func(bait string) []byte { return tarball(tb, hardlink("passwd", "/etc/passwd")) }, want: ErrUnsafe},
		{name: "hardlink bait", build: func(bait string) []byte { return tarball(tb, hardlink("bait", bait)) }, want: ErrUnsafe},
		{name: "hardlink dotdot", build: func(bait string) []byte { return tarball(tb, hardlink("bait", "../bait")) }, want: ErrUnsafe},
		{name: "hardlink not yet extracted", build: func(bait string) []byte { return tarball(tb, hardlink("early", "later"), file("later", "x")) }, want: ErrUnsafe},
		{name: "hardlink to dir", build: func(bait string) []byte { return tarball(tb, dir("d/"), hardlink("h", "d")) }, want: ErrUnsafe},
		{name: "hardlink to symlink", build: func(bait string) []byte { return tarball(tb, file("f", "x"), symlink("s", "f"), hardlink("h", "s")) }, want: ErrUnsafe},
		{name: "hardlink through symlink parent", build: func(bait string) []byte {
			return tarball(tb, dir("d/"), file("d/f", "x"), symlink("s", "d"), hardlink("h", "s/f"))
		}, want: ErrUnsafe},
		{name: "char device", build: func(bait string) []byte {
			return tarball(tb, entry{name: "null", typ: tar.TypeChar, mode: 0o666, major: 1})
		}, want: ErrUnsafe},
		{name: "block device", build: func(bait string) []byte {
			return tarball(tb, entry{name: "sda", typ: tar.TypeBlock, mode: 0o660, major: 8})
		}, want: ErrUnsafe},
		{name: "fifo", build: func(bait string) []byte { return tarball(tb, entry{name: "pipe", typ: tar.TypeFifo, mode: 0o644}) }, want: ErrUnsafe},
		{name: "file as root", build: func(bait string) []byte { return tarball(tb, file(".", "x")) }, want: ErrUnsafe},
		{name: "name too long", build: func(bait string) []byte { return tarball(tb, file(strings.Repeat("a/", 2100)+"x", "x")) }, want: ErrUnsafe},
		{name: "component too long", build: func(bait string) []byte { return tarball(tb, file(strings.Repeat("a", 256), "x")) }, want: ErrUnsafe},
		{name: "file where parent needed", build: func(bait string) []byte { return tarball(tb, file("a", "x"), file("a/b", "y")) }, want: ErrCorrupt},
		{name: "file replaces full dir", build: func(bait string) []byte { return tarball(tb, dir("d/"), file("d/f", "x"), file("d", "y")) }, want: ErrCorrupt},
		{name: "hardlink to itself", build: func(bait string) []byte { return tarball(tb, file("a", "x"), hardlink("a", "a")) }, want: ErrCorrupt},
	}
}

func truncate(b []byte) []byte { return b[:len(b)-20] }

var (
	staticOnce   sync.Once
	staticCached []hostileCase
)

// staticArchives are the cases that do not aim at the bait, some costly to build (ten
// thousand entries, megabytes of zeros), so they are built once per test binary.
func staticArchives(tb testing.TB) []hostileCase {
	staticOnce.Do(func() { staticCached = buildStaticArchives(tb) })
	return staticCached
}

func buildStaticArchives(tb testing.TB) []hostileCase {
	good := tarball(tb, dir("app/"), file("app/manifest.json", `{"type":"go"}`), exe("app/run", strings.Repeat("#!/bin/sh\n", 200)))
	var many []entry
	for i := range 10001 {
		many = append(many, file(fmt.Sprintf("f%05d", i), "x"))
	}
	var sum []entry
	for i := range 4 {
		sum = append(sum, entry{name: fmt.Sprintf("part%d", i), typ: tar.TypeReg, zeros: 400 << 10, mode: 0o644})
	}
	corruptCRC := bytes.Clone(good)
	corruptCRC[len(corruptCRC)-6] ^= 0xff // inside the gzip trailer's CRC32

	return []hostileCase{
		{name: "file over per-file limit", data: tarball(tb, entry{name: "big", typ: tar.TypeReg, zeros: 600 << 10, mode: 0o644}), lim: smallLimits, want: ErrTooLarge},
		{name: "files over total", data: tarball(tb, sum...), lim: smallLimits, want: ErrTooLarge},
		{name: "gzip bomb of zeros", data: gzipBytes(tb, io.LimitReader(zeroReader{}, 16<<20)), lim: smallLimits, want: ErrTooLarge},
		{name: "gzip bomb after end", data: gzipBytes(tb, io.MultiReader(bytes.NewReader(tarStream(tb, file("a", "x"))), io.LimitReader(zeroReader{}, 16<<20))), lim: smallLimits, want: ErrTooLarge},
		{name: "header over default file limit", data: gzipBytes(tb, bytes.NewReader(headerOnly(tb, "big", 128<<20+1))), want: ErrTooLarge},
		{name: "too many files", data: tarball(tb, many...), want: ErrTooManyFiles},
		{name: "not gzip", data: []byte("this is not a package"), want: ErrCorrupt},
		{name: "empty input", data: nil, want: ErrCorrupt},
		{name: "gzip of garbage", data: gzipBytes(tb, strings.NewReader(strings.Repeat("garbage!", 200))), want: ErrCorrupt},
		{name: "truncated gzip header", data: good[:5], want: ErrCorrupt},
		{name: "truncated early", data: good[:40], want: ErrCorrupt},
		{name: "truncated middle", data: good[:len(good)/2], want: ErrCorrupt},
		{name: "truncated trailer", data: good[:len(good)-4], want: ErrCorrupt},
		{name: "bad crc", data: corruptCRC, want: ErrCorrupt},
	}
}

// headerOnly is a tar stream cut right after one file header that claims size bytes: Unpack
// must refuse it on the header alone, before reading (or decompressing) any of the data.
func headerOnly(tb testing.TB, name string, size int64) []byte {
	tb.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	if err := tw.WriteHeader(&tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: 0o644, Size: size}); err != nil {
		tb.Fatal(err)
	}
	return buf.Bytes()
}

func tarStream(tb testing.TB, entries ...entry) []byte {
	tb.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		if err := tw.WriteHeader(&tar.Header{Name: e.name, Typeflag: e.typ, Mode: e.mode, Size: int64(len(e.body))}); err != nil {
			tb.Fatal(err)
		}
		if _, err := io.WriteString(tw, e.body); err != nil {
			tb.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		tb.Fatal(err)
	}
	return buf.Bytes()
}

func TestUnpackHostile(t *testing.T) {
	for _, c := range append(baitArchives(t), staticArchives(t)...) {
		t.Run(c.name, func(t *testing.T) {
			parent, target := sandbox(t)
			data := c.data
			if c.build != nil {
				data = c.build(filepath.Join(parent, "bait"))
			}
			before := outside(t, parent)
			start := time.Now()
			err := Unpack(bytes.NewReader(data), target, c.lim)
			if !errors.Is(err, c.want) {
				t.Fatalf("Unpack: %v; want %v", err, c.want)
			}
			for _, other := range []error{ErrUnsafe, ErrTooLarge, ErrTooManyFiles, ErrCorrupt} {
				if other != c.want && errors.Is(err, other) {
					t.Errorf("error also matches %v: %v", other, err)
				}
			}
			t.Log(err)
			if !strings.HasPrefix(err.Error(), "archive: ") {
				t.Errorf("error lacks context: %v", err)
			}
			if after := outside(t, parent); after != before {
				t.Fatalf("outside the target changed:\n--- before\n%s\n--- after\n%s", before, after)
			}
			assertContained(t, target)
			// Not a speed check (benchmarks do that; a loaded machine is
			// slow): only that a hostile archive cannot keep it busy for ever.
			if d := time.Since(start); d > 2*time.Minute {
				t.Errorf("took %v", d)
			}
		})
	}
}

func TestUnpackErrorNamesEntry(t *testing.T) {
	_, target := sandbox(t)
	err := Unpack(bytes.NewReader(tarball(t, file("ok", "x"), file("../evil", "x"))), target, Limits{})
	if err == nil || !strings.Contains(err.Error(), `"../evil"`) || !strings.Contains(err.Error(), "..") {
		t.Fatalf("error does not name the entry: %v", err)
	}
}

func TestUnpackGood(t *testing.T) {
	data := tarball(t,
		dir("./"),
		dir("./bin/"),
		exe("./bin/app", "#!/bin/sh\necho hi\n"),
		entry{name: "bin/setuid", typ: tar.TypeReg, body: "s", mode: 0o4755},
		entry{name: "bin/setgid", typ: tar.TypeReg, body: "g", mode: 0o2644},
		entry{name: "bin/owner-exec", typ: tar.TypeReg, body: "o", mode: 0o700},
		entry{name: "tmp/", typ: tar.TypeDir, mode: 0o1777},
		entry{name: "private/", typ: tar.TypeDir, mode: 0o700},
		entry{name: "private/key", typ: tar.TypeReg, body: "k", mode: 0o600},
		file("manifest.json", `{"type":"go"}`),
		file("lib/deep/nested/data.txt", "implicit parents"),
		symlink("lib/current", "deep/nested"),
		symlink("bin/data", "../lib/deep/nested/data.txt"),
		symlink("bin/self", "."),
		symlink("dangling", "not/there"),
		hardlink("lib/copy.txt", "lib/deep/nested/data.txt"),
		dir("empty/"),
		file("dup", "first"),
		file("dup", "second"),
		dir("dupdir/"),
		dir("dupdir/"),
		file("dupdir/f", "in dup dir"),
		file("a.txt", ""),
	)
	_, target := sandbox(t)
	if err := Unpack(bytes.NewReader(data), target, Limits{}); err != nil {
		t.Fatal(err)
	}
	want := strings.Join([]string{
		`a.txt file 644 ""`,
		`bin/ dir 755`,
		`bin/app file 755 "#!/bin/sh\necho hi\n"`,
		`bin/data -> ../lib/deep/nested/data.txt`,
		`bin/owner-exec file 755 "o"`,
		`bin/self -> .`,
		`bin/setgid file 644 "g"`,
		`bin/setuid file 755 "s"`,
		`dangling -> not/there`,
		`dup file 644 "second"`,
		`dupdir/ dir 755`,
		`dupdir/f file 644 "in dup dir"`,
		`empty/ dir 755`,
		`lib/ dir 755`,
		`lib/copy.txt file 644 "implicit parents"`,
		`lib/current -> deep/nested`,
		`lib/deep/ dir 755`,
		`lib/deep/nested/ dir 755`,
		`lib/deep/nested/data.txt file 644 "implicit parents"`,
		`manifest.json file 644 "{\"type\":\"go\"}"`,
		`private/ dir 755`,
		`private/key file 644 "k"`,
		`tmp/ dir 755`,
	}, "\n")
	if got := tree(t, target); got != want {
		t.Fatalf("unpacked tree:\n%s\nwant:\n%s", got, want)
	}
	assertContained(t, target)
}

func TestUnpackDuplicatesNeverFollowSymlinks(t *testing.T) {
	tests := []struct {
		name    string
		entries []entry
		want    string
	}{
		{"file replaces symlink to file", []entry{file("real", "orig"), symlink("f", "real"), file("f", "new")},
			"f file 644 \"new\"\nreal file 644 \"orig\""},
		{"file replaces dangling symlink", []entry{symlink("f", "gone"), file("f", "new")},
			"f file 644 \"new\""},
		{"dir replaces symlink to dir", []entry{dir("real/"), symlink("d", "real"), dir("d/"), file("d/x", "x")},
			"d/ dir 755\nd/x file 644 \"x\"\nreal/ dir 755"},
		{"symlink replaces file", []entry{file("f", "x"), symlink("f", "g")},
			"f -> g"},
		{"hardlink replaces symlink", []entry{file("real", "orig"), symlink("h", "real"), hardlink("h", "real")},
			"h file 644 \"orig\"\nreal file 644 \"orig\""},
		{"file replaces empty dir", []entry{dir("d/"), file("d", "x")},
			"d file 644 \"x\""},
		{"rewrite of hard-linked file leaves the link", []entry{file("a", "one"), hardlink("b", "a"), file("a", "two")},
			"a file 644 \"two\"\nb file 644 \"one\""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, target := sandbox(t)
			if err := Unpack(bytes.NewReader(tarball(t, tt.entries...)), target, Limits{}); err != nil {
				t.Fatal(err)
			}
			if got := tree(t, target); got != tt.want {
				t.Fatalf("tree:\n%s\nwant:\n%s", got, tt.want)
			}
		})
	}
}

func TestUnpackTarget(t *testing.T) {
	data := tarball(t, file("a", "x"))
	t.Run("created", func(t *testing.T) {
		_, target := sandbox(t)
		if err := Unpack(bytes.NewReader(data), target, Limits{}); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("empty existing", func(t *testing.T) {
		target := t.TempDir()
		if err := Unpack(bytes.NewReader(data), target, Limits{}); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("not empty", func(t *testing.T) {
		target := t.TempDir()
		if err := os.WriteFile(filepath.Join(target, "old"), nil, 0o644); err != nil {
			t.Fatal(err)
		}
		err := Unpack(bytes.NewReader(data), target, Limits{})
		if !errors.Is(err, fs.ErrExist) {
			t.Fatalf("got %v, want fs.ErrExist", err)
		}
		if _, err := os.Stat(filepath.Join(target, "a")); !errors.Is(err, fs.ErrNotExist) {
			t.Fatal("unpacked into a non-empty directory")
		}
	})
	t.Run("a file", func(t *testing.T) {
		target := filepath.Join(t.TempDir(), "f")
		if err := os.WriteFile(target, nil, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := Unpack(bytes.NewReader(data), target, Limits{}); err == nil {
			t.Fatal("unpacked onto a file")
		}
	})
	t.Run("missing parent", func(t *testing.T) {
		target := filepath.Join(t.TempDir(), "no", "such")
		if err := Unpack(bytes.NewReader(data), target, Limits{}); !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("got %v, want fs.ErrNotExist", err)
		}
	})
}

func TestUnpackLimitsAreExact(t *testing.T) {
	lim := Limits{MaxBytes: 100, MaxFiles: 3, MaxFileBytes: 60}
	tests := []struct {
		name    string
		entries []entry
		want    error
	}{
		{"at every limit", []entry{file("a", strings.Repeat("x", 60)), file("b", strings.Repeat("x", 40)), dir("c/")}, nil},
		{"one file byte over", []entry{file("a", strings.Repeat("x", 61))}, ErrTooLarge},
		{"one total byte over", []entry{file("a", strings.Repeat("x", 60)), file("b", strings.Repeat("x", 41))}, ErrTooLarge},
		{"one entry over", []entry{dir("a/"), dir("b/"), dir("c/"), dir("d/")}, ErrTooManyFiles},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, target := sandbox(t)
			err := Unpack(bytes.NewReader(tarball(t, tt.entries...)), target, lim)
			if !errors.Is(err, tt.want) || (tt.want == nil && err != nil) {
				t.Fatalf("got %v, want %v", err, tt.want)
			}
		})
	}
}

func TestDefaultLimits(t *testing.T) {
	want := Limits{MaxBytes: 256 << 20, MaxFiles: 10000, MaxFileBytes: 128 << 20}
	if got := DefaultLimits(); got != want {
		t.Fatalf("DefaultLimits() = %+v", got)
	}
	if got := (Limits{MaxFiles: 5}).withDefaults(); got != (Limits{MaxBytes: want.MaxBytes, MaxFiles: 5, MaxFileBytes: want.MaxFileBytes}) {
		t.Fatalf("withDefaults kept zero fields: %+v", got)
	}
	huge := Limits{MaxBytes: 1 << 62, MaxFiles: 1 << 62, MaxFileBytes: 1}
	if huge.streamLimit() <= 0 {
		t.Fatal("stream limit overflowed")
	}
}
