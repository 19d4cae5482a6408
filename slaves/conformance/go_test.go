package conformance_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cocaine-cloud/cocaine/slaves/conformance"
	slave "github.com/cocaine-cloud/cocaine/slaves/go"
)

// The test binary doubles as the Go conformance app: the suite starts it
// again with this variable set, and TestMain serves instead of testing.
const envApp = "CONFORMANCE_GO_APP"

func TestMain(m *testing.M) {
	if os.Getenv(envApp) != "" {
		serveApp()
	}
	os.Exit(m.Run())
}

func TestGoFramework(t *testing.T) {
	conformance.RunWithOptions(t, conformance.Options{Concurrent: true}, func(t *testing.T, env []string) *exec.Cmd {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		// The race detector's default 1s pause at exit would eat most of
		// the 2s the suite gives a terminated slave.
		gorace := strings.TrimSpace(os.Getenv("GORACE") + " atexit_sleep_ms=0")
		cmd.Env = append(append(os.Environ(), env...), envApp+"=1", "GORACE="+gorace)
		return cmd
	})
}

func serveApp() {
	slave.HandleFunc("echo", func(ctx context.Context, req *slave.Request, w *slave.Response) error {
		_, err := io.Copy(w, req)
		return err
	})
	slave.HandleFunc("sleep", func(ctx context.Context, req *slave.Request, w *slave.Response) error {
		b, err := req.ReadAll()
		if err != nil {
			return err
		}
		ms, err := strconv.Atoi(string(b))
		if err != nil {
			return fmt.Errorf("sleep: body must be milliseconds: %w", err)
		}
		select {
		case <-time.After(time.Duration(ms) * time.Millisecond):
		case <-ctx.Done():
			return ctx.Err()
		}
		_, err = w.Write([]byte("ok"))
		return err
	})
	slave.HandleFunc("stream-upper", func(ctx context.Context, req *slave.Request, w *slave.Response) error {
		for {
			c, err := req.NextChunk()
			if errors.Is(err, io.EOF) {
				return nil
			}
			if err != nil {
				return err
			}
			if _, err := w.Write(bytes.ToUpper(c)); err != nil {
				return err
			}
			if err := w.Flush(); err != nil {
				return err
			}
		}
	})
	slave.HandleFunc("flood", func(ctx context.Context, req *slave.Request, w *slave.Response) error {
		// Deliberately blind to ctx: only the failing write stops it.
		p := bytes.Repeat([]byte("x"), 1024)
		for {
			if _, err := w.Write(p); err != nil {
				return err
			}
			if err := w.Flush(); err != nil {
				return err
			}
			time.Sleep(10 * time.Millisecond)
		}
	})
	slave.HandleFunc("fail", func(ctx context.Context, req *slave.Request, w *slave.Response) error {
		return errors.New("failing on purpose")
	})
	if err := slave.Run(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	os.Exit(0)
}
