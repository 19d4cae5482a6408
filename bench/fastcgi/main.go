// Command fastcgi-bench serves a hello-world handler on a Unix socket with
// one of three front ends, for bench/fastcgi/run.sh to put nginx and wrk in
// front of:
//
//	fastcgi  this repository's fcgiproxy/fastcgi
//	netfcgi  the standard library's net/http/fcgi
//	http     plain net/http, for nginx proxy_pass as a reference
package main

import (
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"net/http/fcgi"
	"os"
	"os/signal"
	"runtime/pprof"
	"syscall"

	"github.com/cocaine-cloud/cocaine/fcgiproxy/fastcgi"
)

func main() {
	impl := flag.String("impl", "fastcgi", "fastcgi, netfcgi or http")
	sock := flag.String("socket", "", "Unix socket to listen on")
	cpuprofile := flag.String("cpuprofile", "", "write a CPU profile here until SIGTERM or SIGINT")
	flag.Parse()
	if *cpuprofile != "" {
		f, err := os.Create(*cpuprofile)
		if err != nil {
			log.Fatal(err)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			log.Fatal(err)
		}
		sig := make(chan os.Signal, 1)
		signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
		go func() {
			<-sig
			pprof.StopCPUProfile()
			f.Close()
			os.Exit(0)
		}()
	}
	if *sock == "" {
		log.Fatal("-socket is required")
	}
	os.Remove(*sock)
	l, err := net.Listen("unix", *sock)
	if err != nil {
		log.Fatal(err)
	}
	// nginx workers may run as another user.
	if err := os.Chmod(*sock, 0o666); err != nil {
		log.Fatal(err)
	}
	body := []byte("Hello, world!\n")
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Write(body)
	})
	switch *impl {
	case "fastcgi":
		err = fastcgi.Serve(l, h)
	case "netfcgi":
		err = fcgi.Serve(l, h)
	case "http":
		err = http.Serve(l, h)
	default:
		err = fmt.Errorf("unknown -impl %q", *impl)
	}
	log.Fatal(err)
}
