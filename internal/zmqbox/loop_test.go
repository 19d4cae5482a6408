package zmqbox

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	zmq "github.com/pebbe/zmq4"
)

// TestLoopLosesNoWakeup bounces many messages between two loops from many
// goroutines: a lost wake-up would leave one unanswered, and the test
// would time out waiting for it.
func TestLoopLosesNoWakeup(t *testing.T) {
	ep := fmt.Sprintf("inproc://loop-test-%d", time.Now().UnixNano())
	srv, _ := zmq.NewSocket(zmq.ROUTER)
	cli, _ := zmq.NewSocket(zmq.DEALER)
	for _, s := range []*zmq.Socket{srv, cli} {
		s.SetLinger(0)
		s.SetSndhwm(0) // unlimited: this test is about wake-ups, not back-pressure
		s.SetRcvhwm(0)
	}
	if err := srv.Bind(ep); err != nil {
		t.Fatal(err)
	}
	if err := cli.Connect(ep); err != nil {
		t.Fatal(err)
	}
	sl, err := NewLoop(srv, 1024)
	if err != nil {
		t.Fatal(err)
	}
	cl, err := NewLoop(cli, 1024)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(2)
	// The server answers from other goroutines, as the engine's pools do.
	go func() {
		defer wg.Done()
		sl.Run(ctx, func(m [][]byte) { go sl.Post(m) })
	}()
	const senders, each = 8, 500
	got := make(chan string, senders*each)
	go func() {
		defer wg.Done()
		cl.Run(ctx, func(m [][]byte) { got <- string(m[0]) })
	}()
	for s := range senders {
		go func() {
			for i := range each {
				cl.Post([][]byte{[]byte(fmt.Sprintf("%d-%d", s, i))})
			}
		}()
	}
	seen := map[string]bool{}
	timeout := time.After(30 * time.Second)
	for len(seen) < senders*each {
		select {
		case m := <-got:
			seen[m] = true
		case <-timeout:
			t.Fatalf("%d of %d answers arrived", len(seen), senders*each)
		}
	}
	cancel()
	wg.Wait()
	srv.Close()
	cli.Close()
}
