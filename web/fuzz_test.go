package web_test

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"net/http"
	"testing"

	"github.com/cocaine-cloud/cocaine/web"
)

// fuzzSeeds are packages good, invalid and hostile.
func fuzzSeeds(t testing.TB, outside string) [][]byte {
	man := entry{name: "manifest.json", body: goodManifest}
	good := goodPackage(t, "v1")
	var gz bytes.Buffer
	w := gzip.NewWriter(&gz)
	w.Write([]byte("not a tar stream"))
	w.Close()
	return [][]byte{
		good,
		good[:len(good)/2],
		gz.Bytes(),
		{},
		[]byte("garbage"),
		rawPackage(t, entry{name: "manifest.json", body: `{"type": "nope", "engine": {"pool-limit": -1}}`}),
		rawPackage(t, entry{name: "manifest.json", body: `{`}),
		rawPackage(t, entry{name: "manifest.json", typ: tar.TypeDir}),
		rawPackage(t, entry{name: "manifest.json", link: "../../outside/m", typ: tar.TypeSymlink}),
		rawPackage(t, man, entry{name: "../../outside/pwned", body: "x"}),
		rawPackage(t, man, entry{name: "link", link: "../../outside", typ: tar.TypeSymlink}, entry{name: "link/pwned", body: "x"}),
		rawPackage(t, man, entry{name: outside + "/pwned", body: "x"}),
		rawPackage(t, man, entry{name: "hl", link: "../../outside/pwned", typ: tar.TypeLink}),
		rawPackage(t, man, entry{name: "a", body: "file"}, entry{name: "a/b", body: "under a file"}),
	}
}

// FuzzUpload feeds arbitrary bytes as an upload's body: the answer is
// never a 5xx, nothing panics, and nothing is written outside storage.
func FuzzUpload(f *testing.F) {
	e := newEnv(f, web.Config{MaxUpload: 1 << 20})
	for _, seed := range fuzzSeeds(f, e.outside) {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		rec := e.upload("fz", body)
		if rec.Code >= 500 {
			t.Fatalf("status %d: %s", rec.Code, rec.Body)
		}
		if rec.Code >= 400 {
			decodeError(t, rec)
		}
		e.assertUntouched(t)
	})
}

// FuzzUploadManifest sends multipart uploads: an arbitrary manifest part
// over an arbitrary package part (none when empty).
func FuzzUploadManifest(f *testing.F) {
	e := newEnv(f, web.Config{MaxUpload: 1 << 20})
	good := goodPackage(f, "v1")
	for _, m := range []string{goodManifest, `{"type": "nope", "engine": {"pool-limit": -1}}`, `{"type":"binary","args":{"path":"../x"}}`, "", "{", "\xff\xfe", `{"drivers": {"a.b": {"type": "cron"}}}`} {
		f.Add([]byte(m), good)
		f.Add([]byte(m), []byte{})
	}
	for _, seed := range fuzzSeeds(f, e.outside) {
		f.Add([]byte(goodManifest), seed)
	}
	f.Fuzz(func(t *testing.T, man, pkg []byte) {
		parts := map[string][]byte{"manifest": man}
		if len(pkg) > 0 {
			parts["package"] = pkg
		}
		body, ctype := multipartBody(t, parts)
		rec := e.do(http.MethodPut, "/api/v1/apps/fz", "Bearer "+token, ctype, body)
		if rec.Code >= 500 {
			t.Fatalf("status %d: %s", rec.Code, rec.Body)
		}
		if rec.Code >= 400 {
			decodeError(t, rec)
		}
		e.assertUntouched(t)
	})
}
