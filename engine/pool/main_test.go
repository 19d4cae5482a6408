package pool

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	gslave "github.com/cocaine-cloud/cocaine/slaves/go"
	"github.com/cocaine-cloud/cocaine/slaves/protocol"
)

// The test binary doubles as the slave: the pool starts it again with
// POOL_TEST_SLAVE set, and TestMain serves these handlers instead of
// running tests. Slaves are real processes on a real socket.
func TestMain(m *testing.M) {
	switch os.Getenv("POOL_TEST_SLAVE") {
	case "":
		os.Exit(m.Run())
	case "crash-at-start":
		fmt.Println("starting up, about to fail")
		fmt.Fprintln(os.Stderr, "fatal: cannot load the app")
		os.Exit(3)
	case "silent":
		time.Sleep(time.Hour) // never connects
	case "garbage", "no-heartbeat":
		rawSlave(os.Getenv("POOL_TEST_SLAVE"))
	default:
		serveTestSlave()
	}
}

func serveTestSlave() {
	gslave.HandleFunc("echo", func(ctx context.Context, req *gslave.Request, w *gslave.Response) error {
		_, err := io.Copy(w, req)
		return err
	})
	gslave.HandleFunc("sleep", func(ctx context.Context, req *gslave.Request, w *gslave.Response) error {
		b, _ := req.ReadAll()
		ms, _ := strconv.Atoi(string(b))
		select {
		case <-time.After(time.Duration(ms) * time.Millisecond):
		case <-ctx.Done():
			return ctx.Err()
		}
		_, err := w.Write([]byte("ok"))
		return err
	})
	gslave.HandleFunc("hang", func(ctx context.Context, req *gslave.Request, w *gslave.Response) error {
		select {} // ignores cancellation: only a kill ends it
	})
	gslave.HandleFunc("pid", func(ctx context.Context, req *gslave.Request, w *gslave.Response) error {
		_, err := fmt.Fprint(w, os.Getpid())
		return err
	})
	gslave.HandleFunc("exit", func(ctx context.Context, req *gslave.Request, w *gslave.Response) error {
		fmt.Println("exiting mid-request")
		os.Exit(7)
		return nil
	})
	gslave.HandleFunc("chunk-then-exit", func(ctx context.Context, req *gslave.Request, w *gslave.Response) error {
		_, _ = w.Write([]byte("partial"))
		_ = w.Flush()
		time.Sleep(50 * time.Millisecond)
		os.Exit(7)
		return nil
	})
	gslave.HandleFunc("slow-echo", func(ctx context.Context, req *gslave.Request, w *gslave.Response) error {
		b, _ := req.ReadAll()
		time.Sleep(5 * time.Millisecond)
		_, err := w.Write(b)
		return err
	})
	gslave.HandleFunc("stream", func(ctx context.Context, req *gslave.Request, w *gslave.Response) error {
		for i := range 5 {
			if _, err := fmt.Fprintf(w, "chunk%d;", i); err != nil {
				return err
			}
			if err := w.Flush(); err != nil {
				return err
			}
		}
		return nil
	})
	gslave.HandleFunc("print", func(ctx context.Context, req *gslave.Request, w *gslave.Response) error {
		// The body says what to print: "long:N" for one line of N bytes.
		b, _ := req.ReadAll()
		line := string(b)
		if n, ok := strings.CutPrefix(line, "long:"); ok {
			size, _ := strconv.Atoi(n)
			line = strings.Repeat("é", size/2)
		}
		if _, err := fmt.Println(line); err != nil {
			return err
		}
		_, err := w.Write([]byte("printed"))
		return err
	})
	gslave.HandleFunc("fork", func(ctx context.Context, req *gslave.Request, w *gslave.Response) error {
		// Starts N children that outlive this handler and answers their pids.
		b, _ := req.ReadAll()
		n, _ := strconv.Atoi(string(b))
		var pids []string
		for range n {
			c := exec.Command("sleep", "3600")
			if err := c.Start(); err != nil {
				return err
			}
			pids = append(pids, strconv.Itoa(c.Process.Pid))
		}
		_, err := w.Write([]byte(strings.Join(pids, " ")))
		return err
	})
	gslave.HandleFunc("fail", func(ctx context.Context, req *gslave.Request, w *gslave.Response) error {
		return fmt.Errorf("handler says no")
	})
	if err := gslave.Run(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

// selfSpawner starts this test binary as a slave in the given mode.
type selfSpawner struct{ mode string }

func (s selfSpawner) Command(id string) (*exec.Cmd, error) {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	// A -race slave sleeps 1 s at exit (atexit_sleep_ms), longer than the
	// termination-timeout these tests use: every stop would end in SIGKILL.
	cmd.Env = append(os.Environ(), "POOL_TEST_SLAVE="+s.mode, "GORACE=atexit_sleep_ms=0")
	return cmd, nil
}

// rawSlave speaks the protocol by hand to misbehave in ways the framework
// never would.
func rawSlave(mode string) {
	c, err := net.Dial("unix", os.Getenv(EnvSocket))
	if err != nil {
		os.Exit(1)
	}
	conn := protocol.NewConn(c)
	_ = conn.Write(&protocol.Frame{Type: protocol.Handshake, SlaveID: os.Getenv(EnvSlaveID), PID: os.Getpid(), Proto: protocol.Version})
	switch mode {
	case "garbage":
		var f protocol.Frame
		_ = conn.Read(&f) // wait for an invoke
		_, _ = c.Write([]byte{0, 0, 0, 3, 0xc1, 0xc1, 0xc1})
	case "no-heartbeat":
	}
	time.Sleep(time.Hour)
}
