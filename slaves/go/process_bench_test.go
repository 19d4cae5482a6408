package slave

import (
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
)

// envBenchSlave makes the test binary serve as a slave process instead of
// testing: the process benchmarks start it as the engine starts a slave.
const envBenchSlave = "COCAINE_BENCH_SLAVE"

func TestMain(m *testing.M) {
	if os.Getenv(envBenchSlave) != "" {
		mux := NewMux()
		mux.Handle("echo", echoHandler())
		if err := Serve(mux); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// BenchmarkSlaveProcess runs echo sessions through a slave process of its
// own, as the engine does, and reports the CPU that process spends per
// request (from /proc, so the engine's side here is not counted): the
// figure the budget for a Go slave is about.
func BenchmarkSlaveProcess(b *testing.B) {
	for _, c := range []struct {
		name     string
		body     []byte
		inflight int
	}{
		{"echo-14B-inflight-1", benchHello, 1},
		{"echo-14B-inflight-32", benchHello, 32},
		{"echo-64KiB-inflight-1", make([]byte, 64<<10), 1},
		{"echo-1MiB-inflight-1", make([]byte, 1<<20), 1},
	} {
		b.Run(c.name, func(b *testing.B) {
			body, inflight := c.body, c.inflight
			e, pid := startSlaveProcess(b)
			e.round(b, "echo", body, inflight) // warm up
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			t0, s0 := procCPU(b, pid), procSwitches(b, pid)
			b.ResetTimer()
			for i := 0; i < b.N; i += inflight {
				n := min(inflight, b.N-i)
				if got := e.round(b, "echo", body, n); got != len(body)*n {
					b.Fatalf("echoed %d bytes", got)
				}
			}
			b.StopTimer()
			b.ReportMetric(float64((procCPU(b, pid)-t0).Nanoseconds())/float64(b.N), "slave-cpu-ns/op")
			b.ReportMetric(float64(procSwitches(b, pid)-s0)/float64(b.N), "slave-ctxsw/op")
		})
	}
}

func startSlaveProcess(b *testing.B) (*benchEngine, int) {
	dir, err := os.MkdirTemp("", "bench") // short: Unix socket paths are short
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { os.RemoveAll(dir) })
	path := filepath.Join(dir, "s")
	ln, err := net.Listen("unix", path)
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), envBenchSlave+"=1", EnvSocket+"="+path, EnvSlaveID+"=bench",
		EnvHeartbeat+"=3600000")
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	accepted := make(chan net.Conn, 1)
	go func() {
		if c, err := ln.Accept(); err == nil {
			accepted <- c
		}
	}()
	var c net.Conn
	select {
	case c = <-accepted:
	case err := <-exited:
		b.Fatalf("slave exited before connecting: %v", err)
	case <-time.After(10 * time.Second):
		b.Fatal("slave did not connect within 10s")
	}
	e := &benchEngine{conn: protocol.NewConn(c)}
	var hs protocol.Frame
	if err := e.conn.Read(&hs); err != nil || hs.Type != protocol.Handshake {
		b.Fatalf("handshake: %v %v", hs.Type, err)
	}
	b.Cleanup(func() {
		_ = e.conn.Write(&protocol.Frame{Type: protocol.Terminate, Message: "bench over"})
		select {
		case err := <-exited:
			if err != nil {
				b.Errorf("slave: %v", err)
			}
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			b.Error("slave did not exit after terminate")
		}
		c.Close()
	})
	return e, cmd.Process.Pid
}

// procCPU is the user and system time of process pid so far.
func procCPU(b *testing.B, pid int) time.Duration {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		b.Fatal(err)
	}
	// The fields after the command name, which may hold spaces, in ")".
	f := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+1:]))
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		b.Fatalf("/proc/%d/stat: %q", pid, stat)
	}
	const tick = 10 * time.Millisecond // USER_HZ is 100 on Linux
	return time.Duration(utime+stime) * tick
}

// procSwitches is the number of context switches of process pid's threads
// so far, voluntary or not.
func procSwitches(b *testing.B, pid int) int64 {
	tasks, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	if err != nil {
		b.Fatal(err)
	}
	var n int64
	for _, t := range tasks {
		status, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/status", pid, t.Name()))
		if err != nil {
			continue // the thread exited
		}
		for _, line := range strings.Split(string(status), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.HasSuffix(k, "ctxt_switches") {
				c, _ := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
				n += c
			}
		}
	}
	return n
}
