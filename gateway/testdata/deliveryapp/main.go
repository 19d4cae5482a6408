// Command deliveryapp is the app the dealer's delivery-rule tests run on
// real engines (gateway/delivery_test.go, fcgiproxy/delivery_test.go).
// Every run leaves marks in a folder the test names, so a test counts
// where and how often a request ran instead of guessing from timing.
//
// Event "run" takes a JSON order as its body; event "web" takes the same
// order as the query of an HTTP request from the front (marks=DIR&code=N
// &chunk=1&hold=1). A run:
//   - writes DIR/NANOS-PID.start holding the slave's COCAINE_SOCKET (which
//     lies under its node's data folder: the test knows the node);
//   - with chunk, sends one chunk naming that socket and flushes it;
//   - with hold, waits until the engine cancels the session (then writes
//     DIR/NANOS-PID.cancelled) or a minute passes;
//   - with code, fails with that platform code; else answers "ok".
//
// Event "echo" answers its body.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/cocaine-cloud/cocaine/internal/httpmsg"
	slave "github.com/cocaine-cloud/cocaine/slaves/go"
)

type order struct {
	Marks string `json:"marks"`
	Code  int    `json:"code"`
	Chunk bool   `json:"chunk"`
	Hold  bool   `json:"hold"`
}

func main() {
	slave.HandleFunc("echo", func(ctx context.Context, req *slave.Request, w *slave.Response) error {
		_, err := io.Copy(w, req)
		return err
	})
	slave.HandleFunc("run", func(ctx context.Context, req *slave.Request, w *slave.Response) error {
		b, err := req.ReadAll()
		if err != nil {
			return err
		}
		var o order
		if err := json.Unmarshal(b, &o); err != nil {
			return &slave.Error{Code: 400, Message: fmt.Sprintf("run wants a JSON order: %v", err)}
		}
		return run(ctx, o, w, nil)
	})
	slave.HandleFunc("web", func(ctx context.Context, req *slave.Request, w *slave.Response) error {
		meta, _, err := httpmsg.DecodeRequest(req)
		if err != nil {
			return &slave.Error{Code: 400, Message: err.Error()}
		}
		q, err := url.ParseQuery(meta.Query)
		if err != nil {
			return &slave.Error{Code: 400, Message: err.Error()}
		}
		code, _ := strconv.Atoi(q.Get("code"))
		o := order{Marks: q.Get("marks"), Code: code, Chunk: q.Get("chunk") == "1", Hold: q.Get("hold") == "1"}
		head, err := httpmsg.EncodeHead(nil, &httpmsg.Head{Code: 200, Headers: [][2]string{{"Content-Type", "text/plain"}}})
		if err != nil {
			return err
		}
		return run(ctx, o, w, head)
	})
	if err := slave.Run(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

// run carries out an order; head, when set, is the HTTP answer head sent
// before any body.
func run(ctx context.Context, o order, w *slave.Response, head []byte) error {
	socket := os.Getenv("COCAINE_SOCKET")
	name := fmt.Sprintf("%020d-%d", time.Now().UnixNano(), os.Getpid())
	if err := mark(o.Marks, name+".start", socket); err != nil {
		return err
	}
	if o.Chunk {
		if head != nil {
			if _, err := w.Write(head); err != nil {
				return err
			}
			if err := w.Flush(); err != nil {
				return err
			}
			head = nil
		}
		if _, err := io.WriteString(w, "first from "+socket); err != nil {
			return err
		}
		if err := w.Flush(); err != nil {
			return err
		}
	}
	if o.Hold {
		select {
		case <-ctx.Done():
			_ = mark(o.Marks, name+".cancelled", socket)
			return ctx.Err()
		case <-time.After(time.Minute):
		}
	}
	if o.Code != 0 {
		return &slave.Error{Code: o.Code, Message: "refused by " + socket}
	}
	if head != nil {
		if _, err := w.Write(head); err != nil {
			return err
		}
	}
	_, err := io.WriteString(w, "ok")
	return err
}

func mark(dir, name, content string) error {
	if dir == "" {
		return nil
	}
	return os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644)
}
