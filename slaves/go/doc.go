// Package slave is the Go framework for writing apps that run on the cloud.
//
// An app registers a handler per event and calls Run:
//
//	func main() {
//		slave.HandleFunc("echo", func(ctx context.Context, req *slave.Request, w *slave.Response) error {
//			_, err := io.Copy(w, req)
//			return err
//		})
//		log.Fatal(slave.Run())
//	}
//
// Run speaks the engine ⇄ slave protocol (docs/protocol.md): it connects to
// the socket the engine names in COCAINE_SOCKET, says hello, sends
// heartbeats from its own goroutine (so a long handler never looks dead),
// streams request and response bodies, and exits cleanly when the engine
// asks it to.
//
// When the engine cancels a session (its deadline passed, its timeout
// fired, its caller went away), the handler's ctx ends and its writes fail
// with ErrCancelled, so even a handler that never looks at ctx stops at its
// next write; HandleHTTP does the same to http.ResponseWriter and
// r.Context().
package slave
