package python_test

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cocaine-cloud/cocaine/slaves/protocol"
	"github.com/vmihailenco/msgpack/v5"
)

// BenchmarkWSGIHello drives one Python slave running examples/wsgi-hello
// straight over the protocol socket, playing the engine, and reports what
// the slave process spends per request: CPU (all its threads, from
// /proc/PID/task/*/schedstat) and context switches (voluntary and not, from
// /proc/PID/task/*/status). "inflight" is how many sessions the driver keeps
// open at once: 1 is the engine's default (concurrency 1, one job a slave),
// 32 shows what the runtime's batching does when frames queue up.
//
//	go test -run '^$' -bench WSGIHello -benchtime 20000x ./slaves/python/
func BenchmarkWSGIHello(b *testing.B) {
	for _, inflight := range []int{1, 32} {
		b.Run("inflight="+strconv.Itoa(inflight), func(b *testing.B) {
			benchSlave(b, "../../examples/wsgi-hello", "http", helloHead(b), inflight, "Hello, World!\n")
		})
	}
}

// BenchmarkWSGIHelloThreads is the same app with "concurrency": 4: the
// loop thread hands every session to a handler thread.
func BenchmarkWSGIHelloThreads(b *testing.B) {
	src, err := os.ReadFile("../../examples/wsgi-hello/app.py")
	if err != nil {
		b.Fatal(err)
	}
	dir := benchApp(b, map[string]string{
		"app.py":        string(src),
		"manifest.json": `{"type": "python", "args": {"wsgi": "app:application"}, "engine": {"concurrency": 4}}`,
	})
	for _, inflight := range []int{1, 32} {
		b.Run("inflight="+strconv.Itoa(inflight), func(b *testing.B) {
			benchSlave(b, dir, "http", helloHead(b), inflight, "Hello, World!\n")
		})
	}
}

// BenchmarkIOBound is a handler that waits 5 ms (a query, say) then
// answers, with 8 requests in flight: what handler threads buy. Run it
// with fewer requests: -bench IOBound -benchtime 1000x.
func BenchmarkIOBound(b *testing.B) {
	for _, conc := range []int{1, 4} {
		dir := benchApp(b, map[string]string{
			"handlers.py":   "import time\n\ndef query(request, response):\n    request.read()\n    time.sleep(0.005)\n    return b\"done\"\n",
			"manifest.json": fmt.Sprintf(`{"type": "python", "args": {"module": "handlers"}, "engine": {"concurrency": %d}}`, conc),
		})
		b.Run("concurrency="+strconv.Itoa(conc), func(b *testing.B) {
			benchSlave(b, dir, "query", nil, 8, "done")
		})
	}
}

func benchApp(b *testing.B, files map[string]string) string {
	dir := b.TempDir()
	for name, text := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			b.Fatal(err)
		}
	}
	return dir
}

// helloHead is the request head the front sends for `GET /wsgi-hello/http/`
// from wrk through nginx: the meta map, no body.
func helloHead(b *testing.B) []byte {
	head, err := msgpack.Marshal(map[string]any{
		"meta": map[string]any{
			"method": "GET", "url": "http://127.0.0.1:8080/wsgi-hello/http/", "path": "/wsgi-hello/http/",
			"query": "", "host": "127.0.0.1:8080", "remote_addr": "127.0.0.1:41234", "secure": false,
			"headers":     map[string][]string{"Connection": {"keep-alive"}, "User-Agent": {"wrk"}},
			"cookies":     map[string]string{},
			"script_name": "/wsgi-hello/http", "path_info": "/", "protocol": "HTTP/1.1",
		},
	})
	if err != nil {
		b.Fatal(err)
	}
	return head
}

func benchSlave(b *testing.B, appDir, event string, body []byte, inflight int, wantSuffix string) {
	if _, err := os.Stat(Python); err != nil {
		b.Fatalf("the Python runtime needs %s: %v (apt-get install -y python3 python3-msgpack)", Python, err)
	}
	dir, err := os.MkdirTemp("", "pybench")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { os.RemoveAll(dir) })
	path := filepath.Join(dir, "s")
	ln, err := net.Listen("unix", path)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { ln.Close() })
	launcher, _ := filepath.Abs("cocaine_slave.py")
	cmd := exec.Command(Python, launcher)
	cmd.Dir, _ = filepath.Abs(appDir)
	cmd.Env = append(os.Environ(), "COCAINE_SOCKET="+path, "COCAINE_SLAVE_ID=bench", "COCAINE_APP=bench",
		"COCAINE_HEARTBEAT_MS=1000", "PYTHONDONTWRITEBYTECODE=1")
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	b.Cleanup(func() { // after a failure; a slave told to terminate is gone already
		_ = cmd.Process.Kill()
		<-exited
	})
	nc, err := ln.Accept()
	if err != nil {
		b.Fatal(err)
	}
	conn := protocol.NewConn(nc)
	b.Cleanup(func() {
		// A terminate, so that the slave leaves without complaint.
		if conn.Write(&protocol.Frame{Type: protocol.Terminate, Message: "done"}) == nil {
			select {
			case <-exited:
			case <-time.After(5 * time.Second):
			}
		}
		nc.Close()
	})
	var f protocol.Frame
	if err := conn.Read(&f); err != nil || f.Type != protocol.Handshake {
		b.Fatalf("handshake: %v %v", f.Type, err)
	}

	// The reader reports each finished session; the sender keeps inflight
	// sessions open, each sent as one write (invoke, head, choke).
	done := make(chan error, inflight)
	go func() {
		var f protocol.Frame
		var got []byte
		for {
			if err := conn.Read(&f); err != nil {
				done <- err
				return
			}
			switch f.Type {
			case protocol.Chunk:
				got = append(got[:0], f.Data...)
			case protocol.Choke:
				if !bytes.HasSuffix(got, []byte(wantSuffix)) {
					done <- fmt.Errorf("answer ends in %q, want %q", got, wantSuffix)
					return
				}
				done <- nil
			case protocol.Error:
				done <- fmt.Errorf("session %d: error %d %s", f.Session, f.Code, f.Message)
				return
			}
		}
	}()
	var session uint64
	send := func() {
		session++
		err := conn.Write(&protocol.Frame{Type: protocol.Invoke, Session: session, Event: event},
			&protocol.Frame{Type: protocol.Chunk, Session: session, Data: body},
			&protocol.Frame{Type: protocol.Choke, Session: session})
		if err != nil {
			b.Fatal(err)
		}
	}
	run := func(n int) {
		open := 0
		for sent := 0; sent < n || open > 0; {
			for open < inflight && sent < n {
				send()
				sent++
				open++
			}
			if err := <-done; err != nil {
				b.Fatal(err)
			}
			open--
		}
	}
	run(min(2000, b.N)) // warm up: imports, caches, the allocator
	pid := cmd.Process.Pid
	cpu0, vol0, invol0 := slaveUsage(b, pid)
	t0 := time.Now()
	b.ResetTimer()
	run(b.N)
	b.StopTimer()
	cpu1, vol1, invol1 := slaveUsage(b, pid)
	n := float64(b.N)
	b.ReportMetric(float64(cpu1-cpu0)/1e3/n, "slave-µs/op")
	b.ReportMetric(float64(vol1-vol0)/n, "slave-vcs/op")
	b.ReportMetric(float64(invol1-invol0)/n, "slave-ivcs/op")
	b.ReportMetric(n/time.Since(t0).Seconds(), "req/s")
}

// slaveUsage sums over the process's threads its CPU time in ns and its
// voluntary and involuntary context switches.
func slaveUsage(b *testing.B, pid int) (cpuNS, vol, invol int64) {
	tasks, err := filepath.Glob(fmt.Sprintf("/proc/%d/task/*", pid))
	if err != nil || len(tasks) == 0 {
		b.Fatalf("threads of %d: %v", pid, err)
	}
	for _, t := range tasks {
		if s, err := os.ReadFile(t + "/schedstat"); err == nil {
			if fs := strings.Fields(string(s)); len(fs) > 0 {
				v, _ := strconv.ParseInt(fs[0], 10, 64)
				cpuNS += v
			}
		}
		st, err := os.ReadFile(t + "/status")
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(st), "\n") {
			k, v, ok := strings.Cut(line, ":")
			if !ok {
				continue
			}
			n, _ := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			switch k {
			case "voluntary_ctxt_switches":
				vol += n
			case "nonvoluntary_ctxt_switches":
				invol += n
			}
		}
	}
	return cpuNS, vol, invol
}
