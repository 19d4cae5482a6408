// Command echo is the example Go app: event "echo" answers the request
// body unchanged, event "sleep" sleeps the milliseconds in the body and
// answers "ok", and event "http" is a plain net/http handler (see
// http.go), served unchanged through the front.
package main

import (
	"context"
	"fmt"
	"io"
	"log"
	"strconv"
	"strings"
	"time"

	slave "github.com/cocaine-cloud/cocaine/slaves/go"
)

func main() {
	slave.HandleFunc("echo", func(ctx context.Context, req *slave.Request, w *slave.Response) error {
		_, err := io.Copy(w, req)
		return err
	})
	slave.HandleFunc("sleep", func(ctx context.Context, req *slave.Request, w *slave.Response) error {
		b, err := req.ReadAll()
		if err != nil {
			return err
		}
		ms, err := strconv.Atoi(strings.TrimSpace(string(b)))
		if err != nil || ms < 0 {
			return &slave.Error{Code: 400, Message: fmt.Sprintf("sleep wants milliseconds, got %q", b)}
		}
		select {
		case <-time.After(time.Duration(ms) * time.Millisecond):
		case <-ctx.Done():
			return ctx.Err()
		}
		_, err = io.WriteString(w, "ok")
		return err
	})
	slave.HandleHTTP("http", httpHandler())
	if err := slave.Run(); err != nil {
		log.Fatal(err)
	}
}
