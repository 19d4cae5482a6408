package web_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/cocaine-cloud/cocaine/storage"
	"github.com/cocaine-cloud/cocaine/storage/files"
	"github.com/cocaine-cloud/cocaine/web"
)

func appendLog(t *testing.T, e *env, at time.Time, texts ...string) {
	t.Helper()
	lines := make([]storage.LogLine, len(texts))
	for i, text := range texts {
		lines[i] = storage.LogLine{Time: at, App: "app", Slave: "s1", Stream: "stdout", Text: text}
	}
	if err := e.st.AppendLog(context.Background(), "app", lines); err != nil {
		t.Fatal(err)
	}
}

func ndjson(t *testing.T, body string) []string {
	t.Helper()
	var out []string
	for _, line := range strings.Split(strings.TrimSpace(body), "\n") {
		if line == "" {
			continue
		}
		var l storage.LogLine
		if err := json.Unmarshal([]byte(line), &l); err != nil {
			t.Fatalf("line %q: %v", line, err)
		}
		out = append(out, l.Text)
	}
	return out
}

func TestLogs(t *testing.T) {
	e := newEnv(t, web.Config{})
	uploadVersion(t, e, "app", "v1", http.StatusCreated)
	base := time.Now().Add(-time.Hour).UTC()
	for i, text := range []string{"one", "two", "three", "four"} {
		appendLog(t, e, base.Add(time.Duration(i)*time.Minute), text)
	}
	for _, c := range []struct {
		query string
		want  string
	}{
		{"", "one,two,three,four"},
		{"?limit=2", "three,four"},
		{"?since=" + url.QueryEscape(base.Add(90*time.Second).Format(time.RFC3339Nano)), "three,four"},
		{"?since=" + url.QueryEscape(base.Add(90*time.Second).Format(time.RFC3339Nano)) + "&limit=1", "four"},
	} {
		rec := e.do(http.MethodGet, "/api/v1/apps/app/logs"+c.query, "", "", nil)
		if rec.Code != http.StatusOK || rec.Header().Get("Content-Type") != "application/x-ndjson" {
			t.Fatalf("%s: %d %s", c.query, rec.Code, rec.Body)
		}
		if got := strings.Join(ndjson(t, rec.Body.String()), ","); got != c.want {
			t.Errorf("%s: %s, want %s", c.query, got, c.want)
		}
	}
	for _, q := range []string{"?since=yesterday", "?limit=-1", "?limit=x"} {
		if rec := e.do(http.MethodGet, "/api/v1/apps/app/logs"+q, "", "", nil); rec.Code != http.StatusBadRequest {
			t.Errorf("%s: %d", q, rec.Code)
		}
	}
	if rec := e.do(http.MethodGet, "/api/v1/apps/nope/logs", "", "", nil); rec.Code != http.StatusNotFound {
		t.Errorf("unknown app: %d", rec.Code)
	}
}

func TestFollowStreamsNewLinesAsTheyCome(t *testing.T) {
	e := newEnv(t, web.Config{FollowPoll: 20 * time.Millisecond})
	uploadVersion(t, e, "app", "v1", http.StatusCreated)
	ts := httptest.NewServer(e.srv)
	defer ts.Close()
	at := time.Now().UTC()
	appendLog(t, e, at, "before")

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, ts.URL+"/api/v1/apps/app/logs?follow=1", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	lines := make(chan string, 100)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			var l storage.LogLine
			if json.Unmarshal(sc.Bytes(), &l) == nil {
				lines <- l.Text
			}
		}
	}()
	next := func() string {
		t.Helper()
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatal("stream ended")
			}
			return l
		case <-time.After(5 * time.Second):
			t.Fatal("no line within 5s")
		}
		return ""
	}
	if got := next(); got != "before" {
		t.Fatalf("first line %q", got)
	}
	// A line stored later with the same time as one already sent is new;
	// the one already sent is not sent again.
	appendLog(t, e, at, "same time")
	if got := next(); got != "same time" {
		t.Fatalf("got %q, want the line sharing a timestamp", got)
	}
	appendLog(t, e, at.Add(time.Millisecond), "a", "b")
	appendLog(t, e, at.Add(2*time.Millisecond), "c")
	for _, want := range []string{"a", "b", "c"} {
		if got := next(); got != want {
			t.Fatalf("got %q, want %q", got, want)
		}
	}
	select {
	case l := <-lines:
		t.Fatalf("unexpected line %q", l)
	case <-time.After(100 * time.Millisecond):
	}
	// Removing the app ends its follows.
	if rec := e.do(http.MethodDelete, "/api/v1/apps/app", "Bearer "+token, "", nil); rec.Code != http.StatusOK {
		t.Fatalf("remove: %d", rec.Code)
	}
	select {
	case _, ok := <-lines:
		if ok {
			t.Fatal("line after the app was removed")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("follow did not end when the app was removed")
	}
}

// TestHeadOnReadRoutes: every GET route answers HEAD alike, without a
// body; HEAD of a followed log ends at once.
func TestHeadOnReadRoutes(t *testing.T) {
	e := newEnv(t, web.Config{})
	uploadVersion(t, e, "app", "v1", http.StatusCreated)
	appendLog(t, e, time.Now(), "line")
	ts := httptest.NewServer(e.srv)
	defer ts.Close()
	c := &http.Client{Timeout: 10 * time.Second}
	for _, c2 := range []struct {
		path string
		want int
	}{{"/api/v1/apps", 200}, {"/api/v1/apps/app", 200}, {"/api/v1/apps/app/logs", 200}, {"/api/v1/apps/app/logs?follow=1", 200},
		{"/api/v1/apps/app/crashlogs", 200}, {"/api/v1/nodes", 200}, {"/api/v1/openapi.json", 200}, {"/api/v1/apps/nope", 404}} {
		resp, err := c.Head(ts.URL + c2.path)
		if err != nil {
			t.Fatalf("HEAD %s: %v", c2.path, err)
		}
		resp.Body.Close()
		if resp.StatusCode != c2.want || resp.Header.Get("Content-Type") == "" {
			t.Errorf("HEAD %s: %d %v, want %d", c2.path, resp.StatusCode, resp.Header, c2.want)
		}
	}
}

func TestCloseEndsFollows(t *testing.T) {
	e := newEnv(t, web.Config{FollowPoll: 20 * time.Millisecond})
	uploadVersion(t, e, "app", "v1", http.StatusCreated)
	ts := httptest.NewServer(e.srv)
	defer ts.Close()
	resp, err := http.Get(ts.URL + "/api/v1/apps/app/logs?follow=1")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	done := make(chan struct{})
	go func() { io.Copy(io.Discard, resp.Body); close(done) }()
	e.srv.Close()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("follow did not end when the API closed")
	}
}

// TestFollowWaitsForNotification: with file storage a follower is woken by
// the append, also one made by another process's store (seen through the
// file system), not by polling: the poll interval here is an hour.
func TestFollowWaitsForNotification(t *testing.T) {
	e := newEnv(t, web.Config{FollowPoll: time.Hour})
	uploadVersion(t, e, "app", "v1", http.StatusCreated)
	other, err := files.Open(e.st.(*files.Store).Dir(), files.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	ts := httptest.NewServer(e.srv)
	defer ts.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, ts.URL+"/api/v1/apps/app/logs?follow=1", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for i, st := range []storage.Storage{e.st, other} {
		text := fmt.Sprintf("line %d", i)
		if err := st.AppendLog(ctx, "app", []storage.LogLine{{Time: time.Now(), App: "app", Text: text}}); err != nil {
			t.Fatal(err)
		}
		if !sc.Scan() {
			t.Fatalf("stream ended before %q: %v", text, sc.Err())
		}
		var l storage.LogLine
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil || l.Text != text {
			t.Fatalf("got %s, want %q", sc.Bytes(), text)
		}
	}
}
