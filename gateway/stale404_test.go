package gateway_test

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	zmq "github.com/pebbe/zmq4"

	"github.com/cocaine-cloud/cocaine/gateway"
	"github.com/cocaine-cloud/cocaine/internal/testcluster"
	"github.com/cocaine-cloud/cocaine/internal/wire"
)

// A node that drops an app tells the dealer in its next announce; a
// request it was sent just before then is answered 404. When the announce
// overtakes the 404, the request must still go elsewhere: the node did
// advertise the app when it was picked. A real engine shows this race
// only by chance, so a scripted peer plays the node: on the invoke it
// announces itself without the app, waits until the dealer has taken
// that in, and only then answers 404.
func TestStale404AfterTheAnnounceGoesElsewhere(t *testing.T) {
	b := startDeliveryNode(t, testcluster.Options{}, "dapp")
	peer := startDroppingPeer(t, "dapp", "echo")
	d, err := gateway.New(gateway.Config{Sources: []gateway.Source{announceList{b.Announce, peer.announce}},
		DefaultBalancer: gateway.RoundRobin, AckTimeout: deliveryAck})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	peer.dealer.Store(d)
	waitRoutes(t, d, 2, "dapp/echo")
	// Round-robin: of two requests in a row, one meets the peer first.
	for i := range 2 {
		want := fmt.Sprintf("race %d", i)
		got, err := collect(t, d, "dapp", "echo", []byte(want), wire.Policy{})
		if err != nil || string(got) != want {
			t.Fatalf("request %d: %q %v; want %q from the real node", i, got, err, want)
		}
	}
	if n := peer.invokes.Load(); n != 1 {
		t.Fatalf("the peer got %d invokes; the test needs exactly one", n)
	}
}

// droppingPeer answers on a ROUTER and announces on a PUB like an engine
// serving app/event, until its first invoke: then it announces the app
// gone, waits for the dealer to see that, and answers the invoke 404.
type droppingPeer struct {
	listen, announce string
	dealer           atomic.Pointer[gateway.Dealer]
	invokes          atomic.Int64
}

func startDroppingPeer(t *testing.T, app, event string) *droppingPeer {
	t.Helper()
	p := &droppingPeer{
		listen:   fmt.Sprintf("tcp://127.0.0.1:%d", testcluster.FreePort(t)),
		announce: fmt.Sprintf("tcp://127.0.0.1:%d", testcluster.FreePort(t)),
	}
	router, err := zmq.NewSocket(zmq.ROUTER)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := zmq.NewSocket(zmq.PUB)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []*zmq.Socket{router, pub} {
		_ = s.SetLinger(0)
	}
	if err := router.Bind(p.listen); err != nil {
		t.Fatal(err)
	}
	if err := pub.Bind(p.announce); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	t.Cleanup(func() { cancel(); wg.Wait() })
	serves := true
	publish := func() {
		// A long interval, though it publishes far more often: a dealer
		// starved on a loaded machine never takes it for dead.
		info := wire.NodeInfo{Endpoint: p.listen, Announce: p.announce, IntervalMS: 1000, Apps: map[string]wire.AppInfo{}}
		if serves {
			info.Apps[app] = wire.AppInfo{State: "running", Drivers: map[string]map[string]any{event: {"type": "native-server"}}}
		}
		b, _ := json.Marshal(info)
		_, _ = pub.SendMessageDontwait(p.listen, b)
	}
	go func() { // owns both sockets
		defer wg.Done()
		defer router.Close()
		defer pub.Close()
		poller := zmq.NewPoller()
		poller.Add(router, zmq.POLLIN)
		for ctx.Err() == nil {
			publish()
			polled, _ := poller.Poll(50 * time.Millisecond)
			if len(polled) == 0 {
				continue
			}
			msg, err := router.RecvMessageBytes(zmq.DONTWAIT)
			if err != nil || len(msg) < 2 {
				continue
			}
			var h wire.Header
			if wire.DecodeHeader(msg[1], &h) != nil || h.Type != wire.MsgInvoke {
				continue
			}
			p.invokes.Add(1)
			serves = false
			for end := time.Now().Add(30 * time.Second); ctx.Err() == nil && time.Now().Before(end); {
				publish()
				if d := p.dealer.Load(); d != nil && d.Routes()[app+"/"+event] == 1 {
					break
				}
				time.Sleep(20 * time.Millisecond)
			}
			hdr, _ := wire.AppendHeader(nil, &wire.Header{Type: wire.MsgError, ID: h.ID, Code: wire.CodeNotFound, Message: "no app " + app + " on this node"})
			_, _ = router.SendMessage(msg[0], hdr)
		}
	}()
	return p
}
