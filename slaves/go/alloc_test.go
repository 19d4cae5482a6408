//go:build !race

// The race detector changes what allocates (sync.Pool drops items on
// purpose), so these counts hold only without it.

package slave

import "testing"

// A session through the worker allocates only what cannot be shared
// between sessions: its state, its goroutine, its context. Bodies and
// frames come from pools; a regression here costs every request.
func TestEchoAllocs(t *testing.T) {
	e := startBenchEngine(t, echoHandler())
	for _, body := range [][]byte{benchHello, make([]byte, 64<<10)} {
		e.round(t, "echo", body, 1) // fill the pools
		n := testing.AllocsPerRun(200, func() { e.round(t, "echo", body, 1) })
		if n > 4 {
			t.Errorf("echo of %d bytes: %v allocations a session, want at most 4 (session, goroutine, context)", len(body), n)
		}
	}
}
