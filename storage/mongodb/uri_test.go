package mongodb

import (
	"context"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/cocaine-cloud/cocaine/storage"
)

func TestParseURI(t *testing.T) {
	good := []struct {
		uri, client, db string
		opts            Options
	}{
		{"mongodb://127.0.0.1:27017/cocaine", "mongodb://127.0.0.1:27017/cocaine", "cocaine", Options{}},
		{"mongodb://127.0.0.1:27017", "mongodb://127.0.0.1:27017", DefaultDatabase, Options{}},
		{"mongodb://127.0.0.1:27017/", "mongodb://127.0.0.1:27017/", DefaultDatabase, Options{}},
		{
			"mongodb://h:1/db?max-log-lines=50&replicaSet=rs0&max-log-age=24h&readPreference=secondaryPreferred",
			"mongodb://h:1/db?replicaSet=rs0&readPreference=secondaryPreferred", "db",
			Options{MaxLogLines: 50, MaxLogAge: 24 * time.Hour},
		},
		{
			"mongodb://user:p%40ss@a:1,b:2/db?authSource=admin&max-log-lines=-1&blob-grace=0s&orphan-age=1h",
			"mongodb://user:p%40ss@a:1,b:2/db?authSource=admin", "db",
			Options{MaxLogLines: -1, BlobGrace: -1, OrphanAge: time.Hour},
		},
		{"mongodb://h/db?serverSelectionTimeoutMS=500", "mongodb://h/db?serverSelectionTimeoutMS=500", "db", Options{}},
	}
	for _, g := range good {
		u, err := url.Parse(g.uri)
		if err != nil {
			t.Fatal(err)
		}
		c, err := parseURI(u)
		if err != nil {
			t.Errorf("parseURI(%s): %v", g.uri, err)
			continue
		}
		if c.clientURI != g.client || c.db != g.db || c.opts != g.opts {
			t.Errorf("parseURI(%s) = %q, %q, %+v; want %q, %q, %+v", g.uri, c.clientURI, c.db, c.opts, g.client, g.db, g.opts)
		}
	}

	bad := []struct{ uri, why string }{
		{"file:///tmp", "scheme"},
		{"mongodb:///db", "no host"},
		{"mongodb://h/a.b", "database name"},
		{"mongodb://h/" + strings.Repeat("d", 64), "longer than 63"},
		{"mongodb://h/db?max-log-lines=x", "max-log-lines"},
		{"mongodb://h/db?max-log-lines=0", "max-log-lines"},
		{"mongodb://h/db?max-log-age=0", "max-log-age"},
		{"mongodb://h/db?blob-grace=-1s", "blob-grace"},
		{"mongodb://h/db?orphan-age=0s", "orphan-age"},
		{"mongodb://h/db?max-log-line=5", "unknown parameter"},
		{"mongodb://h/db?max-log-lines=5&max-log-lines=6", "twice"},
		{"mongodb://h/db?replicaSett=rs0", "unknown options"},
		{"mongodb://h/db?serverSelectionTimeoutMS=abc", "serverselectiontimeoutms"},
	}
	for _, b := range bad {
		u, err := url.Parse(b.uri)
		if err != nil {
			t.Fatal(err)
		}
		_, err = parseURI(u)
		if err == nil || !strings.Contains(strings.ToLower(err.Error()), strings.ToLower(b.why)) {
			t.Errorf("parseURI(%s): err = %v, want one about %s", b.uri, err, b.why)
		}
	}

	// Errors name the URI but never its password.
	u, _ := url.Parse("mongodb://user:secret@h/db?bogus-param=1")
	if _, err := parseURI(u); err == nil || strings.Contains(err.Error(), "secret") {
		t.Errorf("error for a URI with a password: %v", err)
	}
}

// A failed storage.Open hands back a nil Storage, not a nil *Store inside
// a non-nil interface that callers' nil checks would miss.
func TestStorageOpenFailureIsNil(t *testing.T) {
	s, err := storage.Open(context.Background(), "mongodb://127.0.0.1:1/db?no-such-param=1")
	if err == nil || s != nil {
		t.Errorf("storage.Open with a bad URI = %v, %v; want nil and an error", s, err)
	}
}
