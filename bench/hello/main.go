// Command hello is the bare net/http baseline of bench/run.sh: the answer
// of examples/echo's "http" event ("GET /\n" for GET /), served by Go's
// HTTP server alone on a Unix socket, for nginx to proxy_pass to.
package main

import (
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
)

func main() {
	sock := flag.String("socket", "", "Unix socket to listen on")
	flag.Parse()
	if *sock == "" {
		log.Fatal("-socket is required")
	}
	os.Remove(*sock)
	l, err := net.Listen("unix", *sock)
	if err != nil {
		log.Fatal(err)
	}
	// nginx workers started by root run as nobody.
	if err := os.Chmod(*sock, 0o666); err != nil {
		log.Fatal(err)
	}
	// The same work as examples/echo's handler on a plain request, so
	// the two differ only by what carries the request to it.
	log.Fatal(http.Serve(l, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("X-Echo-Method", r.Method)
		fmt.Fprintf(w, "%s %s\n", r.Method, r.URL.Path)
		io.Copy(w, r.Body)
	})))
}
