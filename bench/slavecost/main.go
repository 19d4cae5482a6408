// Command slavecost measures what one runtime's slave costs per request,
// without the rest of the platform: it plays the engine on a Unix socket
// (as slaves/conformance does), sends N HTTP-payload requests to the app,
// CONC at a time, and prints the slave's CPU time per request.
//
//	go run ./bench/slavecost -n 20000 -- node slaves/node/cocaine_slave.js   (run in the app's folder: -dir)
package main

import (
	"flag"
	"fmt"
	"log"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/cocaine-cloud/cocaine/internal/httpmsg"
	"github.com/cocaine-cloud/cocaine/slaves/protocol"
)

func main() {
	n := flag.Int("n", 20000, "requests")
	conc := flag.Int("conc", 1, "requests in flight")
	dir := flag.String("dir", ".", "the app's folder (the slave's working directory)")
	event := flag.String("event", "http", "the event")
	flag.Parse()
	if flag.NArg() == 0 {
		log.Fatal("usage: slavecost [-n N] [-conc C] -dir APP -- COMMAND...")
	}
	tmp, _ := os.MkdirTemp("", "sc")
	defer os.RemoveAll(tmp)
	sock := filepath.Join(tmp, "s")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		log.Fatal(err)
	}
	cmd := exec.Command(flag.Arg(0), flag.Args()[1:]...)
	cmd.Dir = *dir
	cmd.Env = append(os.Environ(), "COCAINE_SOCKET="+sock, "COCAINE_SLAVE_ID=sc", "COCAINE_APP=sc", "COCAINE_HEARTBEAT_MS=1000")
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		log.Fatal(err)
	}
	defer cmd.Process.Kill()
	nc, err := ln.Accept()
	if err != nil {
		log.Fatal(err)
	}
	c := protocol.NewConn(nc)
	var f protocol.Frame
	if err := c.Read(&f); err != nil || f.Type != protocol.Handshake {
		log.Fatalf("handshake: %v %v", f.Type, err)
	}
	meta := &httpmsg.Meta{Method: "GET", URL: "http://x/a/http/", Path: "/a/http/", Host: "x", RemoteAddr: "127.0.0.1:1",
		Protocol: "HTTP/1.1", ScriptName: "/a/http", PathInfo: "/", Headers: map[string][]string{"User-Agent": {"bench"}}}
	payload, err := httpmsg.EncodeRequest(nil, meta, nil)
	if err != nil {
		log.Fatal(err)
	}
	session := uint64(0)
	send := func() {
		session++
		if err := c.Write(&protocol.Frame{Type: protocol.Invoke, Session: session, Event: *event},
			&protocol.Frame{Type: protocol.Chunk, Session: session, Data: payload},
			&protocol.Frame{Type: protocol.Choke, Session: session}); err != nil {
			log.Fatal(err)
		}
	}
	run := func(total int) {
		sent, done := 0, 0
		for sent < *conc && sent < total {
			send()
			sent++
		}
		for done < total {
			if err := c.Read(&f); err != nil {
				log.Fatal(err)
			}
			switch f.Type {
			case protocol.Choke:
				done++
				if sent < total {
					send()
					sent++
				}
			case protocol.Error:
				log.Fatalf("error %d %s", f.Code, f.Message)
			}
		}
	}
	run(*n / 10) // warm-up
	t0, c0 := time.Now(), cpu(cmd.Process.Pid)
	run(*n)
	wall, used := time.Since(t0), cpu(cmd.Process.Pid)-c0
	fmt.Printf("%d requests, %d in flight: %.1f µs wall, %.1f µs slave CPU per request\n",
		*n, *conc, float64(wall.Microseconds())/float64(*n), used*1e6/float64(*n))
}

// cpu is the process's user+system time in seconds.
func cpu(pid int) float64 {
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	s := string(b)
	fields := strings.Fields(s[strings.LastIndex(s, ")")+2:])
	u, _ := strconv.ParseFloat(fields[11], 64)
	sy, _ := strconv.ParseFloat(fields[12], 64)
	return (u + sy) / 100
}
