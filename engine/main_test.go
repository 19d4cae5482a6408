package engine

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"testing"

	gslave "github.com/cocaine-cloud/cocaine/slaves/go"
	"github.com/cocaine-cloud/cocaine/slaves/sandbox"
)

// The test binary doubles as a slave: the "testself" sandbox starts it
// again with ENGINE_TEST_SLAVE set, through the real rlimit launcher.
func TestMain(m *testing.M) {
	if os.Getenv("ENGINE_TEST_SLAVE") != "" {
		serveTestSlave()
		return
	}
	sandbox.Register("testself", selfSandbox{})
	os.Exit(m.Run())
}

func serveTestSlave() {
	gslave.HandleFunc("echo", func(ctx context.Context, req *gslave.Request, w *gslave.Response) error {
		_, err := io.Copy(w, req)
		return err
	})
	gslave.HandleFunc("limits", func(ctx context.Context, req *gslave.Request, w *gslave.Response) error {
		b, err := os.ReadFile("/proc/self/limits")
		if err != nil {
			return err
		}
		_, err = w.Write(b)
		return err
	})
	gslave.HandleFunc("cwd", func(ctx context.Context, req *gslave.Request, w *gslave.Response) error {
		wd, _ := os.Getwd()
		_, err := fmt.Fprintf(w, "%s|%s", wd, os.Getenv("COCAINE_APP"))
		return err
	})
	gslave.HandleFunc("print", func(ctx context.Context, req *gslave.Request, w *gslave.Response) error {
		b, _ := req.ReadAll()
		fmt.Println(string(b))
		return nil
	})
	gslave.HandleHTTP("http", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		io.WriteString(w, r.Method+" "+r.URL.Path+"\n")
	}))
	if err := gslave.Run(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

type selfSandbox struct{}

func (selfSandbox) Prepare(ctx context.Context, app sandbox.App) (sandbox.Launcher, error) {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	// A -race slave sleeps 1 s at exit (atexit_sleep_ms), longer than the
	// termination-timeout these tests use: every stop would end in SIGKILL.
	cmd.Env = []string{"ENGINE_TEST_SLAVE=1", "GORACE=atexit_sleep_ms=0"}
	return sandbox.Limit(cmd, app), nil
}
