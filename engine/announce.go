package engine

import (
	"context"
	"encoding/json"
	"time"

	zmq "github.com/pebbe/zmq4"
)

// announce publishes the node's info every interval on its PUB endpoint:
// two frames, the request endpoint and the info as JSON (as in 0.9.8).
// The socket is an XPUB, which sees subscriptions: a dealer that just
// connected hears the node at once instead of an interval later.
func (n *Node) announce(ctx context.Context) {
	if n.cfg.Announce == "off" {
		return
	}
	pub, err := zmq.NewSocket(zmq.XPUB)
	if err != nil {
		n.log.Error("announce socket", "err", err)
		return
	}
	defer pub.Close()
	_ = pub.SetLinger(0)
	if err := n.cfg.Security.Server(pub); err != nil {
		n.log.Error("announce socket", "err", err)
		return
	}
	if err := pub.Bind(n.cfg.Announce); err != nil {
		n.log.Error("announce bind", "endpoint", n.cfg.Announce, "err", err)
		return
	}
	_ = pub.SetXpubVerbose(1) // every subscriber's subscription, not just the first
	poller := zmq.NewPoller()
	poller.Add(pub, zmq.POLLIN)
	next := time.Now()
	for ctx.Err() == nil {
		if !time.Now().Before(next) {
			n.publish(pub)
			next = time.Now().Add(n.cfg.AnnounceInterval.Duration)
		}
		// zmq takes a negative timeout as "forever": never pass one.
		wait := min(max(time.Until(next), time.Millisecond), 200*time.Millisecond)
		polled, _ := poller.Poll(wait)
		if len(polled) == 0 {
			continue
		}
		joined := false
		for {
			msg, err := pub.RecvBytes(zmq.DONTWAIT)
			if err != nil {
				break
			}
			joined = joined || (len(msg) > 0 && msg[0] == 1)
		}
		if joined {
			n.publish(pub)
		}
	}
}

func (n *Node) publish(pub *zmq.Socket) {
	b, err := json.Marshal(n.Info())
	if err == nil {
		_, err = pub.SendMessageDontwait(n.cfg.Advertise, b)
	}
	if err != nil {
		n.log.Debug("announce", "err", err)
	}
}
