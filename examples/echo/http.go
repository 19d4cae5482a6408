package main

import (
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"
)

// httpHandler is an ordinary net/http handler, as a Go user already has
// one: it echoes the method, path and body. ?sleep=MS delays the answer
// (for trying deadlines); ?chunks=N&every=MS streams N lines, flushing
// each, MS apart.
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
			}
			return
		}
		fmt.Fprintf(w, "%s %s\n", r.Method, r.URL.Path)
		io.Copy(w, r.Body)
	})
	return mux
}
