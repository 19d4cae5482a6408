package nats

import (
	"net/url"
	"strings"
	"testing"
	"time"
)

func TestParseURI(t *testing.T) {
	good := []struct {
		uri     string
		servers string
		opts    Options
	}{
		{"nats://127.0.0.1", "nats://127.0.0.1:4222",
			Options{Bucket: "cocaine", Replicas: 1, Timeout: 5 * time.Second, MaxLogLines: 10000, MaxLogAge: 168 * time.Hour, BlobGrace: 2 * time.Minute}},
		{"nats://u:p@a:1,b:2,c:3/?bucket=x_y&timeout=2s&max-log-lines=-1&max-log-age=1h&blob-grace=0s",
			"nats://a:1,nats://b:2,nats://c:3",
			Options{Bucket: "x_y", Replicas: 3, Timeout: 2 * time.Second, MaxLogLines: -1, MaxLogAge: time.Hour, BlobGrace: -1}},
		{"nats://[::1]:4223?replicas=5", "nats://[::1]:4223",
			Options{Bucket: "cocaine", Replicas: 5, Timeout: 5 * time.Second, MaxLogLines: 10000, MaxLogAge: 168 * time.Hour, BlobGrace: 2 * time.Minute}},
	}
	for _, g := range good {
		u, err := url.Parse(g.uri)
		if err != nil {
			t.Fatalf("%s: %v", g.uri, err)
		}
		c, err := parseURI(u)
		if err != nil {
			t.Errorf("%s: %v", g.uri, err)
			continue
		}
		if c.servers != g.servers || c.opts != g.opts {
			t.Errorf("%s: servers %q opts %+v, want %q %+v", g.uri, c.servers, c.opts, g.servers, g.opts)
		}
	}
	if u, _ := url.Parse("nats://u:p@a"); true {
		c, _ := parseURI(u)
		if c.user != "u" || c.pass != "p" {
			t.Errorf("credentials: %q %q", c.user, c.pass)
		}
	}
	bad := map[string]string{
		"mongodb://a":                    "scheme",
		"nats:///x":                      "no host",
		"nats://a/db":                    "path",
		"nats://a,,b":                    "empty host",
		"nats://a:0":                     "bad port",
		"nats://a?replicas=0":            "replicas",
		"nats://a?replicas=6":            "replicas",
		"nats://a,b,c?replicas=5":        "only 3 servers",
		"nats://a?bucket=a.b":            "bucket",
		"nats://a?timeout=0s":            "timeout",
		"nats://a?max-log-lines=0":       "max-log-lines",
		"nats://a?max-log-age=x":         "max-log-age",
		"nats://a?blob-grace=-1s":        "blob-grace",
		"nats://a?replica=3":             "unknown parameter",
		"nats://a?timeout=1s&timeout=2s": "2 times",
	}
	for uri, want := range bad {
		u, err := url.Parse(uri)
		if err != nil {
			t.Fatalf("%s: %v", uri, err)
		}
		if _, err := parseURI(u); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: err = %v, want one mentioning %q", uri, err, want)
		}
	}
}

func TestEncode(t *testing.T) {
	for _, name := range []string{"app", "app:1700000000:slave-1@node.example", "a=b", "A_b-c.d", "x=3D"} {
		enc := encode(name)
		if strings.ContainsAny(enc, ".:@ *>") {
			t.Errorf("encode(%q) = %q is not one plain token", name, enc)
		}
		dec, err := decode(enc)
		if err != nil || dec != name {
			t.Errorf("decode(encode(%q)) = %q, %v", name, dec, err)
		}
	}
	if encode("a=b") == encode("a=3Db") {
		t.Error("two names encode alike")
	}
	for _, bad := range []string{"=", "=4", "=ZZ"} {
		if _, err := decode(bad); err == nil {
			t.Errorf("decode(%q) accepted", bad)
		}
	}
}
