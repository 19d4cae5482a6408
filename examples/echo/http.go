package main

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"time"
)

// httpHandler is an ordinary net/http handler, as a Go user already has
// one: it echoes the method, path and body. ?sleep=MS delays the answer
// (for trying deadlines); ?chunks=N&every=MS streams N lines, flushing
// each, MS apart; with &gate=FILE, the lines after the first wait until
// FILE exists (up to a minute), so a test can see streaming without
// relying on timing.
func httpHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		if ms, err := strconv.Atoi(q.Get("sleep")); err == nil && ms > 0 {
			select {
			case <-time.After(time.Duration(ms) * time.Millisecond):
			case <-r.Context().Done():
				return
			}
		}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("X-Echo-Method", r.Method)
		if n, err := strconv.Atoi(q.Get("chunks")); err == nil && n > 0 {
			every, _ := strconv.Atoi(q.Get("every"))
			flusher, _ := w.(http.Flusher)
			for i := range n {
				fmt.Fprintf(w, "chunk %d\n", i)
				if flusher != nil {
					flusher.Flush()
				}
				time.Sleep(time.Duration(every) * time.Millisecond)
				if i == 0 {
					waitForFile(r, q.Get("gate"))
				}
			}
			return
		}
		fmt.Fprintf(w, "%s %s\n", r.Method, r.URL.Path)
		io.Copy(w, r.Body)
	})
	return mux
}

func waitForFile(r *http.Request, path string) {
	for end := time.Now().Add(time.Minute); path != "" && time.Now().Before(end); {
		if _, err := os.Stat(path); err == nil {
			return
		}
		select {
		case <-time.After(10 * time.Millisecond):
		case <-r.Context().Done():
			return
		}
	}
}
