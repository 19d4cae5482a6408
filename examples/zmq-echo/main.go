// Command zmq-echo is the example of a zeromq-server driver: any ZeroMQ
// REQ or DEALER client can call it (see README.md). On port 5555 "echo"
// answers the request unchanged; on port 5556 "words" answers one chunk
// per word, which a DEALER client receives as separate messages and a REQ
// client as one joined reply.
package main

import (
	"context"
	"io"
	"log"
	"strings"

	slave "github.com/cocaine-cloud/cocaine/slaves/go"
)

func main() {
	slave.HandleFunc("echo", func(ctx context.Context, req *slave.Request, w *slave.Response) error {
		_, err := io.Copy(w, req)
		return err
	})
	slave.HandleFunc("words", func(ctx context.Context, req *slave.Request, w *slave.Response) error {
		body, err := req.ReadAll()
		if err != nil {
			return err
		}
		for _, word := range strings.Fields(string(body)) {
			if _, err := io.WriteString(w, word+"\n"); err != nil {
				return err
			}
			// A chunk leaves on Flush; without it the words would go out
			// together at the end.
			if err := w.Flush(); err != nil {
				return err
			}
		}
		return nil
	})
	if err := slave.Run(); err != nil {
		log.Fatal(err)
	}
}
